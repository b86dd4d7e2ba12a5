"""Scripted demonstrators: experts succeed, and each style knob moves the gold metric it names."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf.rollout import run_episode
from sim.config import SimConfig
from sim.demonstrators import STYLES, DemoStyle, make_demonstrator, sample_style
from sim.env import PandaEnv
from sim.metrics import gold_axis_scores, gold_step_rewards

SEEDS = (0, 1, 2, 3)


def _episodes(task: str, style: str, seeds=SEEDS) -> list:
    env = PandaEnv(SimConfig(task=task, render_images=False))
    out = [run_episode(env, make_demonstrator(task, style, seed=s), seed=s) for s in seeds]
    env.close()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("task", ["reach", "push", "pick_place"])
def test_expert_succeeds_on_ten_seeds(task: str) -> None:
    trajs = _episodes(task, "expert", seeds=range(100, 110))
    assert sum(t.success for t in trajs) >= 9, [t.success for t in trajs]
    assert all(t.metrics["collision_count"] == 0 for t in trajs)


def test_expert_episode_replays_exactly() -> None:
    env = PandaEnv(SimConfig(task="pick_place", image_size=32))
    a = run_episode(env, make_demonstrator("pick_place", "noisy", seed=5), seed=5, max_steps=40)
    run_episode(env, make_demonstrator("pick_place", "expert", seed=6), seed=6, max_steps=20)
    b = run_episode(env, make_demonstrator("pick_place", "noisy", seed=5), seed=5, max_steps=40)
    assert np.array_equal(a.actions, b.actions)
    assert np.array_equal(a.images, b.images)
    assert np.array_equal(a.object_positions, b.object_positions)
    env.close()


def _axis(trajs, axis: str) -> np.ndarray:
    return np.array([gold_axis_scores(t)[axis] for t in trajs])


@pytest.mark.slow
@pytest.mark.parametrize("task", ["reach", "pick_place"])
def test_style_knobs_move_their_metrics_on_the_same_seeds(task: str) -> None:
    expert = _episodes(task, "expert")
    jerky = _episodes(task, "jerky")
    fast = _episodes(task, "fast_approach")
    hesitant = _episodes(task, "hesitant")
    # Jerk knob up -> worse smoothness, seed by seed.
    assert np.all(_axis(jerky, "smoothness") < _axis(expert, "smoothness"))
    # Fast approach -> worse safety (higher speed near objects), seed by seed.
    assert np.all(_axis(fast, "safety") < _axis(expert, "safety"))
    assert all(f.metrics["peak_ee_speed_near_objects_mps"] > e.metrics["peak_ee_speed_near_objects_mps"]
               for f, e in zip(fast, expert, strict=True))
    # Hesitation -> worse time, seed by seed.
    assert np.all(_axis(hesitant, "speed") < _axis(expert, "speed"))
    # The gold return (what the scripted teacher sums) ranks the expert above each clumsy style.
    ret = {name: np.mean([gold_step_rewards(t).sum() for t in ts])
           for name, ts in (("expert", expert), ("jerky", jerky), ("fast", fast), ("hesitant", hesitant))}
    assert ret["expert"] > max(ret["jerky"], ret["fast"], ret["hesitant"]), ret


def test_styles_validate_and_mixed_is_seeded() -> None:
    assert {"expert", "slow", "jerky", "hesitant", "fast_approach", "noisy"} <= set(STYLES)
    with pytest.raises(ValueError, match="jerk"):
        DemoStyle(jerk=2.0)
    with pytest.raises(ValueError, match="unknown demo style"):
        make_demonstrator("reach", "sloppy")
    with pytest.raises(ValueError, match="unknown task"):
        make_demonstrator("fly", "expert")
    a = sample_style(np.random.default_rng(3))
    b = sample_style(np.random.default_rng(3))
    assert a == b
    styles = {make_demonstrator("reach", "mixed", seed=s).style for s in range(6)}
    assert len(styles) > 1


def test_slip_style_loses_the_first_grasp_then_recovers() -> None:
    with pytest.raises(ValueError, match="slip"):
        DemoStyle(slip=1.5)
    expert = _episodes("pick_place", "expert", seeds=(7, 8))
    slip = _episodes("pick_place", "slip", seeds=(7, 8))
    for e, s in zip(expert, slip, strict=True):
        assert e.success and s.success
        cmd = s.actions[:, -1]
        closes = np.flatnonzero((cmd[1:] < 0) & (cmd[:-1] > 0)) + 1
        assert len(closes) == 2  # the lost grasp, then the regrasp
        # Between them the fingers close on nothing (the gripper reading falls to ~0), which the
        # expert's single grasp never shows: its fingers stop on the cube.
        assert s.gripper.reshape(-1)[closes[0] : closes[1]].min() < 0.005
        assert e.gripper.reshape(-1)[e.actions[:, -1] < 0].min() > 0.03
        # After the slip the cube lies on the table, away from the fingers, until the regrasp.
        reopen = closes[0] + np.flatnonzero(cmd[closes[0] :] > 0)[0]
        assert s.object_positions[reopen, 0, 2] < 0.03
        assert np.linalg.norm(s.object_positions[reopen, 0] - s.ee_positions[reopen]) > 0.05
        assert len(s) > len(e)


def test_disturbed_style_pushes_the_hand_near_the_cube_and_records_the_pushed_steps() -> None:
    with pytest.raises(ValueError, match="disturb"):
        DemoStyle(disturb=-0.1)
    expert = _episodes("pick_place", "expert", seeds=(7, 8))
    disturbed = _episodes("pick_place", "disturbed", seeds=(7, 8))
    for e, d in zip(expert, disturbed, strict=True):
        assert e.success and d.success
        assert "unimitated_steps" not in e.extra  # styles without the knob record nothing
        pushed = np.asarray(d.extra["unimitated_steps"])
        assert len(pushed) >= 2 and np.all(np.diff(pushed) > 0) and pushed.max() < len(d)
        # Disturbances happen with the gripper open and the hand within reach of an object.
        assert np.all(d.actions[pushed, -1] > 0)
        near = np.linalg.norm(d.object_positions[pushed] - d.ee_positions[pushed, None, :], axis=2).min(axis=1)
        assert np.all(near < 0.2), near
        # The pushes move the hand off the expert's path on the same layout, and it still succeeds.
        first = pushed[0]
        assert np.array_equal(d.actions[:first], e.actions[:first])
        assert not np.allclose(d.actions[first], e.actions[first])
