"""The pure safety filter (rlhf.safety): wild commands never leave the limits; stale -> hold; e-stop."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf.constants import ARM_JOINT_NAMES
from rlhf.safety import CLIPPED, ESTOP, HOLD, OK, REFUSED, SafetyFilter
from rlhf.safety_config import ArmModel, SafetyConfig, default_urdf

HOME = np.array([0.0, -0.6, 0.0, -2.4, 0.0, 1.8, 0.785])


def make_filter(**kw) -> SafetyFilter:
    f = SafetyFilter(SafetyConfig(**kw))
    f.observe(HOME, 0.0)
    return f


def wild_command(rng: np.random.Generator, centre: np.ndarray) -> tuple[object, object]:
    """Random, NaN, inf, huge, wrong-length or plausible commands, and gripper values."""
    kind = rng.integers(8)
    if kind == 0:
        q = rng.uniform(-100, 100, 7)
    elif kind == 1:
        q = centre + rng.normal(0, 0.05, 7)
    elif kind == 2:
        q = rng.uniform(-4, 4, 7)
        q[rng.integers(7)] = rng.choice([np.nan, np.inf, -np.inf])
    elif kind == 3:
        q = rng.uniform(-4, 4, int(rng.choice([0, 1, 6, 8, 9])))
    elif kind == 4:
        q = np.full(7, rng.choice([1e300, -1e300]))
    elif kind == 5:
        q = centre + rng.uniform(-1, 1, 7)
    elif kind == 6:
        q = "not a command"
    else:
        q = centre + rng.normal(0, 0.3, 7)
    g = rng.choice([None, float(rng.uniform(-5, 5)), np.nan, 1.0, -1.0])
    return q, g


def test_model_reads_urdf_limits_and_fk_matches_pybullet():
    import pybullet as p

    model = ArmModel(default_urdf(), ARM_JOINT_NAMES, "panda_grasptarget")
    assert np.allclose(model.lower[:3], [-2.9671, -1.8326, -2.9671])
    assert model.upper[3] == 0.0 and np.isclose(model.velocity[4], 2.61)
    cid = p.connect(p.DIRECT)
    try:
        robot = p.loadURDF(str(default_urdf()), useFixedBase=True, physicsClientId=cid)
        names = {p.getJointInfo(robot, j, physicsClientId=cid)[12].decode(): j for j in range(p.getNumJoints(robot, physicsClientId=cid))}
        ee = names["panda_grasptarget"]
        rng = np.random.default_rng(0)
        for _ in range(5):
            q = rng.uniform(model.lower, model.upper)
            for i in range(7):
                p.resetJointState(robot, i, q[i], physicsClientId=cid)
            want = p.getLinkState(robot, ee, computeForwardKinematics=True, physicsClientId=cid)[4]
            assert np.allclose(model.ee_positions(q)[0], want, atol=1e-5)
    finally:
        p.disconnect(cid)


def test_config_rejects_bad_values_by_name():
    with pytest.raises(ValueError, match="position_lower"):
        SafetyConfig(position_lower=(0.0, 1.0))
    with pytest.raises(ValueError, match="workspace_min"):
        SafetyConfig(workspace_min=(1, 0, 0), workspace_max=(0, 1, 1))
    with pytest.raises(ValueError, match="velocity_scale"):
        SafetyConfig(velocity_scale=0.0)


def test_ten_thousand_wild_commands_never_leave_the_limits():
    """10,000 random / NaN / inf / huge / wrong-length commands at irregular times: zero violations."""
    f = make_filter()
    lim, c = f.limits, f.config
    rng = np.random.default_rng(1234)
    t, measured = 0.0, HOME.copy()
    prev_pos, prev_vel, prev_t, prev_status = None, np.zeros(7), None, None
    sent = overridden = 0
    violations: list[str] = []
    for i in range(10_000):
        t += float(rng.choice([0.0, 0.001, 0.02, 0.05, 0.1, 0.3]))
        f.observe(measured, t)  # the arm tracks its commands (measured lags one step)
        q, g = wild_command(rng, measured)
        res = f.filter(q, g, t)
        assert res.status in (OK, CLIPPED, HOLD, REFUSED)
        if not res.send:
            continue
        sent += 1
        pos = res.positions
        if not (np.all(np.isfinite(pos)) and np.all(pos >= lim.lower - 1e-12) and np.all(pos <= lim.upper + 1e-12)):
            violations.append(f"{i}: position {pos}")
        if res.gripper is not None and not (c.gripper_min <= res.gripper <= c.gripper_max):
            violations.append(f"{i}: gripper {res.gripper}")
        if np.any(np.abs(pos - measured) > c.max_tracking_error + 1e-9):
            violations.append(f"{i}: tracking {pos - measured}")
        if prev_pos is not None:
            dt = t - prev_t
            step = np.abs(pos - prev_pos)
            if np.any(step > lim.velocity * min(dt, c.control_period_s) + 1e-9):
                violations.append(f"{i}: velocity step {step} over dt {dt}")
            if res.status in (OK, CLIPPED) and prev_status in (OK, CLIPPED) and dt > 0:
                dv = np.abs(res.velocities - prev_vel)
                if np.any(dv > lim.acceleration * min(dt, c.control_period_s) + 1e-6):
                    # Allowed only where a hard bound forced it, and then it is flagged and counted.
                    overridden += 1
                    if "acceleration_overridden" not in res.reasons:
                        violations.append(f"{i}: acceleration {dv} over dt {dt}, not flagged")
            if f.box_violation(pos)[0] > f.box_violation(prev_pos)[0] + 1e-6:
                violations.append(f"{i}: workspace")
        prev_pos, prev_vel, prev_t, prev_status = pos, res.velocities, t, res.status
        measured = pos
    assert violations == []
    assert sent > 5000
    assert overridden == f.stats["clipped:acceleration_overridden"] < sent // 100
    # Every refusal and clip was counted, by reason.
    assert f.stats[REFUSED] > 1000 and f.stats["refused:nonfinite"] > 0 and f.stats["refused:shape"] > 0
    assert f.stats["clipped:position"] > 0 and f.stats["clipped:velocity"] > 0
    assert f.stats[CLIPPED] + f.stats[OK] + f.stats[REFUSED] + f.stats[HOLD] == 10_000


def test_a_policy_in_the_loop_with_wild_actions_stays_inside():
    """Deltas from a 'policy' that outputs garbage, applied to where the arm is: positions stay inside."""
    f = make_filter()
    rng = np.random.default_rng(7)
    q = HOME.copy()
    for k in range(2000):
        t = 0.1 * (k + 1)
        f.observe(q, t)
        delta = rng.normal(0, 3, 7)
        if k % 17 == 0:
            delta[k % 7] = np.nan
        res = f.filter(q + delta, float(rng.normal(0, 4)), t)
        assert res.send
        assert np.all(res.positions >= f.limits.lower) and np.all(res.positions <= f.limits.upper)
        q = res.positions
    assert f.stats["refused:nonfinite"] == len(range(0, 2000, 17))


def test_stale_observations_hold_position():
    f = make_filter(watchdog_timeout_s=0.2)
    f.observe(HOME, 1.0)
    res = f.filter(HOME + 0.05, 1.0, 1.05)
    assert res.status in (OK, CLIPPED)
    moved = res.positions.copy()
    # No joint state for longer than the timeout: hold the last target, at rest, whatever is asked.
    for dt in (0.3, 0.4, 1.0):
        res = f.filter(HOME + 0.5, 1.0, 1.0 + dt)
        assert res.status == HOLD and "stale:joint_states" in res.reasons
        assert np.array_equal(res.positions, moved) and np.all(res.velocities == 0)
    assert f.stats["hold:stale:joint_states"] == 3
    f.observe(HOME, 2.05)
    assert f.filter(HOME, 1.0, 2.1).status in (OK, CLIPPED)


def test_watchdog_covers_other_streams_and_nothing_before_first_state():
    f = SafetyFilter(SafetyConfig(), watch=("joint_states", "image"))
    res = f.filter(HOME, 0.0, 0.0)
    assert res.status == HOLD and not res.send  # nothing measured yet: nothing can be sent
    f.observe(HOME, 0.0)
    res = f.filter(HOME, 0.0, 0.01)
    assert res.status == HOLD and "stale:image" in res.reasons and np.allclose(res.positions, HOME)
    f.heartbeat("image", 0.02)
    assert f.filter(HOME, 0.0, 0.03).status == OK


def test_estop_blocks_everything_until_release():
    f = make_filter()
    assert f.filter(HOME, 1.0, 0.05).send
    f.engage_estop(0.06, "operator")
    for k in range(50):
        t = 0.1 + 0.05 * k
        f.observe(HOME, t)
        assert f.filter(HOME + 0.01, 1.0, t).status == ESTOP and not f.filter(HOME, None, t).send
        res, pts = f.filter_trajectory([0.1], [HOME], None, t)
        assert not res.send and pts == []
    assert f.stats[ESTOP] == 150
    f.release_estop(3.0)
    f.observe(HOME, 3.0)
    res = f.filter(HOME + 0.01, 1.0, 3.05)
    assert res.send and res.status in (OK, CLIPPED)


def test_in_range_command_passes_unchanged():
    f = make_filter()
    target = HOME + np.array([0.01, -0.01, 0.01, 0.0, 0.0, 0.0, 0.02])
    res = f.filter(target, 0.5, 0.1)
    assert res.status == OK and np.allclose(res.positions, target) and res.gripper == 0.5


def test_position_margin_and_parameter_overrides():
    lower = (-1.0, -1.0, -1.0, -2.5, -1.0, 1.0, -1.0)
    upper = (1.0, 1.0, 1.0, -0.5, 1.0, 2.5, 1.5)
    f = make_filter(position_lower=lower, position_upper=upper, position_margin=0.1, velocity_limits=(10.0,) * 7)
    assert np.allclose(f.limits.lower, np.array(lower) + 0.1)
    assert np.allclose(f.limits.velocity, 10.0)


def test_workspace_box_shortens_steps_that_leave_it():
    # A box the home pose's end effector is inside, with a ceiling just above it.
    ee = ArmModel(default_urdf(), ARM_JOINT_NAMES, "panda_grasptarget").ee_positions(HOME)[0]
    f = make_filter(workspace_min=(0.0, -0.8, 0.0), workspace_max=(0.9, 0.8, float(ee[2]) + 0.01))
    q = HOME.copy()
    for k in range(40):
        t = 0.1 * (k + 1)
        f.observe(q, t)
        res = f.filter(q + np.array([0, -0.2, 0, 0.2, 0, 0, 0]), None, t)  # lifts the hand
        q = res.positions
        assert f.box_violation(q)[0] <= 1e-9
    assert f.stats["clipped:workspace"] > 0


def test_trajectory_points_are_limited_and_velocities_consistent():
    f = make_filter()
    times = [0.1, 0.2, 0.3]
    pts = [HOME + 1.0, HOME + 2.0, HOME + 3.0]
    res, out = f.filter_trajectory(times, pts, 1.0, 0.1)
    assert res.status == CLIPPED and len(out) == 3
    prev = HOME
    for p in out:
        assert np.all(np.abs(p.positions - prev) <= f.limits.velocity * 0.1 + 1e-9)
        assert np.all(np.abs(p.velocities) <= f.limits.velocity + 1e-9)
        assert np.all(p.positions <= f.limits.upper)
        prev = p.positions
    assert np.all(out[-1].velocities == 0)
    bad, pts_bad = f.filter_trajectory([0.1, 0.05], [HOME, HOME], None, 0.2)
    assert bad.status == REFUSED and len(pts_bad) == 1
