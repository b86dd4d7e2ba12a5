"""Fixtures of the episode-store tests: small trajectories and hand-made 'real robot' bags."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import StoragePlugin

from rlhf.constants import ARM_JOINT_NAMES, GRIPPER_JOINT_NAMES
from rlhf.episodes.bag_types import episode_typestore
from rlhf.trajectory import Trajectory

NS = 1_000_000_000


def make_traj(
    T: int = 12,
    *,
    seed: int = 0,
    rate: float = 10.0,
    hw: tuple[int, int] = (24, 32),
    episode_id: str | None = None,
    sim_extras: bool = True,
    task: str = "reach",
    instruction: str = "reach the red cube",
    wrist_hw: tuple[int, int] | None = None,
) -> Trajectory:
    """A random but valid trajectory; images carry the step index in their red channel.

    `wrist_hw`: also wrist-camera frames of that size, the step index in their green channel."""
    rng = np.random.default_rng(seed)
    h, w = hw
    images = rng.integers(0, 255, (T, h, w, 3), dtype=np.uint8)
    images[:, :, :, 0] = (np.arange(T) * 9 % 256).astype(np.uint8)[:, None, None]
    kw = {}
    if wrist_hw is not None:
        wrist = rng.integers(0, 255, (T, *wrist_hw, 3), dtype=np.uint8)
        wrist[:, :, :, 1] = (np.arange(T) * 7 % 256).astype(np.uint8)[:, None, None]
        kw["wrist_images"] = wrist
    if sim_extras:
        kw = dict(
            ee_positions=rng.normal(size=(T, 3)).astype(np.float32),
            object_positions=rng.normal(size=(T, 2, 3)).astype(np.float32),
            contact_forces=rng.uniform(0, 5, T).astype(np.float32),
            **kw,
        )
    return Trajectory(
        episode_id=episode_id or f"{seed:032x}",
        task=task,
        instruction=instruction,
        timestamps=np.arange(T) / rate,
        images=images,
        joint_positions=rng.uniform(-2, 2, (T, 7)).astype(np.float32),
        joint_velocities=rng.normal(size=(T, 7)).astype(np.float32),
        gripper=rng.uniform(0, 0.08, T).astype(np.float32),
        actions=np.concatenate([rng.normal(0, 0.05, (T, 7)), rng.uniform(-1, 1, (T, 1))], axis=1).astype(np.float32),
        source="sim",
        policy_version="scripted:expert",
        seed=seed,
        success=bool(seed % 2),
        metrics={"time_s": 1.5 + seed, "jerk": 0.25},
        extra={"note": "fixture", "start_time_ns": 1_700_000_000 * NS + seed * 100 * NS},
        **kw,
    )


@pytest.fixture
def traj_factory() -> Callable[..., Trajectory]:
    return make_traj


class RobotBag:
    """Writes a bag shaped like `ros2 bag record` output from a real arm (no rlhf metadata)."""

    def __init__(self, path: Path, storage: StoragePlugin = StoragePlugin.MCAP) -> None:
        self.path = path
        self.store = episode_typestore()
        self.w = Writer(path, version=8 if storage == StoragePlugin.SQLITE3 else 9, storage_plugin=storage)
        self.w.open()
        self.conns: dict[str, object] = {}

    def write(self, topic: str, msgtype: str, stamp_ns: int, msg) -> None:
        if topic not in self.conns:
            self.conns[topic] = self.w.add_connection(topic, msgtype, typestore=self.store)
        self.w.write(self.conns[topic], int(stamp_ns), self.store.serialize_cdr(msg, msgtype))

    def header(self, stamp_ns: int, frame_id: str = ""):
        t = self.store.types
        return t["std_msgs/msg/Header"](
            stamp=t["builtin_interfaces/msg/Time"](sec=int(stamp_ns // NS), nanosec=int(stamp_ns % NS)), frame_id=frame_id
        )

    def joint_state(self, stamp_ns: int, names, pos, vel) -> None:
        msg = self.store.types["sensor_msgs/msg/JointState"](
            header=self.header(stamp_ns), name=list(names), position=np.asarray(pos, np.float64),
            velocity=np.asarray(vel, np.float64), effort=np.zeros(0),
        )
        self.write("/joint_states", "sensor_msgs/msg/JointState", stamp_ns, msg)

    def image(self, stamp_ns: int, rgb: np.ndarray, encoding: str = "rgb8", topic: str = "/camera/color/image_raw") -> None:
        data = rgb[:, :, ::-1] if encoding == "bgr8" else rgb
        h, w, _ = rgb.shape
        msg = self.store.types["sensor_msgs/msg/Image"](
            header=self.header(stamp_ns, "cam"), height=h, width=w, encoding=encoding, is_bigendian=0, step=3 * w,
            data=np.ascontiguousarray(data).reshape(-1),
        )
        self.write(topic, "sensor_msgs/msg/Image", stamp_ns, msg)

    def command(self, stamp_ns: int, values) -> None:
        t = self.store.types
        msg = t["std_msgs/msg/Float64MultiArray"](
            layout=t["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0), data=np.asarray(values, np.float64)
        )
        self.write("/forward_position_controller/commands", "std_msgs/msg/Float64MultiArray", stamp_ns, msg)

    def string(self, topic: str, stamp_ns: int, text: str) -> None:
        self.write(topic, "std_msgs/msg/String", stamp_ns, self.store.types["std_msgs/msg/String"](data=text))

    def close(self) -> Path:
        self.w.close()
        return self.path


# The robot driver publishes joints in its own order, with the fingers first.
ROBOT_JOINT_ORDER = (GRIPPER_JOINT_NAMES[1],) + tuple(reversed(ARM_JOINT_NAMES)) + (GRIPPER_JOINT_NAMES[0],)


def write_robot_bag(
    path: Path,
    *,
    storage: StoragePlugin = StoragePlugin.MCAP,
    episodes: int = 1,
    seconds: float = 2.0,
    js_hz: float = 100.0,
    cam_hz: float = 30.0,
    cmd_hz: float = 10.0,
    gap_s: float = 3.0,
    encoding: str = "rgb8",
    hw: tuple[int, int] = (16, 20),
    start_ns: int = 1_750_000_000 * NS,
) -> dict:
    """A robot recording: joint states at js_hz (other joint order, with fingers), images at cam_hz,
    commands at cmd_hz, an unrelated /tf-like topic, an instruction, `episodes` runs apart by gap_s.

    Joint position of joint j at time t is `0.1 * j + t` (so values at any time are known);
    image red channel = index of the frame in its episode; commands target `q + 0.01 * (j + 1)`.
    """
    bag = RobotBag(path, storage)
    truth = {"starts": []}
    bag.string("/task/instruction", start_ns - NS // 2, "stack the blocks")
    for e in range(episodes):
        t0 = start_ns + int(e * (seconds + gap_s) * NS)
        truth["starts"].append(t0)
        events = []
        for k in range(int(seconds * js_hz) + 1):
            events.append((t0 + int(round(k * NS / js_hz)), "js", k))
        for k in range(int(seconds * cam_hz) + 1):
            events.append((t0 + int(round(k * NS / cam_hz)) + 1_000_000, "img", k))  # camera 1 ms late
        for k in range(int(seconds * cmd_hz) + 1):
            events.append((t0 + int(round(k * NS / cmd_hz)) + 2_000_000, "cmd", k))
        for k in range(int(seconds * 5)):
            events.append((t0 + k * NS // 5 + 3, "other", k))
        for stamp, kind, k in sorted(events):
            t = (stamp - t0) / NS
            if kind == "js":
                pos = {n: 0.1 * j + t for j, n in enumerate(ARM_JOINT_NAMES)}
                pos.update({GRIPPER_JOINT_NAMES[0]: 0.02, GRIPPER_JOINT_NAMES[1]: 0.03})
                bag.joint_state(stamp, ROBOT_JOINT_ORDER, [pos[n] for n in ROBOT_JOINT_ORDER], [1.0] * 9)
            elif kind == "img":
                img = np.zeros((*hw, 3), np.uint8)
                img[:, :, 0] = k % 256
                img[:, :, 2] = 200
                bag.image(stamp, img, encoding)
            elif kind == "cmd":
                q = np.array([0.1 * j + t for j in range(7)])
                bag.command(stamp, np.concatenate([q + 0.01 * np.arange(1, 8), [0.5]]))
            else:
                bag.string("/diagnostics_text", stamp, f"ok {k}")
    bag.close()
    return truth


@pytest.fixture
def robot_bag_factory():
    return write_robot_bag
