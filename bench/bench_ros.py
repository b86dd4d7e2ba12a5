"""ROS graph benchmark: does policy_node hold its control rate with camera frames between processes?

Starts sim_node (PyBullet, 128x128 camera), safety_node and policy_node (a default-size VLAPolicy)
as separate processes over FastDDS on loopback, lets the loop run, and prints from policy_node's
per-tick status: achieved control rate, tick-interval jitter (|interval - period|, p50/p99),
inference time and observation age; from the probe: the rate the sim publishes frames and the
rate filtered commands reach the arm topic. Side by side in one run: forward and trajectory command
interfaces on policy_node's steady-clock tick thread, and forward on a ROS timer (`tick_source`).

    scripts/with_env.sh python bench/bench_ros.py [--seconds 20] [--hz 20] [--image-size 128]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / "ros2_ws" / "install" / "rlhf_nodes" / "lib" / "rlhf_nodes"
PROBE = r'''
import json, sys, time
import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String, Float64MultiArray
from sensor_msgs.msg import Image
from trajectory_msgs.msg import JointTrajectory
out, seconds, warmup = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rclpy.init()
n = Node("bench_probe")
rel = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
status, frames, cmds = [], [], []
n.create_subscription(String, "/policy/status", lambda m: status.append(json.loads(m.data)), rel)
n.create_subscription(Image, "/camera/color/image_raw", lambda m: frames.append(time.monotonic()), qos_profile_sensor_data)
n.create_subscription(Float64MultiArray, "/forward_position_controller/commands", lambda m: cmds.append(time.monotonic()), rel)
n.create_subscription(JointTrajectory, "/arm_controller/joint_trajectory", lambda m: cmds.append(time.monotonic()), rel)
deadline = time.monotonic() + 120
while len(status) < 5 and time.monotonic() < deadline:
    rclpy.spin_once(n, timeout_sec=0.05)
t_end = time.monotonic() + warmup
while time.monotonic() < t_end:
    rclpy.spin_once(n, timeout_sec=0.01)
status.clear(); frames.clear(); cmds.clear()
t0 = time.monotonic()
while time.monotonic() < t0 + seconds:
    rclpy.spin_once(n, timeout_sec=0.01)
json.dump({"status": status, "frames": frames, "cmds": cmds, "t0": t0, "t1": time.monotonic()}, open(out, "w"))
'''


def make_policy_checkpoint(path: Path) -> Path:
    """A default-size VLAPolicy (random weights) with every reach instruction's embedding cached."""
    import torch

    from rlhf.policy.config import PolicyConfig
    from rlhf.policy.instruction_encoder import InstructionEncoder, hashed_embed_fn
    from rlhf.policy.vla import VLAPolicy
    from sim.tasks import PALETTE

    torch.manual_seed(0)
    enc = InstructionEncoder(hashed_embed_fn())
    enc.encode([f"move the gripper to the {c} ball" for c in PALETTE])
    return VLAPolicy(PolicyConfig(), instruction_encoder=enc).save(path)


def start(name: str, params: dict, env: dict, log_dir: Path) -> subprocess.Popen:
    cmd = [str(BIN / name), "--ros-args"]
    for k, v in params.items():
        cmd += ["-p", f"{k}:={v}"]
    return subprocess.Popen(cmd, env=env, stdout=open(log_dir / f"{name}.log", "w"), stderr=subprocess.STDOUT)


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def run_case(interface: str, tick_source: str, args, policy: Path, work: Path, domain: int) -> dict:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_LOG_DIR=str(work / "ros_log"))
    logs = work / f"logs_{interface}_{tick_source}"
    logs.mkdir(parents=True, exist_ok=True)
    period = 1.0 / args.hz
    procs = [
        start("sim_node", {"sim.task": "reach", "sim.image_size": args.image_size, "sim.control_hz": args.hz,
                           "sim.max_joint_delta": 0.075}, env, logs),
        start("safety_node", {"safety.control_period_s": period}, env, logs),
        start("policy_node", {"policy_path": str(policy), "control_hz": args.hz, "command_interface": interface,
                              "max_obs_age_s": 0.25, "tick_source": tick_source}, env, logs),
    ]
    out = work / f"probe_{interface}_{tick_source}.json"
    try:
        subprocess.run([sys.executable, "-c", PROBE, str(out), str(args.seconds), "2.0"], env=env, timeout=300,
                       check=True)
    finally:
        stop(procs)
    r = json.loads(out.read_text())
    ticks = [s for s in r["status"]]
    t = np.array([s["t"] for s in ticks])
    tick_no = np.array([s["tick"] for s in ticks])
    intervals = np.diff(t)
    jitter_ms = 1e3 * np.abs(intervals - period)
    span = r["t1"] - r["t0"]
    return {
        "interface": interface,
        "tick_source": tick_source,
        "ticks": len(ticks),
        "rate_hz": (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 else float("nan"),
        # rcl skips periods a late timer missed (it never fires twice to catch up): count them from time.
        "skipped_periods": int(np.sum(np.maximum(np.round(intervals / period) - 1, 0))),
        "unpublished_ticks": int(np.sum(np.diff(tick_no) - 1)) if len(tick_no) > 1 else 0,
        "jitter_p50_ms": float(np.percentile(jitter_ms, 50)),
        "jitter_p99_ms": float(np.percentile(jitter_ms, 99)),
        "interval_max_ms": float(1e3 * intervals.max()),
        "infer_p50_ms": float(np.percentile([s["infer_ms"] for s in ticks], 50)),
        "infer_p99_ms": float(np.percentile([s["infer_ms"] for s in ticks], 99)),
        "obs_age_p50_ms": float(np.percentile([s["obs_age_ms"] for s in ticks], 50)),
        "obs_age_p99_ms": float(np.percentile([s["obs_age_ms"] for s in ticks], 99)),
        "frames_hz": len(r["frames"]) / span,
        "arm_commands_hz": len(r["cmds"]) / span,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per case")
    ap.add_argument("--hz", type=float, default=20.0, help="control rate of sim and policy")
    ap.add_argument("--image-size", type=int, default=128, help="camera frame size (square)")
    args = ap.parse_args()
    if not (BIN / "policy_node").exists():
        print("build ros2_ws first (make setup)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench_ros_") as tmp:
        work = Path(tmp)
        policy = make_policy_checkpoint(work / "policy")
        domain = 150 + os.getpid() % 60
        cases = (("forward", "steady"), ("trajectory", "steady"), ("forward", "ros_timer"))
        rows = [run_case(i, src, args, policy, work, domain + k) for k, (i, src) in enumerate(cases)]
    print(f"policy loop at {args.hz:g} Hz, {args.image_size}x{args.image_size} rgb8 frames between processes, "
          f"{args.seconds:g} s measured per case, {os.cpu_count()} CPUs")
    cols = ["interface", "tick_source", "ticks", "rate_hz", "skipped_periods", "unpublished_ticks", "jitter_p50_ms", "jitter_p99_ms", "interval_max_ms",
            "infer_p50_ms", "infer_p99_ms", "obs_age_p50_ms", "obs_age_p99_ms", "frames_hz", "arm_commands_hz"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    steady, timer = rows[0], rows[2]
    print(f"tick jitter p99, ROS timer / steady-clock thread (forward, same run): "
          f"{timer['jitter_p99_ms'] / max(steady['jitter_p99_ms'], 1e-9):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
