"""Project-wide pytest fixtures."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tests run tiny networks: one torch thread, because on a shared 2-core machine torch's thread
    pool spins against the other processes (sim envs, ROS nodes). Session-wide, so module-scoped
    fixtures that train get it too."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def ros_domain_id() -> int:
    """A DDS domain of this test session only, so parallel runs on one machine never cross-talk."""
    # Domain ids 0..101 are safe for FastDDS port mapping; derive one from the pid.
    return 1 + os.getpid() % 100


@pytest.fixture(scope="session")
def tiny_policy_config():
    """A VLA policy config small enough to build, run and save in a fraction of a second (32 px)."""
    from rlhf.policy.config import PolicyConfig

    return PolicyConfig(image_size=32, cnn_channels=(8, 16), image_tokens_side=2, d_model=32, n_heads=2, n_layers=1,
                        ff_dim=64, head_hidden=32)  # fmt: skip
