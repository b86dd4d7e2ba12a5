"""An ensemble of reward networks with per-member output normalisation, and what scores with it.

Each member's per-step reward r_m(t) is normalised with that member's mean and std of per-step
rewards over its training episodes, r'_m(t) = (r_m(t) - mu_m) / sigma_m, before averaging, so a
member whose raw scale happens to be larger does not dominate the mean or the std.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from rlhf.reward.config import RewardConfig
from rlhf.reward.dataset import SegmentRef, collate_segments
from rlhf.reward.features import EpisodeFeatures, FeatureStats, features_for
from rlhf.reward.model import RewardNet
from rlhf.trajectory import Trajectory

Segment = Trajectory | tuple[Trajectory, tuple[int, int]]
"""A whole trajectory, or (trajectory, (start, stop)) for steps [start, stop)."""


@dataclass
class ScoreResult:
    """Ensemble score of one segment (normalised units).

    mean, std: across members, of the segment return (sum of per-step rewards).
    per_step_mean, per_step_std: (T,) across members, per control step.
    axes: per-axis head returns (member mean), when the model has axis heads.
    """

    mean: float
    std: float
    per_step_mean: np.ndarray
    per_step_std: np.ndarray
    axes: dict[str, float] = field(default_factory=dict)

    def conservative(self, k: float) -> float:
        """mean - k * std: a pessimistic reward that penalises what the ensemble is unsure about."""
        return self.mean - k * self.std


@dataclass
class RewardStats:
    """Per-member normalisation of per-step rewards: r' = (r - mean) / std."""

    mean: float = 0.0
    std: float = 1.0


def _split(item: Segment) -> tuple[Trajectory, tuple[int, int]]:
    if isinstance(item, Trajectory):
        return item, (0, len(item))
    traj, (start, stop) = item
    if not (0 <= start < stop <= len(traj)):
        raise ValueError(f"episode {traj.episode_id!r}: segment {(start, stop)} is outside [0, {len(traj)})")
    return traj, (int(start), int(stop))


class RewardEnsemble:
    """k RewardNets sharing a config and input stats, each with its own output normalisation."""

    def __init__(
        self,
        config: RewardConfig,
        members: Sequence[RewardNet],
        feature_stats: FeatureStats,
        reward_stats: Sequence[RewardStats] | None = None,
    ) -> None:
        if not members:
            raise ValueError("RewardEnsemble needs at least one member")
        self.config = config
        self.members = torch.nn.ModuleList(members)
        self.feature_stats = feature_stats
        self.reward_stats = (
            list(reward_stats) if reward_stats is not None else [RewardStats() for _ in members]
        )
        if len(self.reward_stats) != len(self.members):
            raise ValueError(f"{len(self.reward_stats)} reward stats for {len(self.members)} members")
        self.inference_batch = 256

    def __len__(self) -> int:
        return len(self.members)

    def eval(self) -> RewardEnsemble:
        self.members.eval()
        return self

    # ------------------------------------------------------------------ core
    def _windows(self, refs: Sequence[SegmentRef]) -> tuple[list[SegmentRef], list[list[int]]]:
        """Split segments longer than max_steps into consecutive windows; returns windows and, per
        segment, the indices of its windows."""
        w = self.config.max_steps
        windows: list[SegmentRef] = []
        owner: list[list[int]] = []
        for eid, (start, stop) in refs:
            idx = []
            for s in range(start, stop, w):
                idx.append(len(windows))
                windows.append((eid, (s, min(s + w, stop))))
            owner.append(idx)
        return windows, owner

    @torch.no_grad()
    def member_step_rewards(
        self, features: Mapping[str, EpisodeFeatures], refs: Sequence[SegmentRef], normalize: bool = True
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per-member per-step rewards of each segment.

        Returns (rewards, axes): rewards[i] is (M, T_i) for segment i, axes[i] is (M, T_i, A).
        Segments longer than max_steps are scored window by window.
        """
        self.members.eval()
        windows, owner = self._windows(refs)
        m = len(self.members)
        win_r: list[np.ndarray] = []
        win_a: list[np.ndarray] = []
        for lo in range(0, len(windows), self.inference_batch):
            chunk = windows[lo : lo + self.inference_batch]
            b = collate_segments(features, chunk, self.feature_stats)
            outs = [net(b.images, b.state, b.actions, b.mask) for net in self.members]
            r = torch.stack([o[0] for o in outs]).numpy()  # (M, N, L)
            a = torch.stack([o[1] for o in outs]).numpy()  # (M, N, L, A)
            if normalize and self.config.normalize == "step":
                mu = np.array([s.mean for s in self.reward_stats], np.float32)[:, None, None]
                sd = np.array([s.std for s in self.reward_stats], np.float32)[:, None, None]
                r = (r - mu) / sd
            for i, (_, (s, e)) in enumerate(chunk):
                win_r.append(r[:, i, : e - s])
                win_a.append(a[:, i, : e - s])
        rewards = [np.concatenate([win_r[j] for j in idx], axis=1) for idx in owner]
        axes = [np.concatenate([win_a[j] for j in idx], axis=1) for idx in owner]
        assert all(x.shape[0] == m for x in rewards)
        return rewards, axes

    def member_returns(
        self, features: Mapping[str, EpisodeFeatures], refs: Sequence[SegmentRef]
    ) -> np.ndarray:
        """(M, N) normalised segment returns of every member."""
        rewards, _ = self.member_step_rewards(features, refs)
        return np.stack([r.sum(axis=1) for r in rewards], axis=1)

    def features_of(self, trajs: Sequence[Trajectory]) -> dict[str, EpisodeFeatures]:
        """Model inputs of each distinct trajectory, keyed by episode id."""
        out: dict[str, EpisodeFeatures] = {}
        seen: dict[str, int] = {}
        for t in trajs:
            if t.episode_id in out:
                if seen[t.episode_id] != id(t):
                    raise ValueError(f"two different trajectories share episode id {t.episode_id!r}")
                continue
            out[t.episode_id] = features_for(t, self.config)
            seen[t.episode_id] = id(t)
        return out

    # ------------------------------------------------------------------ public scoring
    def score_batch(self, items: Sequence[Segment]) -> list[ScoreResult]:
        """Score many segments at once (batched through the networks)."""
        split = [_split(it) for it in items]
        feats = self.features_of([t for t, _ in split])
        refs = [(t.episode_id, seg) for t, seg in split]
        rewards, axes = self.member_step_rewards(feats, refs)
        results = []
        for r, a in zip(rewards, axes, strict=True):
            returns = r.sum(axis=1)
            axis_returns = a.sum(axis=1).mean(axis=0) if a.shape[-1] else []
            results.append(
                ScoreResult(
                    mean=float(returns.mean()),
                    std=float(returns.std()),
                    per_step_mean=r.mean(axis=0),
                    per_step_std=r.std(axis=0),
                    axes={name: float(v) for name, v in zip(self.config.axes, axis_returns, strict=True)},
                )
            )
        return results

    def score(self, item: Segment) -> ScoreResult:
        """Score one trajectory or (trajectory, (start, stop)) segment."""
        return self.score_batch([item])[0]

    def conservative(self, item: Segment, k: float = 1.0) -> float:
        """mean - k * std of the segment's return."""
        return self.score(item).conservative(k)

    def preference_probabilities(self, pairs: Sequence[tuple[Segment, Segment]]) -> np.ndarray:
        """(M, P) per-member P(A preferred) = sigmoid(R_a - R_b) for each pair."""
        split_a = [_split(a) for a, _ in pairs]
        split_b = [_split(b) for _, b in pairs]
        feats = self.features_of([t for t, _ in split_a + split_b])
        refs = [(t.episode_id, seg) for t, seg in split_a + split_b]
        ret = self.member_returns(feats, refs)
        p = len(pairs)
        return 1.0 / (1.0 + np.exp(-(ret[:, :p] - ret[:, p:])))

    def disagreements(self, pairs: Sequence[tuple[Segment, Segment]]) -> np.ndarray:
        """(P,) std across members of P(A preferred): high where the members disagree (active sampling)."""
        return self.preference_probabilities(pairs).std(axis=0)

    def disagreement(self, pair: tuple[Segment, Segment]) -> float:
        """Std across members of P(A preferred) for one pair."""
        return float(self.disagreements([pair])[0])

    def disagreement_fn(self, load: Callable[[str], Trajectory]) -> Callable[[Sequence[Mapping]], np.ndarray]:
        """Adapter for active pair selection (`rlhf.prefs.sampling.select_active`).

        The returned function maps candidate dicts with `episode_a`, `episode_b`, `segment_a`,
        `segment_b` to (N,) disagreements; `load(episode_id)` supplies trajectories (e.g. the
        episode store's `load`), each loaded once per call.
        """

        def fn(candidates: Sequence[Mapping]) -> np.ndarray:
            cache: dict[str, Trajectory] = {}

            def get(eid: str) -> Trajectory:
                if eid not in cache:
                    cache[eid] = load(eid)
                return cache[eid]

            pairs = [
                ((get(c["episode_a"]), tuple(c["segment_a"])), (get(c["episode_b"]), tuple(c["segment_b"])))
                for c in candidates
            ]
            return self.disagreements(pairs) if pairs else np.zeros(0)

        return fn
