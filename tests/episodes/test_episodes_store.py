"""EpisodeStore: add/load round trip, all-or-nothing writes, pair videos."""

from __future__ import annotations

import numpy as np
import pytest

import rlhf.episodes.store as store_mod
from rlhf.episodes.store import EpisodeStore
from rlhf.episodes.video import probe_video


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "index.sqlite" not in p.name)


def test_add_then_load_round_trip(tmp_path, traj_factory):
    store = EpisodeStore(tmp_path / "s")
    traj = traj_factory(12, seed=3)
    rec = store.add(traj)
    assert rec.bag_path == f"bags/{traj.episode_id}" and rec.video_path == f"videos/{traj.episode_id}.mp4"
    assert (rec.num_steps, rec.task, rec.success, rec.metrics) == (12, "reach", True, traj.metrics)
    assert rec.duration_s == pytest.approx(1.1)
    back = store.load(traj.episode_id)
    for name in ("images", "joint_positions", "actions", "gripper", "object_positions", "contact_forces"):
        np.testing.assert_array_equal(getattr(back, name), getattr(traj, name))
    assert probe_video(store.video_path(traj.episode_id)).num_frames == 12
    # The EpisodeInfo in the bag points at the final places, not the staging folder.
    from rosbags.rosbag2 import Reader

    from rlhf.episodes.bag_types import episode_typestore

    with Reader(store.bag_path(traj.episode_id)) as r:
        (info,) = [episode_typestore().deserialize_cdr(raw, c.msgtype) for c, _, raw in r.messages() if c.topic == "/episodes/recorded"]
    assert info.bag_uri == store.bag_path(traj.episode_id).resolve().as_uri()
    assert info.video_uri == store.video_path(traj.episode_id).resolve().as_uri()
    assert [r.episode_id for r in store.list(task="reach")] == [traj.episode_id]
    with pytest.raises(KeyError, match="already"):
        store.add(traj)
    with pytest.raises(ValueError, match="episode id"):
        store.add(traj_factory(3, episode_id="../evil"))
    store.remove(traj.episode_id)
    assert store.list() == [] and _files(tmp_path / "s") == []
    store.close()


@pytest.mark.parametrize("fail_at", ["bag", "video", "index"])
def test_add_is_all_or_nothing(tmp_path, traj_factory, monkeypatch, fail_at):
    store = EpisodeStore(tmp_path / "s")
    store.add(traj_factory(4, seed=1))
    before = _files(tmp_path / "s")

    def boom(*a, **k):
        raise OSError(f"disk full while writing the {fail_at}")

    if fail_at == "bag":
        monkeypatch.setattr(store_mod, "write_episode_bag", boom)
    elif fail_at == "video":
        monkeypatch.setattr(store_mod, "write_video", boom)
    else:
        monkeypatch.setattr(store.index, "add", boom)
    traj = traj_factory(5, seed=2)
    with pytest.raises(OSError, match="disk full"):
        store.add(traj)
    assert _files(tmp_path / "s") == before  # no half episode, staging emptied
    assert traj.episode_id not in store.index
    monkeypatch.undo()
    store.add(traj)  # and the same episode can be added afterwards
    assert len(store.list()) == 2
    store.close()


def test_pair_video_is_cached(tmp_path, traj_factory):
    store = EpisodeStore(tmp_path / "s")
    a, b = traj_factory(6, seed=1), traj_factory(9, seed=2)
    store.add(a)
    store.add(b)
    path = store.pair_video(a.episode_id, b.episode_id)
    assert probe_video(path).num_frames == 9
    mtime = path.stat().st_mtime_ns
    assert store.pair_video(a.episode_id, b.episode_id).stat().st_mtime_ns == mtime
    store.remove(b.episode_id)  # its pair videos go with it
    assert not path.exists() and not list((tmp_path / "s/pairs").iterdir())
    store.close()


def test_import_robot_bag_into_store(tmp_path, robot_bag_factory):
    robot_bag_factory(tmp_path / "rec", episodes=2, seconds=0.5, gap_s=2.0)
    store = EpisodeStore(tmp_path / "s")
    report = store.import_bags([tmp_path / "rec"], progress=False)
    assert report.ok and len(report.added) == 2
    for r in report.added:
        assert r.source == "robot" and r.instruction == "stack the blocks"
        assert r.extra["source_bag"].endswith("rec")
        back = store.load(r.episode_id)
        # 30 Hz camera frames from the first one to the last joint state (the 16th frame comes 1 ms after it)
        assert len(back) == r.num_steps == 15
    store.close()


def test_wrist_images_survive_the_store_on_its_bag_topic(tmp_path, traj_factory):
    from rlhf.episodes.bag_writer import BagWriteConfig
    from rlhf.episodes.store import StoreConfig

    # A store writing the hand camera on a topic of its own reads it back from there.
    store = EpisodeStore(tmp_path / "s", StoreConfig(write_videos=False, bag=BagWriteConfig(wrist_image_topic="/hand/rgb")))
    traj = traj_factory(5, seed=4, wrist_hw=(12, 12))
    store.add(traj)
    np.testing.assert_array_equal(store.load(traj.episode_id).wrist_images, traj.wrist_images)


def test_wrist_camera_gets_a_second_video_on_the_same_clock(tmp_path, traj_factory):
    import json

    from rlhf.episodes.video import sidecar_path

    store = EpisodeStore(tmp_path / "s")
    traj = traj_factory(9, seed=5, wrist_hw=(16, 16))
    rec = store.add(traj)
    assert rec.wrist_video_path == f"videos/wrist/{traj.episode_id}.mp4"
    assert store.get(traj.episode_id).wrist_video_path == rec.wrist_video_path  # kept in the index
    scene, wrist = probe_video(store.video_path(traj.episode_id)), probe_video(store.wrist_video_path(traj.episode_id))
    assert wrist.num_frames == scene.num_frames == 9
    assert wrist.frame_times == pytest.approx(scene.frame_times, abs=1e-3)  # one clock for both
    assert (wrist.width, wrist.height) == (16, 16)
    meta = json.loads(sidecar_path(store.wrist_video_path(traj.episode_id)).read_text())
    assert (meta["camera"], meta["episode_id"], meta["num_frames"]) == ("wrist", traj.episode_id, 9)

    plain = store.add(traj_factory(4, seed=6))  # no wrist camera: as before
    assert plain.wrist_video_path == "" and store.wrist_video_path(plain.episode_id) is None

    store.remove(traj.episode_id)
    store.remove(plain.episode_id)
    assert _files(tmp_path / "s") == []  # the wrist video and its sidecar went too
    store.close()


def test_wrist_video_all_or_nothing_and_frame_count_checked(tmp_path, traj_factory, monkeypatch):
    store = EpisodeStore(tmp_path / "s")
    traj = traj_factory(5, seed=7, wrist_hw=(8, 8))
    monkeypatch.setattr(store.index, "add", lambda rec: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        store.add(traj)
    assert _files(tmp_path / "s") == []
    monkeypatch.undo()

    bad = traj_factory(5, seed=8, wrist_hw=(8, 8))
    bad.wrist_images = bad.wrist_images[:3]  # a broken recording: fewer hand-camera frames than steps
    with pytest.raises(ValueError, match=rf"episode '{bad.episode_id}': 3 wrist-camera frames but 5 steps"):
        store.add(bad)
    assert _files(tmp_path / "s") == [] and bad.episode_id not in store.index
    store.close()
