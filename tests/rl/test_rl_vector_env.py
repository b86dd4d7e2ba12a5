"""Rollouts over process-parallel sim envs record the same episodes as in-process envs."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np

import sim
from rlhf.rl.rollouts import VectorRolloutCollector
from sim.config import SimConfig


def _make(time_limit_s: float | None = None):
    return gym.make(sim.ENV_ID, task="reach", config=SimConfig(task="reach", image_size=32, time_limit_s=time_limit_s))


def test_async_and_sync_collectors_record_the_same_episodes(tiny_policy_config):
    """Several waves of episodes that end by the sim's own time limit: async envs must give each
    episode its seed's layout and instruction (shared-memory observations turn the instruction into
    'aaaa...', and a stale autoreset flag once started episodes from a random seed)."""
    from rlhf.policy.instruction_encoder import InstructionEncoder, hashed_embed_fn
    from rlhf.policy.vla import VLAPolicy
    from rlhf.rl.policy_adapter import VLAAdapter

    policy = VLAAdapter(VLAPolicy(tiny_policy_config, instruction_encoder=InstructionEncoder(hashed_embed_fn())))
    seeds = [21, 21, 22, 23, 23]
    runs = {}
    for mode in ("sync", "async"):
        col = VectorRolloutCollector([functools.partial(_make, 0.5)] * 2, policy, mode=mode, task="reach")
        runs[mode] = [r.trajectory for r in col.collect(seeds, deterministic=True)]
        col.close()
    single = _make()
    expected = [single.reset(seed=s)[0]["instruction"] for s in seeds]
    single.close()
    for a, b, instruction in zip(runs["sync"], runs["async"], expected, strict=True):
        assert a.instruction == b.instruction == instruction
        assert len(a) == len(b) == 5  # 0.5 s at 10 Hz: no step of a following episode
        assert np.array_equal(a.actions, b.actions)
        assert np.array_equal(a.images, b.images)
