"""Bags recorded on a real robot with `ros2 bag record`: other joint order, other rates, no markers."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.rosbag2.enums import StoragePlugin

from rlhf.episodes.bag_reader import BagReadConfig, read_episodes
from rlhf.episodes.bag_writer import write_episode_bag

NS = 1_000_000_000


@pytest.mark.parametrize("storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3], ids=["mcap", "sqlite3"])
def test_robot_bag_aligned_to_camera_rate(tmp_path, robot_bag_factory, storage):
    truth = robot_bag_factory(tmp_path / "rec", storage=storage, seconds=2.0)
    (ep,) = read_episodes(tmp_path / "rec")
    assert ep.source == "robot" and ep.task == "robot"
    assert ep.instruction == "stack the blocks"
    # Steps on the camera's 30 Hz clock, starting at the first image (1 ms after the first joint state).
    assert len(ep) == 60
    np.testing.assert_allclose(np.diff(ep.timestamps), 1 / 30, atol=1e-6)
    steps = truth["starts"][0] + 1_000_000 + np.round(np.arange(60) * NS / 30).astype(np.int64)
    # Joint order restored by name: joint j holds 0.1 * j + t of the latest 100 Hz sample <= step.
    t_js = np.floor((steps - truth["starts"][0]) / (NS / 100)) / 100
    expect_q = (0.1 * np.arange(7)[None, :] + t_js[:, None]).astype(np.float32)
    np.testing.assert_allclose(ep.joint_positions, expect_q, atol=1e-6)
    np.testing.assert_allclose(ep.gripper, 0.05, atol=1e-7)
    np.testing.assert_allclose(ep.joint_velocities, 1.0)
    # Frame k of the camera at step k (red channel = frame index), colour order kept.
    np.testing.assert_array_equal(ep.images[:, 0, 0, 0], np.arange(60))
    assert (ep.images[:, :, :, 2] == 200).all()
    # Action: command in effect (issued at 10 Hz, 2 ms late, from q then) minus the current position.
    cmd_k = np.floor((steps + NS / 30 - 1 - truth["starts"][0] - 2_000_000) / (NS / 10)).astype(int)
    expect_target = 0.1 * np.arange(7)[None, :] + (cmd_k / 10 + 0.002)[:, None] + 0.01 * np.arange(1, 8)[None, :]
    np.testing.assert_allclose(ep.actions[:, :7], expect_target - expect_q, atol=1e-5)
    np.testing.assert_allclose(ep.actions[:, 7], 0.5)
    assert ep.extra["source_bag"].endswith("rec")


def test_robot_bag_split_by_gaps_and_explicit_rate(tmp_path, robot_bag_factory):
    robot_bag_factory(tmp_path / "rec", episodes=3, seconds=1.0, gap_s=2.5)
    eps = read_episodes(tmp_path / "rec", BagReadConfig(control_rate_hz=10, task="stack", instruction="unused"))
    assert len(eps) == 3
    assert [len(e) for e in eps] == [10, 10, 10]
    assert len({e.episode_id for e in eps}) == 3
    assert all(e.task == "stack" and e.instruction == "stack the blocks" for e in eps)
    # Stable ids: the same bag read twice gives the same episodes.
    assert [e.episode_id for e in read_episodes(tmp_path / "rec", BagReadConfig(control_rate_hz=10))] == [e.episode_id for e in eps]
    # A gap threshold longer than the silences keeps one long recording (keyword overrides work too).
    (one,) = read_episodes(tmp_path / "rec", control_rate_hz=10, gap_s=10.0)
    assert one.duration > 7.0


def test_bgr_images_are_converted(tmp_path, robot_bag_factory):
    robot_bag_factory(tmp_path / "rec", encoding="bgr8", seconds=0.5)
    (ep,) = read_episodes(tmp_path / "rec")
    assert (ep.images[:, :, :, 2] == 200).all()  # blue stays blue
    np.testing.assert_array_equal(ep.images[:, 0, 0, 0], np.arange(len(ep)))


def test_long_recording_cut_by_episode_markers(tmp_path, traj_factory):
    """Several of our episodes in one bag (as a recorder session writes) split by their EpisodeInfo."""
    from rlhf.episodes.bag_writer import EpisodeBagWriter

    trajs = [traj_factory(6, seed=s, sim_extras=False) for s in range(3)]
    with EpisodeBagWriter(tmp_path / "session") as w:
        t0 = 1_800_000_000 * NS
        for i, tr in enumerate(trajs):
            start = t0 + i * 5 * NS
            stamps = start + np.round(tr.timestamps * 1e9).astype(np.int64)
            w.write_instruction(int(stamps[0]), tr.instruction + f" #{i}")
            for t in range(len(tr)):
                w.write_joint_state(int(stamps[t]), list(tr.joint_names) + ["panda_finger_joint1", "panda_finger_joint2"],
                                    np.r_[tr.joint_positions[t], [tr.gripper[t] / 2] * 2], np.r_[tr.joint_velocities[t], [0, 0]])
                w.write_image(int(stamps[t]), tr.images[t])
                w.write_command(int(stamps[t]), np.r_[tr.joint_positions[t].astype(np.float64) + tr.actions[t, :7], tr.actions[t, 7]])
            w.write_episode_info(int(stamps[-1]), episode_id=tr.episode_id, task=tr.task, instruction="", policy_version="bc:1",
                                 source="sim", start_ns=int(stamps[0]), duration_ns=int(stamps[-1] - stamps[0]),
                                 num_steps=len(tr), control_rate_hz=10.0, success=tr.success, metrics=tr.metrics)
    eps = read_episodes(tmp_path / "session", BagReadConfig(control_rate_hz=10))
    assert [e.episode_id for e in eps] == [t.episode_id for t in trajs]
    for i, (e, tr) in enumerate(zip(eps, trajs, strict=True)):
        np.testing.assert_array_equal(e.images, tr.images)
        np.testing.assert_array_equal(e.actions, tr.actions)
        assert e.instruction == tr.instruction + f" #{i}"
        assert e.policy_version == "bc:1" and e.success == tr.success and e.metrics == tr.metrics


def test_lone_mcap_file_is_readable(tmp_path, traj_factory):
    traj = traj_factory(5, seed=7)
    bag = write_episode_bag(traj, tmp_path / "ep")
    (bag / "metadata.yaml").unlink()  # e.g. the recorder was killed before writing it
    (back,) = read_episodes(bag)
    np.testing.assert_array_equal(back.images, traj.images)
    (back2,) = read_episodes(next(bag.glob("*.mcap")))
    # The custom metadata also comes from the copy inside the .mcap file.
    assert (back2.episode_id, back2.seed, back2.extra) == (traj.episode_id, traj.seed, traj.extra)


def test_compressed_images_are_decoded(tmp_path, traj_factory):
    """sensor_msgs/CompressedImage (PNG here, so lossless) on the camera topic."""
    import cv2

    from rlhf.episodes.bag_types import episode_typestore
    from rlhf.episodes.bag_writer import EpisodeBagWriter

    traj = traj_factory(4, sim_extras=False)
    store = episode_typestore()
    with EpisodeBagWriter(tmp_path / "png") as w:
        for t in range(4):
            stamp = NS + t * NS // 10
            w.write_joint_state(stamp, traj.joint_names, traj.joint_positions[t], traj.joint_velocities[t])
            ok, png = cv2.imencode(".png", traj.images[t][:, :, ::-1])
            msg = store.types["sensor_msgs/msg/CompressedImage"](header=w._header(stamp), format="png", data=png.reshape(-1))
            w._write("/camera/color/image_raw/compressed", "sensor_msgs/msg/CompressedImage", stamp, msg)
            w.write_command(stamp, np.r_[traj.joint_positions[t], 0.0])
    (ep,) = read_episodes(tmp_path / "png", BagReadConfig(image_topic="/camera/color/image_raw/compressed"))
    np.testing.assert_array_equal(ep.images, traj.images)


def test_single_step_episode_round_trips_through_the_store(tmp_path, traj_factory):
    from rlhf.episodes.store import EpisodeStore

    traj = traj_factory(1, seed=9)
    with EpisodeStore(tmp_path / "s") as store:
        store.add(traj)
        back = store.load(traj.episode_id)
    assert len(back) == 1
    np.testing.assert_array_equal(back.actions, traj.actions)
