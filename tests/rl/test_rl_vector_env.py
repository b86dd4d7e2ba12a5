"""Rollouts over process-parallel sim envs see the same observations as one in-process env."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np

import sim
from rlhf.rl.rollouts import VectorRolloutCollector, make_vector_env
from sim.config import SimConfig


def _make():
    return gym.make(sim.ENV_ID, task="reach", config=SimConfig(task="reach", image_size=32))


def test_async_vector_env_keeps_each_envs_instruction():
    """gymnasium's shared-memory observations turn Text into 'aaaa...'; ours must not."""
    venv = make_vector_env([_make, _make], "async")
    try:
        obs, _ = venv.reset(seed=[11, 12])
        single = _make()
        expected = [single.reset(seed=s)[0]["instruction"] for s in (11, 12)]
        single.close()
        assert list(obs["instruction"]) == expected
        obs, *_ = venv.step(np.zeros((2, 8), np.float32))
        assert all(s.startswith("move the gripper to the") for s in obs["instruction"])
    finally:
        venv.close()


def test_async_and_sync_collectors_record_the_same_episodes():
    from rlhf.policy.config import PolicyConfig
    from rlhf.policy.instruction_encoder import InstructionEncoder, hashed_embed_fn
    from rlhf.policy.vla import VLAPolicy
    from rlhf.rl.policy_adapter import VLAAdapter

    cfg = PolicyConfig(image_size=32, cnn_channels=(8, 16), image_tokens_side=2, d_model=32, n_heads=2, n_layers=1,
                       ff_dim=64, head_hidden=32)  # fmt: skip
    policy = VLAAdapter(VLAPolicy(cfg, instruction_encoder=InstructionEncoder(hashed_embed_fn())))
    seeds = [21, 22, 23]
    runs = {}
    for mode in ("sync", "async"):
        col = VectorRolloutCollector([functools.partial(_make)] * 2, policy, mode=mode, max_episode_steps=4,
                                     task="reach")  # fmt: skip
        runs[mode] = [r.trajectory for r in col.collect(seeds, deterministic=True)]
        col.close()
    for a, b in zip(runs["sync"], runs["async"], strict=True):
        assert a.instruction == b.instruction and a.instruction.startswith("move the gripper to the")
        assert np.array_equal(a.actions, b.actions)
        assert np.array_equal(a.images, b.images)
