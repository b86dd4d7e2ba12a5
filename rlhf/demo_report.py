"""The demo's HTML report and its one-screen terminal summary, both built from the run's `summary.json` facts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rlhf.report import Section, write_report

_EVAL_COLUMNS = (
    ("success_rate", "success rate"),
    ("time_to_success_s", "time to success (s)"),
    ("mean_squared_jerk", "mean squared jerk"),
    ("peak_speed_near_objects_mps", "peak speed near objects (m/s)"),
    ("collisions_per_episode", "collisions / episode"),
    ("gold_return", "gold return"),
    ("preferred_over_bc", "preferred over BC (gold, paired)"),
)


def headline(facts: dict[str, Any]) -> str:
    e = facts["eval"]
    return (
        f"RLHF policy preferred over BC by the noise-free gold ordering in {100 * e['rlhf']['preferred_over_bc']:.0f}% "
        f"of {e['rlhf']['episodes']} paired rollouts; success {100 * e['bc']['success_rate']:.0f}% (BC) -> "
        f"{100 * e['rlhf']['success_rate']:.0f}% (RLHF), mean squared jerk {e['bc']['mean_squared_jerk']:.3g} -> "
        f"{e['rlhf']['mean_squared_jerk']:.3g}."
    )


def _agreement_figure(facts: dict[str, Any]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [a for a in facts.get("agreement", []) if not math.isnan(a["heldout_gold_agreement"])]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    if pts:
        ax.plot([a["labels_before"] for a in pts], [a["heldout_gold_agreement"] for a in pts], "o-")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--", label="chance")
    ax.set_xlabel("labels the reward model had learned from")
    ax.set_ylabel("agreement with gold order")
    ax.set_ylim(0, 1.02)
    ax.set_title("Reward model on the next round's unseen pairs")
    ax.legend(loc="lower right")
    return fig


def _eval_figure(facts: dict[str, Any]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = facts["eval"]
    keys = [k for k, _ in _EVAL_COLUMNS[:5]]
    fig, axes = plt.subplots(1, len(keys), figsize=(12, 2.8))
    for ax, key in zip(axes, keys, strict=True):
        vals = [e["bc"][key], e["rlhf"][key]]
        ax.bar(["BC", "RLHF"], [0 if math.isnan(v) else v for v in vals], color=["#888", "#2a7"])
        ax.set_title(dict(_EVAL_COLUMNS)[key], fontsize=9)
    fig.tight_layout()
    return fig


def write_demo_report(out: Path, facts: dict[str, Any]) -> Path:
    e = facts["eval"]
    sections = []
    s = Section("BC vs RLHF (paired rollouts from the same seeds)")
    s.text(headline(facts))
    s.table([{"policy": name.upper(), **{label: e[name][key] for key, label in _EVAL_COLUMNS}} for name in ("bc", "rlhf")])
    s.figure(_eval_figure(facts))
    if (out / "bc_vs_rlhf.mp4").exists():
        s.video(out / "bc_vs_rlhf.mp4", "BC (left) and RLHF (right) from the same initial state")
    sections.append(s)

    s = Section("Reward model: agreement vs labels")
    s.text("Before each round's labels are used for training, the current ensemble orders that round's new pairs; "
           "the figure is its agreement with the noise-free gold ordering on those unseen pairs.")
    s.figure(_agreement_figure(facts))
    s.table(facts.get("agreement", []))
    sections.append(s)

    s = Section("PPO: proxy reward, gold return and KL per iteration")
    png = out / "ppo" / "proxy_gold_kl.png"
    if png.exists():
        s.image_png(png.read_bytes(), "proxy (reward model) vs gold return vs KL to the BC policy")
    s.table(facts.get("rounds", []), "per RLHF round")
    over = facts.get("overoptimisation", {})
    s.text(f"Over-optimisation monitor: {'FLAGGED: ' + '; '.join(over.get('reasons', [])) if over.get('flagged') else 'not flagged'}.")
    sections.append(s)

    s = Section("Episodes recorded through the ROS graph")
    g = facts.get("graph")
    if g:
        s.text("sim_node -> policy_node -> safety_node -> recorder_node, each its own process over DDS; every episode "
               "is an MCAP bag + video + index row. Gold metrics come from replaying the recorded commands in the "
               "seeded sim (replay fidelity below).")
        s.table([{**row, **rep} for row, rep in zip(g["episodes"], g["replay"], strict=False)])
    else:
        s.text("Recorded straight from the sim (DemoConfig.graph = False).")
    s.table(facts.get("annotation", []), "campaigns labelled by the scripted teacher through the annotation server")
    sections.append(s)

    s = Section("Configs and timings")
    s.table([{"stage": k, "seconds": v} for k, v in facts.get("stage_seconds", {}).items()])
    s.json(facts["config"], "demo configuration")
    for name in ("bc/bc_config.json",):
        p = out / name
        if p.exists():
            s.json(json.loads(p.read_text()), name)
    sections.append(s)
    return write_report(out / "report.html", "RLHF demo report", headline(facts), sections)


def print_summary(facts: dict[str, Any], report: Path) -> None:
    """The one-screen summary at the end of `make demo`."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    e = facts["eval"]
    t = Table(title="BC vs RLHF (same seeds)")
    t.add_column("metric")
    t.add_column("BC", justify="right")
    t.add_column("RLHF", justify="right")
    for key, label in _EVAL_COLUMNS:
        t.add_row(label, f"{e['bc'][key]:.3g}", f"{e['rlhf'][key]:.3g}")
    console.print(t)
    ag = facts.get("agreement", [])
    if ag:
        console.print("reward model vs gold on unseen pairs: " + ", ".join(
            f"{a['heldout_gold_agreement']:.2f} @ {int(a['labels_before'])} labels" for a in ag))
    console.print("stages (s): " + ", ".join(f"{k.split('. ')[-1]} {v:.0f}" for k, v in facts["stage_seconds"].items()))
    console.print(f"[bold]{headline(facts)}[/bold]")
    console.print(f"report: {report}")
