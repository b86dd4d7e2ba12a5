"""Gold metrics on hand-built trajectories, where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf.trajectory import Trajectory
from sim import metrics
from sim.metrics import gold_axis_scores, gold_metrics, gold_step_rewards
from sim.panda import HOME_POSE, JOINT_UPPER

DT = 0.1


def _traj(ee: np.ndarray, objects: np.ndarray, *, forces=None, q=None, success=False, success_time=None,
          task="reach") -> Trajectory:
    n = len(ee)
    return Trajectory(
        episode_id="t",
        task=task,
        instruction="x",
        timestamps=np.arange(n) * DT,
        images=np.zeros((n, 2, 2, 3), np.uint8),
        joint_positions=np.tile(HOME_POSE, (n, 1)).astype(np.float32) if q is None else q.astype(np.float32),
        joint_velocities=np.zeros((n, 7), np.float32),
        gripper=np.full(n, 0.08, np.float32),
        actions=np.zeros((n, 8), np.float32),
        ee_positions=ee.astype(np.float32),
        object_positions=objects.astype(np.float32),
        contact_forces=np.zeros(n, np.float32) if forces is None else np.asarray(forces, np.float32),
        success=success,
        extra={"control_dt_s": DT, "success_time_s": success_time, "time_limit_s": 8.0},
    )


def _line(n: int, speed: float, start=(0.3, 0.0, 0.2)) -> np.ndarray:
    ee = np.zeros((n, 3))
    ee[:] = start
    ee[:, 0] += np.arange(n) * speed * DT
    return ee


def test_constant_velocity_has_zero_jerk_and_known_speed() -> None:
    ee = _line(12, 0.2)
    far = np.tile([[1.0, 1.0, 1.0]], (12, 1, 1))
    m = gold_metrics(_traj(ee, far))
    assert m["mean_squared_jerk"] == pytest.approx(0.0, abs=1e-6)
    assert m["peak_ee_speed_mps"] == pytest.approx(0.2, rel=1e-4)
    assert m["peak_ee_speed_near_objects_mps"] == 0.0  # nothing within 10 cm
    assert m["path_length_m"] == pytest.approx(0.2 * 11 * DT, rel=1e-4)
    assert m["time_to_success_s"] == 8.0  # failed: censored at the time limit


def test_a_single_kink_has_the_hand_computed_jerk() -> None:
    ee = np.zeros((6, 3))
    ee[3:, 0] = 0.01 * np.arange(1, 4)  # at rest, then 0.1 m/s from step 3
    m = gold_metrics(_traj(ee, np.tile([[[1.0, 1.0, 1.0]]], (6, 1, 1))))
    # Steps 0, 0, .01, .01, .01 m; accelerations 0, .01, 0, 0; third differences .01, -.01, 0 m
    # -> /dt^3 = 10, -10, 0 m/s^3.
    assert m["mean_squared_jerk"] == pytest.approx((100 + 100 + 0) / 3, rel=1e-3)


def test_speed_near_objects_ignores_far_and_carried_objects() -> None:
    ee = _line(10, 0.3)
    obj = np.tile([[[0.45, 0.0, 0.2]]], (10, 1, 1))  # on the path: near for part of it
    m = gold_metrics(_traj(ee, obj))
    assert m["peak_ee_speed_near_objects_mps"] == pytest.approx(0.3, rel=1e-4)
    carried = ee[:, None, :] + np.array([0.0, 0.0, -0.01])  # travels with the grasp point, off the table
    m2 = gold_metrics(_traj(ee, carried))
    assert m2["peak_ee_speed_near_objects_mps"] == 0.0


def test_collisions_are_counted_as_onsets_and_forces_peak() -> None:
    ee = _line(8, 0.0)
    forces = [0, 6, 7, 0, 0, 12, 0, 1]
    m = gold_metrics(_traj(ee, np.tile([[[1.0, 1.0, 1.0]]], (8, 1, 1)), forces=forces))
    assert m["collision_count"] == 2.0
    assert m["max_contact_force_n"] == 12.0


def test_joint_limit_margin() -> None:
    q = np.tile(HOME_POSE, (4, 1))
    q[2, 3] = JOINT_UPPER[3] - 0.05
    m = gold_metrics(_traj(_line(4, 0.0), np.tile([[[1.0, 1.0, 1.0]]], (4, 1, 1)), q=q))
    assert m["joint_limit_margin_rad"] == pytest.approx(0.05, abs=1e-5)


def test_step_rewards_sum_progress_success_and_time() -> None:
    # Reach: ee moves 0.1 m toward the target over 5 steps and succeeds on the last action.
    n = 6
    ee = _line(n, 0.05, start=(0.3, 0.0, 0.2))  # 0.005 m per step, slow: no speed penalty
    target = np.tile([[[0.33, 0.0, 0.2], [1.0, 1.0, 1.0]]], (n, 1, 1))
    traj = _traj(ee, target, success=True, success_time=n * DT)
    r = gold_step_rewards(traj)
    assert r.shape == (n,)
    progress = metrics.W_PROGRESS * 0.005 * (n - 1)
    expected = progress + metrics.W_SUCCESS - metrics.W_TIME * DT * n
    assert r.sum() == pytest.approx(expected, abs=1e-4)
    assert r[-1] > metrics.W_SUCCESS / 2  # the success bonus lands on the last step
    # On a slice, every step but the last (whose next observation is cut off) keeps its reward.
    assert np.allclose(gold_step_rewards(traj.slice(0, 3))[:2], r[:2])


def test_unsafe_speed_and_contact_lower_the_return_and_the_safety_axis() -> None:
    n = 8
    obj = np.tile([[[0.5, 0.0, 0.2]]], (n, 1, 1))
    careful = _traj(_line(n, 0.05, start=(0.45, 0.0, 0.2)), obj)
    fast = _traj(_line(n, 0.4, start=(0.45, 0.0, 0.2)), obj)
    bumped = _traj(_line(n, 0.05, start=(0.45, 0.0, 0.2)), obj, forces=[0, 0, 30, 0, 0, 0, 0, 0])
    r_careful = gold_step_rewards(careful).sum()
    assert gold_step_rewards(bumped).sum() < r_careful
    assert gold_axis_scores(fast)["safety"] < gold_axis_scores(careful)["safety"]
    assert gold_axis_scores(bumped)["safety"] < gold_axis_scores(careful)["safety"]


def test_axis_scores_have_every_axis() -> None:
    from rlhf.constants import PREFERENCE_AXES

    s = gold_axis_scores(_traj(_line(5, 0.1), np.tile([[[1.0, 1.0, 1.0]]], (5, 1, 1))))
    assert set(PREFERENCE_AXES) <= set(s)
    assert 0.0 <= s["success"] < 1.0


def test_missing_arrays_are_named() -> None:
    t = _traj(_line(5, 0.1), np.tile([[[1.0, 1.0, 1.0]]], (5, 1, 1)))
    t.ee_positions = None
    with pytest.raises(ValueError, match="ee_positions"):
        gold_metrics(t)
