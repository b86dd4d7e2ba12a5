"""Project-wide pytest fixtures."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ros_domain_id() -> int:
    """A DDS domain of this test session only, so parallel runs on one machine never cross-talk."""
    # Domain ids 0..101 are safe for FastDDS port mapping; derive one from the pid.
    return 1 + os.getpid() % 100
