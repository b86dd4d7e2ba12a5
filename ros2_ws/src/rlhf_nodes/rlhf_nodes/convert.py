"""Message <-> numpy conversions shared by the nodes (no algorithm logic here)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from rlhf.constants import GRIPPER_JOINT_NAMES

_NS = 1_000_000_000
FINGER_MAX = 0.04
"""Opening of one Panda finger joint, m (0.08 m between the fingers). Gripper commands in [-1, 1]
map linearly to finger positions in [0, FINGER_MAX] on the trajectory interface."""


def gripper_to_finger(command: float) -> float:
    """Gripper command in [-1, 1] (closed .. open) -> one finger joint's position, m."""
    return (float(np.clip(command, -1.0, 1.0)) + 1.0) / 2.0 * FINGER_MAX


def finger_to_gripper(position: float) -> float:
    """One finger joint's position, m -> gripper command in [-1, 1]."""
    return float(np.clip(2.0 * position / FINGER_MAX - 1.0, -1.0, 1.0))


def forward_message(positions: np.ndarray, gripper: float | None) -> Float64MultiArray:
    """Absolute joint targets (J,) [+ gripper command] as a forward position controller takes them."""
    values = [float(v) for v in positions] + ([float(gripper)] if gripper is not None else [])
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label="joints", size=len(values), stride=len(values))]
    msg.data = values
    return msg


def time_to_ns(t: Time) -> int:
    return int(t.sec) * _NS + int(t.nanosec)


def ns_to_time(ns: int) -> Time:
    return Time(sec=int(ns // _NS), nanosec=int(ns % _NS))


def duration_to_s(d: Duration) -> float:
    return float(d.sec) + float(d.nanosec) * 1e-9


def s_to_duration(s: float) -> Duration:
    ns = int(round(s * 1e9))
    return Duration(sec=ns // _NS, nanosec=ns % _NS)


def joint_state_arrays(msg: JointState, joint_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(positions (J,), velocities (J,), gripper opening m) in `joint_names` order, or None if a joint is missing.

    The gripper opening is the sum of both finger joints (0 when the message has none).
    """
    index = {n: i for i, n in enumerate(msg.name)}
    if any(n not in index for n in joint_names):
        return None
    pos = np.asarray(msg.position, dtype=np.float64)
    vel = np.asarray(msg.velocity, dtype=np.float64)
    idx = [index[n] for n in joint_names]
    if pos.shape[0] < len(msg.name):
        return None
    q = pos[idx]
    qd = vel[idx] if vel.shape[0] == len(msg.name) else np.zeros(len(idx))
    grip = float(sum(pos[index[n]] for n in GRIPPER_JOINT_NAMES if n in index))
    return q, qd, grip


def image_to_array(msg: Image) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB from an rgb8/bgr8 image, or None for other encodings or a bad size."""
    if msg.encoding not in ("rgb8", "bgr8"):
        return None
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(msg.data, np.uint8)
    if step < 3 * w or data.size < h * step:
        return None
    img = data[: h * step].reshape(h, step)[:, : 3 * w].reshape(h, w, 3)
    return img[:, :, ::-1].copy() if msg.encoding == "bgr8" else img.copy()


def array_to_image(img: np.ndarray, stamp: Time, frame_id: str) -> Image:
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(img.shape[0]), int(img.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = 3 * msg.width
    msg.data = np.ascontiguousarray(img, dtype=np.uint8).tobytes()
    return msg


def uri_to_path(uri: str) -> Path:
    """A file:// URI (or a plain path) as a Path."""
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    return Path(uri)


def path_to_uri(path: str | Path) -> str:
    return Path(path).resolve().as_uri()
