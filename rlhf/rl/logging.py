"""Metrics out: TensorBoard events, a CSV (rewritten atomically each time), and the proxy-vs-gold-vs-KL plot.

Metric names are namespaced and chosen once: `objective/kl`, `objective/rlhf_reward`,
`objective/scores` (proxy return), `losses/policy_loss`, `losses/value_loss`, `losses/approx_kl`,
`losses/clipfrac`, `charts/SPS`, `charts/kl_coef`, `gold/*` (the sim's gold metrics), `overopt/*`.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from rlhf.atomic import atomic_write_bytes, atomic_write_text

PROXY_KEY = "objective/scores"
GOLD_KEY = "gold/return"
KL_KEY = "objective/kl"


class MetricsLogger:
    """Logs a dict of scalars per step to TensorBoard (if available) and `metrics.csv` in `log_dir`."""

    def __init__(self, log_dir: str | os.PathLike, tensorboard: bool = True) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.log_dir / "metrics.csv"
        self.rows: list[dict[str, float]] = []
        if self.csv_path.exists():  # resume: keep what an earlier run logged
            self.rows = read_metrics_csv(self.csv_path)
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.log_dir / "tb"))

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": float(step), **{k: float(v) for k, v in metrics.items()}}
        self.rows.append(row)
        if self._writer is not None:
            for k, v in metrics.items():
                self._writer.add_scalar(k, float(v), step)
            self._writer.flush()
        self._write_csv()

    def keep_first(self, n: int) -> None:
        """Drop the rows after the first `n` (a resumed run repeats the iterations after its checkpoint)."""
        if len(self.rows) > n:
            self.rows = self.rows[:n]
            self._write_csv()

    def _write_csv(self) -> None:
        keys: list[str] = []
        for row in self.rows:
            keys.extend(k for k in row if k not in keys)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys, restval="")
        w.writeheader()
        w.writerows(self.rows)
        atomic_write_text(self.csv_path, buf.getvalue())

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_metrics_csv(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a metrics CSV as dicts of floats (empty cells are left out)."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def plot_proxy_gold_kl(csv_path: str | os.PathLike, out_path: str | os.PathLike, title: str = "") -> Path:
    """Proxy return, gold return and KL per iteration in three stacked panels; written atomically as PNG.

    Over-optimisation reads as the top panel rising while the middle one falls.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics_csv(csv_path)
    if not rows:
        raise ValueError(f"{csv_path}: no metrics rows to plot")
    fig, axes = plt.subplots(3, 1, figsize=(7, 7), sharex=True)
    for ax, key, label in (
        (axes[0], PROXY_KEY, "proxy return (reward model)"),
        (axes[1], GOLD_KEY, "gold return (sim)"),
        (axes[2], KL_KEY, "KL to reference (nats / episode)"),
    ):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", ms=3)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    for key, label, color, ax_text in (
        ("overopt/proxy_up_gold_down", " proxy up, gold down", "red", axes[0]),
        ("overopt/kl_blowup", " KL blow-up", "darkorange", axes[2]),
    ):
        flags = [r["step"] for r in rows if r.get(key, 0.0) > 0]
        if flags:
            for ax in axes:
                ax.axvline(flags[0], color=color, ls="--", lw=1)
            ax_text.text(flags[0], ax_text.get_ylim()[1], label, color=color, va="top", fontsize=8)
    axes[-1].set_xlabel("iteration")
    fig.suptitle(title or "proxy vs gold vs KL")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    out = Path(out_path)
    atomic_write_bytes(out, buf.getvalue())
    return out
