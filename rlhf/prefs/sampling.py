"""Pair sampling for a campaign: uniform within a task+instruction, and active selection by disagreement.

Both return pair specs (dicts for `PreferenceStore.add_pairs`); left/right is drawn by the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.labels import aggregate_axes
from rlhf.prefs.store import EpisodeRecord
from rlhf.prefs.triples import LABEL_A, LABEL_B, LABEL_EQUAL


@dataclass(frozen=True)
class SamplingConfig:
    """How candidate pairs are drawn."""

    segment_steps: int | None = None
    """Length of the compared segments in control steps; None compares whole episodes."""
    same_start: bool = False
    """Start both segments at the same step (compare the same phase of the task)."""
    oversample: int = 4
    """Active selection draws this many candidates per pair kept."""

    def __post_init__(self) -> None:
        if self.segment_steps is not None and self.segment_steps < 1:
            raise ValueError(f"SamplingConfig.segment_steps must be >= 1 or None, got {self.segment_steps}")
        if self.oversample < 1:
            raise ValueError(f"SamplingConfig.oversample must be >= 1, got {self.oversample}")


def group_by_instruction(episodes: Sequence[EpisodeRecord]) -> dict[tuple[str, str], list[EpisodeRecord]]:
    """Episodes keyed by (task, instruction); only groups that can form a pair (>= 2 episodes)."""
    groups: dict[tuple[str, str], list[EpisodeRecord]] = defaultdict(list)
    for ep in episodes:
        groups[(ep.task, ep.instruction)].append(ep)
    return {k: v for k, v in groups.items() if len(v) >= 2}


def _segment(ep: EpisodeRecord, length: int | None, start: int | None, rng: np.random.Generator) -> tuple[int, int]:
    if length is None or length >= ep.num_steps:
        return (0, ep.num_steps)
    if start is None:
        start = int(rng.integers(0, ep.num_steps - length + 1))
    start = min(start, ep.num_steps - length)
    return (start, start + length)


def sample_uniform_pairs(
    episodes: Sequence[EpisodeRecord],
    n: int,
    rng: np.random.Generator,
    config: SamplingConfig = SamplingConfig(),
    *,
    exclude: set[frozenset[str]] | None = None,
) -> list[dict[str, Any]]:
    """n pairs: a group drawn with probability proportional to its number of possible pairs, then two
    distinct episodes uniformly from it, so every same-instruction pair is equally likely.

    Pairs already in `exclude` (frozensets of the two episode ids) or drawn before are skipped; returns
    fewer than n when the episodes cannot form n distinct pairs.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    groups = list(group_by_instruction(episodes).values())
    if not groups:
        return []
    sizes = np.array([len(g) * (len(g) - 1) // 2 for g in groups], dtype=np.float64)
    seen = set(exclude or ())
    capacity = int(sizes.sum()) - len(seen)
    out: list[dict[str, Any]] = []
    attempts = 0
    while len(out) < min(n, capacity) and attempts < 50 * max(n, 1) + 1000:
        attempts += 1
        g = groups[int(rng.choice(len(groups), p=sizes / sizes.sum()))]
        i, j = rng.choice(len(g), size=2, replace=False)
        a, b = g[int(i)], g[int(j)]
        key = frozenset((a.episode_id, b.episode_id))
        if key in seen:
            continue
        seen.add(key)
        start = None
        if config.same_start and config.segment_steps is not None:
            shortest = min(a.num_steps, b.num_steps)
            start = int(rng.integers(0, max(1, shortest - config.segment_steps + 1)))
        out.append(
            {
                "episode_a": a.episode_id,
                "episode_b": b.episode_id,
                "segment_a": _segment(a, config.segment_steps, start, rng),
                "segment_b": _segment(b, config.segment_steps, start, rng),
            }
        )
    return out


def select_active(
    candidates: Sequence[Mapping[str, Any]],
    disagreement_fn: Callable[[Sequence[Mapping[str, Any]]], Sequence[float] | np.ndarray],
    keep: int,
) -> list[dict[str, Any]]:
    """Keep the `keep` most contested candidates.

    `disagreement_fn(candidates) -> (N,)` scores each candidate pair, e.g. the std over a reward-model
    ensemble of P(A preferred) (the reward helper's ensemble `score()` supplies it). Ties keep the
    earlier candidate, so the result is deterministic for a given candidate order.
    """
    if keep < 0:
        raise ValueError(f"keep must be >= 0, got {keep}")
    if not candidates or keep == 0:
        return []
    scores = np.asarray(disagreement_fn(candidates), dtype=np.float64)
    if scores.shape != (len(candidates),):
        raise ValueError(f"disagreement_fn returned shape {scores.shape}, expected ({len(candidates)},)")
    if not np.all(np.isfinite(scores)):
        raise ValueError("disagreement_fn returned NaN or inf")
    order = np.argsort(-scores, kind="stable")[:keep]
    return [dict(candidates[int(i)], disagreement=float(scores[int(i)])) for i in order]


def sample_active_pairs(
    episodes: Sequence[EpisodeRecord],
    n: int,
    rng: np.random.Generator,
    disagreement_fn: Callable[[Sequence[Mapping[str, Any]]], Sequence[float] | np.ndarray],
    config: SamplingConfig = SamplingConfig(),
    *,
    exclude: set[frozenset[str]] | None = None,
) -> list[dict[str, Any]]:
    """Oversample `config.oversample * n` uniform candidates and keep the n most contested."""
    candidates = sample_uniform_pairs(episodes, n * config.oversample, rng, config, exclude=exclude)
    return select_active(candidates, disagreement_fn, n)


def known_answer(
    gold_a: Mapping[str, float],
    gold_b: Mapping[str, float],
    weights: Mapping[str, float],
    *,
    tolerance: float = 1e-6,
) -> tuple[int, dict[str, int]]:
    """The known answer of a gold/calibration pair from two episodes' gold axis scores (higher is better).

    Per axis: A, B, or equal when the scores differ by at most `tolerance`; the aggregate uses the
    campaign weights exactly as an annotator's answer does.
    """
    axes: dict[str, int] = {}
    for axis in PREFERENCE_AXES:
        if axis not in gold_a or axis not in gold_b:
            continue
        d = float(gold_a[axis]) - float(gold_b[axis])
        axes[axis] = LABEL_EQUAL if abs(d) <= tolerance else LABEL_A if d > 0 else LABEL_B
    if not axes:
        raise ValueError("gold scores share no axis; cannot derive a known answer")
    label, _ = aggregate_axes(axes, weights)
    return label, axes


def with_known_answers(
    specs: Sequence[Mapping[str, Any]],
    episodes: Mapping[str, EpisodeRecord],
    weights: Mapping[str, float],
    kind: str,
    *,
    tolerance: float = 1e-6,
) -> list[dict[str, Any]]:
    """Turn sampled specs into calibration/gold specs whose answers come from the episodes' gold_axes.

    Specs whose episodes lack gold scores, or whose answer would be can't-tell, are dropped.
    """
    out = []
    for spec in specs:
        a, b = episodes[spec["episode_a"]], episodes[spec["episode_b"]]
        if a.gold_axes is None or b.gold_axes is None:
            continue
        label, axes = known_answer(a.gold_axes, b.gold_axes, weights, tolerance=tolerance)
        if label not in (LABEL_A, LABEL_B, LABEL_EQUAL):
            continue
        out.append(dict(spec, kind=kind, known_label=label, known_axes=axes))
    return out
