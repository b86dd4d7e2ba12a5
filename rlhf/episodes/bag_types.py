"""Message types for bags: the standard ROS 2 types plus `rlhf_msgs`, registered from the .msg files.

The `.msg` files in `ros2_ws/src/rlhf_msgs/msg/` are the single source of truth for our custom types:
we parse them with rosbags' `get_types_from_msg` rather than restating their fields in Python. When
the package is installed outside the repository, set `RLHF_MSGS_DIR` to the folder holding the .msg
files, or source a ROS workspace where `rlhf_msgs` is installed (its `share/rlhf_msgs/msg`).

This module also names the topics an episode bag holds beyond the arm's own (rlhf.constants).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from rlhf.constants import GRIPPER_JOINT_NAMES

# Standard message type names, as rosbag2 writes them.
MSG_JOINT_STATE = "sensor_msgs/msg/JointState"
MSG_IMAGE = "sensor_msgs/msg/Image"
MSG_COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
MSG_FLOAT64_ARRAY = "std_msgs/msg/Float64MultiArray"
MSG_FLOAT32_ARRAY = "std_msgs/msg/Float32MultiArray"
MSG_STRING = "std_msgs/msg/String"
MSG_EPISODE_INFO = "rlhf_msgs/msg/EpisodeInfo"

# Topics only our own bags carry. The raw action is stored beside the absolute command targets so
# reading back recovers `Trajectory.actions` bit for bit (see bag_writer's module docstring).
TOPIC_ACTION_RAW = "/rlhf/action"
TOPIC_EE_POSITION = "/rlhf/sim/ee_position"
TOPIC_OBJECT_POSITIONS = "/rlhf/sim/object_positions"
TOPIC_CONTACT_FORCE = "/rlhf/sim/contact_force"

# Custom-metadata keys (rosbag2 `custom_data`, strings only).
META_EPISODE_ID = "rlhf.episode_id"
META_TASK = "rlhf.task"
META_TRAJECTORY = "rlhf.trajectory"  # JSON of the Trajectory's scalar fields
META_FORMAT = "rlhf.format_version"
BAG_FORMAT_VERSION = "1"

# Joint-state names of the gripper fingers; `Trajectory.gripper` is their sum.
FINGER_JOINT_NAMES = GRIPPER_JOINT_NAMES

# The ROS distribution whose standard types we serialise with. Jazzy writes rosbag2 version 9 with
# RIHS01 type hashes, which Kilted reads too.
ROS_STORE = Stores.ROS2_JAZZY


def find_msg_dir() -> Path:
    """The folder holding rlhf_msgs' .msg files; raise FileNotFoundError listing where we looked."""
    candidates: list[Path] = []
    env = os.environ.get("RLHF_MSGS_DIR")
    if env:
        candidates.append(Path(env))
    candidates.append(Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / "rlhf_msgs" / "msg")
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / "rlhf_msgs" / "msg")
    for c in candidates:
        if (c / "EpisodeInfo.msg").is_file():
            return c
    raise FileNotFoundError(
        "rlhf_msgs .msg files not found; looked in " + ", ".join(str(c) for c in candidates)
        + " (set RLHF_MSGS_DIR to the folder holding EpisodeInfo.msg)"
    )


@functools.lru_cache(maxsize=1)
def episode_typestore() -> Typestore:
    """Jazzy's standard types plus every rlhf_msgs message, parsed from the .msg files (cached)."""
    store = get_typestore(ROS_STORE)
    msg_dir = find_msg_dir()
    types: dict = {}
    for path in sorted(msg_dir.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(encoding="utf-8"), f"rlhf_msgs/msg/{path.stem}"))
    store.register(types)
    return store
