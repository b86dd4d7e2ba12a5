"""policy_node: runs the VLA policy at the control rate on the latest observation.

Each tick (`control_hz`; by default on the steady clock in a thread of its own, or through a ROS
timer with `tick_source: ros_timer`, which follows /clock under use_sim_time): take the newest joint state and
camera frame (skipped, and counted, if either is older than `max_obs_age_s`; a policy trained with
a wrist camera also gets the newest hand-camera frame from `wrist_image_topic`, watched alike: none
yet or a stale one holds the arm too), ask the policy for an action (7 joint deltas + gripper),
and publish it as ABSOLUTE targets, as a ros2_control arm takes them:
- 'forward': std_msgs/Float64MultiArray [q + dq (7), gripper] (gripper optional);
- 'trajectory': a short smooth trajectory_msgs/JointTrajectory chunk: the policy's predicted chunk
  of actions accumulated from q, one point per control period, with positions, velocities (central
  differences; 0 at the last point so a late next chunk ends at rest) and time_from_start.
By default commands go to the safety filter's input topics (safety_node), not to the arm.

Hot swap: a new head (rlhf_msgs/PolicyUpdate on /policy/update) or a whole checkpoint
(`~/load_policy`) is loaded into a *copy* of the policy in another thread, checked (kind, config,
SHA-256, backbone), and swapped in by one reference assignment between ticks, so no control tick
waits for a load or is dropped. A rejected checkpoint leaves the running policy untouched.

/policy/status (std_msgs/String JSON) reports every tick: tick number, policy version, head
SHA-256, the action, the observation's age and the inference time. `~/emergency_stop` stops the
policy's own commands until released (safety_node's e-stop, further down the path, guards the arm
whatever sends commands).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rclpy.node import Node
from rlhf_msgs.msg import PolicyUpdate
from rlhf_msgs.srv import EmergencyStop, LoadPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from rlhf.constants import GRIPPER_JOINT_NAMES
from rlhf_nodes import qos
from rlhf_nodes.convert import (
    forward_message,
    gripper_to_finger,
    image_to_array,
    joint_state_arrays,
    s_to_duration,
    uri_to_path,
)
from rlhf_nodes.params import declare_node_configs
from rlhf_nodes.runner import run


@dataclass
class Running:
    """The policy in use and what identifies it; replaced as a whole on a swap."""

    policy: Any
    version: str
    head_sha256: str


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__("policy_node")
        (self.cfg,) = declare_node_configs(self, "policy_node")
        import torch

        torch.set_num_threads(self.cfg.torch_threads)
        self.running: Running | None = None
        self._load_lock = threading.Lock()  # one load at a time; ticks never take it
        self._js: tuple[float, np.ndarray, np.ndarray, float] | None = None  # t, q, qd, gripper
        self._img: tuple[float, np.ndarray] | None = None
        self._wrist: tuple[float, np.ndarray] | None = None
        self._wrist_sub = None  # created when the first policy that needs the wrist camera is loaded
        self.instruction = self.cfg.instruction
        self.tick = 0
        self.skipped: dict[str, int] = {"stale": 0, "no_policy": 0, "no_instruction": 0, "error": 0, "estop": 0}
        self.estopped = False
        self.dt = 1.0 / self.cfg.control_hz

        self.pub_forward = self.create_publisher(Float64MultiArray, self.cfg.forward_command_topic, qos.RELIABLE)
        self.pub_traj = self.create_publisher(JointTrajectory, self.cfg.trajectory_command_topic, qos.RELIABLE)
        self.pub_status = self.create_publisher(String, self.cfg.status_topic, qos.RELIABLE)
        self.create_subscription(JointState, self.cfg.joint_states_topic, self.joint_states_callback, qos.SENSOR)
        self.create_subscription(Image, self.cfg.image_topic, self.image_callback, qos.SENSOR)
        self.create_subscription(String, self.cfg.instruction_topic, self.instruction_callback, qos.LATCHED)
        self.create_subscription(PolicyUpdate, self.cfg.update_topic, self.update_callback, qos.LATCHED)
        self.create_service(LoadPolicy, "~/load_policy", self.load_policy_callback)
        self.create_service(EmergencyStop, "~/emergency_stop", self.estop_callback)

        if self.cfg.policy_path:
            ok, message = self.load(self.cfg.policy_path, head_only=False)
            if not ok:
                raise RuntimeError(f"policy_node: {message}")
            if self.cfg.head_path:
                ok, message = self.load(self.cfg.head_path, head_only=True)
                if not ok:
                    raise RuntimeError(f"policy_node: {message}")
        self._stop = threading.Event()
        self.skipped_periods = 0
        if self.cfg.tick_source == "ros_timer":
            # A ROS timer: follows /clock with use_sim_time (a sim may run faster than real time).
            self.create_timer(self.dt, self.control_callback)
            self._loop = None
        else:
            # Wall time: a thread of its own on the steady clock, with absolute deadlines, so
            # neither the executor's scheduling nor a checkpoint load can delay or drift a tick.
            self._loop = threading.Thread(target=self._control_loop, name="control-loop", daemon=True)
            self._loop.start()
        self.get_logger().info(
            f"policy_node: {self.cfg.control_hz:g} Hz, '{self.cfg.command_interface}' commands to "
            f"{self.cfg.forward_command_topic if self.cfg.command_interface == 'forward' else self.cfg.trajectory_command_topic}; "
            f"policy {self.running.version if self.running else '(none: holding)'}"
        )

    # ------------------------------------------------------------------ sensors
    def joint_states_callback(self, msg: JointState) -> None:
        arrays = joint_state_arrays(msg, self.cfg.joint_names)
        if arrays is not None:
            self._js = (time.monotonic(), *arrays)

    def image_callback(self, msg: Image) -> None:
        img = image_to_array(msg)
        if img is not None:
            self._img = (time.monotonic(), img)

    def wrist_image_callback(self, msg: Image) -> None:
        img = image_to_array(msg)
        if img is not None:
            self._wrist = (time.monotonic(), img)

    def _subscribe_wrist_camera(self) -> None:
        """Subscribe to the hand camera, once; only a policy trained with it needs its frames.

        Called before such a policy is swapped in, so its first ticks hold until a frame arrives
        (the watchdog) rather than running without one. Policies without a wrist camera never cause
        the subscription, so their node is the same as before there was one."""
        if self._wrist_sub is None:
            self._wrist_sub = self.create_subscription(
                Image, self.cfg.wrist_image_topic, self.wrist_image_callback, qos.SENSOR
            )
            self.get_logger().info(f"policy uses the wrist camera: subscribed to {self.cfg.wrist_image_topic}")

    def instruction_callback(self, msg: String) -> None:
        if msg.data and msg.data != self.instruction:
            self.instruction = msg.data
            self.get_logger().info(f"instruction: {msg.data!r}")
            running = self.running
            if running is not None:
                running.policy.reset()

    # ------------------------------------------------------------------ loading
    def load(self, uri: str, head_only: bool, expected_sha256: str = "", version: str = "") -> tuple[bool, str]:
        """Load a checkpoint into a copy of the policy and swap it in; (ok, message)."""
        from rlhf.policy.checkpoint import CheckpointError
        from rlhf.policy.vla import VLAPolicy

        path = uri_to_path(uri)
        with self._load_lock:
            t0 = time.perf_counter()
            try:
                if head_only:
                    current = self.running
                    if current is None:
                        return False, "no policy loaded to put a head on; load a full checkpoint first"
                    weights = path / json.loads((path / "head_config.json").read_text()).get("weights_file", "head.pt")
                    sha = file_sha256(weights)
                    if expected_sha256 and sha != expected_sha256.lower():
                        return False, f"{weights}: SHA-256 {sha[:12]}… differs from the expected {expected_sha256[:12]}…"
                    old = current.policy
                    new = VLAPolicy(old.config, old.normalizer, old.instruction_encoder)
                    new.load_state_dict(old.state_dict())
                    new.load_head(path)
                    new.eval()
                    version = version or f"head:{sha[:8]}"
                else:
                    header = json.loads((path / "config.json").read_text())
                    sha = file_sha256(path / header.get("weights_file", "model.pt"))
                    if expected_sha256 and sha != expected_sha256.lower():
                        return False, f"{path}: SHA-256 {sha[:12]}… differs from the expected {expected_sha256[:12]}…"
                    new = VLAPolicy.load(path, deterministic=self.cfg.deterministic)
                    new.eval()
                    version = version or f"bc:{new.version_tag()}"
            except (CheckpointError, OSError, ValueError, KeyError) as e:
                self.get_logger().error(f"checkpoint {uri} rejected, keeping {self.running.version if self.running else 'none'}: {e}")
                return False, str(e)
            head_sha = file_sha256(path / "head.pt") if head_only else _head_sha(new)
            if new.config.wrist_camera:
                self._subscribe_wrist_camera()
            self.running = Running(new, version, head_sha)  # the swap: one reference assignment
            self.get_logger().info(f"now running {version} (loaded in {1e3 * (time.perf_counter() - t0):.0f} ms)")
            return True, f"loaded {version} from {path}"

    def update_callback(self, msg: PolicyUpdate) -> None:
        if self.running is not None and self.running.version == msg.version:
            return
        self.load(msg.head_checkpoint_uri, head_only=True, expected_sha256=msg.head_sha256, version=msg.version)

    def load_policy_callback(self, request: LoadPolicy.Request, response: LoadPolicy.Response) -> LoadPolicy.Response:
        response.success, response.message = self.load(request.checkpoint_uri, request.head_only, request.expected_sha256)
        response.version = self.running.version if self.running else ""
        return response

    def estop_callback(self, request: EmergencyStop.Request, response: EmergencyStop.Response) -> EmergencyStop.Response:
        """Stop sending commands (the policy's own stop; safety_node's e-stop guards the arm itself)."""
        self.estopped = bool(request.engage)
        if self.estopped:
            self.get_logger().error(f"emergency stop: no commands until released ({request.reason or 'no reason'})")
        else:
            running = self.running
            if running is not None:
                running.policy.reset()
            self.get_logger().warn(f"emergency stop released ({request.reason or 'no reason'})")
        response.success = True
        response.engaged = self.estopped
        response.message = "engaged" if self.estopped else "released"
        return response

    # ------------------------------------------------------------------ control
    def _control_loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            next_t += self.dt
            delay = next_t - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            elif -delay > self.dt:
                # More than a period late: skip the missed periods instead of bursting to catch up.
                missed = int(-delay // self.dt)
                self.skipped_periods += missed
                next_t += missed * self.dt
            if self._stop.is_set():
                return
            try:
                self.control_callback()
            except Exception as e:  # noqa: BLE001
                if not self.context.ok():
                    return  # shutting down: publishing on an invalidated context is not a fault
                self.get_logger().error(f"tick {self.tick}: {type(e).__name__}: {e}", throttle_duration_sec=1.0)

    def close(self) -> None:
        self._stop.set()
        if self._loop is not None:
            self._loop.join(timeout=2.0)

    def control_callback(self) -> None:
        t_start = time.monotonic()
        self.tick += 1
        running = self.running  # read once: a swap during this tick takes effect at the next
        js, img, wrist = self._js, self._img, self._wrist
        if self.estopped:
            return self._skip("estop")
        if running is None:
            return self._skip("no_policy")
        # The streams this policy sees: a wrist-camera policy is as blind without its hand frame as
        # without the scene frame, so the watchdog holds on either being missing or stale.
        streams = [js, img, wrist] if running.policy.config.wrist_camera else [js, img]
        if any(x is None for x in streams):
            return self._skip("stale")
        oldest = min(x[0] for x in streams)
        if t_start - oldest > self.cfg.max_obs_age_s:
            return self._skip("stale")
        if not self.instruction:
            return self._skip("no_instruction")
        _, q, qd, grip = js
        obs = {
            "image": img[1],
            "joint_positions": q.astype(np.float32),
            "joint_velocities": qd.astype(np.float32),
            "gripper": np.array([grip], np.float32),
            "instruction": self.instruction,
        }
        if running.policy.config.wrist_camera:
            obs["wrist_image"] = wrist[1]
        try:
            if self.cfg.command_interface == "forward":
                action = np.asarray(running.policy.select_action(obs, deterministic=self.cfg.deterministic), np.float64)
                self.pub_forward.publish(self._forward(q, action))
            else:
                chunk = np.asarray(running.policy.predict_chunk(obs, deterministic=self.cfg.deterministic), np.float64)
                action = chunk[0]
                self.pub_traj.publish(self._trajectory(q, chunk))
        except Exception as e:  # noqa: BLE001 - a failing tick must not kill the control loop
            self.get_logger().error(f"tick {self.tick}: policy failed: {type(e).__name__}: {e}", throttle_duration_sec=1.0)
            return self._skip("error")
        t_end = time.monotonic()
        status = {
            "tick": self.tick, "version": running.version, "head_sha256": running.head_sha256,
            "action": [round(float(a), 6) for a in action], "obs_age_ms": 1e3 * (t_start - oldest),
            "infer_ms": 1e3 * (t_end - t_start), "t": t_start, "skipped": self.skipped,
            "skipped_periods": self.skipped_periods,
        }
        self.pub_status.publish(String(data=json.dumps(status)))

    def _skip(self, why: str) -> None:
        self.skipped[why] += 1
        if self.skipped[why] in (1, 10, 100) or self.skipped[why] % 1000 == 0:
            self.get_logger().warn(f"tick {self.tick}: no command ({why}; {self.skipped[why]} so far)")

    def _forward(self, q: np.ndarray, action: np.ndarray) -> Float64MultiArray:
        return forward_message(q + action[:7], float(action[7]) if self.cfg.send_gripper else None)

    def _trajectory(self, q: np.ndarray, chunk: np.ndarray) -> JointTrajectory:
        """Chunk (K, 8) of deltas -> trajectory of absolute points one control period apart."""
        n = min(self.cfg.trajectory_points, chunk.shape[0])
        pos = q[None] + np.cumsum(chunk[:n, :7], axis=0)
        knots = np.vstack([q[None], pos])
        vel = np.zeros_like(pos)
        for k in range(n - 1):
            vel[k] = (knots[k + 2] - knots[k]) / (2 * self.dt)
        msg = JointTrajectory()
        msg.joint_names = list(self.cfg.joint_names)
        finger = []
        if self.cfg.send_gripper:
            msg.joint_names += list(GRIPPER_JOINT_NAMES)
        for k in range(n):
            if self.cfg.send_gripper:
                f = gripper_to_finger(chunk[k, 7])
                finger = [f, f]
            pt = JointTrajectoryPoint()
            pt.positions = [float(v) for v in pos[k]] + finger
            pt.velocities = [float(v) for v in vel[k]] + [0.0] * len(finger)
            pt.time_from_start = s_to_duration((k + 1) * self.dt)
            msg.points.append(pt)
        return msg


def _head_sha(policy: Any) -> str:
    """SHA-256 of the head weights as `save_head` would write them (identifies the running head)."""
    from rlhf.policy import checkpoint as ckpt

    return ckpt.sha256_bytes(ckpt.state_dict_bytes(policy.action_head.state_dict()))


def main(args=None) -> None:
    run(PolicyNode, args)


if __name__ == "__main__":
    main()
