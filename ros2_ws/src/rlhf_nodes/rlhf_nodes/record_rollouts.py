"""Record policy rollouts through the real ROS graph: sim_node -> policy_node -> safety_node -> recorder_node.

    ros2 run rlhf_nodes record_rollouts --policy bc/policy --store episodes --task reach --seeds 1,2,3

Starts the four nodes as their own processes (the same executables `sim.launch.py` starts), then for
each seed: `/sim_node/reset` -> `/recorder_node/start_episode` from the reset's stamp (the recorder's
pre-roll holds the steps the policy took meanwhile, so the episode starts at its first step) -> let
policy_node drive the arm until the sim reports the episode terminated (success) or truncated (time
limit) -> `/recorder_node/end_episode`.
Every episode lands in the episode store (MCAP bag + video + index row) exactly as a real arm's would.
Prints one JSON line per episode and writes a JSON report (`--report`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import rclpy
from ament_index_python.packages import get_package_prefix
from rlhf_msgs.srv import EndEpisode, ResetSim, StartEpisode
from std_msgs.msg import String

from rlhf_nodes import qos
from rlhf_nodes.graph_client import GraphClient
from rlhf_nodes.msg_dict import message_to_dict
from rlhf_nodes.processes import stop_processes


def _node_cmd(name: str, params: dict) -> list[str]:
    exe = Path(get_package_prefix("rlhf_nodes")) / "lib" / "rlhf_nodes" / name
    cmd = [str(exe), "--ros-args"]
    for key, value in params.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        cmd += ["-p", f"{key}:={value}"]
    return cmd


class Driver(GraphClient):
    """Calls the services and watches the sim's status topic for the end of each episode."""

    def __init__(self) -> None:
        super().__init__("record_rollouts")
        self.sim_status: list[dict] = []
        self.policy_ticks = 0
        self.create_subscription(String, "/sim_node/status", self.status_callback, qos.RELIABLE)
        self.create_subscription(String, "/policy/status", self.policy_status_callback, qos.RELIABLE)

    def status_callback(self, msg: String) -> None:
        self.sim_status.append(json.loads(msg.data))

    def policy_status_callback(self, msg: String) -> None:
        # policy_node publishes a status only on ticks where it sent a command.
        self.policy_ticks += 1

    def wait_for_commands(self, n: int, timeout: float) -> None:
        start = self.policy_ticks
        if not self.spin_until(lambda: self.policy_ticks >= start + n, timeout):
            raise TimeoutError(f"policy_node sent no commands within {timeout:.0f} s (see its log)")


def record(args: argparse.Namespace) -> dict:
    period = 1.0 / args.control_hz
    params = {
        "sim_node": {
            "sim.task": args.task, "sim.image_size": args.image_size, "sim.control_hz": args.control_hz,
            "sim.max_joint_delta": args.max_joint_delta, "seed": args.seeds[0],
        },
        "safety_node": {"safety.control_period_s": period},
        "policy_node": {"policy_path": args.policy, "control_hz": args.control_hz,
                        "deterministic": not args.stochastic, **({"head_path": args.head} if args.head else {})},
        "recorder_node": {"store_root": args.store, "control_period_s": period},
    }
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for name, p in params.items():
        log = open(log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed below
        procs.append((name, subprocess.Popen(_node_cmd(name, p), stdout=log, stderr=subprocess.STDOUT), log))
    report: dict = {"episodes": [], "errors": []}
    rclpy.init()
    driver = Driver()
    try:
        # Warm up: the policy loads (and may embed a new instruction) before it sends its first command;
        # no episode is recorded until commands flow.
        driver.call(ResetSim, "/sim_node/reset", ResetSim.Request(task=args.task, seed=args.seeds[0]), args.timeout)
        driver.wait_for_commands(3, 3 * args.timeout)
        for i, seed in enumerate(args.seeds):
            t0 = time.monotonic()
            reset = driver.call(ResetSim, "/sim_node/reset", ResetSim.Request(task=args.task, seed=seed), args.timeout)
            if not reset.success:
                raise RuntimeError(f"reset failed: {reset.message}")
            start = driver.call(StartEpisode, "/recorder_node/start_episode", StartEpisode.Request(
                task=args.task, instruction=reset.instruction, policy_version=args.policy_version,
                start_stamp=reset.stamp), args.timeout)
            if not start.success:
                raise RuntimeError(f"start_episode failed: {start.message}")
            n0 = len(driver.sim_status)
            done = driver.spin_until(
                lambda n0=n0: any(s.get("terminated") or s.get("truncated") for s in driver.sim_status[n0:]),
                args.episode_timeout,
            )
            last = next((s for s in reversed(driver.sim_status[n0:]) if s.get("terminated") or s.get("truncated")), {})
            end = driver.call(EndEpisode, "/recorder_node/end_episode", EndEpisode.Request(
                episode_id=start.episode_id, success_known=bool(last), success=bool(last.get("success", False))),
                args.timeout)
            if not end.success:
                report["errors"].append(f"seed {seed}: end_episode failed: {end.message}")
                continue
            row = {
                "seed": seed, "episode_id": end.info.episode_id, "steps": end.info.num_steps,
                "success": bool(last.get("success", False)), "ended_by_sim": done,
                "wall_s": round(time.monotonic() - t0, 2), "bag_uri": end.info.bag_uri,
            }
            report["episodes"].append(row)
            print(json.dumps(row), flush=True)
            if i == 0:
                report["first_info"] = message_to_dict(end.info)
    finally:
        driver.destroy_node()
        rclpy.shutdown()
        report["exit_codes"] = stop_processes([(name, p) for name, p, _ in procs])
        for _, _, log in procs:
            log.close()
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True, help="policy checkpoint folder")
    ap.add_argument("--head", default="", help="optional head-only checkpoint loaded on top")
    ap.add_argument("--policy-version", default="", help="version recorded with each episode")
    ap.add_argument("--store", required=True, help="episode store folder")
    ap.add_argument("--stochastic", action="store_true",
                    help="policy_node samples from its Gaussian (two rollouts from one seed then differ)")
    ap.add_argument("--task", default="reach")
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], required=True, help="comma list")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--control-hz", type=float, default=10.0)
    ap.add_argument("--max-joint-delta", type=float, default=0.15)
    ap.add_argument("--timeout", type=float, default=60.0, help="per service call / node start, s")
    ap.add_argument("--episode-timeout", type=float, default=60.0, help="longest an episode may run, s")
    ap.add_argument("--log-dir", default="record_logs")
    ap.add_argument("--report", default="", help="write the JSON report here")
    args = ap.parse_args(argv)
    if not args.seeds:
        ap.error("--seeds needs at least one seed")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv if argv is not None else sys.argv[1:])
    # ROS arguments (--ros-args ...) are not ours; keep DDS traffic on this machine unless told otherwise.
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    report = record(args)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(report, indent=1))
    bad = report["errors"] or any(code not in (0, None) for code in report.get("exit_codes", {}).values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
