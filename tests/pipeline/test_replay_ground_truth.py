"""Graph recordings get their sim ground truth from a seeded replay of the targets the arm was sent."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np

import sim
from rlhf.pipeline import ground_truth
from rlhf.rollout import run_episode


class _LikeTheGraph:
    """A random policy driven the way sim_node drives the arm: the policy's delta is taken from the
    measured joint positions (target = q + a, what policy_node sends), and the arm moves its commanded
    position toward that target. `recorded` keeps what recorder_node stores: target - measured q."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.recorded: list[np.ndarray] = []

    def reset(self, env) -> None:
        self.base = env.unwrapped
        self.recorded = []

    def __call__(self, obs, info) -> np.ndarray:
        q = np.asarray(obs["joint_positions"], np.float64)
        target = q + self.rng.uniform(-0.1, 0.1, 7)
        grip = float(self.rng.choice([-1.0, 1.0]))
        self.recorded.append(np.append(target - q, grip).astype(np.float32))
        delta = np.clip(target - self.base.commanded_joint_positions, -0.15, 0.15)
        return np.append(delta, grip).astype(np.float32)


def test_replay_reproduces_a_recording_made_with_absolute_targets():
    env = gym.make(sim.ENV_ID, task="reach", config=sim.SimConfig(task="reach", image_size=16))
    actor = _LikeTheGraph(0)
    live = run_episode(env, actor, seed=5, max_steps=25)
    recorded = dataclasses.replace(
        live, actions=np.stack(actor.recorded), object_positions=None, contact_forces=None, ee_positions=None,
        extra={}, seed=None,
    )
    # The arm lags its commands, so the recorded actions are not the env's actions: played back as
    # env actions they would drive the replay elsewhere.
    assert np.abs(recorded.actions[:, :7] - live.actions[:, :7]).max() > 1e-3
    fidelity = ground_truth(recorded, 5, env)
    assert fidelity["replay_steps"] == len(live) == 25
    assert fidelity["replay_max_joint_error_rad"] < 1e-5, fidelity
    np.testing.assert_allclose(recorded.object_positions, live.object_positions, atol=1e-6)
    np.testing.assert_allclose(recorded.ee_positions, live.ee_positions, atol=1e-6)
    assert recorded.seed == 5
