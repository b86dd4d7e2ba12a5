"""The recorder's episode building (ROS-free): commands paired with observations -> Trajectory."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf.constants import ARM_JOINT_NAMES
from rlhf_nodes.episode_builder import EpisodeBuilder, trajectory_target


def builder(**kw) -> EpisodeBuilder:
    return EpisodeBuilder("ep1", "reach", "move the gripper to the red ball", "bc:1", "sim", ARM_JOINT_NAMES, **kw)


def test_action_is_target_minus_position_and_newest_command_wins():
    b = builder()
    img = np.zeros((8, 8, 3), np.uint8)
    q = np.arange(7, dtype=np.float64) * 0.1
    assert not b.add_step(0, None, q, q, 0.08, q, 1.0)  # no image yet: dropped
    assert b.add_step(1_000_000_000, img, q, np.zeros(7), 0.08, q + 0.01, 1.0)
    assert b.add_step(1_000_000_000, img, q, np.zeros(7), 0.08, q + 0.02, -1.0)  # same observation: replaces
    assert b.add_step(1_100_000_000, img, q + 0.02, np.zeros(7), 0.07, q + 0.03, -1.0)
    traj = b.build(success=True, ee_fn=lambda qs: np.ones((len(qs), 3)))
    assert len(traj) == 2 and b.dropped == 1 and b.replaced == 1
    assert np.allclose(traj.actions[0], [0.02] * 7 + [-1.0])
    assert np.allclose(traj.actions[1][:7], 0.01, atol=1e-6)
    assert np.allclose(traj.timestamps, [0.0, 0.1]) and traj.extra["start_time_ns"] == 1_000_000_000
    assert traj.success is True and traj.ee_positions.shape == (2, 3) and traj.source == "sim"


def test_empty_recording_is_an_error_naming_the_episode():
    with pytest.raises(ValueError, match="ep1"):
        builder().build()


def test_max_steps_bounds_memory():
    b = builder(max_steps=3)
    img = np.zeros((4, 4, 3), np.uint8)
    for k in range(5):
        b.add_step(k, img, np.zeros(7), np.zeros(7), 0.0, np.zeros(7), 1.0)
    assert len(b) == 3 and b.dropped == 2


def test_trajectory_target_interpolates_from_current_position():
    q = np.zeros(2)
    times = np.array([0.1, 0.2])
    points = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert np.allclose(trajectory_target(times, points, q, 0.05), [0.5, 1.0])
    assert np.allclose(trajectory_target(times, points, q, 0.15), [1.5, 3.0])
    assert np.allclose(trajectory_target(times, points, q, 1.0), [2.0, 4.0])


def test_a_preroll_starts_an_episode_at_a_past_stamp():
    img = np.zeros((4, 4, 3), np.uint8)
    q = np.zeros(7)
    pre = builder()
    for k in range(6):  # steps at 0.0 .. 0.5 s
        pre.add_step(k * 100_000_000, img, q + k, q, 0.08, q + k + 0.01, 1.0)
    assert pre.drop_before(250_000_000) == 3 and pre.stamps_ns[0] == 300_000_000
    assert pre.drop_before(250_000_000) == 0
    rec = builder()
    assert rec.adopt_steps(pre) == 3
    rec.add_step(600_000_000, img, q + 6, q, 0.08, q + 6.01, 1.0)
    traj = rec.build()
    assert traj.extra["start_time_ns"] == 300_000_000 and len(traj) == 4
    assert np.allclose(traj.joint_positions[:, 0], [3, 4, 5, 6])
    with pytest.raises(ValueError, match="already has steps"):
        rec.adopt_steps(pre)


def test_wrist_frames_go_with_their_steps_and_only_when_they_arrive():
    img = np.zeros((4, 4, 3), np.uint8)
    q = np.zeros(7)
    plain = builder()
    for k in range(3):
        plain.add_step(k * 100_000_000, img, q, q, 0.08, q + 0.01, 1.0)
    traj = plain.build()
    assert traj.wrist_images is None and "wrist_frames_missing" not in traj.extra  # no hand camera: as before

    b = builder()
    b.add_step(0, img, q, q, 0.08, q + 0.01, 1.0)  # the hand camera's first frame is still on its way
    for k in range(1, 4):
        wrist = np.full((6, 5, 3), 10 * k, np.uint8)
        b.add_step(k * 100_000_000, img, q, q, 0.08, q + 0.01, 1.0, wrist_image=wrist)
    traj = b.build()
    assert traj.wrist_images.shape == (4, 6, 5, 3) and traj.wrist_images.dtype == np.uint8
    assert traj.wrist_images[:, 0, 0, 0].tolist() == [0, 10, 20, 30]
    assert traj.extra["wrist_frames_missing"] == 1
