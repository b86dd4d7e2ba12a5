"""Gold quality metrics of a trajectory (pure numpy). Formulas: docs/gold_metrics.md.

`traj` is duck-typed as an `rlhf.trajectory.Trajectory`: this module reads `task`, `success`,
`timestamps` (T,), `joint_positions` (T, 7), `gripper` (T,), `ee_positions` (T, 3),
`object_positions` (T, K, 3), `contact_forces` (T,) and `extra` ("control_dt_s",
"success_time_s", "time_limit_s"), and asks `traj.success_step(dt)` for the step that succeeded
(the reward model's success column uses the same method). Step t holds the observation before action t, and the contact
force during action t.

- `gold_metrics(traj)`: episode figures (success, time, jerk, speed near objects, ...).
- `gold_step_rewards(traj)`: per-step gold reward (T,), valid on any segment: the scripted teacher
  compares segments by the sums of these.
- `gold_axis_scores(traj)`: one number per preference axis, higher = better.
"""

from __future__ import annotations

import numpy as np

from sim.panda import joint_limit_margin
from sim.tasks import CUBE_HALF, progress_potential

NEAR_RADIUS_M = 0.10  # "near an object": grasp point within this distance of an object's centre
HELD_RADIUS_M = 0.03  # an object this close to the grasp point ...
HELD_MIN_Z_M = CUBE_HALF + 0.01  # ... and lifted off the table is carried, not approached
SAFE_SPEED_MPS = 0.10  # speed near objects above which a motion counts as unsafe
COLLISION_FORCE_N = 5.0  # contact force that counts as a collision
FORCE_SCALE_N = 20.0
SAFE_MARGIN_RAD = 0.15  # joint-limit margin below which a pose counts as strained
IDLE_SPEED_MPS = 0.01  # grasp point slower than this = idle (hesitating)

# Per-step gold reward weights (see docs/gold_metrics.md).
W_PROGRESS = 10.0  # per unit of task potential (m)
W_SUCCESS = 5.0  # once, on the step that succeeded
W_TIME = 0.3  # per second of episode
# Sized so that the smoothness the teacher is meant to prefer can decide a comparison between policies,
# not only between demonstrator styles: a 25 % cut of a reach BC policy's jerk (mean squared jerk
# ~5.6 (m/s^3)^2 over ~2 s) is worth one control step of time (W_TIME * 0.1 s). The first value, 2e-4,
# made that cut worth 0.0006, 2 % of a step, so no gold ordering could prefer it (bench/results/rl.md,
# stop 17). Measured per style in docs/gold_metrics.md.
W_JERK = 1e-2  # per (m/s^3)^2 · s
W_SPEED = 0.5  # per squared relative excess of speed over SAFE_SPEED_MPS near an object
W_FORCE = 1.0  # per FORCE_SCALE_N of contact force above COLLISION_FORCE_N
W_LIMIT = 2.0  # per rad of joint-limit margin below SAFE_MARGIN_RAD


def _dt(traj) -> float:
    dt = traj.extra.get("control_dt_s") if getattr(traj, "extra", None) else None
    if dt:
        return float(dt)
    t = np.asarray(traj.timestamps, dtype=np.float64)
    return float(np.median(np.diff(t))) if len(t) > 1 else 0.1


def _require(traj, name: str) -> np.ndarray:
    arr = getattr(traj, name)
    if arr is None:
        raise ValueError(f"gold metrics need {name}, which episode {getattr(traj, 'episode_id', '?')!r} lacks")
    return np.asarray(arr, dtype=np.float64)


def _speeds(ee: np.ndarray, dt: float) -> np.ndarray:
    """(T,) grasp-point speed caused by action t (forward difference; the last repeats the previous)."""
    if len(ee) < 2:
        return np.zeros(len(ee))
    v = np.linalg.norm(np.diff(ee, axis=0), axis=1) / dt
    return np.append(v, v[-1])


def _jerk_sq(ee: np.ndarray, dt: float) -> np.ndarray:
    """(T,) squared jerk magnitude, (m/s^3)^2, credited to the last action of each 4-sample window."""
    out = np.zeros(len(ee))
    if len(ee) >= 4:
        j = (ee[3:] - 3 * ee[2:-1] + 3 * ee[1:-2] - ee[:-3]) / dt**3
        out[2:-1] = np.sum(j * j, axis=1)
    return out


def _near_mask(ee: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """(T,) grasp point within NEAR_RADIUS_M of an object it is not carrying."""
    d = np.linalg.norm(objects - ee[:, None, :], axis=2)  # (T, K)
    held = (d < HELD_RADIUS_M) & (objects[:, :, 2] > HELD_MIN_Z_M)
    return np.any((d < NEAR_RADIUS_M) & ~held, axis=1)


def gold_metrics(traj) -> dict[str, float]:
    """Episode figures. All keys are always present (float); see docs/gold_metrics.md."""
    dt = _dt(traj)
    ee = _require(traj, "ee_positions")
    obj = _require(traj, "object_positions")
    forces = _require(traj, "contact_forces")
    q = np.asarray(traj.joint_positions, dtype=np.float64)
    n = len(ee)
    speed = _speeds(ee, dt)
    near = _near_mask(ee, obj)
    jsq = _jerk_sq(ee, dt)
    success = bool(traj.success)
    duration = n * dt
    succ_time = traj.extra.get("success_time_s") if traj.extra else None
    if success and succ_time is not None:
        time_to_success = float(succ_time) - float(traj.timestamps[0])
    else:
        time_to_success = float(traj.extra.get("time_limit_s", duration)) if traj.extra else duration
    hit = forces > COLLISION_FORCE_N
    onsets = int(np.sum(hit[1:] & ~hit[:-1]) + (hit[0] if n else 0))
    active = slice(0, (traj.success_step(dt) or n - 1) + 1)
    phi = progress_potential(traj.task, ee, obj) if n else np.zeros(0)
    rough = np.abs(np.diff(q, n=2, axis=0)).mean() if n >= 3 else 0.0
    return {
        "success": float(success),
        "time_to_success_s": float(time_to_success),
        "episode_length_s": float(duration),
        "mean_squared_jerk": float(np.mean(jsq[2:-1])) if n >= 4 else 0.0,
        "peak_ee_speed_near_objects_mps": float(np.max(speed[near])) if np.any(near) else 0.0,
        "peak_ee_speed_mps": float(np.max(speed)) if n else 0.0,
        "mean_ee_speed_mps": float(np.mean(speed[:-1])) if n > 1 else 0.0,
        "path_length_m": float(np.sum(np.linalg.norm(np.diff(ee, axis=0), axis=1))) if n > 1 else 0.0,
        "idle_fraction": float(np.mean(speed[active] < IDLE_SPEED_MPS)) if n else 0.0,
        "joint_roughness_rad": float(rough),
        "joint_limit_margin_rad": float(np.min(joint_limit_margin(q))) if n else 0.0,
        "collision_count": float(onsets),
        "max_contact_force_n": float(np.max(forces)) if n else 0.0,
        "initial_progress": float(phi[0]) if n else 0.0,
        "final_progress": float(phi[-1]) if n else 0.0,
    }


def gold_step_rewards(traj) -> np.ndarray:
    """Per-step gold reward (T,) float64; its sum is the gold return of the trajectory or segment.

    r_t = W_PROGRESS (Phi_{t+1} - Phi_t) + W_SUCCESS [t = success step] - W_TIME dt
          - W_JERK |jerk_t|^2 dt - W_SPEED (max(0, v_t - v_safe) / v_safe)^2 [near_t]
          - W_FORCE max(0, F_t - F_col) / F_scale - W_LIMIT max(0, m_safe - margin_t)
    """
    dt = _dt(traj)
    ee = _require(traj, "ee_positions")
    obj = _require(traj, "object_positions")
    forces = _require(traj, "contact_forces")
    q = np.asarray(traj.joint_positions, dtype=np.float64)
    n = len(ee)
    if n == 0:
        return np.zeros(0)
    phi = progress_potential(traj.task, ee, obj)
    r = np.zeros(n)
    r[:-1] += W_PROGRESS * np.diff(phi)
    k = traj.success_step(dt)
    if k is not None:
        r[k] += W_SUCCESS
    r -= W_TIME * dt
    r -= W_JERK * _jerk_sq(ee, dt) * dt
    excess = np.maximum(0.0, _speeds(ee, dt) - SAFE_SPEED_MPS) / SAFE_SPEED_MPS
    r -= W_SPEED * excess**2 * _near_mask(ee, obj)
    r -= W_FORCE * np.maximum(0.0, forces - COLLISION_FORCE_N) / FORCE_SCALE_N
    r -= W_LIMIT * np.maximum(0.0, SAFE_MARGIN_RAD - np.min(joint_limit_margin(q), axis=1))
    return r


def gold_axis_scores(traj, metrics: dict[str, float] | None = None) -> dict[str, float]:
    """One score per preference axis (higher = better); formulas in docs/gold_metrics.md."""
    m = metrics if metrics is not None else gold_metrics(traj)
    if m["success"] >= 1.0:
        success = 1.0
    else:
        phi0, phi1 = m["initial_progress"], m["final_progress"]
        frac = 1.0 - phi1 / phi0 if phi0 < -1e-6 else 0.0
        success = 0.5 * float(np.clip(frac, 0.0, 1.0))
    safety = -(
        m["peak_ee_speed_near_objects_mps"] / SAFE_SPEED_MPS
        + m["collision_count"]
        + max(0.0, m["max_contact_force_n"] - COLLISION_FORCE_N) / FORCE_SCALE_N
        + max(0.0, SAFE_MARGIN_RAD - m["joint_limit_margin_rad"]) / SAFE_MARGIN_RAD
    )
    return {
        "success": success,
        "speed": -m["time_to_success_s"],
        "smoothness": -float(np.log10(1.0 + m["mean_squared_jerk"])),
        "safety": float(safety),
        "naturalness": -(m["idle_fraction"] + m["joint_roughness_rad"] / 0.02),
    }
