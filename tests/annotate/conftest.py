"""Fixtures for the annotation tests: small H.264 MP4s made with PyAV, and a store with episodes."""

from __future__ import annotations

from pathlib import Path

import pytest
from annotate_helpers import make_mp4

from rlhf.prefs.store import PreferenceStore


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("videos")
    for i in range(4):
        make_mp4(d / f"ep{i}.mp4", 40, 10, hue=i)
    return d


@pytest.fixture()
def store(tmp_path) -> PreferenceStore:
    s = PreferenceStore(tmp_path / "prefs.sqlite", seed=0)
    yield s
    s.close()
