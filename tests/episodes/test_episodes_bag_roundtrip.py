"""A bag written here reads back equal: through our reader, rosbags' reader and the `mcap` reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from rosbags.rosbag2 import Reader

from rlhf.constants import ARM_JOINT_NAMES, GRIPPER_JOINT_NAMES
from rlhf.episodes.bag_reader import BagError, BagReadConfig, read_episodes
from rlhf.episodes.bag_types import META_EPISODE_ID, META_TASK, TOPIC_ACTION_RAW, episode_typestore
from rlhf.episodes.bag_writer import BagWriteConfig, write_episode_bag

ARRAYS = ("images", "joint_positions", "joint_velocities", "gripper", "actions", "ee_positions", "object_positions", "contact_forces")


def _expected_messages(traj, start_ns):
    """What each topic must hold, per message, derived independently of the writer."""
    stamps = start_ns + np.round((traj.timestamps - traj.timestamps[0]) * 1e9).astype(np.int64)
    exp = {"/joint_states": [], "/camera/color/image_raw": [], "/forward_position_controller/commands": [], TOPIC_ACTION_RAW: []}
    for t in range(len(traj)):
        exp["/joint_states"].append(
            (int(stamps[t]), {
                "name": list(ARM_JOINT_NAMES) + list(GRIPPER_JOINT_NAMES),
                "position": np.r_[traj.joint_positions[t].astype(np.float64), [traj.gripper[t] / 2.0] * 2],
                "velocity": np.r_[traj.joint_velocities[t].astype(np.float64), [0.0, 0.0]],
            })
        )
        exp["/camera/color/image_raw"].append((int(stamps[t]), {"data": traj.images[t].reshape(-1), "encoding": "rgb8"}))
        exp["/forward_position_controller/commands"].append(
            (int(stamps[t]), {"data": np.r_[traj.joint_positions[t].astype(np.float64) + traj.actions[t, :7].astype(np.float64),
                                             [float(traj.actions[t, 7])]]})
        )
        exp[TOPIC_ACTION_RAW].append((int(stamps[t]), {"data": traj.actions[t]}))
    return exp


def test_bag_roundtrip_through_our_reader(tmp_path, traj_factory):
    traj = traj_factory(15, seed=3)
    bag = write_episode_bag(traj, tmp_path / "ep")
    (back,) = read_episodes(bag)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(back, name), getattr(traj, name), err_msg=name)
        assert getattr(back, name).dtype == getattr(traj, name).dtype, name
    np.testing.assert_allclose(back.timestamps, traj.timestamps, atol=1e-9, rtol=0)
    for name in ("episode_id", "task", "instruction", "source", "policy_version", "seed", "success", "metrics", "extra", "joint_names"):
        assert getattr(back, name) == getattr(traj, name), name


def test_actions_derived_from_commands_are_exact(tmp_path, traj_factory):
    """Without /rlhf/action, Δq = target - q recovers the actions bit for bit."""
    traj = traj_factory(20, seed=5, sim_extras=False)
    bag = write_episode_bag(traj, tmp_path / "ep")
    (back,) = read_episodes(bag, BagReadConfig(prefer_raw_actions=False))
    np.testing.assert_array_equal(back.actions, traj.actions)


def test_rosbags_reader_sees_every_message_as_written(tmp_path, traj_factory):
    traj = traj_factory(10, seed=1)
    start = 1_700_000_123_456_789_000
    bag = write_episode_bag(traj, tmp_path / "ep", config=BagWriteConfig(start_time_ns=start))
    exp = _expected_messages(traj, start)
    store = episode_typestore()
    got: dict[str, list] = {k: [] for k in exp}
    infos, instructions = [], []
    with Reader(bag) as reader:
        assert reader.message_count == sum(c.msgcount for c in reader.connections)
        for conn, ts, raw in reader.messages():
            msg = store.deserialize_cdr(raw, conn.msgtype)
            if conn.topic in got:
                got[conn.topic].append((ts, msg))
            elif conn.topic == "/episodes/recorded":
                infos.append(msg)
            elif conn.topic == "/task/instruction":
                instructions.append(msg.data)
    for topic, expected in exp.items():
        assert len(got[topic]) == len(expected), topic
        for (ts, msg), (ets, fields) in zip(got[topic], expected, strict=True):
            assert ts == ets, topic
            for f, v in fields.items():
                value = getattr(msg, f)
                if isinstance(v, np.ndarray):
                    np.testing.assert_array_equal(value, v, err_msg=f"{topic}.{f}")
                else:
                    assert value == v, f"{topic}.{f}"
            if hasattr(msg, "header"):
                assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == ets
    assert instructions == [traj.instruction]
    (info,) = infos
    assert (info.episode_id, info.task, info.instruction, info.source, info.num_steps) == (
        traj.episode_id, traj.task, traj.instruction, "sim", len(traj))
    assert info.success_known and info.success == traj.success
    assert dict(zip(info.metric_names, info.metric_values, strict=True)) == traj.metrics
    assert info.start_time.sec * 10**9 + info.start_time.nanosec == start
    assert info.control_rate_hz == pytest.approx(10.0)


def test_mcap_reader_agrees_with_rosbags_and_has_summary(tmp_path, traj_factory):
    traj = traj_factory(10, seed=2)
    bag = write_episode_bag(traj, tmp_path / "ep")
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap"
    assert meta["custom_data"][META_EPISODE_ID] == traj.episode_id
    assert meta["custom_data"][META_TASK] == traj.task
    (mcap_file,) = bag.glob("*.mcap")

    with Reader(bag) as reader:
        ours = [(c.topic, ts, bytes(raw)) for c, ts, raw in reader.messages()]
    with open(mcap_file, "rb") as f:
        r = make_reader(f, validate_crcs=True)
        summary = r.get_summary()
        theirs = [(ch.topic, m.log_time, bytes(m.data)) for _, ch, m in r.iter_messages(log_time_order=True)]
        assert r.get_header().profile == "ros2"
        meta_records = {m.name: m.metadata for m in r.iter_metadata()}
    assert sorted(ours) == sorted(theirs)
    assert summary is not None and summary.statistics is not None
    assert summary.statistics.message_count == len(ours)
    counts = {summary.channels[cid].topic: n for cid, n in summary.statistics.channel_message_counts.items()}
    assert counts["/joint_states"] == counts["/camera/color/image_raw"] == len(traj)
    assert counts["/episodes/recorded"] == 1
    assert {s.name for s in summary.schemas.values()} >= {"sensor_msgs/msg/Image", "rlhf_msgs/msg/EpisodeInfo"}
    assert all(ci.message_index_offsets for ci in summary.chunk_indexes)
    assert json.loads(meta["custom_data"]["rlhf.trajectory"])["episode_id"] == traj.episode_id
    assert "rosbag2" in meta_records


def test_compressed_bag_roundtrip(tmp_path, traj_factory):
    traj = traj_factory(8, seed=4)
    bag = write_episode_bag(traj, tmp_path / "ep", compress=True)
    (back,) = read_episodes(bag)
    np.testing.assert_array_equal(back.images, traj.images)
    with open(next(bag.glob("*.mcap")), "rb") as f:
        assert len(list(make_reader(f, validate_crcs=True).iter_messages())) > 0


def test_failed_write_leaves_nothing(tmp_path, traj_factory):
    traj = traj_factory(5, seed=0)
    traj.extra["bad"] = object()  # not JSON: must fail before anything is written
    with pytest.raises(ValueError, match="JSON"):
        write_episode_bag(traj, tmp_path / "ep")
    assert not (tmp_path / "ep").exists()


def test_custom_topics_and_bad_topic(tmp_path, traj_factory):
    traj = traj_factory(4, seed=6)
    bag = write_episode_bag(traj, tmp_path / "ep", image_topic="/wrist/image", command_topic="/arm/cmd")
    with Reader(bag) as r:
        assert {"/wrist/image", "/arm/cmd"} <= set(r.topics)
    with pytest.raises(BagError, match="missing topic /camera/color/image_raw"):
        read_episodes(bag)
    (back,) = read_episodes(bag, image_topic="/wrist/image", command_topic="/arm/cmd", prefer_raw_actions=False)
    np.testing.assert_array_equal(back.actions, traj.actions)
    with pytest.raises(ValueError, match="image_topic"):
        BagWriteConfig(image_topic="camera")


def test_wrist_images_roundtrip_on_their_own_topic(tmp_path, traj_factory):
    traj = traj_factory(9, seed=7, wrist_hw=(20, 28))
    bag = write_episode_bag(traj, tmp_path / "ep")
    (back,) = read_episodes(bag)
    np.testing.assert_array_equal(back.wrist_images, traj.wrist_images)
    assert back.wrist_images.dtype == np.uint8
    for name in ARRAYS:  # the rest of the episode is untouched by the second camera
        np.testing.assert_array_equal(getattr(back, name), getattr(traj, name), err_msg=name)
    # One rgb8 frame per step on the wrist topic, with the main frames' stamps and its own frame id.
    store = episode_typestore()
    stamps: dict[str, list[int]] = {"/camera/color/image_raw": [], "/wrist_camera/color/image_raw": []}
    with Reader(bag) as reader:
        for conn, ts, raw in reader.messages():
            if conn.topic in stamps:
                stamps[conn.topic].append(ts)
                if conn.topic == "/wrist_camera/color/image_raw":
                    msg = store.deserialize_cdr(raw, conn.msgtype)
                    assert (msg.height, msg.width, msg.encoding) == (20, 28, "rgb8")
                    assert msg.header.frame_id == "wrist_camera_color_optical_frame"
    assert stamps["/wrist_camera/color/image_raw"] == stamps["/camera/color/image_raw"]
    assert len(stamps["/wrist_camera/color/image_raw"]) == len(traj)


def test_wrist_images_on_a_custom_topic_and_none_without_them(tmp_path, traj_factory):
    traj = traj_factory(6, seed=8, wrist_hw=(16, 16), sim_extras=False)
    bag = write_episode_bag(traj, tmp_path / "ep", wrist_image_topic="/hand/image")
    (default_topic,) = read_episodes(bag)
    assert default_topic.wrist_images is None  # nothing on the default wrist topic
    (back,) = read_episodes(bag, wrist_image_topic="/hand/image")
    np.testing.assert_array_equal(back.wrist_images, traj.wrist_images)

    plain = traj_factory(6, seed=9)
    bag = write_episode_bag(plain, tmp_path / "plain")
    with Reader(bag) as r:
        assert "/wrist_camera/color/image_raw" not in r.topics
    (back,) = read_episodes(bag)
    assert back.wrist_images is None
    np.testing.assert_array_equal(back.images, plain.images)
    with pytest.raises(ValueError, match="wrist_image_topic"):
        write_episode_bag(traj, tmp_path / "same", image_topic="/hand/image", wrist_image_topic="/hand/image")
    assert not (tmp_path / "same").exists()
