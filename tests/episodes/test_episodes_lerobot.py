"""LeRobot v3.0 export: layout, parquet contents, video ranges and metadata."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from rlhf.episodes.lerobot_export import LeRobotExportConfig, export_lerobot
from rlhf.episodes.video import probe_video


def test_export_layout_and_contents(tmp_path, traj_factory):
    trajs = [traj_factory(8, seed=1), traj_factory(5, seed=2, instruction="push the block"), traj_factory(6, seed=3)]
    out = export_lerobot(trajs, tmp_path / "ds", LeRobotExportConfig(progress=False))
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 10
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, 19, 2)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    feats = info["features"]
    assert feats["observation.state"]["shape"] == [15] and len(feats["observation.state"]["names"]) == 15
    assert feats["action"] == {"dtype": "float32", "shape": [8], "names": feats["action"]["names"]}
    assert feats["observation.image"]["dtype"] == "video" and feats["observation.image"]["shape"] == [24, 32, 3]
    for k in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert k in feats

    data = pq.read_table(out / "data/chunk-000/file-000.parquet")
    assert data.num_rows == 19
    state = np.array(data.column("observation.state").to_pylist(), dtype=np.float32)
    action = np.array(data.column("action").to_pylist(), dtype=np.float32)
    np.testing.assert_array_equal(state[8:13, :7], trajs[1].joint_positions)
    np.testing.assert_array_equal(state[8:13, 14], trajs[1].gripper)
    np.testing.assert_array_equal(action[13:], trajs[2].actions)
    assert data.column("index").to_pylist() == list(range(19))
    assert data.column("episode_index").to_pylist() == [0] * 8 + [1] * 5 + [2] * 6
    assert data.column("frame_index").to_pylist()[8:13] == list(range(5))
    np.testing.assert_allclose(data.column("timestamp").to_numpy()[:8], np.arange(8) / 10, atol=1e-6)
    assert data.column("task_index").to_pylist() == [0] * 8 + [1] * 5 + [0] * 6

    eps = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [(e["dataset_from_index"], e["dataset_to_index"], e["length"]) for e in eps] == [(0, 8, 8), (8, 13, 5), (13, 19, 6)]
    assert eps[1]["tasks"] == ["push the block"]
    assert eps[2]["videos/observation.image/from_timestamp"] == pytest.approx(1.3)
    assert eps[2]["videos/observation.image/to_timestamp"] == pytest.approx(1.9)
    assert eps[0]["rlhf/episode_id"] == trajs[0].episode_id
    assert eps[1]["stats/action/mean"] == pytest.approx(trajs[1].actions.mean(0).tolist(), abs=1e-6)

    tasks = pq.read_table(out / "meta/tasks.parquet")
    assert dict(zip(tasks.column("task").to_pylist(), tasks.column("task_index").to_pylist(), strict=True)) == {
        "reach the red cube": 0, "push the block": 1}
    assert b"pandas" in tasks.schema.metadata  # the task text is the index when read with pandas

    video = probe_video(out / "videos/observation.image/chunk-000/file-000.mp4")
    assert video.num_frames == 19
    np.testing.assert_allclose(video.frame_times, np.arange(19) / 10, atol=1e-3)

    stats = json.loads((out / "meta/stats.json").read_text())
    all_actions = np.concatenate([t.actions for t in trajs])
    np.testing.assert_allclose(stats["action"]["mean"], all_actions.mean(0), atol=1e-6)
    np.testing.assert_allclose(stats["action"]["std"], all_actions.std(0), atol=1e-6)
    assert stats["action"]["count"] == [19]
    assert np.array(stats["observation.image"]["mean"]).shape == (3, 1, 1)
    all_images = np.concatenate([t.images for t in trajs]).reshape(-1, 3) / 255.0
    np.testing.assert_allclose(np.array(stats["observation.image"]["mean"]).ravel(), all_images.mean(0), atol=1e-9)


def test_export_refuses_mixed_rates_and_leaves_nothing(tmp_path, traj_factory):
    trajs = [traj_factory(5, seed=1), traj_factory(5, seed=2, rate=20.0)]
    with pytest.raises(ValueError, match="20.000 Hz"):
        export_lerobot(trajs, tmp_path / "ds", LeRobotExportConfig(progress=False))
    assert not (tmp_path / "ds").exists() and not (tmp_path / "ds.partial").exists()
    export_lerobot(trajs[:1], tmp_path / "ds", LeRobotExportConfig(progress=False))
    with pytest.raises(FileExistsError):
        export_lerobot(trajs[:1], tmp_path / "ds", LeRobotExportConfig(progress=False))
    export_lerobot(trajs[:1], tmp_path / "ds", LeRobotExportConfig(progress=False, overwrite=True))


def test_wrist_camera_is_a_second_video_feature(tmp_path, traj_factory):
    import dataclasses

    rng = np.random.default_rng(0)

    def with_wrist(t):
        return dataclasses.replace(t, wrist_images=rng.integers(0, 255, (len(t), 16, 16, 3), dtype=np.uint8))

    trajs = [with_wrist(traj_factory(8, seed=1)), with_wrist(traj_factory(5, seed=2))]
    out = export_lerobot(trajs, tmp_path / "ds", LeRobotExportConfig(progress=False))
    feats = json.loads((out / "meta/info.json").read_text())["features"]
    assert feats["observation.images.wrist"]["shape"] == [16, 16, 3] and feats["observation.image"]["shape"] == [24, 32, 3]
    video = probe_video(out / "videos/observation.images.wrist/chunk-000/file-000.mp4")
    assert video.num_frames == 13 and (video.width, video.height) == (16, 16)
    eps = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert eps[1]["videos/observation.images.wrist/from_timestamp"] == pytest.approx(0.8)
    assert eps[1]["videos/observation.image/to_timestamp"] == pytest.approx(1.3)
    stats = json.loads((out / "meta/stats.json").read_text())
    wrist_mean = np.concatenate([t.wrist_images for t in trajs]).reshape(-1, 3).mean(0) / 255.0
    np.testing.assert_allclose(np.array(stats["observation.images.wrist"]["mean"]).ravel(), wrist_mean, atol=1e-9)
    # A dataset's features are the same in every frame: an episode without the wrist view is refused.
    with pytest.raises(ValueError, match="no wrist camera frames"):
        export_lerobot([trajs[0], traj_factory(4, seed=3)], tmp_path / "ds2", LeRobotExportConfig(progress=False))
    assert not (tmp_path / "ds2").exists() and not (tmp_path / "ds2.partial").exists()
    plain = export_lerobot([traj_factory(4, seed=3)], tmp_path / "ds3", LeRobotExportConfig(progress=False))
    assert "observation.images.wrist" not in json.loads((plain / "meta/info.json").read_text())["features"]
