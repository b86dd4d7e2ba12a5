"""Broken bags give a clear BagError naming the problem, and an import loses no other episode."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from mcap.reader import make_reader

from rlhf.episodes.bag_reader import BagError, BagReadConfig, read_episodes
from rlhf.episodes.bag_writer import EpisodeBagWriter, write_episode_bag
from rlhf.episodes.store import EpisodeStore, StoreConfig

NS = 1_000_000_000


def _big_bag(tmp_path, traj_factory, name="big", seed=0):
    """A bag spanning several MCAP chunks (rosbags closes a chunk at 1 MiB)."""
    traj = traj_factory(40, seed=seed, hw=(96, 128))
    return write_episode_bag(traj, tmp_path / name), traj


def _chunks(mcap_path):
    with open(mcap_path, "rb") as f:
        return sorted(make_reader(f).get_summary().chunk_indexes, key=lambda c: c.chunk_start_offset)


def corrupt_chunk(bag, which=1):
    mcap = next(bag.glob("*.mcap"))
    ci = _chunks(mcap)[which]
    data = bytearray(mcap.read_bytes())
    mid = ci.chunk_start_offset + ci.chunk_length // 2
    data[mid : mid + 64] = bytes(64)  # zero a run inside the chunk's records (image bytes)
    mcap.write_bytes(bytes(data))


def truncate(bag, keep=0.6):
    mcap = next(bag.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * keep)])


def bag_without_images(path, traj):
    with EpisodeBagWriter(path) as w:
        for t in range(len(traj)):
            w.write_joint_state(NS + t * NS // 10, traj.joint_names, traj.joint_positions[t], traj.joint_velocities[t])
            w.write_command(NS + t * NS // 10, np.r_[traj.joint_positions[t], 0.0])
    return path


def test_written_bag_has_several_sealed_chunks(tmp_path, traj_factory):
    bag, _ = _big_bag(tmp_path, traj_factory)
    mcap = next(bag.glob("*.mcap"))
    assert len(_chunks(mcap)) >= 2
    with open(mcap, "rb") as f:
        assert len(list(make_reader(f, validate_crcs=True).iter_messages())) == 40 * 7 + 2  # 7 topics a step; CRCs valid
    with open(mcap, "rb") as f:
        from mcap.records import Chunk
        from mcap.stream_reader import StreamReader

        crcs = [r.uncompressed_crc for r in StreamReader(f, skip_magic=False, emit_chunks=True).records if isinstance(r, Chunk)]
    assert crcs and all(c != 0 for c in crcs)


def test_corrupted_chunk_is_named(tmp_path, traj_factory):
    bag, _ = _big_bag(tmp_path, traj_factory)
    corrupt_chunk(bag)
    with pytest.raises(BagError, match=r"corrupted.*(?i:checksum)"):
        read_episodes(bag)


def test_cut_off_tail_is_named(tmp_path, traj_factory):
    bag, _ = _big_bag(tmp_path, traj_factory)
    truncate(bag)
    with pytest.raises(BagError, match="truncated"):
        read_episodes(bag)


def test_missing_topic_is_named(tmp_path, traj_factory):
    bag = bag_without_images(tmp_path / "noimg", traj_factory(5))
    with pytest.raises(BagError, match=r"missing topic /camera/color/image_raw .*topics present: \['/forward_position_controller/commands', '/joint_states'\]"):
        read_episodes(bag)
    with pytest.raises(BagError, match="missing topic /front_cam"):
        read_episodes(bag, BagReadConfig(image_topic="/front_cam"))


def test_wrong_message_type_is_named(tmp_path, traj_factory):
    traj = traj_factory(4)
    with EpisodeBagWriter(tmp_path / "wrong") as w:
        w.write_instruction(NS, "x")
        w._write("/joint_states", "std_msgs/msg/String", NS, w.store.types["std_msgs/msg/String"](data="not joints"))
        w.write_image(NS, traj.images[0])
    with pytest.raises(BagError, match=r"topic /joint_states has message type std_msgs/msg/String, expected sensor_msgs/msg/JointState"):
        read_episodes(tmp_path / "wrong")


def test_missing_joint_and_bad_encoding_are_named(tmp_path, traj_factory):
    traj = traj_factory(4)
    with EpisodeBagWriter(tmp_path / "bad") as w:
        for t in range(4):
            w.write_joint_state(NS + t, ["a", "b"], np.zeros(2))
            w.write_image(NS + t, traj.images[t])
            w.write_command(NS + t, np.zeros(8))
    with pytest.raises(BagError, match=r"joint state lacks joints \['panda_joint1'"):
        read_episodes(tmp_path / "bad")


def test_missing_metadata_with_two_files_suggests_reindex(tmp_path, traj_factory):
    bag, _ = _big_bag(tmp_path, traj_factory)
    (bag / "metadata.yaml").unlink()
    shutil.copy(next(bag.glob("*.mcap")), bag / "other.mcap")
    with pytest.raises(BagError, match="ros2 bag reindex"):
        read_episodes(bag)
    with pytest.raises(BagError, match="no such bag"):
        read_episodes(tmp_path / "nope")


def test_import_reports_each_bad_bag_and_keeps_the_good_ones(tmp_path, traj_factory):
    good_a, ta = _big_bag(tmp_path, traj_factory, "good_a", seed=1)
    good_b = write_episode_bag(traj_factory(6, seed=2), tmp_path / "good_b")
    corrupted, _ = _big_bag(tmp_path, traj_factory, "corrupted", seed=3)
    corrupt_chunk(corrupted)
    cut, _ = _big_bag(tmp_path, traj_factory, "cut", seed=4)
    truncate(cut)
    noimg = bag_without_images(tmp_path / "noimg", traj_factory(5, seed=5))
    store = EpisodeStore(tmp_path / "store", StoreConfig(write_videos=False))
    report = store.import_bags([good_a, corrupted, cut, noimg, good_b, tmp_path / "absent"], progress=False)
    assert sorted(r.episode_id for r in report.added) == sorted([ta.episode_id, f"{2:032x}"])
    failed = dict(report.failed)
    assert set(failed) == {str(corrupted), str(cut), str(noimg), str(tmp_path / "absent")}
    assert "corrupted" in failed[str(corrupted)]
    assert "truncated" in failed[str(cut)]
    assert "missing topic /camera/color/image_raw" in failed[str(noimg)]
    assert not report.ok
    np.testing.assert_array_equal(store.load(ta.episode_id).images, ta.images)
    # Importing again adds nothing and says why.
    again = store.import_bags([good_a], progress=False)
    assert not again.added and again.skipped[0][0] == ta.episode_id
    store.close()


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_sqlite_bag_is_named(tmp_path, robot_bag_factory, keep):
    from rosbags.rosbag2.enums import StoragePlugin

    robot_bag_factory(tmp_path / "rec", storage=StoragePlugin.SQLITE3, seconds=1.0)
    db = next((tmp_path / "rec").glob("*.db3"))
    data = db.read_bytes()
    db.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(BagError, match="SQLite storage is truncated or corrupted"):
        read_episodes(tmp_path / "rec")


def test_salvage_keeps_the_complete_chunks_of_a_cut_off_recording(tmp_path, robot_bag_factory):
    robot_bag_factory(tmp_path / "rec", seconds=4.0, hw=(96, 128))  # ~120 frames, several chunks
    (whole,) = read_episodes(tmp_path / "rec")
    truncate(tmp_path / "rec", keep=0.6)
    with pytest.raises(BagError, match="truncated"):
        read_episodes(tmp_path / "rec")
    (part,) = read_episodes(tmp_path / "rec", BagReadConfig(salvage_truncated=True))
    assert 0.3 * len(whole) < len(part) < 0.7 * len(whole)
    np.testing.assert_array_equal(part.images, whole.images[: len(part)])
    np.testing.assert_array_equal(part.joint_positions, whole.joint_positions[: len(part)])
    assert "salvaged" in part.extra
    # Salvage never hides other damage: a corrupted chunk is still an error (with chunk CRCs, as
    # `ros2 bag record` writes them, it is caught by the checksum).
    from rlhf.episodes.bag_writer import seal_chunk_crcs

    robot_bag_factory(tmp_path / "rec2", seconds=4.0, hw=(96, 128))
    assert seal_chunk_crcs(next((tmp_path / "rec2").glob("*.mcap"))) >= 2
    corrupt_chunk(tmp_path / "rec2")
    with pytest.raises(BagError, match="corrupted"):
        read_episodes(tmp_path / "rec2", BagReadConfig(salvage_truncated=True))


def test_wrist_frame_of_another_size_is_named(tmp_path, traj_factory):
    traj = traj_factory(6, seed=2, wrist_hw=(16, 16))
    with EpisodeBagWriter(tmp_path / "ep") as w:
        for t in range(len(traj)):
            stamp = NS + t * NS // 10
            w.write_joint_state(stamp, traj.joint_names, traj.joint_positions[t], traj.joint_velocities[t])
            w.write_image(stamp, traj.images[t])
            # The hand camera is reconfigured half way through: its frames grow.
            wrist = traj.wrist_images[t] if t < 3 else np.zeros((24, 16, 3), np.uint8)
            w.write_image(stamp, wrist, wrist=True)
            w.write_command(stamp, np.r_[traj.joint_positions[t], 0.0])
    with pytest.raises(BagError, match=r"/wrist_camera/color/image_raw at .* image size changed from \(16, 16\) to \(24, 16\)"):
        read_episodes(tmp_path / "ep")
