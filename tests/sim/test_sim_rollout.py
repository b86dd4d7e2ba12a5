"""Recording episodes as Trajectories: single env and vector env give the same episode per seed."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import sim
from rlhf.rollout import run_episode, run_vector_episodes
from rlhf.trajectory import Trajectory, TrajectoryError
from sim.config import SimConfig
from sim.demonstrators import make_demonstrator

CFG = SimConfig(task="reach", image_size=24, time_limit_s=1.0)


class _Zero:
    """An obs-only actor that holds still with the gripper open."""

    def reset(self, env) -> None:
        pass

    def __call__(self, obs, info) -> np.ndarray:
        return np.array([0.0] * 7 + [1.0], np.float32)


def test_run_episode_fills_a_valid_trajectory(tmp_path) -> None:
    env = gym.make(sim.ENV_ID, config=SimConfig(task="reach", image_size=24))
    traj = run_episode(env, make_demonstrator("reach", "expert", seed=2), seed=2)
    assert traj.success and traj.seed == 2 and traj.policy_version == "scripted:expert"
    assert traj.instruction.startswith("move the gripper to the")
    assert traj.extra["success_time_s"] == len(traj) * 0.1
    assert traj.metrics["success"] == 1.0 and traj.metrics["time_to_success_s"] > 0
    loaded = Trajectory.load(traj.save(tmp_path / "ep.npz"))
    assert np.array_equal(loaded.images, traj.images) and loaded.metrics == traj.metrics
    env.close()


def test_vector_rollout_matches_single_env_per_seed() -> None:
    def make():
        return gym.make(sim.ENV_ID, config=CFG)

    venv = gym.vector.SyncVectorEnv([make, make])
    trajs = run_vector_episodes(venv, lambda obs: np.tile([0.0] * 7 + [1.0], (2, 1)), seeds=[3, 4, 5])
    venv.close()
    assert [t.seed for t in trajs] == [3, 4, 5]
    single = run_episode(make(), _Zero(), seed=5)
    assert len(trajs[2]) == len(single) == 10  # truncated at 1 s
    assert np.array_equal(trajs[2].images, single.images)
    assert np.array_equal(trajs[2].joint_positions, single.joint_positions)
    assert trajs[2].instruction == single.instruction


def test_wrist_frames_are_recorded_and_saved(tmp_path) -> None:
    cfg = SimConfig(task="reach", image_size=24, wrist_camera=True, wrist_image_size=16, time_limit_s=0.5)
    env = gym.make(sim.ENV_ID, config=cfg)
    traj = run_episode(env, _Zero(), seed=3)
    env.close()
    assert traj.wrist_images is not None and traj.wrist_images.shape == (len(traj), 16, 16, 3)
    loaded = Trajectory.load(traj.save(tmp_path / "ep.npz"))
    assert np.array_equal(loaded.wrist_images, traj.wrist_images)
    assert loaded.slice(1, 3).wrist_images.shape == (2, 16, 16, 3)
    venv = gym.vector.SyncVectorEnv([lambda: gym.make(sim.ENV_ID, config=cfg)])
    (vec,) = run_vector_episodes(venv, lambda obs: np.tile([0.0] * 7 + [1.0], (1, 1)), seeds=[3])
    venv.close()
    assert np.array_equal(vec.wrist_images, traj.wrist_images)
    no_wrist = run_episode(gym.make(sim.ENV_ID, config=CFG), _Zero(), seed=3)
    assert no_wrist.wrist_images is None and "wrist_images" not in np.load(no_wrist.save(tmp_path / "n.npz")).files
    with pytest.raises(TrajectoryError, match="wrist_images must be uint8"):
        dataclasses.replace(traj, wrist_images=traj.wrist_images.astype(np.float32))
    with pytest.raises(TrajectoryError, match="wrist_images has shape"):
        dataclasses.replace(traj, wrist_images=traj.wrist_images[1:])
