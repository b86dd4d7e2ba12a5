"""The wrist camera over real DDS: sim_node publishes the hand camera's frames when configured,
policy_node running a wrist-camera policy holds until such a frame reaches it, then acts, and
recorder_node stores the frames with the episode."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from ros_fixtures import ros_env
from ros_node_fixtures import make_policy, python, start_node, stop_nodes

from rlhf.episodes.bag_reader import read_episodes

pytestmark = [pytest.mark.ros, pytest.mark.slow]

DRIVER = Path(__file__).with_name("ros_wrist_driver.py")


def test_sim_publishes_wrist_frames_policy_waits_for_them_and_recorder_keeps_them(tmp_path, ros_domain_id):
    logs = tmp_path / "logs"
    logs.mkdir()
    env = ros_env(ros_domain_id, tmp_path / "ros_log")
    policy_dir = make_policy(wrist_camera=True).save(tmp_path / "policy")
    procs = [
        # The sim's wrist frames go to a side topic: the driver decides when the policy gets them.
        start_node("sim_node", env, logs, {
            "sim.task": "reach", "sim.image_size": 32, "sim.control_hz": 10.0, "sim.wrist_camera": True,
            "sim.wrist_image_size": 24, "wrist_image_topic": "/sim_wrist/image_raw",
            "wrist_camera_info_topic": "/sim_wrist/camera_info",
        }),
        # No safety filter here: the policy commands the sim directly, so the recorder sees its commands.
        start_node("policy_node", env, logs, {"policy_path": str(policy_dir), "control_hz": 10.0, "max_obs_age_s": 1.0,
                                              "forward_command_topic": "/forward_position_controller/commands"}),
        start_node("recorder_node", env, logs, {"store_root": str(tmp_path / "episodes"), "control_period_s": 0.1,
                                                "wrist_image_topic": "/sim_wrist/image_raw", "write_videos": False}),
    ]
    report_path = tmp_path / "report.json"
    try:
        driver = subprocess.run([python(), str(DRIVER), str(report_path), str(logs / "policy_node.log"), "120"],
                                env=env, timeout=400, capture_output=True, text=True)
    finally:
        codes = stop_nodes(procs)
    logs_text = {p.name: p.read_text()[-3000:] for p in logs.iterdir()}
    assert driver.returncode == 0, driver.stderr[-3000:]
    r = json.loads(report_path.read_text())
    assert r["stage"] == "done", (r.get("error"), r["stage"], logs_text)
    assert all(c == 0 for c in codes.values()), (str(codes), logs_text)

    # sim_node: the hand camera's own frames (its size, not the scene camera's), with the scene frames' stamps.
    w = r["wrist"]
    assert (w["height"], w["width"], w["encoding"]) == (24, 24, "rgb8"), w
    assert w["frame_id"] == "wrist_camera_color_optical_frame" and w["nonblank"], w
    assert w["stamps_shared_with_scene"] >= 1 and w["differs_from_scene"], w
    info = r["wrist_info"]
    assert (info["height"], info["width"], info["frame_id"]) == (24, 24, "wrist_camera_color_optical_frame")
    assert info["fx"] > 0

    # policy_node: no wrist frame -> held (stale), never a failed tick; wrist frames -> commands.
    assert r["hold"] == {"commands": 0, "stale_logged": True, "errors_logged": False}, (r["hold"], logs_text)
    assert r["act"]["relayed"] > 0 and r["act"]["commands"] >= 5, (r["act"], logs_text)
    assert all(v.startswith("bc:") for v in r["act"]["versions"]) and r["act"]["versions"]

    # recorder_node: every recorded step has the hand camera's frame, stored on the bag's wrist topic.
    rec = r["record"]
    assert rec["success"], (rec["message"], logs_text)
    (ep,) = read_episodes(Path(rec["bag_uri"].removeprefix("file://")))
    assert len(ep) == rec["num_steps"] >= 5
    assert ep.images.shape[1:] == (32, 32, 3) and ep.wrist_images.shape == (len(ep), 24, 24, 3)
    assert ep.extra["wrist_frames_missing"] == 0 and ep.wrist_images.std() > 0  # real frames, none padded
