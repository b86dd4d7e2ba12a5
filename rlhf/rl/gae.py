"""Advantage estimators as pure functions: GAE (Schulman et al., 2016) per step, and the
leave-one-out group baseline of RLOO (Ahmadian et al., 2024) per episode."""

from __future__ import annotations

import numpy as np


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    last_value: float | np.ndarray,
    terminated: bool | np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns of one episode (or N aligned episodes of equal length).

    Args:
        rewards: (T,) or (T, N) reward after the action at step t.
        values: (T,) or (T, N) critic's V(s_t).
        last_value: scalar or (N,) V(s_T) of the observation after the last step; used only where
            the episode was cut (truncated), since a terminal state is worth nothing.
        terminated: bool or (N,) whether s_T is terminal.
        gamma, lam: discount and GAE lambda.

    Returns:
        advantages (T,) or (T, N), and returns = advantages + values (the critic's target).

    delta_t = r_t + gamma * V(s_{t+1}) - V(s_t);  A_t = delta_t + gamma * lam * A_{t+1}, walked backwards.
    """
    r = np.asarray(rewards, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if r.shape != v.shape or r.ndim not in (1, 2) or r.shape[0] == 0:
        raise ValueError(f"rewards {r.shape} and values {v.shape} must have the same shape (T,) or (T, N), T >= 1")
    tail_shape = r.shape[1:]
    bootstrap = np.where(np.asarray(terminated, dtype=bool), 0.0, np.asarray(last_value, dtype=np.float64))
    bootstrap = np.broadcast_to(bootstrap, tail_shape)
    adv = np.zeros_like(r)
    next_adv = np.zeros(tail_shape)
    next_value = bootstrap
    for t in reversed(range(r.shape[0])):
        delta = r[t] + gamma * next_value - v[t]
        next_adv = delta + gamma * lam * next_adv
        adv[t] = next_adv
        next_value = v[t]
    return adv, adv + v


def leave_one_out_advantages(returns: np.ndarray, groups: np.ndarray, scale: bool = False,
                             scale_floor: float = 0.05) -> np.ndarray:
    """Per-episode advantage: its return minus the mean return of the *other* episodes of its group.

    A group is a set of episodes from the same initial state (same env seed). Subtracting their
    mean removes what the start alone decides (an easy or a hard layout), which a critic on frozen
    features only partly predicts; what is left is what this episode's actions did better or worse.

    With `scale`, each group's advantages are divided by the standard deviation of its returns
    (GRPO's per-group normalisation, Shao et al., 2024). Without it, a batch-wide normalisation lets
    the groups where success flipped (returns apart by the success bonus) drown out the groups where
    every episode succeeded, whose differences are time and motion quality; scaled, every start
    weighs alike. The divisor is at least `scale_floor` times the batch's return std, so a group of
    near-ties does not turn noise into a full-size advantage.

    Args:
        returns: (N,) episode returns.
        groups: (N,) group id of each episode; every group needs at least two episodes.
        scale: divide each group's advantages by its return std (floored).
        scale_floor: the floor, as a fraction of the std of all N returns.
    """
    r = np.asarray(returns, dtype=np.float64)
    g = np.asarray(groups)
    if r.ndim != 1 or g.shape != r.shape:
        raise ValueError(f"returns {r.shape} and groups {g.shape} must both be (N,)")
    out = np.empty_like(r)
    floor = max(scale_floor * float(np.std(r)), 1e-8)
    for gid in np.unique(g):
        idx = np.flatnonzero(g == gid)
        if len(idx) < 2:
            raise ValueError(f"group {gid.item()!r} has {len(idx)} episode(s); a leave-one-out baseline needs at least 2")
        total = r[idx].sum()
        out[idx] = r[idx] - (total - r[idx]) / (len(idx) - 1)
        if scale:
            out[idx] /= max(float(np.std(r[idx])), floor)
    return out
