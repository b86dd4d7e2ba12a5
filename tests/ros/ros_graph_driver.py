"""The integration test's driver, run as its own process: drives one episode through the whole graph.

reset the sim -> start recording -> let policy_node drive the arm -> end recording -> wait for the
reward score -> wait for the learner's PolicyUpdate -> watch policy_node switch to the new head.
Writes a JSON report of everything it saw; the test asserts on it.
"""

from __future__ import annotations

import json
import sys
import time

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rlhf_msgs.msg import EpisodeInfo, PolicyUpdate, RewardScore
from rlhf_msgs.srv import EmergencyStop, EndEpisode, LoadPolicy, ResetSim, ScoreEpisode, StartEpisode, Train
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from rlhf_nodes.graph_client import GraphClient
from rlhf_nodes.msg_dict import message_to_dict

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class Driver(GraphClient):
    def __init__(self) -> None:
        super().__init__("graph_driver")
        self.status: list[dict] = []
        self.arm_commands: list[dict] = []
        self.infos: list[EpisodeInfo] = []
        self.scores: list[RewardScore] = []
        self.updates: list[PolicyUpdate] = []
        self.create_subscription(String, "/policy/status", lambda m: self.status.append(json.loads(m.data)), RELIABLE)
        self.create_subscription(JointTrajectory, "/arm_controller/joint_trajectory", self.command_callback, RELIABLE)
        self.create_subscription(EpisodeInfo, "/episodes/recorded", self.infos.append, RELIABLE)
        self.create_subscription(RewardScore, "/episodes/reward", self.scores.append, RELIABLE)
        self.create_subscription(PolicyUpdate, "/policy/update", self.updates.append, LATCHED)

    def command_callback(self, msg: JointTrajectory) -> None:
        self.arm_commands.append({
            "t": time.monotonic(), "n_points": len(msg.points),
            "positions": [list(p.positions) for p in msg.points],
            "velocities": [list(p.velocities) for p in msg.points],
            "times": [p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in msg.points],
        })


def main() -> int:
    report_path, episode_s, timeout = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    rclpy.init()
    node = Driver()
    report: dict = {"stage": "start"}
    try:
        # 1. every node is up (its services exist) and the policy is running (its status ticks)
        for name, srv in (("/sim_node/reset", ResetSim), ("/recorder_node/start_episode", StartEpisode),
                          ("/reward_node/score_episode", ScoreEpisode), ("/ppo_learner_node/train", Train),
                          ("/safety_node/emergency_stop", EmergencyStop), ("/policy_node/load_policy", LoadPolicy)):
            if not node.create_client(srv, name).wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"{name} did not appear")
        report["policy_ticking"] = node.spin_until(lambda: len(node.status) >= 3, timeout)
        bad = node.call(ResetSim, "/sim_node/reset", ResetSim.Request(task="fly", seed=3), timeout)
        report["bad_reset"] = message_to_dict(bad)
        reset = node.call(ResetSim, "/sim_node/reset", ResetSim.Request(task="reach", seed=3), timeout)
        report["reset"] = message_to_dict(reset)
        # The policy drives the new episode for a second before the recording is asked for; the
        # recorder's pre-roll still starts the episode at the reset's first observation.
        node.spin_until(lambda: False, 1.0)
        # 2. one recorded episode
        start = node.call(StartEpisode, "/recorder_node/start_episode",
                          StartEpisode.Request(task="reach", instruction=reset.instruction, start_stamp=reset.stamp),
                          timeout)
        report["start"] = message_to_dict(start)
        report["stage"] = "recording"
        n0 = len(node.arm_commands)
        node.spin_until(lambda: False, episode_s)
        report["commands_during_episode"] = len(node.arm_commands) - n0
        end = node.call(EndEpisode, "/recorder_node/end_episode",
                        EndEpisode.Request(episode_id=start.episode_id, success_known=True, success=False), timeout)
        report["end"] = message_to_dict(end)
        if not end.success:
            raise RuntimeError(f"end_episode failed: {end.message}")
        report["stage"] = "recorded"
        # 3. scored, 4. a new head, 5. the policy runs it
        report["info_published"] = node.spin_until(lambda: any(i.episode_id == start.episode_id for i in node.infos), timeout)
        if not node.spin_until(lambda: any(s.episode_id == start.episode_id for s in node.scores), timeout):
            raise TimeoutError("no RewardScore")
        report["score"] = next((message_to_dict(s) for s in node.scores if s.episode_id == start.episode_id), None)
        by_id = node.call(ScoreEpisode, "/reward_node/score_episode", ScoreEpisode.Request(episode_id=start.episode_id),
                          timeout)
        by_bag = node.call(ScoreEpisode, "/reward_node/score_episode", ScoreEpisode.Request(bag_uri=end.info.bag_uri),
                           timeout)
        missing = node.call(ScoreEpisode, "/reward_node/score_episode", ScoreEpisode.Request(episode_id="nope"), timeout)
        report["score_service"] = {"by_id": message_to_dict(by_id), "by_bag": message_to_dict(by_bag),
                                   "missing": message_to_dict(missing)}
        report["stage"] = "scored"
        if not node.spin_until(lambda: bool(node.updates), timeout):
            raise TimeoutError("no PolicyUpdate")
        report["update"] = message_to_dict(node.updates[-1]) if node.updates else None
        report["stage"] = "updated"
        if node.updates:
            version = node.updates[-1].version
            t_update = time.monotonic()
            if not node.spin_until(lambda: sum(s["version"] == version for s in node.status) >= 5, timeout):
                raise TimeoutError(f"policy_node never ran {version}")
            report["commands_after_update"] = sum(c["t"] > t_update for c in node.arm_commands)
            # A head whose SHA-256 does not match is rejected; the running head stays.
            rejected = node.call(LoadPolicy, "/policy_node/load_policy", LoadPolicy.Request(
                checkpoint_uri=node.updates[-1].head_checkpoint_uri, head_only=True, expected_sha256="0" * 64), timeout)
            report["bad_load"] = message_to_dict(rejected)
        # policy_node's own e-stop: no command while engaged, commands again once released.
        stop = node.call(EmergencyStop, "/policy_node/emergency_stop", EmergencyStop.Request(engage=True), timeout)
        node.spin_until(lambda: False, 0.3)
        n0 = len(node.arm_commands)
        node.spin_until(lambda: False, 1.0)
        report["estop"] = {"engaged": stop.engaged, "commands_while_engaged": len(node.arm_commands) - n0}
        release = node.call(EmergencyStop, "/policy_node/emergency_stop", EmergencyStop.Request(engage=False), timeout)
        n0 = len(node.arm_commands)
        node.spin_until(lambda: len(node.arm_commands) > n0 + 2, 5.0)
        report["estop"].update(released=not release.engaged, commands_after_release=len(node.arm_commands) - n0)
        report["status"] = node.status
        report["arm_commands"] = node.arm_commands[-40:]
        report["stage"] = "done"
    except Exception as e:  # noqa: BLE001 - the report says where it stopped
        report["error"] = f"{type(e).__name__}: {e}"
        report.setdefault("status", node.status)
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
