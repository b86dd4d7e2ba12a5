"""sim_node: the PyBullet Panda (rlhf_sim/Panda-v0) behind the topics of a ros2_control arm.

Publishes /joint_states, /camera/color/image_raw + camera_info (sensor-data QoS) and /clock (sim
time; faster than real time with `real_time_factor` > 1). With `sim.wrist_camera` on, also the hand
camera's frames on /wrist_camera/color/image_raw + camera_info (`wrist_image_topic`,
`wrist_camera_info_topic`), stamped like the scene camera's. Takes commands like a ros2_control arm:

- /forward_position_controller/commands (std_msgs/Float64MultiArray): ABSOLUTE joint targets, 7
  values, optionally an 8th = gripper command in [-1, 1].
- /arm_controller/joint_trajectory (trajectory_msgs/JointTrajectory): points (positions,
  time_from_start) interpolated linearly in sim time from where the arm was commanded when it
  arrived; finger joints, if named, set the gripper.

Absolute targets become the env's action: action = clip(target - env's commanded position,
+-max_joint_delta), so the env's own limits (joint range, per-step delta, wind-up bound) still
apply, exactly as a position controller with a rate limit. No command: the arm holds.
`~/reset` (rlhf_msgs/ResetSim) starts a new episode (optionally of another task) and publishes its
instruction on /task/instruction (latched). A reset takes one control period of sim time, so the new
episode's first observation has a stamp of its own (returned by the reset, for the recorder's
StartEpisode.start_stamp). After a reset the physics waits for the first command, republishing that
observation meanwhile: as in a gym episode, step 0 is the reset state and the first action, so a
recorded episode replays from its seed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading

import numpy as np
from rclpy.node import Node
from rlhf_msgs.srv import ResetSim
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from rlhf.constants import ARM_JOINT_NAMES, GRIPPER_JOINT_NAMES
from rlhf_nodes import qos
from rlhf_nodes.convert import array_to_image, duration_to_s, finger_to_gripper, ns_to_time, time_to_ns
from rlhf_nodes.episode_builder import trajectory_target
from rlhf_nodes.params import declare_node_configs
from rlhf_nodes.runner import run


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim_node")
        self.cfg, self.sim_cfg = declare_node_configs(self, "sim_node")
        import gymnasium as gym

        import sim  # registers the env id

        self._gym, self._env_id = gym, sim.ENV_ID
        self._lock = threading.Lock()
        self.env = None
        self.sim_time_ns = 0
        self.steps = 0
        self.info: dict = {}
        self._forward_target: np.ndarray | None = None
        self._trajectory: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None  # start ns, times, points, from
        self._gripper = 1.0
        self.rejected_commands = 0

        self.pub_js = self.create_publisher(JointState, self.cfg.joint_states_topic, qos.SENSOR)
        self.pub_img = self.create_publisher(Image, self.cfg.image_topic, qos.SENSOR)
        self.pub_info = self.create_publisher(CameraInfo, self.cfg.camera_info_topic, qos.SENSOR)
        self.pub_wrist_img = self.pub_wrist_info = None
        if self.sim_cfg.wrist_camera:
            # Only with the camera on: a topic that never carries a frame would look like a dead camera.
            self.pub_wrist_img = self.create_publisher(Image, self.cfg.wrist_image_topic, qos.SENSOR)
            self.pub_wrist_info = self.create_publisher(CameraInfo, self.cfg.wrist_camera_info_topic, qos.SENSOR)
        self.pub_clock = self.create_publisher(Clock, "/clock", 10) if self.cfg.publish_clock else None
        self.pub_instr = self.create_publisher(String, self.cfg.instruction_topic, qos.LATCHED)
        self.pub_status = self.create_publisher(String, "~/status", qos.RELIABLE)
        self.create_subscription(Float64MultiArray, self.cfg.forward_command_topic, self.forward_callback, qos.RELIABLE)
        self.create_subscription(JointTrajectory, self.cfg.trajectory_command_topic, self.trajectory_callback, qos.RELIABLE)
        self.create_service(ResetSim, "~/reset", self.reset_callback)

        self._reset(self.sim_cfg.task, self.cfg.seed)
        period = self.sim_cfg.dt / self.cfg.real_time_factor
        self.create_timer(period, self.step_callback)
        self.get_logger().info(
            f"sim_node: task {self.sim_cfg.task}, {self.sim_cfg.control_hz:g} Hz control, "
            f"x{self.cfg.real_time_factor:g} real time, {self.sim_cfg.image_size}px camera"
            + (f", {self.sim_cfg.wrist_image_size}px wrist camera" if self.sim_cfg.wrist_camera else "")
        )

    # ------------------------------------------------------------------ episodes
    def _reset(self, task: str, seed: int | None) -> str:
        with self._lock:
            if self.env is None or task != self.sim_cfg.task:
                if self.env is not None:
                    self.env.close()
                self.sim_cfg = dataclasses.replace(self.sim_cfg, task=task)
                self.env = self._gym.make(self._env_id, config=self.sim_cfg)
            self.obs, self.info = self.env.reset(seed=seed)
            self._forward_target = None
            self._trajectory = None
            self._gripper = 1.0
            self.steps = 0
            self.sim_time_ns += int(round(self.sim_cfg.dt * 1e9))
        self.pub_instr.publish(String(data=self.obs["instruction"]))
        self._publish_observation()
        return self.obs["instruction"]

    def reset_callback(self, request: ResetSim.Request, response: ResetSim.Response) -> ResetSim.Response:
        from sim.config import TASK_NAMES

        task = request.task or self.sim_cfg.task
        if task not in TASK_NAMES:
            response.success = False
            response.message = f"unknown task {task!r}; known: {', '.join(TASK_NAMES)}"
            return response
        seed = None if request.seed < 0 else int(request.seed)
        response.instruction = self._reset(task, seed)
        response.stamp = ns_to_time(self.sim_time_ns)
        response.success = True
        response.message = f"task {task}, seed {self.env.unwrapped.episode_seed}"
        self.get_logger().info(f"reset: {response.message}: {response.instruction!r}")
        return response

    # ------------------------------------------------------------------ commands
    def forward_callback(self, msg: Float64MultiArray) -> None:
        data = np.asarray(msg.data, dtype=np.float64)
        if data.shape[0] not in (7, 8) or not np.all(np.isfinite(data)):
            self.rejected_commands += 1
            self.get_logger().warn(
                f"forward command rejected: {data.shape[0]} values (want 7 or 8, finite)", throttle_duration_sec=1.0
            )
            return
        with self._lock:
            self._forward_target = data[:7].copy()
            self._trajectory = None
            if data.shape[0] == 8:
                self._gripper = float(np.clip(data[7], -1.0, 1.0))

    def trajectory_callback(self, msg: JointTrajectory) -> None:
        index = {n: i for i, n in enumerate(msg.joint_names)}
        if any(n not in index for n in ARM_JOINT_NAMES) or not msg.points:
            self.rejected_commands += 1
            self.get_logger().warn("trajectory rejected: needs every arm joint and >= 1 point", throttle_duration_sec=1.0)
            return
        arm = [index[n] for n in ARM_JOINT_NAMES]
        fingers = [index[n] for n in GRIPPER_JOINT_NAMES if n in index]
        times, points, grips = [], [], []
        for p in msg.points:
            pos = np.asarray(p.positions, dtype=np.float64)
            if pos.shape[0] != len(msg.joint_names) or not np.all(np.isfinite(pos)):
                self.rejected_commands += 1
                self.get_logger().warn("trajectory rejected: a point has wrong or non-finite positions",
                                       throttle_duration_sec=1.0)
                return
            times.append(duration_to_s(p.time_from_start))
            points.append(pos[arm])
            if fingers:
                grips.append(float(np.mean(pos[fingers])))
        times_a = np.asarray(times)
        if np.any(np.diff(times_a) <= 0) or times_a[0] < 0:
            self.rejected_commands += 1
            self.get_logger().warn("trajectory rejected: time_from_start must increase", throttle_duration_sec=1.0)
            return
        with self._lock:
            start = time_to_ns(msg.header.stamp) or self.sim_time_ns
            origin = self.env.unwrapped.commanded_joint_positions.copy()
            self._trajectory = (start, times_a, np.stack(points), origin)
            self._forward_target = None
            if grips:
                self._gripper = finger_to_gripper(grips[-1])

    def _target(self, t_ns: int) -> np.ndarray | None:
        """Where the arm is told to be at sim time t_ns, or None (hold)."""
        if self._forward_target is not None:
            return self._forward_target
        if self._trajectory is None:
            return None
        start, times, points, origin = self._trajectory
        return trajectory_target(times, points, origin, (t_ns - start) * 1e-9)

    # ------------------------------------------------------------------ stepping
    def step_callback(self) -> None:
        with self._lock:
            env = self.env.unwrapped
            dt_ns = int(round(self.sim_cfg.dt * 1e9))
            target = self._target(self.sim_time_ns + dt_ns)
            waiting = target is None and self.steps == 0  # a new episode starts with its first command
            if not waiting:
                delta = np.zeros(7) if target is None else target - env.commanded_joint_positions
                mjd = self.sim_cfg.max_joint_delta
                action = np.concatenate([np.clip(delta, -mjd, mjd), [self._gripper]]).astype(np.float32)
                self.obs, _, terminated, truncated, self.info = env.step(action)
                self.sim_time_ns += dt_ns
                self.steps += 1
        if waiting:
            self._publish_observation()  # late subscribers (a policy starting up) still get the first state
            return
        if self.pub_clock is not None:
            self.pub_clock.publish(Clock(clock=ns_to_time(self.sim_time_ns)))
        self._publish_observation()
        if terminated or truncated or self.steps % 10 == 0:
            status = {
                "task": self.sim_cfg.task, "seed": self.info.get("seed"), "step": self.steps,
                "time_s": self.sim_time_ns * 1e-9, "success": bool(self.info.get("success", False)),
                "terminated": bool(terminated), "truncated": bool(truncated),
                "rejected_commands": self.rejected_commands,
            }
            self.pub_status.publish(String(data=json.dumps(status)))

    def _publish_observation(self) -> None:
        stamp = ns_to_time(self.sim_time_ns)
        obs = self.obs
        js = JointState()
        js.header.stamp = stamp
        js.name = list(ARM_JOINT_NAMES) + list(GRIPPER_JOINT_NAMES)
        half = float(obs["gripper"][0]) / 2.0
        js.position = [float(v) for v in obs["joint_positions"]] + [half, half]
        js.velocity = [float(v) for v in obs["joint_velocities"]] + [0.0, 0.0]
        self.pub_js.publish(js)
        img = np.asarray(obs["image"])
        self.pub_img.publish(array_to_image(img, stamp, self.cfg.camera_frame_id))
        self.pub_info.publish(self._camera_info(img.shape[0], img.shape[1], stamp))
        if self.pub_wrist_img is not None:
            wrist = np.asarray(obs["wrist_image"])
            self.pub_wrist_img.publish(array_to_image(wrist, stamp, self.cfg.wrist_camera_frame_id))
            self.pub_wrist_info.publish(self._camera_info(
                wrist.shape[0], wrist.shape[1], stamp, self.cfg.wrist_camera_frame_id, self.sim_cfg.wrist_camera_fov_deg))

    def _camera_info(self, h: int, w: int, stamp, frame_id: str | None = None, fov_deg: float | None = None) -> CameraInfo:
        """Pinhole intrinsics of the scene camera, or of another (the wrist camera) given its frame and FOV."""
        info = CameraInfo()
        info.header.stamp = stamp
        info.header.frame_id = self.cfg.camera_frame_id if frame_id is None else frame_id
        info.height, info.width = h, w
        fov = self.sim_cfg.camera_fov_deg if fov_deg is None else fov_deg
        fy = (h / 2.0) / math.tan(math.radians(fov) / 2.0)
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = [fy, 0.0, w / 2.0, 0.0, fy, h / 2.0, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [fy, 0.0, w / 2.0, 0.0, 0.0, fy, h / 2.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def close(self) -> None:
        if self.env is not None:
            self.env.close()


def main(args=None) -> None:
    run(SimNode, args)


if __name__ == "__main__":
    main()
