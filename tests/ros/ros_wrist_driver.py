"""The wrist-camera test's driver, run as its own process, against sim_node (wrist camera on, its
frames on a side topic), policy_node (running a policy trained with a wrist camera, commanding the
sim directly) and recorder_node (recording the side topic's frames).

1. Watch the sim's topics: scene and wrist frames with their camera infos.
2. While no frame reaches the policy's wrist topic, the policy must hold: no command, its log
   showing stale-observation skips and no failed tick.
3. Relay the sim's wrist frames onto the policy's wrist topic: commands must start.
4. Record a short episode while the policy drives the sim.
Writes a JSON report of what it saw; the test asserts on it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rlhf_msgs.srv import EndEpisode, StartEpisode
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float64MultiArray, String

from rlhf_nodes.graph_client import GraphClient

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
SIM_WRIST = "/sim_wrist/image_raw"
SIM_WRIST_INFO = "/sim_wrist/camera_info"


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


class Driver(GraphClient):
    def __init__(self) -> None:
        super().__init__("wrist_driver")
        self.scene: dict[int, bytes] = {}  # stamp -> frame bytes
        self.scene_count = 0  # the waiting sim republishes one stamped observation: count messages too
        self.wrist: list[Image] = []
        self.wrist_info: list[CameraInfo] = []
        self.commands: list[float] = []  # monotonic arrival times
        self.status: list[dict] = []
        self.relay = False
        self.relayed = 0
        self.pub_wrist = self.create_publisher(Image, "/wrist_camera/color/image_raw", qos_profile_sensor_data)
        self.create_subscription(Image, "/camera/color/image_raw", self.scene_callback, qos_profile_sensor_data)
        self.create_subscription(Image, SIM_WRIST, self.wrist_callback, qos_profile_sensor_data)
        self.create_subscription(CameraInfo, SIM_WRIST_INFO, self.wrist_info.append, qos_profile_sensor_data)
        self.create_subscription(Float64MultiArray, "/forward_position_controller/commands",
                                 lambda m: self.commands.append(time.monotonic()), RELIABLE)
        self.create_subscription(String, "/policy/status", lambda m: self.status.append(json.loads(m.data)), RELIABLE)

    def scene_callback(self, msg: Image) -> None:
        self.scene[_stamp(msg)] = bytes(msg.data)
        self.scene_count += 1

    def wrist_callback(self, msg: Image) -> None:
        self.wrist.append(msg)
        if self.relay:
            self.pub_wrist.publish(msg)
            self.relayed += 1


def main() -> int:
    report_path, policy_log, timeout = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
    rclpy.init()
    node = Driver()
    report: dict = {"stage": "start"}

    def log() -> str:
        return policy_log.read_text(errors="replace") if policy_log.exists() else ""

    try:
        # 1. the sim publishes both cameras, and the policy node ticks (its startup line comes just
        #    before its control loop starts)
        if not node.spin_until(lambda: len(node.wrist) >= 5 and len(node.wrist_info) >= 1 and node.scene_count >= 5, timeout):
            raise TimeoutError(f"sim frames: {node.scene_count} scene, {len(node.wrist)} wrist, {len(node.wrist_info)} infos")
        if not node.spin_until(lambda: "policy_node: " in log(), timeout):
            raise TimeoutError("policy_node did not start")
        report["stage"] = "sim_frames"
        first = node.wrist[0]
        info = node.wrist_info[0]
        same_stamp = [w for w in node.wrist if _stamp(w) in node.scene]
        report["wrist"] = {
            "count": len(node.wrist), "height": first.height, "width": first.width, "encoding": first.encoding,
            "frame_id": first.header.frame_id, "stamps_shared_with_scene": len(same_stamp),
            "differs_from_scene": all(bytes(w.data) != node.scene[_stamp(w)] for w in same_stamp),
            "nonblank": bool(np.frombuffer(bytes(first.data), np.uint8).std() > 0),
        }
        report["wrist_info"] = {"height": info.height, "width": info.width, "frame_id": info.header.frame_id,
                                "fx": float(info.k[0])}
        # 2. no wrist frame on the policy's topic: it holds
        n0 = len(node.commands)
        node.spin_until(lambda: False, 3.0)
        node.spin_until(lambda: "(stale; 10 so far)" in log(), timeout)
        report["hold"] = {"commands": len(node.commands) - n0, "stale_logged": "(stale; 10 so far)" in log(),
                          "errors_logged": "(error;" in log()}
        report["stage"] = "held"
        # 3. the wrist frames reach it: it acts
        node.relay = True
        n0 = len(node.commands)
        node.spin_until(lambda: len(node.commands) - n0 >= 5, timeout)
        report["act"] = {"commands": len(node.commands) - n0, "relayed": node.relayed,
                         "versions": sorted({s["version"] for s in node.status})}
        report["stage"] = "acted"
        # 4. an episode recorded while it drives the sim
        start = node.call(StartEpisode, "/recorder_node/start_episode", StartEpisode.Request(task="reach"), timeout)
        node.spin_until(lambda: False, 2.0)
        end = node.call(EndEpisode, "/recorder_node/end_episode", EndEpisode.Request(episode_id=start.episode_id), timeout)
        report["record"] = {"success": bool(end.success), "message": end.message, "bag_uri": end.info.bag_uri,
                            "num_steps": int(end.info.num_steps)}
        report["stage"] = "done"
    except Exception as e:  # noqa: BLE001 - the report says where it stopped
        report["error"] = f"{type(e).__name__}: {e}"
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
