"""The agreement-vs-number-of-labels curve as a PNG."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

from rlhf.atomic import atomic_write_bytes


def plot_agreement_curve(
    n_labels: Sequence[int],
    agreement: Sequence[float],
    path: str | os.PathLike,
    teacher_agreement: float | None = None,
    target: float | None = None,
    title: str = "Reward model: held-out agreement with the gold ordering",
    agreement_std: Sequence[float] | None = None,
) -> None:
    """Plot held-out agreement (non-tie pairs) against labels used; write the PNG atomically.

    teacher_agreement: the training labels' own agreement with the gold ordering (a dashed line).
    target: an acceptance threshold to draw (a dotted line).
    """
    if len(n_labels) != len(agreement) or not n_labels:
        raise ValueError(
            f"n_labels ({len(n_labels)}) and agreement ({len(agreement)}) must be equal and non-empty"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    if agreement_std is not None:
        ax.errorbar(
            n_labels,
            agreement,
            yerr=agreement_std,
            marker="o",
            capsize=3,
            label="reward model (ensemble mean)",
        )
    else:
        ax.plot(n_labels, agreement, marker="o", label="reward model (ensemble mean)")
    for x, y in zip(n_labels, agreement, strict=True):
        ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    if teacher_agreement is not None:
        ax.axhline(
            teacher_agreement, ls="--", color="tab:red", label=f"teacher labels ({teacher_agreement:.3f})"
        )
    if target is not None:
        ax.axhline(target, ls=":", color="tab:green", label=f"target ({target:.2f})")
    ax.set_xscale("log")
    ax.set_xticks(list(n_labels))
    ax.set_xticklabels([str(n) for n in n_labels])
    ax.set_xlabel("training labels (pairs)")
    ax.set_ylabel("agreement on held-out non-tie pairs")
    lo = min(list(agreement) + [teacher_agreement or 1.0, target or 1.0])
    ax.set_ylim(max(0.0, lo - 0.05), 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
