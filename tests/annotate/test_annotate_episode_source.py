"""The episode adapter: trajectories, plain rows and episode-store index rows become EpisodeRecords."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from rlhf.annotate.episode_source import (
    record_from_row,
    record_from_trajectory,
    records_from_file,
    records_from_rows,
)
from rlhf.trajectory import Trajectory


def _traj(n=21, dt=0.1):
    return Trajectory(
        episode_id="t1", task="reach", instruction="reach the red cube",
        timestamps=np.arange(n) * dt, images=np.zeros((n, 8, 8, 3), np.uint8),
        joint_positions=np.zeros((n, 7), np.float32), joint_velocities=np.zeros((n, 7), np.float32),
        gripper=np.zeros(n, np.float32), actions=np.zeros((n, 8), np.float32),
    )


def test_record_from_trajectory(tmp_path):
    rec = record_from_trajectory(_traj(), tmp_path / "t1.mp4", gold_axes={"success": 1.0})
    assert rec.fps == pytest.approx(10.0) and rec.num_steps == 21 and rec.video_url == "/videos/t1"
    assert rec.video_path == str((tmp_path / "t1.mp4").resolve()) and rec.gold_axes == {"success": 1.0}


@dataclass
class IndexRow:
    """Shaped like the episode store's index rows (duration_s, relative video path, gold metrics)."""

    episode_id: str
    task: str
    instruction: str
    duration_s: float
    num_steps: int
    video_path: str
    metrics: dict = field(default_factory=dict)


def test_rows_from_an_index_and_from_files(tmp_path):
    rec = record_from_row(IndexRow("e1", "push", "push it", 1.9, 20, "videos/e1.mp4"), base_dir=tmp_path)
    assert rec.fps == pytest.approx(10.0) and rec.video_path == str(tmp_path / "videos/e1.mp4")
    assert rec.video_url == "/videos/e1" and rec.gold_axes is None
    with pytest.raises(ValueError, match="no fps"):
        record_from_row({"episode_id": "x", "num_steps": 1, "video_path": "a.mp4"})
    with pytest.raises(ValueError, match="neither video_path nor video_url"):
        record_from_row({"episode_id": "x", "num_steps": 5, "fps": 10})
    rows = [{"episode_id": "a", "task": "t", "instruction": "i", "num_steps": 5, "fps": 5,
             "video_url": "http://cdn.example/a.mp4"}]
    assert records_from_rows(rows)[0].video_url == "http://cdn.example/a.mp4"
    (tmp_path / "eps.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert records_from_file(tmp_path / "eps.jsonl")[0].episode_id == "a"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        records_from_file(tmp_path / "bad.json")
