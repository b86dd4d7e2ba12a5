"""Rollout workers as Ray actors on a local Ray instance (the optional `ray` extra)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

ray = pytest.importorskip("ray", reason="the optional ray extra is not installed")


@pytest.mark.slow
def test_ray_collector_matches_local_collection_and_follows_head_updates():
    import rl_standins
    from ray import cloudpickle
    from rl_standins import TinyRLPolicy, make_tiny_policy, make_toy_env

    from rlhf.rl.rollouts import RayRolloutCollector, VectorRolloutCollector

    # The stand-ins live in the tests folder, which Ray's workers cannot import: ship them by value.
    cloudpickle.register_pickle_by_value(rl_standins)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = RayRolloutCollector(make_toy_env, make_tiny_policy, num_workers=2, envs_per_worker=1)
        local_policy = make_tiny_policy()
        local = VectorRolloutCollector([make_toy_env], local_policy, mode="sync")
        seeds = [4, 9, 1]
        got = remote.collect(seeds, deterministic=True, head_state=local_policy.policy.action_head.state_dict())
        want = local.collect(seeds, deterministic=True)
        assert [r.seed for r in got] == seeds
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g.trajectory.joint_positions, w.trajectory.joint_positions, atol=1e-6)
        # A new head broadcast to the actors changes what they do.
        with torch.no_grad():
            local_policy.policy.action_head.mean.bias.add_(0.05)
        moved = remote.collect([4], deterministic=True, head_state=local_policy.policy.action_head.state_dict())[0]
        assert not np.allclose(moved.trajectory.actions, got[0].trajectory.actions)
        assert remote.env_steps > 0
        remote.close()
        local.close()
        assert isinstance(local_policy, TinyRLPolicy)
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(rl_standins)
