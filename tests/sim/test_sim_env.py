"""The PyBullet Panda env: gymnasium API, spaces, seeding, clipping, time limit, vector envs."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim
from sim.config import RandomizationConfig, SimConfig
from sim.env import PandaEnv
from sim.tasks import TASKS

SMALL = {"image_size": 32}


def _rollout(env: PandaEnv, seed: int, steps: int) -> dict[str, np.ndarray]:
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = {"image": [obs["image"]], "q": [obs["joint_positions"]], "obj": [info["object_positions"]]}
    for _ in range(steps):
        action = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
        obs, _, term, trunc, info = env.step(action)
        out["image"].append(obs["image"])
        out["q"].append(obs["joint_positions"])
        out["obj"].append(info["object_positions"])
        if term or trunc:
            break
    return {k: np.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_check_env_passes(task: str) -> None:
    env = gym.make(sim.ENV_ID, task=task, config=SimConfig(**SMALL), render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


def test_make_with_task_overrides_config_and_spaces_match() -> None:
    env = gym.make(sim.ENV_ID, task="push", config=SimConfig(task="reach", image_size=40))
    obs, info = env.reset(seed=1)
    assert env.unwrapped.config.task == "push"
    assert obs["image"].shape == (40, 40, 3) and obs["image"].dtype == np.uint8
    assert obs["joint_positions"].shape == (7,) and obs["joint_positions"].dtype == np.float32
    assert obs["joint_velocities"].shape == (7,) and obs["gripper"].shape == (1,)
    assert obs["instruction"].startswith("push the ") and obs["instruction"] in env.observation_space["instruction"]
    for key in ("success", "ee_position", "object_positions", "contact_force", "task", "instruction", "seed"):
        assert key in info
    assert info["object_positions"].shape == (3, 3) and info["seed"] == 1 and info["task"] == "push"
    assert env.action_space.shape == (8,)
    assert np.allclose(env.action_space.high[:7], env.unwrapped.config.max_joint_delta)
    assert obs["image"].std() > 5  # something was drawn, not a blank frame
    env.close()


def test_same_seed_gives_identical_trajectories_regardless_of_history() -> None:
    cfg = SimConfig(task="pick_place", **SMALL, randomization=RandomizationConfig(enabled=True))
    a, b = PandaEnv(cfg), PandaEnv(cfg)
    first = _rollout(a, seed=7, steps=15)
    _rollout(a, seed=8, steps=10)  # another episode in between
    again = _rollout(a, seed=7, steps=15)
    fresh = _rollout(b, seed=7, steps=15)
    for k in first:
        assert np.array_equal(first[k], again[k]), k
        assert np.array_equal(first[k], fresh[k]), k
    other = _rollout(b, seed=9, steps=3)
    assert not np.array_equal(first["obj"][0], other["obj"][0])
    a.close()
    b.close()


def test_out_of_range_actions_are_clipped_and_bad_actions_rejected() -> None:
    env = PandaEnv(SimConfig(task="reach", **SMALL))
    env.reset(seed=0)
    cmd0 = env.commanded_joint_positions.copy()
    env.step(np.array([5.0] * 7 + [3.0], np.float32))
    assert np.allclose(env.commanded_joint_positions - cmd0, env.config.max_joint_delta, atol=1e-9)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan] * 8, np.float32))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(7, np.float32))
    env.close()


def test_truncates_at_time_limit_and_hold_action_keeps_arm_still() -> None:
    env = PandaEnv(SimConfig(task="reach", **SMALL, time_limit_s=1.5))
    obs, _ = env.reset(seed=3)
    q0 = obs["joint_positions"].copy()
    hold = np.array([0.0] * 7 + [1.0], np.float32)
    for i in range(15):
        obs, reward, term, trunc, info = env.step(hold)
        assert not term and reward == 0.0
        assert trunc == (i == 14)
    assert np.max(np.abs(obs["joint_positions"] - q0)) < 0.01
    assert info["contact_force"] == 0.0
    env.close()


def test_render_images_off_gives_blank_frames() -> None:
    env = PandaEnv(SimConfig(task="reach", **SMALL, render_images=False))
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (32, 32, 3) and not obs["image"].any()
    env.close()


def test_background_cache_draws_the_same_frame_as_a_full_render() -> None:
    cfg = SimConfig(task="push", image_size=48, randomization=RandomizationConfig(enabled=True))
    cached = PandaEnv(cfg)
    full = PandaEnv(dataclasses.replace(cfg, cache_static_background=False))
    a, _ = cached.reset(seed=4)
    b, _ = full.reset(seed=4)
    mismatch = np.mean(np.any(a["image"] != b["image"], axis=2))
    assert mismatch < 0.01
    cached.close()
    full.close()


def test_config_rejects_bad_values_by_name() -> None:
    with pytest.raises(ValueError, match="task"):
        SimConfig(task="fly")
    with pytest.raises(ValueError, match="physics_hz"):
        SimConfig(control_hz=7)
    with pytest.raises(ValueError, match="max_joint_delta"):
        SimConfig(max_joint_delta=0)
    with pytest.raises(ValueError, match="friction_range"):
        RandomizationConfig(friction_range=(1.0, 0.5))


def test_randomization_changes_colours_and_camera_but_not_when_off() -> None:
    on = PandaEnv(SimConfig(task="reach", **SMALL, randomization=RandomizationConfig(enabled=True)))
    off = PandaEnv(SimConfig(task="reach", **SMALL))
    on.reset(seed=2)
    off.reset(seed=2)
    assert not np.allclose(on.layout.colours, off.layout.colours)
    assert on._light != off._light
    assert off.latency_steps == 0
    on.close()
    off.close()


def test_async_vector_env_steps() -> None:
    def make():
        return gym.make(sim.ENV_ID, task="reach", config=SimConfig(**SMALL))

    venv = gym.vector.AsyncVectorEnv([make, make])
    obs, info = venv.reset(seed=[0, 1])
    assert obs["image"].shape == (2, 32, 32, 3)
    obs, r, term, trunc, info = venv.step(np.zeros((2, 8), np.float32))
    assert obs["joint_positions"].shape == (2, 7) and list(info["seed"]) == [0, 1]
    venv.close()


def test_reach_balls_stand_on_rods_that_end_under_them_and_are_drawn() -> None:
    """Each floating ball has a visual rod from the table to its underside (a height cue for one
    camera); the rod appears in the frame, in the cached and the full render alike."""
    import pybullet as p

    from sim.tasks import BALL_RADIUS, STAND_LENGTH, STAND_RGB

    cfg = SimConfig(task="reach", image_size=96)
    env = PandaEnv(cfg)
    full = PandaEnv(dataclasses.replace(cfg, cache_static_background=False))
    obs, info = env.reset(seed=3)
    full_obs, _ = full.reset(seed=3)
    assert len(env._stands) == 2
    for i, stand in env._stands.items():
        (x, y, z), _ = p.getBasePositionAndOrientation(stand, physicsClientId=env.client_id)
        ball = info["object_positions"][i]
        assert np.allclose([x, y], ball[:2], atol=1e-6)
        assert z + STAND_LENGTH / 2 == pytest.approx(ball[2] - BALL_RADIUS, abs=1e-6)
        # Only collision-free bodies: the rods never touch the arm.
        assert p.getCollisionShapeData(stand, -1, physicsClientId=env.client_id) == ()
    for image in (obs["image"], full_obs["image"]):
        grey = np.abs(image.astype(float) - 255 * np.array(STAND_RGB)).max(axis=2) < 25
        assert grey.sum() >= 10, "no rod-coloured pixels in the frame"
    env.close()
    full.close()


def _first_close(task_seed: int, cfg: SimConfig) -> tuple[list[dict], int]:
    """Observations of an expert pick-and-place episode up to and including its first gripper close."""
    from sim.demonstrators import make_demonstrator

    env = PandaEnv(cfg)
    obs, info = env.reset(seed=task_seed)
    demo = make_demonstrator("pick_place", "expert", seed=task_seed)
    demo.reset(env)
    seen = [obs]
    for _ in range(200):
        action = demo(obs, info)
        obs, _, term, trunc, info = env.step(action)
        seen.append(obs)
        if action[7] < 0 or term or trunc:
            break
    colour = np.array(env.layout.colours[0]) * 255
    env.close()
    return seen, colour


def test_wrist_camera_adds_a_hand_view_and_changes_nothing_else() -> None:
    rand = RandomizationConfig(enabled=True)
    base = SimConfig(task="pick_place", image_size=48, randomization=rand)
    with_wrist, colour = _first_close(7, dataclasses.replace(base, wrist_camera=True, wrist_image_size=48))
    without, _ = _first_close(7, base)
    # Its own random draws: the episode (scene frames, joints) is the same with and without it.
    assert len(with_wrist) == len(without) > 10
    for a, b in zip(with_wrist, without, strict=True):
        assert "wrist_image" in a and "wrist_image" not in b
        assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["joint_positions"], b["joint_positions"])
    first, last = with_wrist[0]["wrist_image"], with_wrist[-1]["wrist_image"]
    assert first.shape == (48, 48, 3) and first.dtype == np.uint8
    assert np.mean(np.any(first != last, axis=2)) > 0.05  # the view moves with the hand (the table is uniform)
    # At the close the cube is between the fingers: it fills the middle of the wrist view, where from
    # the start position it is a few pixels far away.
    def cube_pixels(img: np.ndarray) -> int:
        mid = img[12:36, 12:36].astype(float)
        return int(np.sum(np.abs(mid - colour).max(axis=2) < 60))

    assert cube_pixels(last) > 60 and cube_pixels(last) > 4 * max(cube_pixels(first), 1)


def test_wrist_camera_env_passes_the_gymnasium_checker() -> None:
    env = PandaEnv(SimConfig(task="reach", **SMALL, wrist_camera=True, wrist_image_size=32))
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    assert env.observation_space["wrist_image"].contains(obs["wrist_image"])
    env.close()
    with pytest.raises(ValueError, match="wrist_image_size"):
        SimConfig(wrist_image_size=8)
    with pytest.raises(ValueError, match="wrist_camera_fov_deg"):
        SimConfig(wrist_camera_fov_deg=150.0)
