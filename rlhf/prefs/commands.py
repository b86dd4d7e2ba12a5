"""`rlhf prefs ...`: run a scripted teacher against a server, print campaign statistics, export triples."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

DEFAULT_DB = "data/prefs.sqlite"
ADMIN_TOKEN_ENV = "RLHF_ADMIN_TOKEN"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("prefs", help="preference store: scripted teacher, statistics, export")
    sub = p.add_subparsers(dest="prefs_command", metavar="ACTION")
    p.set_defaults(func=lambda args: p.print_help() or 2)

    t = sub.add_parser("teacher", help="label a campaign with a B-Pref scripted teacher through the HTTP API")
    t.add_argument("--url", default="http://127.0.0.1:8600", help="annotation server")
    t.add_argument("--campaign", required=True)
    auth = t.add_mutually_exclusive_group()
    auth.add_argument("--token", help="the teacher's own annotator token")
    auth.add_argument("--admin-token", help=f"register the teacher with this admin token (default ${ADMIN_TOKEN_ENV})")
    gold = t.add_mutually_exclusive_group(required=True)
    gold.add_argument("--gold", type=Path, help='JSON {episode_id: {"step_rewards": [...], "axes": {...}}}')
    gold.add_argument("--episode-store", type=Path, help="episode store root: gold from the sim's metrics")
    t.add_argument("--beta", type=float, default=math.inf, help="Bradley-Terry rationality (inf: perfect)")
    t.add_argument("--gamma", type=float, default=1.0, help="myopia discount in (0, 1]")
    t.add_argument("--mistake-rate", type=float, default=0.0, help="probability of flipping a label")
    t.add_argument("--skip-threshold", type=float, default=-math.inf, help="can't tell below this return")
    t.add_argument("--equal-threshold", type=float, default=0.0, help="tie below this return difference")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-items", type=int, default=None)
    t.set_defaults(func=_teacher)

    s = sub.add_parser("stats", help="per-annotator quality and per-axis agreement of a campaign")
    s.add_argument("--db", default=DEFAULT_DB)
    s.add_argument("--campaign", required=True)
    s.add_argument("--json", action="store_true", help="print the dashboard's JSON instead of tables")
    s.set_defaults(func=_stats)

    e = sub.add_parser("export", help="export preference triples to JSONL or parquet")
    e.add_argument("--db", default=DEFAULT_DB)
    e.add_argument("--campaign", required=True)
    e.add_argument("--out", type=Path, required=True, help="file ending in .jsonl or .parquet")
    e.add_argument("--format", choices=("jsonl", "parquet"), default=None)
    e.add_argument("--kinds", default="work,gold", help="pair kinds to export (comma-separated)")
    e.add_argument("--include-unqualified", action="store_true", help="keep labels of annotators who failed calibration")
    e.set_defaults(func=_export)


def _gold_sources(args: argparse.Namespace):
    """(step_rewards, axis_scores) lookups for the teacher."""
    import numpy as np

    if args.gold is not None:
        data = json.loads(args.gold.read_text(encoding="utf-8"))
        try:
            steps = {k: np.asarray(v["step_rewards"], dtype=np.float64) for k, v in data.items()}
            axes = {k: v["axes"] for k, v in data.items() if "axes" in v}
        except (KeyError, TypeError) as e:
            raise SystemExit(f"{args.gold}: every episode needs 'step_rewards' ({e})") from e
        return steps, (axes or None)

    from rlhf.episodes.store import EpisodeStore
    from sim.metrics import gold_axis_scores, gold_step_rewards

    store = EpisodeStore(args.episode_store)
    cache: dict[str, tuple] = {}

    def gold(episode_id: str):
        if episode_id not in cache:
            traj = store.load(episode_id)
            cache[episode_id] = (gold_step_rewards(traj), gold_axis_scores(traj))
        return cache[episode_id]

    return (lambda e: gold(e)[0]), (lambda e: gold(e)[1])


def _teacher(args: argparse.Namespace) -> int:
    import httpx

    from rlhf.prefs.teacher import ScriptedTeacher, TeacherRunConfig
    from rlhf.prefs.teacher_model import TeacherConfig

    cfg = TeacherConfig(
        beta=args.beta,
        gamma=args.gamma,
        mistake_rate=args.mistake_rate,
        skip_threshold=args.skip_threshold,
        equal_threshold=args.equal_threshold,
    )
    token = args.token
    if token is None:
        admin = args.admin_token or os.environ.get(ADMIN_TOKEN_ENV)
        if not admin:
            print(f"prefs teacher: give --token, or --admin-token / ${ADMIN_TOKEN_ENV} to register", file=sys.stderr)
            return 2
        with httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30) as ac:
            token = ScriptedTeacher.register(ac, cfg)
    steps, axes = _gold_sources(args)
    with httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        teacher = ScriptedTeacher(cfg, client, steps, axes)
        report = teacher.run(TeacherRunConfig(args.campaign, max_items=args.max_items, seed=args.seed))
    print(
        f"{report.annotator_id}: {report.labels} labels ({report.cant_tell} can't tell), "
        f"calibration {report.calibration_correct}/{report.calibration_seen} correct, stopped: {report.final_status}"
    )
    return 0


def _fmt(x, pct: bool = False) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{100 * x:.1f}%" if pct else f"{x:.3f}"
    return str(x)


def _stats(args: argparse.Namespace) -> int:
    from rlhf.prefs.stats import campaign_stats
    from rlhf.prefs.store import PreferenceStore, StoreError

    try:
        with PreferenceStore(args.db) as store:
            s = campaign_stats(store, args.campaign)
    except StoreError as e:
        print(f"prefs stats: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(s, indent=2, sort_keys=True))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200) if not sys.stdout.isatty() else Console()
    console.print("counts: " + ", ".join(f"{k}={v}" for k, v in s["counts"].items()))
    t = Table(title=f"annotators of {args.campaign}")
    cols = [
        ("labels", False), ("calibration_accuracy", True), ("qualified", False), ("gold_labels", False),
        ("gold_accuracy", True), ("gold_kappa", False), ("self_consistency", True), ("mean_pairwise_kappa", False),
        ("cant_tell_rate", True),
    ]
    t.add_column("annotator")
    for name, _ in cols:
        t.add_column(name, justify="right")
    for ann, row in s["annotators"].items():
        t.add_row(ann, *[_fmt(row[name], pct) for name, pct in cols])
    console.print(t)
    a = Table(title="agreement per axis")
    for col in ("axis", "fleiss_kappa", "krippendorff_alpha", "items"):
        a.add_column(col, justify="right" if col != "axis" else "left")
    for axis, row in s["axes"].items():
        a.add_row(axis, _fmt(row["fleiss_kappa"]), _fmt(row["krippendorff_alpha"]), str(row["items"]))
    console.print(a)
    return 0


def _export(args: argparse.Namespace) -> int:
    from rlhf.prefs.export import write_triples
    from rlhf.prefs.store import PreferenceStore

    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    from rlhf.prefs.store import StoreError

    try:
        with PreferenceStore(args.db) as store:
            store.campaign(args.campaign)
            triples = store.triples(args.campaign, kinds=kinds, qualified_only=not args.include_unqualified)
    except StoreError as e:
        print(f"prefs export: {e}", file=sys.stderr)
        return 2
    path = write_triples(triples, args.out, args.format)
    print(f"wrote {len(triples)} preference triples to {path}")
    return 0
