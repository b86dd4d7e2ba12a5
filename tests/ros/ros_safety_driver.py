"""The safety test's driver, run as its own process: a 'policy' that publishes wild commands.

Phases: (1) `n` random / NaN / inf / huge / wrong-length forward commands and some wild
trajectories into safety_node while sim_node runs; every command that reaches the arm's topics is
checked against the limits; (2) the sim is frozen (SIGSTOP) so observations go stale: what comes
out must be a hold; (3) e-stop: nothing may come out until it is released.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rlhf_msgs.srv import EmergencyStop
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from rlhf.constants import ARM_JOINT_NAMES
from rlhf.safety import SafetyFilter
from rlhf.safety_config import SafetyConfig
from rlhf_nodes.convert import s_to_duration

RELIABLE = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)


def wild(rng: np.random.Generator) -> list[float]:
    kind = rng.integers(6)
    n = 8 if kind != 5 else int(rng.choice([0, 3, 7, 9, 20]))
    q = rng.uniform(-10, 10, n) * (10.0 ** rng.integers(0, 6))
    if kind == 1 and n:
        q[rng.integers(n)] = rng.choice([np.nan, np.inf, -np.inf])
    if kind == 2:
        q = rng.normal(0, 0.3, n) + np.array([0.0, -0.6, 0.0, -2.4, 0.0, 1.8, 0.785, 0.0])
    return [float(v) for v in q]


class Probe(Node):
    def __init__(self) -> None:
        super().__init__("safety_probe")
        self.out: list[tuple[float, list[float]]] = []
        self.traj_out: list[list[list[float]]] = []
        self.status: dict = {}
        self.sim_status: dict = {}
        self.clock: list[tuple[float, float]] = []  # (wall, sim) seconds
        self.pub = self.create_publisher(Float64MultiArray, "/safety/forward_position_commands", RELIABLE)
        self.pub_traj = self.create_publisher(JointTrajectory, "/safety/joint_trajectory", RELIABLE)
        self.create_subscription(Float64MultiArray, "/forward_position_controller/commands",
                                 lambda m: self.out.append((time.monotonic(), list(m.data))), RELIABLE)
        self.create_subscription(JointTrajectory, "/arm_controller/joint_trajectory",
                                 lambda m: self.traj_out.append([list(p.positions) for p in m.points]), RELIABLE)
        self.create_subscription(String, "/safety/status", lambda m: setattr(self, "status", json.loads(m.data)), RELIABLE)
        self.create_subscription(
            Clock, "/clock", lambda m: self.clock.append((time.monotonic(), m.clock.sec + 1e-9 * m.clock.nanosec)), 100)
        self.create_subscription(String, "/sim_node/status", lambda m: setattr(self, "sim_status", json.loads(m.data)),
                                 RELIABLE)

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            rclpy.spin_once(self, timeout_sec=0.01)

    def estop(self, engage: bool) -> bool:
        cli = self.create_client(EmergencyStop, "/safety_node/emergency_stop")
        cli.wait_for_service(timeout_sec=30)
        fut = cli.call_async(EmergencyStop.Request(engage=engage, reason="test"))
        rclpy.spin_until_future_complete(self, fut, timeout_sec=10)
        return bool(fut.result() and fut.result().engaged)


def main() -> int:
    report_path, n, sim_pid, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    rclpy.init()
    node = Probe()
    rng = np.random.default_rng(0)
    report: dict = {}
    cfg = SafetyConfig()
    lim = SafetyFilter(cfg).limits
    # Wait until safety_node passes commands (it needs joint states and images first).
    deadline = time.monotonic() + 60
    while not node.out and time.monotonic() < deadline:
        node.pub.publish(Float64MultiArray(data=wild(rng)))
        node.pump(0.05)
    # 1. wild commands and trajectories
    t0 = time.monotonic()
    for i in range(n):
        # Paced so safety_node (KEEP_LAST 10, as commands should be) takes every one of them.
        while time.monotonic() < t0 + i / rate:
            rclpy.spin_once(node, timeout_sec=0.0)
        node.pub.publish(Float64MultiArray(data=wild(rng)))
        if i % 20 == 0:
            msg = JointTrajectory(joint_names=list(ARM_JOINT_NAMES))
            for k in range(3):
                pos = rng.uniform(-50, 50, 7)
                if rng.random() < 0.3:
                    pos[rng.integers(7)] = np.nan
                msg.points.append(JointTrajectoryPoint(positions=[float(v) for v in pos],
                                                       time_from_start=s_to_duration(0.1 * (k + 1))))
            node.pub_traj.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.0)
    node.pump(1.0)
    report["wild_seconds"] = time.monotonic() - t0
    (w0, s0), (w1, s1) = node.clock[len(node.clock) // 10], node.clock[-1]
    report["sim_seconds_per_wall_second"] = (s1 - s0) / (w1 - w0)
    violations = []
    prev = None
    for _, data in node.out:
        a = np.asarray(data)
        q = a[:7]
        if a.shape[0] not in (7, 8) or not np.all(np.isfinite(a)):
            violations.append(f"malformed {data}")
            continue
        if np.any(q < lim.lower - 1e-12) or np.any(q > lim.upper + 1e-12):
            violations.append(f"position {q}")
        if a.shape[0] == 8 and not -1.0 <= a[7] <= 1.0:
            violations.append(f"gripper {a[7]}")
        if prev is not None and np.any(np.abs(q - prev) > lim.velocity * cfg.control_period_s + 1e-9):
            violations.append(f"step {np.abs(q - prev)}")
        prev = q
    for pts in node.traj_out:
        for p in pts:
            q = np.asarray(p[:7])
            if not np.all(np.isfinite(q)) or np.any(q < lim.lower - 1e-12) or np.any(q > lim.upper + 1e-12):
                violations.append(f"trajectory point {p}")
    report["outputs"] = len(node.out)
    report["trajectory_outputs"] = len(node.traj_out)
    report["violations"] = violations[:20]
    report["n_violations"] = len(violations)
    report["status_after_wild"] = node.status
    report["sim_status"] = node.sim_status
    # 2. stale observations: freeze the sim
    os.kill(sim_pid, signal.SIGSTOP)
    try:
        node.pump(1.0)
        n_before = len(node.out)
        for _ in range(30):
            node.pub.publish(Float64MultiArray(data=wild(rng)))
            node.pump(0.02)
        node.pump(0.5)
        held = [d[:7] for _, d in node.out[n_before:]]
        report["stale_outputs"] = len(held)
        report["stale_all_hold"] = bool(held) and all(np.allclose(h, held[0], atol=0) for h in held)
        report["stale_hold_equals_last"] = bool(held) and np.allclose(held[0], node.out[n_before - 1][1][:7])
    finally:
        os.kill(sim_pid, signal.SIGCONT)
    node.pump(1.5)
    report["status_after_stale"] = node.status
    # 3. e-stop
    report["estop_engaged"] = node.estop(True)
    node.pump(0.3)
    n_before = len(node.out)
    for _ in range(100):
        node.pub.publish(Float64MultiArray(data=[0.0, -0.6, 0.0, -2.4, 0.0, 1.8, 0.785, 1.0]))
        node.pump(0.01)
    node.pump(0.5)
    report["estop_outputs"] = len(node.out) - n_before
    report["estop_released"] = not node.estop(False)
    node.pump(0.3)
    n_before = len(node.out)
    for _ in range(20):
        node.pub.publish(Float64MultiArray(data=[0.0, -0.6, 0.0, -2.4, 0.0, 1.8, 0.785, 1.0]))
        node.pump(0.02)
    node.pump(0.5)
    report["after_release_outputs"] = len(node.out) - n_before
    report["status_final"] = node.status
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f)
    node.destroy_node()
    rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
