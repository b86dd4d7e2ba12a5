"""Kinematic scene features per control step: how the grasp point moves among the task objects.

The reward model's optional linear channel (`RewardConfig.kinematic`) reads these. They are generic
quantities for tabletop manipulation, not any one reward's terms: distances between the grasp point
and each object and between objects (and how they change), how fast the gripper moves when it is
close to an object it is not carrying, on a grid of distances and speeds, how jerky the motion is,
how near the joints are to their limits, the contact force, and the step the task was completed.
What a preference rewards out of these is learned from the labels.

Columns for K objects and a G x G grid (G = len(KINEMATIC_GRID)), in this order:

| columns          | count     | content                                                              |
|------------------|-----------|----------------------------------------------------------------------|
| motion           | 4         | speed, speed^2, |accel|^2 / 100, |jerk|^2 / 10^4 of the grasp point    |
| per object k     | K         | change of distance from the grasp point to object k                  |
| proximity        | G^2       | for each radius r and speed c of the grid: max(0, v - c)^2 * near_r(d),|
|                  |           | v the grasp point's speed, d its distance to the nearest object it   |
|                  |           | is not carrying, near_r a soft "d < r" step                          |
| per object pair  | K (K-1)   | change of the pair's 3D distance and of its distance in the plane    |
| joint limits     | 3         | max(0, m - margin) for m in JOINT_MARGINS, margin = the smallest     |
|                  |           | distance of a joint to its limit                                     |
| contact          | 1         | contact force, N                                                     |
| success          | 1         | 1 on the step whose action completed the task (`Trajectory.success_step`), else 0 |

Motion is what the action at step t causes: differences look forward (step t to t+1; acceleration
and jerk to t+2 and t+3) and the last steps repeat the last difference. An object is carried while
it is within CARRY_RADIUS_M of the grasp point and lifted at least LIFT_M above where it stood at the
first step: moving fast with an object in the gripper is not approaching it fast. Only the nearest
object counts, so being close to two objects at once is not penalised twice.

Why this layout (bench/results/reward.md, stop 15): linear Bradley-Terry fits on 10,000 noise-free
labels agreed with the gold ordering on 91.4 % of held-out pairs with the earlier per-object
relative-speed grid, and 97.2 % with this layout.
"""

from __future__ import annotations

import numpy as np

from rlhf.trajectory import Trajectory

KINEMATIC_GRID = (0.03, 0.06, 0.12, 0.24)
"""Distances (m) and speeds (m/s) of the proximity x speed grid: octaves, so any threshold in
2-25 cm or cm/s lies within a factor of sqrt(2) of a grid point."""
JOINT_MARGINS = (0.1, 0.2, 0.3)
"""Joint-limit margins (rad) below which the joint-limit hinges grow."""
CARRY_RADIUS_M = 0.04
"""An object this close to the grasp point (and lifted, LIFT_M) is carried."""
LIFT_M = 0.01
"""Height above its first-step position from which an object counts as lifted."""
_MOTION = 4
_SOFTNESS = 0.1  # width of the soft "closer than r" step, as a fraction of r


def kinematic_dim(num_objects: int) -> int:
    """Number of columns for `num_objects` task objects."""
    g = len(KINEMATIC_GRID)
    pairs = num_objects * (num_objects - 1)
    return _MOTION + num_objects + g * g + pairs + len(JOINT_MARGINS) + 2


def _forward_diff(x: np.ndarray) -> np.ndarray:
    """x[t+1] - x[t] along axis 0; the last row repeats the one before (zeros for one row)."""
    d = np.zeros_like(x)
    if len(x) > 1:
        d[:-1] = x[1:] - x[:-1]
        d[-1] = d[-2]
    return d


def _near(dist: np.ndarray, radius: float) -> np.ndarray:
    """Soft step, 1 well inside `radius` and 0 well outside."""
    z = np.clip((dist - radius) / (_SOFTNESS * radius), -50.0, 50.0)
    return 1.0 / (1.0 + np.exp(z))


def kinematic_features(traj: Trajectory, dt: float, num_objects: int) -> np.ndarray:
    """(T, kinematic_dim(num_objects)) float32 for one trajectory; see the module docstring.

    Raises ValueError naming the episode when it lacks the grasp point, the object positions or the
    contact forces, or records a different number of objects than the model was built for.
    """
    eid = traj.episode_id
    for name in ("ee_positions", "object_positions", "contact_forces"):
        if getattr(traj, name) is None:
            raise ValueError(
                f"episode {eid!r} has no {name}, which the reward model's kinematic features need "
                "(RewardConfig.kinematic=True; recorded in sim, or from a perception source on a real arm)"
            )
    ee = np.asarray(traj.ee_positions, np.float64)
    obj = np.asarray(traj.object_positions, np.float64)
    if obj.ndim != 3 or obj.shape[1] != num_objects:
        raise ValueError(
            f"episode {eid!r} records {obj.shape[1] if obj.ndim == 3 else '?'} objects; the reward model's "
            f"kinematic features were built for {num_objects}"
        )
    if not dt > 0:
        raise ValueError(f"episode {eid!r}: control period must be > 0, got {dt}")
    n = len(ee)
    vel = _forward_diff(ee) / dt
    acc = _forward_diff(vel) / dt
    jerk = _forward_diff(acc) / dt
    speed = np.linalg.norm(vel, axis=1)
    cols = [speed, speed**2, np.sum(acc * acc, axis=1) * 1e-2, np.sum(jerk * jerk, axis=1) * 1e-4]
    dist = np.linalg.norm(obj - ee[:, None, :], axis=2)  # (T, K)
    cols += [_forward_diff(dist[:, k]) for k in range(num_objects)]
    lifted = obj[:, :, 2] > obj[:1, :, 2] + LIFT_M if n else np.zeros((0, num_objects), bool)
    carried = (dist < CARRY_RADIUS_M) & lifted
    nearest_free = np.where(carried, np.inf, dist).min(axis=1) if num_objects else np.full(n, np.inf)
    for radius in KINEMATIC_GRID:
        near = _near(nearest_free, radius)
        for c in KINEMATIC_GRID:
            cols.append(np.maximum(0.0, speed - c) ** 2 * near)
    for i in range(num_objects):
        for k in range(i + 1, num_objects):
            cols.append(_forward_diff(np.linalg.norm(obj[:, i] - obj[:, k], axis=1)))
            cols.append(_forward_diff(np.linalg.norm(obj[:, i, :2] - obj[:, k, :2], axis=1)))
    from sim.panda import joint_limit_margin  # the arm's limits live with its model

    margin = np.min(joint_limit_margin(np.asarray(traj.joint_positions, np.float64)), axis=1)
    cols += [np.maximum(0.0, m - margin) for m in JOINT_MARGINS]
    cols.append(np.asarray(traj.contact_forces, np.float64).reshape(n))
    success = np.zeros(n)
    k = traj.success_step(dt)
    if k is not None:
        success[k] = 1.0
    cols.append(success)
    out = np.stack(cols, axis=1) if n else np.zeros((0, kinematic_dim(num_objects)))
    return out.astype(np.float32)
