"""ppo_learner_node in 'sim' mode: its own vectorised sims and the reward model; `~/train` runs PPO and
the new head goes out as a latched PolicyUpdate whose SHA-256 matches the file."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from ros_fixtures import ros_env
from ros_node_fixtures import make_policy, make_reward_checkpoint, python, start_node, stop_nodes

pytestmark = [pytest.mark.ros, pytest.mark.slow]

PROBE = r"""
import json, sys, time
import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rlhf_msgs.msg import PolicyUpdate
from rlhf_msgs.srv import Train
from rlhf_nodes.msg_dict import message_to_dict
rclpy.init()
n = Node("probe")
ups = []
n.create_subscription(PolicyUpdate, "/policy/update", ups.append, QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
cli = n.create_client(Train, "/ppo_learner_node/train")
assert cli.wait_for_service(90), "no /ppo_learner_node/train"
f = cli.call_async(Train.Request(iterations=2))
rclpy.spin_until_future_complete(n, f, timeout_sec=120)
t = time.monotonic()
while not ups and time.monotonic() - t < 10:
    rclpy.spin_once(n, timeout_sec=0.1)
json.dump({"train": message_to_dict(f.result()), "update": message_to_dict(ups[-1]) if ups else None},
          open(sys.argv[1], "w"))
"""


def test_learner_trains_on_its_own_sims_and_publishes_the_head(tmp_path, ros_domain_id):
    logs = tmp_path / "logs"
    logs.mkdir()
    env = ros_env(ros_domain_id, tmp_path / "ros_log")
    policy = make_policy().save(tmp_path / "policy")
    reward = make_reward_checkpoint(tmp_path / "reward")
    learner = start_node("ppo_learner_node", env, logs, {
        "mode": "sim", "policy_path": str(policy), "reward_checkpoint": str(reward), "out_dir": str(tmp_path / "out"),
        "image_size": 32, "ppo.num_envs": 1, "ppo.vector_mode": "sync", "ppo.episodes_per_iter": 2,
        "ppo.max_episode_steps": 6,
    })
    out = tmp_path / "probe.json"
    try:
        probe = subprocess.run([python(), "-c", PROBE, str(out)], env=env, timeout=240, capture_output=True, text=True)
    finally:
        codes = stop_nodes([learner])
    assert probe.returncode == 0, (probe.stderr[-2000:], (logs / "ppo_learner_node.log").read_text()[-2000:])
    r = json.loads(out.read_text())
    assert r["train"]["success"] and r["train"]["version"] == "ppo:iter2", r["train"]["message"]
    up = r["update"]
    assert up["version"] == "ppo:iter2" and up["iteration"] == 2 and up["base_version"].startswith("bc:")
    head = Path(up["head_checkpoint_uri"].removeprefix("file://"))
    assert hashlib.sha256((head / "head.pt").read_bytes()).hexdigest() == up["head_sha256"]
    assert up["mean_gold_return"] == up["mean_gold_return"]  # sim mode knows the gold return (not NaN)
    assert codes == {"ppo_learner_node": 0}
