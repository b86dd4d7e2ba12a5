"""safety_node: the safety filter (rlhf.safety) in the command path between any policy and the arm.

Raw commands in (Float64MultiArray absolute targets [7 joints, optional gripper], or
JointTrajectory) -> filtered commands out on the arm's controller topics. Joint states feed the
filter's measured position and watchdog; camera frames feed the watchdog too (`watch_image`).
`~/emergency_stop` (rlhf_msgs/EmergencyStop) engages or releases the e-stop: while engaged nothing
is sent. Every clip, hold and refusal is counted; counts are logged and published on
/safety/status each `status_period_s`.

The filter runs on the steady (monotonic) clock, not ROS time: a watchdog must fire even when a
simulator's /clock stops.
"""

from __future__ import annotations

import json
import time

import numpy as np
from rclpy.node import Node
from rlhf_msgs.srv import EmergencyStop
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from rlhf.constants import GRIPPER_JOINT_NAMES
from rlhf.safety import SafetyFilter
from rlhf_nodes import qos
from rlhf_nodes.convert import FINGER_MAX, duration_to_s, forward_message, joint_state_arrays, s_to_duration
from rlhf_nodes.params import declare_node_configs
from rlhf_nodes.runner import run


class SafetyNode(Node):
    def __init__(self) -> None:
        super().__init__("safety_node")
        self.cfg, self.safety_cfg = declare_node_configs(self, "safety_node")
        watch = ("joint_states", "image") if self.cfg.watch_image else ("joint_states",)
        self.filter = SafetyFilter(self.safety_cfg, watch=watch)
        self.joint_names = self.safety_cfg.joint_names
        self._logged: dict[str, int] = {}
        self.pub_forward = self.create_publisher(Float64MultiArray, self.cfg.forward_output_topic, qos.RELIABLE)
        self.pub_traj = self.create_publisher(JointTrajectory, self.cfg.trajectory_output_topic, qos.RELIABLE)
        self.pub_status = self.create_publisher(String, self.cfg.status_topic, qos.RELIABLE)
        self.create_subscription(JointState, self.cfg.joint_states_topic, self.joint_states_callback, qos.SENSOR)
        if self.cfg.watch_image:
            self.create_subscription(Image, self.cfg.image_topic, self.image_callback, qos.SENSOR)
        self.create_subscription(Float64MultiArray, self.cfg.forward_input_topic, self.forward_callback, qos.RELIABLE)
        self.create_subscription(JointTrajectory, self.cfg.trajectory_input_topic, self.trajectory_callback, qos.RELIABLE)
        self.create_service(EmergencyStop, "~/emergency_stop", self.estop_callback)
        self.create_timer(self.cfg.status_period_s, self.status_callback)
        lim = self.filter.limits
        self.get_logger().info(
            f"safety_node: {self.cfg.forward_input_topic} -> {self.cfg.forward_output_topic}, "
            f"{self.cfg.trajectory_input_topic} -> {self.cfg.trajectory_output_topic}; "
            f"limits lower {np.round(lim.lower, 3).tolist()} upper {np.round(lim.upper, 3).tolist()} "
            f"velocity {np.round(lim.velocity, 3).tolist()} rad/s; watchdog {self.safety_cfg.watchdog_timeout_s}s on {watch}"
        )

    # ------------------------------------------------------------------ inputs
    def joint_states_callback(self, msg: JointState) -> None:
        arrays = joint_state_arrays(msg, self.joint_names)
        if arrays is not None:
            self.filter.observe(arrays[0], time.monotonic())

    def image_callback(self, _msg: Image) -> None:
        self.filter.heartbeat("image", time.monotonic())

    def forward_callback(self, msg: Float64MultiArray) -> None:
        data = np.asarray(msg.data, dtype=np.float64)
        n = len(self.joint_names)
        positions, gripper = (data[:n], float(data[n])) if data.shape[0] == n + 1 else (data, None)
        res = self.filter.filter(positions, gripper, time.monotonic())
        if res.send:
            self.pub_forward.publish(forward_message(res.positions, res.gripper))

    def trajectory_callback(self, msg: JointTrajectory) -> None:
        index = {name: i for i, name in enumerate(msg.joint_names)}
        now = time.monotonic()
        if any(n not in index for n in self.joint_names) or not msg.points:
            times, points = [], []  # refused by the filter (and counted) as a bad trajectory
        else:
            idx = [index[n] for n in self.joint_names]
            times = [duration_to_s(p.time_from_start) for p in msg.points]
            points = [
                [p.positions[i] if i < len(p.positions) else float("nan") for i in idx] for p in msg.points
            ]
        res, filtered = self.filter.filter_trajectory(times, points, None, now)
        if not filtered:
            return
        fingers = [index[n] for n in GRIPPER_JOINT_NAMES if n in index] if res.status != "refused" else []
        out = JointTrajectory()
        out.joint_names = list(self.joint_names) + [msg.joint_names[i] for i in fingers]
        for k, p in enumerate(filtered):
            pt = JointTrajectoryPoint()
            finger_pos = []
            if fingers and k < len(msg.points):
                src = msg.points[k].positions
                finger_pos = [
                    float(np.clip(src[i], 0.0, FINGER_MAX)) if i < len(src) and np.isfinite(src[i]) else FINGER_MAX
                    for i in fingers
                ]
            pt.positions = [float(v) for v in p.positions] + finger_pos
            pt.velocities = [float(v) for v in p.velocities] + [0.0] * len(finger_pos)
            pt.time_from_start = s_to_duration(p.time_from_start)
            out.points.append(pt)
        self.pub_traj.publish(out)

    # ------------------------------------------------------------------ e-stop and status
    def estop_callback(self, request: EmergencyStop.Request, response: EmergencyStop.Response) -> EmergencyStop.Response:
        was = self.filter.estop_engaged
        if request.engage:
            self.filter.engage_estop(time.monotonic(), request.reason)
            self.get_logger().error(f"EMERGENCY STOP engaged: {request.reason or '(no reason given)'}")
        else:
            self.filter.release_estop(time.monotonic(), request.reason)
            self.get_logger().warn(f"emergency stop released: {request.reason or '(no reason given)'}")
        response.engaged = self.filter.estop_engaged
        response.success = True
        response.message = f"e-stop {'engaged' if response.engaged else 'released'} (was {'engaged' if was else 'released'})"
        self.status_callback()
        return response

    def status_callback(self) -> None:
        summary = self.filter.summary()
        counts = summary["counts"]
        new = {k: v - self._logged.get(k, 0) for k, v in counts.items() if v != self._logged.get(k, 0)}
        bad = {k: v for k, v in new.items() if ":" in k or k == "estop"}
        if bad:
            self.get_logger().warn(
                "commands clipped/held/refused since last report: "
                + ", ".join(f"{k}={v}" for k, v in sorted(bad.items()))
            )
        self._logged = dict(counts)
        summary["stale"] = self.filter.stale_streams(time.monotonic())
        self.pub_status.publish(String(data=json.dumps(summary)))


def main(args=None) -> None:
    run(SafetyNode, args)


if __name__ == "__main__":
    main()
