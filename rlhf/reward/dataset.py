"""Segment pairs from preference triples, batched as padded tensors; and random segment-pair sampling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rlhf.prefs.teacher_model import TeacherConfig, label_pair
from rlhf.prefs.triples import LABEL_A, LABEL_B, LABEL_EQUAL, PreferenceTriple
from rlhf.reward.features import EpisodeFeatures, FeatureStats, segment_steps
from rlhf.trajectory import Trajectory

SegmentRef = tuple[str, tuple[int, int]]
"""(episode_id, (start, stop)): a control-step range [start, stop) of one episode."""

_AXIS_TARGET = {LABEL_A: 1.0, LABEL_B: 0.0, LABEL_EQUAL: 0.5}


@dataclass
class SegmentBatch:
    """N padded segments: images (N, L, 3, S, S) uint8, state (N, L, 15), actions (N, L, 8), mask (N, L)."""

    images: torch.Tensor
    state: torch.Tensor
    actions: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device | str) -> SegmentBatch:
        """The same segments with every tensor on `device`."""
        return SegmentBatch(self.images.to(device), self.state.to(device), self.actions.to(device), self.mask.to(device))


def collate_segments(
    features: Mapping[str, EpisodeFeatures], refs: Sequence[SegmentRef], stats: FeatureStats
) -> SegmentBatch:
    """Gather segments into right-padded tensors, normalising state and actions with `stats`."""
    if not refs:
        raise ValueError("collate_segments: no segments given")
    length = max(stop - start for _, (start, stop) in refs)
    first = features[refs[0][0]]
    n = len(refs)
    images = np.zeros((n, length, *first.images.shape[1:]), np.uint8)
    state = np.zeros((n, length, first.state.shape[1]), np.float32)
    actions = np.zeros((n, length, first.actions.shape[1]), np.float32)
    mask = np.zeros((n, length), bool)
    for i, (eid, (start, stop)) in enumerate(refs):
        f = features[eid]
        k = stop - start
        images[i, :k] = f.images[start:stop]
        state[i, :k] = (f.state[start:stop] - stats.state_mean) / stats.state_std
        actions[i, :k] = (f.actions[start:stop] - stats.action_mean) / stats.action_std
        mask[i, :k] = True
    return SegmentBatch(
        torch.from_numpy(images), torch.from_numpy(state), torch.from_numpy(actions), torch.from_numpy(mask)
    )


def check_triples(triples: Sequence[PreferenceTriple], lengths: Mapping[str, int], max_steps: int) -> None:
    """Raise ValueError naming the first triple whose episode is unknown or whose segment is out of range."""
    for t in triples:
        for side, eid, (start, stop) in (("a", t.episode_a, t.segment_a), ("b", t.episode_b, t.segment_b)):
            if eid not in lengths:
                raise ValueError(
                    f"pair {t.pair_id!r}: episode_{side} {eid!r} is not among the given episodes"
                )
            if stop > lengths[eid]:
                raise ValueError(
                    f"pair {t.pair_id!r}: segment_{side} {(start, stop)} runs past episode {eid!r} ({lengths[eid]} steps)"
                )
            if stop - start > max_steps:
                raise ValueError(
                    f"pair {t.pair_id!r}: segment_{side} has {stop - start} steps, more than max_steps={max_steps}"
                )


class PairDataset:
    """Preference triples as training batches.

    `batch(idx)` returns a dict: `segments` (a SegmentBatch of 2B segments, A sides first then B
    sides), `prob_a` (B,), `weight` (B,), `axis_target` (B, A) and `axis_mask` (B, A).
    """

    def __init__(
        self,
        features: Mapping[str, EpisodeFeatures],
        triples: Sequence[PreferenceTriple],
        stats: FeatureStats,
        axes: Sequence[str] = (),
        annotator_weights: Mapping[str, float] | None = None,
        max_steps: int = 128,
    ) -> None:
        check_triples(triples, {k: len(v) for k, v in features.items()}, max_steps)
        self.features = features
        self.triples = list(triples)
        self.stats = stats
        self.axes = tuple(axes)
        self.prob_a = np.array([t.prob_a for t in self.triples], np.float32)
        weights = annotator_weights or {}
        bad = {k: v for k, v in weights.items() if not (v >= 0 and np.isfinite(v))}
        if bad:
            raise ValueError(f"annotator weights must be finite and >= 0, got {bad}")
        # Annotators without a weight count fully: weights are for down-weighting known-unreliable ones.
        self.weight = np.array([weights.get(t.annotator_id, 1.0) for t in self.triples], np.float32)
        self.axis_target = np.zeros((len(self.triples), len(self.axes)), np.float32)
        self.axis_mask = np.zeros((len(self.triples), len(self.axes)), np.float32)
        for i, t in enumerate(self.triples):
            for j, axis in enumerate(self.axes):
                label = t.axes.get(axis)
                if label in _AXIS_TARGET:
                    self.axis_target[i, j] = _AXIS_TARGET[label]
                    self.axis_mask[i, j] = 1.0

    def __len__(self) -> int:
        return len(self.triples)

    def batch(self, idx: Sequence[int]) -> dict:
        idx = list(idx)
        refs = [(self.triples[i].episode_a, self.triples[i].segment_a) for i in idx]
        refs += [(self.triples[i].episode_b, self.triples[i].segment_b) for i in idx]
        return {
            "segments": collate_segments(self.features, refs, self.stats),
            "prob_a": torch.from_numpy(self.prob_a[idx]),
            "weight": torch.from_numpy(self.weight[idx]),
            "axis_target": torch.from_numpy(self.axis_target[idx]),
            "axis_mask": torch.from_numpy(self.axis_mask[idx]),
        }


def sample_segment_pairs(
    episodes: Mapping[str, Trajectory],
    n_pairs: int,
    segment_seconds: float,
    rng: np.random.Generator,
    episode_ids: Sequence[str] | None = None,
) -> list[tuple[SegmentRef, SegmentRef]]:
    """Uniformly random pairs of equal-length segments from two different episodes.

    The segment length comes from `segment_seconds` and each episode's control rate; episodes shorter
    than one segment are not used. Raises ValueError when fewer than two episodes are long enough.
    """
    ids = list(episode_ids if episode_ids is not None else episodes.keys())
    steps = {eid: segment_steps(episodes[eid], segment_seconds) for eid in ids}
    usable = [eid for eid in ids if len(episodes[eid]) >= steps[eid]]
    if len(usable) < 2:
        raise ValueError(
            f"sample_segment_pairs: need >= 2 episodes of at least {segment_seconds} s, found {len(usable)}"
        )
    pairs = []
    for _ in range(n_pairs):
        a, b = rng.choice(len(usable), size=2, replace=False)
        refs = []
        for eid in (usable[a], usable[b]):
            k = steps[eid]
            start = int(rng.integers(0, len(episodes[eid]) - k + 1))
            refs.append((eid, (start, start + k)))
        pairs.append((refs[0], refs[1]))
    return pairs


def label_pairs(
    pairs: Sequence[tuple[SegmentRef, SegmentRef]],
    gold_steps: Mapping[str, np.ndarray],
    teacher: TeacherConfig,
    rng: np.random.Generator,
    instructions: Mapping[str, str] | None = None,
    prefix: str = "pair",
) -> list[PreferenceTriple]:
    """Label segment pairs with the scripted teacher on gold per-step rewards (T,) per episode.

    "Can't tell" answers are dropped; ties become prob_a = 0.5. The annotator id is the teacher's name.
    """
    out = []
    for i, ((ea, sa), (eb, sb)) in enumerate(pairs):
        label = label_pair(gold_steps[ea][sa[0] : sa[1]], gold_steps[eb][sb[0] : sb[1]], teacher, rng)
        if label is None:
            continue
        out.append(
            PreferenceTriple(
                pair_id=f"{prefix}-{i}",
                instruction=(instructions or {}).get(ea, ""),
                episode_a=ea,
                episode_b=eb,
                segment_a=sa,
                segment_b=sb,
                prob_a=float(label),
                annotator_id=teacher.name,
            )
        )
    return out
