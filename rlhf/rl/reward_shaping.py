"""From reward-model scores to the per-step rewards PPO optimises.

1. The reward model scores each finished episode: per-step mean (and std over the ensemble), in the
   reward model's normalised units. The proxy per-step reward is mean - k * std (k >= 0 is pessimism
   under ensemble disagreement).
2. A running normaliser keeps the scale steady across iterations while the reward model changes.
3. The KL to the frozen reference is folded into the reward per step, as TRL does:
   r_t = score_t - kl_coef * KL_t. The critic and GAE see only this combined reward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from rlhf.trajectory import Trajectory


class StepRewardFn(Protocol):
    """Per-step rewards of a finished trajectory: (T,) float."""

    def __call__(self, traj: Trajectory) -> np.ndarray: ...


class EnsembleStepReward:
    """Per-step proxy reward from a reward-model ensemble: per_step_mean - std_coef * per_step_std.

    `model.score(traj)` must return (mean, std, per_step_mean (T,), per_step_std (T,)) or an object
    with those attributes.
    """

    def __init__(self, model: Any, std_coef: float = 0.0) -> None:
        if std_coef < 0:
            raise ValueError(f"std_coef must be >= 0, got {std_coef}")
        self.model = model
        self.std_coef = float(std_coef)

    def __call__(self, traj: Trajectory) -> np.ndarray:
        result = self.model.score(traj)
        if isinstance(result, tuple):
            per_step_mean, per_step_std = result[2], result[3]
        else:
            per_step_mean, per_step_std = result.per_step_mean, result.per_step_std
        mean = _as_numpy(per_step_mean)
        std = _as_numpy(per_step_std)
        if mean.shape != (len(traj),):
            raise ValueError(f"reward model gave per-step rewards of shape {mean.shape} for a {len(traj)}-step episode")
        return mean - self.std_coef * std


class GoldStepReward:
    """The sim's gold per-step reward (`sim.metrics.gold_step_rewards`): PPO's upper bound."""

    def __init__(self, fn: Callable[[Trajectory], np.ndarray] | None = None) -> None:
        if fn is None:
            from sim.metrics import gold_step_rewards

            fn = gold_step_rewards
        self.fn = fn

    def __call__(self, traj: Trajectory) -> np.ndarray:
        r = _as_numpy(self.fn(traj))
        if r.shape != (len(traj),):
            raise ValueError(f"gold reward has shape {r.shape} for a {len(traj)}-step episode")
        return r


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


class RunningNormalizer:
    """Running mean and variance of per-step rewards (parallel Welford / Chan et al. merge)."""

    def __init__(self, mode: str = "scale", eps: float = 1e-8) -> None:
        if mode not in ("scale", "standard", "none"):
            raise ValueError(f"normaliser mode must be 'scale', 'standard' or 'none', got {mode!r}")
        self.mode = mode
        self.eps = eps
        self.mean = 0.0
        self.var = 1.0
        self.count = 0

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size == 0:
            return
        b_mean, b_var, b_count = float(x.mean()), float(x.var()), x.size
        if self.count == 0:
            self.mean, self.var, self.count = b_mean, b_var, b_count
            return
        total = self.count + b_count
        delta = b_mean - self.mean
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.mean += delta * b_count / total
        self.var = m2 / total
        self.count = total

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.mode == "none":
            return x
        std = np.sqrt(self.var) + self.eps
        if self.mode == "scale":
            return x / std
        return (x - self.mean) / std

    def state_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.mean, self.var, self.count = float(state["mean"]), float(state["var"]), int(state["count"])


def shape_rewards(
    scores: list[np.ndarray], kls: list[np.ndarray], kl_coef: float, normalizer: RunningNormalizer
) -> tuple[list[np.ndarray], dict[str, float]]:
    """Normalise the proxy scores of a rollout batch and fold the per-step KL penalty in.

    Args:
        scores: per episode, (T_i,) proxy per-step rewards.
        kls: per episode, (T_i,) closed-form KL(policy || reference) at each step.
        kl_coef: the KL coefficient now.
        normalizer: updated with this batch's scores first, then applied.

    Returns per-episode (T_i,) rewards for GAE, and TRL-style objective metrics (per-episode sums,
    averaged over episodes): `objective/scores` (raw proxy return), `objective/kl`,
    `objective/non_score_reward` (-kl_coef * kl), `objective/rlhf_reward` (normalised score - kl_coef * kl).
    """
    if len(scores) != len(kls):
        raise ValueError(f"{len(scores)} score arrays but {len(kls)} KL arrays")
    for i, (s, k) in enumerate(zip(scores, kls, strict=True)):
        if np.shape(s) != np.shape(k):
            raise ValueError(f"episode {i}: scores shape {np.shape(s)} differs from KL shape {np.shape(k)}")
    normalizer.update(np.concatenate([np.asarray(s, dtype=np.float64) for s in scores]))
    rewards, rlhf, non_score = [], [], []
    for s, k in zip(scores, kls, strict=True):
        norm = normalizer(s)
        penalty = -kl_coef * np.asarray(k, dtype=np.float64)
        rewards.append(norm + penalty)
        rlhf.append(float(norm.sum() + penalty.sum()))
        non_score.append(float(penalty.sum()))
    metrics = {
        "objective/scores": float(np.mean([np.sum(s) for s in scores])),
        "objective/kl": float(np.mean([np.sum(k) for k in kls])),
        "objective/non_score_reward": float(np.mean(non_score)),
        "objective/rlhf_reward": float(np.mean(rlhf)),
    }
    return rewards, metrics
