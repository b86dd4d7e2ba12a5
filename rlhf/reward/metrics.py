"""Reward-model metrics: held-out accuracy on non-tie pairs, margin, calibration (ECE), gold correlation.

All functions are pure numpy. Metric names used in dicts are namespaced once here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rlhf.prefs.triples import PreferenceTriple

ACCURACY = "reward/accuracy"
MARGIN = "reward/margin"
ECE = "reward/ece"
GOLD_PEARSON = "reward/gold_pearson"
GOLD_SPEARMAN = "reward/gold_spearman"
N_PAIRS = "reward/n_pairs"
LOSS = "losses/bt_loss"
VAL_LOSS = "losses/val_bt_loss"


def _non_tie(prob_a: np.ndarray) -> np.ndarray:
    return np.asarray(prob_a) != 0.5


def preference_accuracy(score_a: np.ndarray, score_b: np.ndarray, prob_a: np.ndarray) -> float:
    """Fraction of non-tie pairs where the higher score is on the preferred side (a score tie counts
    half). NaN when there is no non-tie pair. Shapes (P,)."""
    keep = _non_tie(prob_a)
    if not keep.any():
        return float("nan")
    d = (np.asarray(score_a) - np.asarray(score_b))[keep]
    want_a = np.asarray(prob_a)[keep] > 0.5
    correct = np.where(d == 0, 0.5, ((d > 0) == want_a).astype(float))
    return float(correct.mean())


def preference_margin(score_a: np.ndarray, score_b: np.ndarray, prob_a: np.ndarray) -> float:
    """Mean of (preferred score - rejected score) over non-tie pairs (positive = right way round)."""
    keep = _non_tie(prob_a)
    if not keep.any():
        return float("nan")
    d = (np.asarray(score_a) - np.asarray(score_b))[keep]
    sign = np.where(np.asarray(prob_a)[keep] > 0.5, 1.0, -1.0)
    return float((sign * d).mean())


def expected_calibration_error(p_a: np.ndarray, prob_a: np.ndarray, n_bins: int = 10) -> float:
    """ECE of predicted P(A preferred) against non-tie labels.

    Each pair's confidence is max(p, 1-p); pairs are binned by confidence in [0.5, 1] and the ECE is
    sum_bins (n_bin / n) * |accuracy_bin - mean confidence_bin|.
    """
    keep = _non_tie(prob_a)
    if not keep.any():
        return float("nan")
    p = np.asarray(p_a, dtype=np.float64)[keep]
    want_a = np.asarray(prob_a)[keep] > 0.5
    conf = np.maximum(p, 1.0 - p)
    correct = ((p > 0.5) == want_a).astype(float)
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    # Average ranks of ties so Spearman is symmetric.
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    return sums[inv] / counts[inv]


def gold_correlation(scores: np.ndarray, gold: np.ndarray) -> tuple[float, float]:
    """(Pearson, Spearman) correlation between model segment scores and gold segment returns (N,)."""
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(gold, dtype=np.float64)
    if s.shape != g.shape or s.ndim != 1:
        raise ValueError(f"scores {s.shape} and gold {g.shape} must be 1-D of equal length")
    if len(s) < 2 or s.std() == 0 or g.std() == 0:
        return float("nan"), float("nan")
    pearson = float(np.corrcoef(s, g)[0, 1])
    spearman = float(np.corrcoef(_ranks(s), _ranks(g))[0, 1])
    return pearson, spearman


def pair_metrics(
    score_a: np.ndarray,
    score_b: np.ndarray,
    prob_a: np.ndarray,
    gold_a: np.ndarray | None = None,
    gold_b: np.ndarray | None = None,
) -> dict[str, float]:
    """All pair metrics in one dict (namespaced names). Gold returns, when given, add correlations."""
    sa, sb, pa = np.asarray(score_a), np.asarray(score_b), np.asarray(prob_a)
    p_pred = 1.0 / (1.0 + np.exp(-(sa - sb)))
    out = {
        ACCURACY: preference_accuracy(sa, sb, pa),
        MARGIN: preference_margin(sa, sb, pa),
        ECE: expected_calibration_error(p_pred, pa),
        N_PAIRS: float(_non_tie(pa).sum()),
    }
    if gold_a is not None and gold_b is not None:
        pear, spear = gold_correlation(np.concatenate([sa, sb]), np.concatenate([gold_a, gold_b]))
        out[GOLD_PEARSON] = pear
        out[GOLD_SPEARMAN] = spear
    return out


def gold_ordering(gold_a: np.ndarray, gold_b: np.ndarray) -> np.ndarray:
    """Noise-free labels from gold returns: 1 (A higher), 0 (B higher), 0.5 (equal)."""
    d = np.asarray(gold_a) - np.asarray(gold_b)
    return np.where(d > 0, 1.0, np.where(d < 0, 0.0, 0.5))


def triple_arrays(triples: Sequence[PreferenceTriple]) -> np.ndarray:
    """prob_a of each triple, (P,)."""
    return np.array([t.prob_a for t in triples], dtype=np.float64)


def gold_segment_returns(
    gold_steps: Mapping[str, np.ndarray], refs: Sequence[tuple[str, tuple[int, int]]]
) -> np.ndarray:
    """Sum of gold per-step rewards over each (episode_id, (start, stop)) segment, (N,)."""
    return np.array([float(np.sum(gold_steps[eid][s:e])) for eid, (s, e) in refs], dtype=np.float64)
