"""The whole graph over real DDS, one process per node: an episode runs in sim_node driven by
policy_node (through safety_node), recorder_node writes a bag that rosbags reads back, reward_node
scores it, ppo_learner_node trains on the score and its PolicyUpdate reaches policy_node, whose
next commands come from the new head."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from ros_fixtures import ros_env
from ros_node_fixtures import make_policy, make_reward_checkpoint, python, start_node, stop_nodes

pytestmark = [pytest.mark.ros, pytest.mark.slow]

DRIVER = Path(__file__).with_name("ros_graph_driver.py")
CONTROL_HZ = 10.0


def test_episode_through_the_whole_graph(tmp_path, ros_domain_id):
    logs = tmp_path / "logs"
    logs.mkdir()
    env = ros_env(ros_domain_id, tmp_path / "ros_log")
    policy_dir = make_policy().save(tmp_path / "policy")
    reward_dir = make_reward_checkpoint(tmp_path / "reward")
    store = tmp_path / "episodes"
    common = {"control_hz": CONTROL_HZ}
    procs = [
        start_node("sim_node", env, logs, {"sim.task": "reach", "sim.image_size": 64, "sim.control_hz": CONTROL_HZ}),
        start_node("safety_node", env, logs, {"safety.control_period_s": 1.0 / CONTROL_HZ}),
        start_node("policy_node", env, logs, {**common, "policy_path": str(policy_dir), "command_interface": "trajectory",
                                              "forward_command_topic": "/unused"}),
        start_node("recorder_node", env, logs, {"store_root": str(store), "control_period_s": 1.0 / CONTROL_HZ}),
        start_node("reward_node", env, logs, {"reward_checkpoint": str(reward_dir), "store_root": str(store)}),
        start_node("ppo_learner_node", env, logs, {
            "policy_path": str(policy_dir), "store_root": str(store), "out_dir": str(tmp_path / "learner"),
            "episodes_per_update": 1, "ppo.minibatch_size": 16, "ppo.update_epochs": 2,
        }),
    ]
    report_path = tmp_path / "report.json"
    try:
        driver = subprocess.run([python(), str(DRIVER), str(report_path), "3.0", "60"], env=env, timeout=300,
                                capture_output=True, text=True)
    finally:
        codes = stop_nodes(procs)
    logs_text = {p.name: p.read_text()[-3000:] for p in logs.iterdir()}
    assert driver.returncode == 0, driver.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert report["stage"] == "done", (report.get("error"), report["stage"], logs_text)
    # Every node ran to the end and shut down cleanly on SIGTERM.
    assert all(c == 0 for c in codes.values()), (str(codes), logs_text)

    # The episode ran in the sim under the policy's trajectory chunks (through the safety filter).
    assert report["reset"]["success"] and report["reset"]["instruction"]
    assert report["commands_during_episode"] >= 15
    cmd = report["arm_commands"][-1]
    assert cmd["n_points"] == 3 and cmd["times"] == pytest.approx([0.1, 0.2, 0.3])
    assert cmd["velocities"][-1][:7] == [0.0] * 7

    # recorder_node stored it, and rosbags reads the bag back.
    end = report["end"]
    assert end["success"], end["message"]
    info = end["info"]
    assert info["num_steps"] >= 15 and info["instruction"] == report["reset"]["instruction"]
    assert info["control_rate_hz"] == pytest.approx(CONTROL_HZ, rel=0.2)
    # It begins at the reset's first observation although the recording was asked for a second later.
    assert info["start_time"] == report["reset"]["stamp"], (info["start_time"], report["reset"]["stamp"])
    assert "earlier steps" in report["start"]["message"]
    # No control step went missing inside the recording: one step per sim period from first to last.
    # (Under rclpy's multi-threaded executor the recorder once went seconds without a callback.)
    span_s = info["duration"]["sec"] + 1e-9 * info["duration"]["nanosec"]
    assert info["num_steps"] >= round(span_s * CONTROL_HZ), (info["num_steps"], span_s, logs_text.get("recorder_node.log"))
    assert report["info_published"]
    bag = Path(info["bag_uri"].removeprefix("file://"))
    from rosbags.rosbag2 import Reader

    from rlhf.episodes.bag_types import episode_typestore

    store_types = episode_typestore()
    counts: dict[str, int] = {}
    with Reader(bag) as reader:
        for conn, _, raw in reader.messages():
            counts[conn.topic] = counts.get(conn.topic, 0) + 1
            if conn.topic == "/camera/color/image_raw" and counts[conn.topic] == 1:
                img = store_types.deserialize_cdr(raw, conn.msgtype)
                assert (img.height, img.width, img.encoding) == (64, 64, "rgb8")
    assert counts["/camera/color/image_raw"] == counts["/joint_states"] == info["num_steps"]
    assert counts["/forward_position_controller/commands"] == info["num_steps"]
    assert counts["/episodes/recorded"] == 1
    assert Path(info["video_uri"].removeprefix("file://")).is_file()

    # reward_node scored it.
    score = report["score"]
    assert score is not None and score["episode_id"] == info["episode_id"]
    assert len(score["per_step_mean"]) == info["num_steps"] and score["ensemble_size"] == 2
    assert np.isfinite(score["mean"]) and score["model_version"].startswith("rm:")
    # ~/score_episode gives the same score by episode id and by bag URI; an unknown id is an error.
    svc = report["score_service"]
    for how in ("by_id", "by_bag"):
        assert svc[how]["success"], svc[how]["message"]
        assert svc[how]["score"]["mean"] == pytest.approx(score["mean"], rel=1e-5, abs=1e-6)
    assert not svc["missing"]["success"] and "nope" in svc["missing"]["message"]

    # The learner's new head was announced with the SHA-256 of the file it wrote.
    update = report["update"]
    assert update is not None and update["version"] == "ppo:iter1"
    head_dir = Path(update["head_checkpoint_uri"].removeprefix("file://"))
    assert hashlib.sha256((head_dir / "head.pt").read_bytes()).hexdigest() == update["head_sha256"]

    # policy_node swapped to it without dropping a control tick, and its commands come from it.
    status = report["status"]
    versions = [s["version"] for s in status]
    assert versions[0].startswith("bc:") and versions[-1] == update["version"]
    first_new = versions.index(update["version"])
    window = status[max(0, first_new - 5): first_new + 5]
    ticks = [s["tick"] for s in window]
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), f"ticks around the swap: {ticks}"
    # The tick loop skips a period it missed rather than firing twice (and counts it), so a dropped
    # tick would show as a skipped period or a gap of two or more periods.
    assert window[-1]["skipped_periods"] == window[0]["skipped_periods"]
    gaps = np.diff([s["t"] for s in window])
    assert np.all(gaps < 1.9 / CONTROL_HZ), f"tick gaps around the swap: {gaps}"
    assert all(s["head_sha256"] == update["head_sha256"] for s in status[first_new:])
    assert all(s["head_sha256"] != update["head_sha256"] for s in status[:first_new])
    assert report["commands_after_update"] >= 3
    # policy_node's own e-stop stops its commands until released.
    e = report["estop"]
    assert e["engaged"] and e["commands_while_engaged"] == 0 and e["released"] and e["commands_after_release"] > 2
    # Bad requests are refused and change nothing.
    assert not report["bad_reset"]["success"] and "fly" in report["bad_reset"]["message"]
    assert not report["bad_load"]["success"] and "SHA-256" in report["bad_load"]["message"]
    assert report["bad_load"]["version"] == update["version"]
