"""recorder_node: records episodes through the episode store (MCAP bag + video + index row).

`~/start_episode` (rlhf_msgs/StartEpisode) opens a recording; from then on every command the arm
is sent (the controller topics, i.e. after the safety filter) becomes one step, paired with the
newest joint state and camera frame (rlhf_nodes.episode_builder), and the hand camera's newest frame
when one publishes on `wrist_image_topic` (the episode's wrist images; without it there are none). `~/end_episode` builds the
Trajectory, hands it to `EpisodeStore.add` (all or nothing), answers with the stored episode's
rlhf_msgs/EpisodeInfo and publishes it on /episodes/recorded.

While no recording runs, the steps of the last `preroll_s` seconds are kept, and a StartEpisode with
a `start_stamp` begins the episode with those observed at or after it. The sim's reset answers with
its new episode's first stamp, so a recording started after the reset still holds the episode from
its first step, however long the service calls took.
"""

from __future__ import annotations

import threading
import uuid

import numpy as np
from rclpy.node import Node
from rlhf_msgs.msg import EpisodeInfo
from rlhf_msgs.srv import EndEpisode, StartEpisode
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from rlhf.constants import GRIPPER_JOINT_NAMES
from rlhf_nodes import qos
from rlhf_nodes.convert import (
    duration_to_s,
    finger_to_gripper,
    image_to_array,
    joint_state_arrays,
    ns_to_time,
    s_to_duration,
    time_to_ns,
)
from rlhf_nodes.episode_builder import EpisodeBuilder, trajectory_target
from rlhf_nodes.params import declare_node_configs
from rlhf_nodes.runner import run


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder_node")
        (self.cfg,) = declare_node_configs(self, "recorder_node")
        from rlhf.episodes.store import EpisodeStore, StoreConfig

        self.store = EpisodeStore(self.cfg.store_root, StoreConfig(write_videos=self.cfg.write_videos))
        self.ee_fn = None
        if self.cfg.ee_link:
            from rlhf.safety_config import ArmModel, default_urdf

            model = ArmModel(self.cfg.urdf_path or default_urdf(), tuple(self.cfg.joint_names), self.cfg.ee_link)
            self.ee_fn = model.ee_positions
        self._lock = threading.Lock()
        self.recording: EpisodeBuilder | None = None
        self._preroll = self._new_preroll()
        self._js: tuple[int, np.ndarray, np.ndarray, float] | None = None
        self._img: np.ndarray | None = None
        self._wrist: np.ndarray | None = None
        self._gripper_command = 1.0
        self._last_target: np.ndarray | None = None
        self.instruction = ""
        self.policy_version = ""

        self.pub_info = self.create_publisher(EpisodeInfo, self.cfg.episode_topic, qos.RELIABLE)
        self.create_subscription(JointState, self.cfg.joint_states_topic, self.joint_states_callback, qos.SENSOR)
        self.create_subscription(Image, self.cfg.image_topic, self.image_callback, qos.SENSOR)
        # Subscribed whenever it is a topic of its own: whether the arm has a hand camera shows by its
        # frames arriving. A hand camera that is the only camera (image_topic) is not recorded twice.
        if self.cfg.wrist_image_topic != self.cfg.image_topic:
            self.create_subscription(Image, self.cfg.wrist_image_topic, self.wrist_image_callback, qos.SENSOR)
        self.create_subscription(Float64MultiArray, self.cfg.forward_command_topic, self.forward_callback,
                                 qos.RELIABLE)
        self.create_subscription(JointTrajectory, self.cfg.trajectory_command_topic, self.trajectory_callback,
                                 qos.RELIABLE)
        self.create_subscription(String, self.cfg.instruction_topic, self.instruction_callback, qos.LATCHED)
        self.create_subscription(String, self.cfg.policy_status_topic, self.policy_status_callback, qos.RELIABLE)
        self.create_service(StartEpisode, "~/start_episode", self.start_callback)
        self.create_service(EndEpisode, "~/end_episode", self.end_callback)
        self.get_logger().info(f"recorder_node: storing episodes in {self.store.root.resolve()}")

    def _new_preroll(self) -> EpisodeBuilder:
        return EpisodeBuilder(episode_id="preroll", task="", instruction="", policy_version="",
                              source=self.cfg.source, joint_names=tuple(self.cfg.joint_names),
                              max_steps=self.cfg.max_steps)

    def _builder(self) -> EpisodeBuilder | None:
        """Where steps go now: the running recording, else the pre-roll buffer (None when it is off)."""
        if self.recording is not None:
            return self.recording
        return self._preroll if self.cfg.preroll_s > 0 else None

    def _trim_preroll(self) -> None:
        if self.recording is None and self._preroll.stamps_ns:
            self._preroll.drop_before(self._preroll.stamps_ns[-1] - int(self.cfg.preroll_s * 1e9))

    # ------------------------------------------------------------------ streams
    def joint_states_callback(self, msg: JointState) -> None:
        arrays = joint_state_arrays(msg, self.cfg.joint_names)
        if arrays is not None:
            stamp = time_to_ns(msg.header.stamp) or self.get_clock().now().nanoseconds
            rec = self.recording
            if rec is not None:
                rec.observations += 1
            self._hold_step_if_commandless()
            self._js = (stamp, *arrays)

    def _hold_step_if_commandless(self) -> None:
        """Record the current observation with the held target if a control period passed without a command.

        When the arm and the policy tick on independent clocks at the same rate (sim_node and policy_node),
        phase jitter can put two commands between one pair of observations and none between the next:
        the arm then moved the whole step toward the target it still held. That step is recorded with
        the held target, so no control step is lost; with faster joint states (a real arm) this adds at
        most one step per control period, and only while commands stall. The same holds for the first
        observation of a recording started at a known stamp: its command may have reached the recorder
        before the observation did, and so been paired with the observation before.
        """
        with self._lock:
            rec, js, target = self._builder(), self._js, self._last_target
            if rec is None or js is None or target is None:
                return
            if rec.stamps_ns:
                due = js[0] - rec.stamps_ns[-1] >= 0.75 * self.cfg.control_period_s * 1e9
            else:
                due = rec.start_ns is not None and js[0] >= rec.start_ns
            if due and rec.add_step(js[0], self._img, js[1], js[2], js[3], target, self._gripper_command,
                                    self._wrist):
                rec.held += 1
                self._trim_preroll()

    def image_callback(self, msg: Image) -> None:
        img = image_to_array(msg)
        if img is not None:
            self._img = img

    def wrist_image_callback(self, msg: Image) -> None:
        img = image_to_array(msg)
        if img is not None:
            self._wrist = img

    def instruction_callback(self, msg: String) -> None:
        self.instruction = msg.data

    def policy_status_callback(self, msg: String) -> None:
        import json

        try:
            self.policy_version = str(json.loads(msg.data).get("version", self.policy_version))
        except (ValueError, AttributeError):
            pass

    def forward_callback(self, msg: Float64MultiArray) -> None:
        data = np.asarray(msg.data, dtype=np.float64)
        n = len(self.cfg.joint_names)
        if data.shape[0] not in (n, n + 1):
            return
        if data.shape[0] == n + 1:
            self._gripper_command = float(data[n])
        self._record(data[:n])

    def trajectory_callback(self, msg: JointTrajectory) -> None:
        index = {name: i for i, name in enumerate(msg.joint_names)}
        if any(n not in index for n in self.cfg.joint_names) or not msg.points:
            return
        idx = [index[n] for n in self.cfg.joint_names]
        times = np.array([duration_to_s(p.time_from_start) for p in msg.points])
        points = np.array([[p.positions[i] for i in idx] for p in msg.points])
        fingers = [index[n] for n in GRIPPER_JOINT_NAMES if n in index]
        if fingers:
            f = float(np.mean([msg.points[0].positions[i] for i in fingers]))
            self._gripper_command = finger_to_gripper(f)
        js = self._js
        if js is None:
            return
        self._record(trajectory_target(times, points, js[1], self.cfg.control_period_s))

    def _record(self, target: np.ndarray) -> None:
        with self._lock:
            rec, js = self._builder(), self._js
            if rec is None:
                return
            if js is None:
                rec.dropped += 1
                return
            self._last_target = np.asarray(target, np.float64)
            rec.add_step(js[0], self._img, js[1], js[2], js[3], target, self._gripper_command, self._wrist)
            self._trim_preroll()

    # ------------------------------------------------------------------ services
    def start_callback(self, request: StartEpisode.Request, response: StartEpisode.Response) -> StartEpisode.Response:
        with self._lock:
            if self.recording is not None:
                response.success = False
                response.message = f"already recording episode {self.recording.episode_id}"
                response.episode_id = self.recording.episode_id
                return response
            eid = request.episode_id or uuid.uuid4().hex
            if eid in self.store.index:
                response.success = False
                response.message = f"episode id {eid!r} is already in the store"
                return response
            rec = EpisodeBuilder(
                episode_id=eid, task=request.task, instruction=request.instruction or self.instruction,
                policy_version=request.policy_version or self.policy_version, source=self.cfg.source,
                joint_names=tuple(self.cfg.joint_names), max_steps=self.cfg.max_steps,
            )
            start_ns = time_to_ns(request.start_stamp)
            earlier = ""
            if start_ns > 0:
                rec.start_ns = start_ns
                self._preroll.drop_before(start_ns)
                n = rec.adopt_steps(self._preroll)
                earlier = f", {n} earlier steps from t={start_ns * 1e-9:.3f} s"
            self._preroll = self._new_preroll()
            self.recording = rec
        response.success = True
        response.episode_id = eid
        response.message = f"recording {eid}{earlier}"
        self.get_logger().info(f"recording episode {eid}{earlier} ({request.task}: {rec.instruction!r})")
        return response

    def end_callback(self, request: EndEpisode.Request, response: EndEpisode.Response) -> EndEpisode.Response:
        with self._lock:
            rec = self.recording
            if rec is None or (request.episode_id and request.episode_id != rec.episode_id):
                response.success = False
                response.message = f"no recording {request.episode_id!r} is running"
                return response
            self.recording = None
        if request.discard:
            response.success = True
            response.message = f"discarded {rec.episode_id} ({len(rec)} steps)"
            self.get_logger().info(response.message)
            return response
        try:
            traj = rec.build(request.success if request.success_known else None, self.ee_fn)
            if not traj.instruction:
                traj.instruction = self.instruction
            record = self.store.add(traj)
        except Exception as e:  # noqa: BLE001 - any failure is reported to the caller; the store keeps nothing
            response.success = False
            response.message = f"episode {rec.episode_id} not stored: {type(e).__name__}: {e}"
            self.get_logger().error(response.message)
            return response
        info = self._episode_info(traj, record)
        response.success = True
        response.message = f"stored {rec.episode_id}: {len(traj)} steps, {traj.duration:.2f} s"
        response.info = info
        self.pub_info.publish(info)
        self.get_logger().info(
            f"{response.message} ({rec.observations} joint states received, {rec.held} steps held, "
            f"{rec.replaced} commands replaced, {rec.dropped} dropped)"
        )
        return response

    def _episode_info(self, traj, record) -> EpisodeInfo:
        root = self.store.root.resolve()
        info = EpisodeInfo()
        info.header.stamp = self.get_clock().now().to_msg()
        info.episode_id = traj.episode_id
        info.task = traj.task
        info.instruction = traj.instruction
        info.policy_version = traj.policy_version
        info.source = traj.source
        start_ns = int(traj.extra["start_time_ns"])
        info.start_time = ns_to_time(start_ns)
        info.duration = s_to_duration(traj.duration)
        info.num_steps = len(traj)
        dts = np.diff(traj.timestamps)
        info.control_rate_hz = float(1.0 / np.median(dts)) if len(dts) and np.median(dts) > 0 else 0.0
        info.bag_uri = (root / record.bag_path).as_uri()
        info.video_uri = (root / record.video_path).as_uri() if record.video_path else ""
        info.success_known = traj.success is not None
        info.success = bool(traj.success)
        info.metric_names = list(traj.metrics)
        info.metric_values = [float(v) for v in traj.metrics.values()]
        return info

    def close(self) -> None:
        with self._lock:
            rec, self.recording = self.recording, None
        if rec is not None and len(rec):
            # Stopped mid-episode (SIGTERM/Ctrl-C): keep what was recorded rather than lose it.
            try:
                record = self.store.add(rec.build(None, self.ee_fn))
                self.get_logger().warn(f"shut down while recording: stored {rec.episode_id} ({record.num_steps} steps)")
            except Exception as e:  # noqa: BLE001
                self.get_logger().error(f"shut down while recording {rec.episode_id}; could not store it: {e}")
        self.store.close()


def main(args=None) -> None:
    run(RecorderNode, args)


if __name__ == "__main__":
    main()
