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


def test_rollouts_of_a_wrist_camera_policy_carry_its_frames(tiny_policy_config):
    """The collector records the wrist frames, and the features PPO caches from the live observations
    are the ones the policy computes again from the recorded trajectory."""
    import dataclasses

    import torch

    from rlhf.policy.instruction_encoder import InstructionEncoder, hashed_embed_fn
    from rlhf.policy.vla import VLAPolicy
    from rlhf.rl.policy_adapter import VLAAdapter

    torch.manual_seed(0)
    pcfg = dataclasses.replace(tiny_policy_config, wrist_camera=True, wrist_image_size=32)
    policy = VLAAdapter(VLAPolicy(pcfg, instruction_encoder=InstructionEncoder(hashed_embed_fn())))
    cfg = SimConfig(task="reach", image_size=32, time_limit_s=0.4, wrist_camera=True, wrist_image_size=32)
    col = VectorRolloutCollector([functools.partial(gym.make, sim.ENV_ID, task="reach", config=cfg)], policy,
                                 mode="sync", task="reach")  # fmt: skip
    (rec,) = col.collect([5], deterministic=True)
    col.close()
    traj = rec.trajectory
    assert traj.wrist_images is not None and traj.wrist_images.shape == (4, 32, 32, 3)
    with torch.no_grad():
        again = policy.features(policy.batch_from_trajectory(traj, 0, len(traj))).numpy()
    np.testing.assert_allclose(again, rec.features, atol=1e-5)
