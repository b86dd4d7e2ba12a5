"""Writing episodes as rosbag2 bags (MCAP storage, with summary and statistics) through `rosbags`.

An episode bag holds, per control step t (all stamped with the observation time t):

| topic                                   | type                         | content                                   |
|-----------------------------------------|------------------------------|-------------------------------------------|
| `/joint_states`                         | sensor_msgs/JointState       | 7 arm joints + 2 fingers: position, velocity |
| `/camera/color/image_raw`               | sensor_msgs/Image (rgb8)     | the frame seen before the action at t     |
| `/wrist_camera/color/image_raw` (if present) | sensor_msgs/Image (rgb8) | the hand camera's frame at t (`Trajectory.wrist_images`) |
| `/forward_position_controller/commands` | std_msgs/Float64MultiArray   | `[q_t + Δq_t (7, rad), g_t]`              |
| `/rlhf/action`                          | std_msgs/Float32MultiArray   | `Trajectory.actions[t]` exactly (8)       |
| `/rlhf/sim/...` (sim only, if present)  | std_msgs/Float32MultiArray   | ee position, object positions, contact force |

plus `/task/instruction` (std_msgs/String) once at the first step and one `rlhf_msgs/EpisodeInfo`
on `/episodes/recorded` at the last step. Episode id and task also go into the bag's custom metadata.

Mapping of actions to commands. `Trajectory.actions[t]` is `(Δq_t (7, rad), g_t)` with g_t the
gripper command in [-1, 1]. A position-controlled arm takes absolute targets, so the command topic
carries `target_t = float64(q_t) + float64(Δq_t)` and `g_t` unchanged: exactly what the arm would be
sent. Reading back, `Δq_t = float32(target_t - q_t)`, which is exact whenever the float64 sum is
(|Δq| and |q| within 2^28 of each other); `/rlhf/action` stores the raw action as well, so our own
bags round-trip bit for bit and only bags recorded elsewhere rely on the subtraction.

Finger joint positions are `gripper / 2` each (the trajectory stores their sum); their velocities 0.
Timestamps are stored in integer nanoseconds: they round-trip to within 1 ns.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode, StoragePlugin

from rlhf.constants import (
    ARM_JOINT_NAMES,
    TOPIC_EPISODE_INFO,
    TOPIC_FORWARD_COMMANDS,
    TOPIC_IMAGE,
    TOPIC_INSTRUCTION,
    TOPIC_JOINT_STATES,
    TOPIC_WRIST_IMAGE,
)
from rlhf.episodes.bag_types import (
    BAG_FORMAT_VERSION,
    FINGER_JOINT_NAMES,
    META_EPISODE_ID,
    META_FORMAT,
    META_TASK,
    META_TRAJECTORY,
    MSG_EPISODE_INFO,
    MSG_FLOAT32_ARRAY,
    MSG_FLOAT64_ARRAY,
    MSG_IMAGE,
    MSG_JOINT_STATE,
    MSG_STRING,
    TOPIC_ACTION_RAW,
    TOPIC_CONTACT_FORCE,
    TOPIC_EE_POSITION,
    TOPIC_OBJECT_POSITIONS,
    episode_typestore,
)
from rlhf.trajectory import Trajectory

_NS = 1_000_000_000


@dataclass
class BagWriteConfig:
    """How an episode bag is written."""

    image_topic: str = TOPIC_IMAGE
    """Topic of the main camera's frames (sensor_msgs/Image, rgb8)."""
    command_topic: str = TOPIC_FORWARD_COMMANDS
    """Topic of the absolute joint-position targets (std_msgs/Float64MultiArray)."""
    joint_states_topic: str = TOPIC_JOINT_STATES
    """Topic of the arm's joint states (sensor_msgs/JointState)."""
    camera_frame_id: str = "camera_color_optical_frame"
    """`header.frame_id` of the images."""
    wrist_image_topic: str = TOPIC_WRIST_IMAGE
    """Topic of the hand camera's frames (sensor_msgs/Image, rgb8); written only for a trajectory
    that has `wrist_images`."""
    wrist_camera_frame_id: str = "wrist_camera_color_optical_frame"
    """`header.frame_id` of the wrist images."""
    compress: bool = False
    """Compress MCAP chunks with zstd (smaller files, slower writes)."""
    start_time_ns: int | None = None
    """Absolute stamp of the first observation, ns since the epoch. None: the trajectory's
    `extra["start_time_ns"]` if set, else the wall clock when writing starts."""

    def __post_init__(self) -> None:
        for name in ("image_topic", "command_topic", "joint_states_topic", "wrist_image_topic"):
            if not str(getattr(self, name)).startswith("/"):
                raise ValueError(f"BagWriteConfig.{name} must be an absolute topic name, got {getattr(self, name)!r}")
        if self.start_time_ns is not None and self.start_time_ns < 0:
            raise ValueError(f"BagWriteConfig.start_time_ns must be >= 0, got {self.start_time_ns}")


def seal_chunk_crcs(mcap_path: str | Path) -> int:
    """Fill in the CRC-32 of every chunk of an MCAP file in place; returns the number of chunks.

    rosbags' MCAP writer leaves chunk CRCs at 0 ("not computed"), so a flipped byte inside a chunk
    would go unnoticed. With the CRC set, both rosbags' and the `mcap` reader reject a corrupted
    chunk instead of decoding garbage.
    """
    sealed = 0
    with open(mcap_path, "r+b") as f:
        pos = 8  # after the leading magic
        f.seek(0, 2)
        end = f.tell()
        while pos + 9 <= end:
            f.seek(pos)
            op = f.read(1)[0]
            length = int.from_bytes(f.read(8), "little")
            if op == 0x0F:  # DataEnd: summary follows, no more chunks
                break
            if op == 0x06:  # Chunk: start(8) end(8) uncompressed_size(8) crc(4) compression(str) size(8) records
                body = f.read(length)
                usize = int.from_bytes(body[16:24], "little")
                clen = int.from_bytes(body[28:32], "little")
                compression = body[32 : 32 + clen].decode()
                records = body[32 + clen + 8 :]
                if compression == "zstd":
                    from rosbags.rosbag2.storage_mcap import DECOMPRESSORS

                    records = DECOMPRESSORS["zstd"](records, usize)
                elif compression:
                    raise ValueError(f"{mcap_path}: cannot seal chunk with compression {compression!r}")
                f.seek(pos + 9 + 24)
                f.write(zlib.crc32(records).to_bytes(4, "little"))
                sealed += 1
            pos += 9 + length
        f.flush()
    return sealed


def _multiarray(store, msgtype: str, values: np.ndarray, label: str):
    """A Float{32,64}MultiArray of `values` (any shape), with one layout dimension per axis."""
    dim_t = store.types["std_msgs/msg/MultiArrayDimension"]
    layout_t = store.types["std_msgs/msg/MultiArrayLayout"]
    shape = values.shape if values.ndim else (1,)
    strides = [int(np.prod(shape[i:])) for i in range(len(shape))]
    dims = [dim_t(label=f"{label}{i}" if i else label, size=int(s), stride=int(st)) for i, (s, st) in enumerate(zip(shape, strides, strict=True))]
    dtype = np.float64 if msgtype == MSG_FLOAT64_ARRAY else np.float32
    return store.types[msgtype](layout=layout_t(dim=dims, data_offset=0), data=np.ascontiguousarray(values, dtype=dtype).ravel())


class EpisodeBagWriter:
    """Streams one episode into a new rosbag2 folder (MCAP). Use as a context manager.

    On an exception inside the `with` block the half-written folder is removed, so a failed
    recording never leaves a bag that looks complete. `close()` writes the summary, the statistics
    and metadata.yaml, then seals the chunk CRCs.
    """

    def __init__(self, bag_dir: str | Path, *, config: BagWriteConfig | None = None) -> None:
        self.bag_dir = Path(bag_dir)
        self.config = config or BagWriteConfig()
        self.store = episode_typestore()
        self._writer = Writer(self.bag_dir, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
        if self.config.compress:
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._conns: dict[str, object] = {}
        self.bytes_written = 0
        self.messages_written = 0
        self._open = False

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> EpisodeBagWriter:
        self._writer.open()
        self._open = True
        return self

    def __enter__(self) -> EpisodeBagWriter:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
            return
        try:
            self.close()
        except BaseException:
            self.abort()
            raise

    def set_custom_data(self, key: str, value: str) -> None:
        """A string key/value in the bag's metadata (rosbag2 `custom_data`)."""
        self._writer.set_custom_data(key, value)

    def close(self) -> Path:
        """Finish the bag (summary, statistics, metadata.yaml, chunk CRCs); returns the folder."""
        if not self._open:
            raise RuntimeError(f"bag {self.bag_dir} is not open")
        self._writer.close()
        self._open = False
        for mcap in self.bag_dir.glob("*.mcap"):
            seal_chunk_crcs(mcap)
        return self.bag_dir

    def abort(self) -> None:
        """Drop the bag being written: nothing is left at `bag_dir`."""
        if self._open:
            try:
                self._writer.abort()
            except Exception:  # the folder goes anyway
                pass
            self._open = False
        shutil.rmtree(self.bag_dir, ignore_errors=True)

    # ------------------------------------------------------------------ messages
    def _write(self, topic: str, msgtype: str, stamp_ns: int, msg) -> None:
        conn = self._conns.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=self.store)
            self._conns[topic] = conn
        raw = self.store.serialize_cdr(msg, msgtype)
        self._writer.write(conn, int(stamp_ns), raw)
        self.bytes_written += len(raw)
        self.messages_written += 1

    def _header(self, stamp_ns: int, frame_id: str = ""):
        t = self.store.types
        return t["std_msgs/msg/Header"](
            stamp=t["builtin_interfaces/msg/Time"](sec=int(stamp_ns // _NS), nanosec=int(stamp_ns % _NS)), frame_id=frame_id
        )

    def write_joint_state(
        self, stamp_ns: int, names: Sequence[str], positions: np.ndarray, velocities: np.ndarray | None = None
    ) -> None:
        """One sensor_msgs/JointState; `positions`/`velocities` are (J,) in the order of `names`."""
        pos = np.asarray(positions, dtype=np.float64)
        vel = np.zeros_like(pos) if velocities is None else np.asarray(velocities, dtype=np.float64)
        msg = self.store.types[MSG_JOINT_STATE](
            header=self._header(stamp_ns), name=list(names), position=pos, velocity=vel, effort=np.zeros(0, np.float64)
        )
        self._write(self.config.joint_states_topic, MSG_JOINT_STATE, stamp_ns, msg)

    def write_image(self, stamp_ns: int, rgb: np.ndarray, *, wrist: bool = False) -> None:
        """One sensor_msgs/Image, encoding rgb8; `rgb` is (H, W, 3) uint8. `wrist`: the hand camera's
        frame, on `wrist_image_topic` with its own frame id."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        h, w, _ = rgb.shape
        cfg = self.config
        topic, frame_id = (cfg.wrist_image_topic, cfg.wrist_camera_frame_id) if wrist else (cfg.image_topic, cfg.camera_frame_id)
        msg = self.store.types[MSG_IMAGE](
            header=self._header(stamp_ns, frame_id),
            height=h,
            width=w,
            encoding="rgb8",
            is_bigendian=0,
            step=3 * w,
            data=np.ascontiguousarray(rgb).reshape(-1),
        )
        self._write(topic, MSG_IMAGE, stamp_ns, msg)

    def write_command(self, stamp_ns: int, targets: np.ndarray) -> None:
        """Absolute position targets `[q + Δq (7), gripper command]` on the command topic."""
        msg = _multiarray(self.store, MSG_FLOAT64_ARRAY, np.asarray(targets, np.float64), "joints")
        self._write(self.config.command_topic, MSG_FLOAT64_ARRAY, stamp_ns, msg)

    def write_array(self, topic: str, stamp_ns: int, values: np.ndarray, label: str) -> None:
        """Any float array (shape kept in the layout) as std_msgs/Float32MultiArray."""
        self._write(topic, MSG_FLOAT32_ARRAY, stamp_ns, _multiarray(self.store, MSG_FLOAT32_ARRAY, np.asarray(values), label))

    def write_instruction(self, stamp_ns: int, text: str) -> None:
        self._write(TOPIC_INSTRUCTION, MSG_STRING, stamp_ns, self.store.types[MSG_STRING](data=text))

    def write_episode_info(
        self,
        stamp_ns: int,
        *,
        episode_id: str,
        task: str,
        instruction: str,
        policy_version: str,
        source: str,
        start_ns: int,
        duration_ns: int,
        num_steps: int,
        control_rate_hz: float,
        bag_uri: str = "",
        video_uri: str = "",
        success: bool | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> None:
        """The rlhf_msgs/EpisodeInfo marker closing an episode (also what the recorder publishes)."""
        t = self.store.types
        metrics = dict(metrics or {})
        msg = t[MSG_EPISODE_INFO](
            header=self._header(stamp_ns),
            episode_id=episode_id,
            task=task,
            instruction=instruction,
            policy_version=policy_version,
            source=source,
            start_time=t["builtin_interfaces/msg/Time"](sec=int(start_ns // _NS), nanosec=int(start_ns % _NS)),
            duration=t["builtin_interfaces/msg/Duration"](sec=int(duration_ns // _NS), nanosec=int(duration_ns % _NS)),
            num_steps=int(num_steps),
            control_rate_hz=float(control_rate_hz),
            bag_uri=bag_uri,
            video_uri=video_uri,
            success_known=success is not None,
            success=bool(success),
            metric_names=list(metrics.keys()),
            metric_values=np.array([float(v) for v in metrics.values()], dtype=np.float64),
        )
        self._write(TOPIC_EPISODE_INFO, MSG_EPISODE_INFO, stamp_ns, msg)


def control_rate_of(traj: Trajectory) -> float:
    """Nominal control rate (Hz) from the median step; 0 for a single-step trajectory."""
    if len(traj) < 2:
        return 0.0
    dt = float(np.median(np.diff(traj.timestamps)))
    return 1.0 / dt if dt > 0 else 0.0


def trajectory_metadata(traj: Trajectory) -> dict:
    """The trajectory's non-array fields, as stored in the bag's custom metadata (JSON)."""
    return {
        "episode_id": traj.episode_id,
        "task": traj.task,
        "instruction": traj.instruction,
        "joint_names": list(traj.joint_names),
        "source": traj.source,
        "policy_version": traj.policy_version,
        "seed": traj.seed,
        "success": traj.success,
        "metrics": {k: float(v) for k, v in traj.metrics.items()},
        "extra": traj.extra,
        "time_origin_s": float(traj.timestamps[0]) if len(traj) else 0.0,
    }


def write_episode_bag(
    traj: Trajectory,
    bag_dir: str | Path,
    *,
    config: BagWriteConfig | None = None,
    video_uri: str = "",
    bag_uri: str | None = None,
    **overrides,
) -> Path:
    """Write `traj` as a new rosbag2 folder with MCAP storage; returns `bag_dir`.

    `bag_dir` must not exist. On any failure nothing is left at `bag_dir`. `bag_uri`/`video_uri`
    go into the EpisodeInfo (default bag URI: `bag_dir`'s; pass the final place when writing to a
    staging folder). Other keywords override fields of `config` (e.g. `image_topic=`,
    `command_topic=`, `compress=`).
    """
    config = config or BagWriteConfig()
    if overrides:
        config = dataclasses.replace(config, **overrides)
    bag_dir = Path(bag_dir)
    if len(traj) == 0:
        raise ValueError(f"episode {traj.episode_id!r} has no steps; nothing to write")
    if traj.wrist_images is not None and config.wrist_image_topic == config.image_topic:
        # Checked here, not in BagWriteConfig: a robot whose only camera is on the hand may well record
        # it on the wrist topic. Two cameras' frames on one topic could not be told apart on reading.
        raise ValueError(
            f"episode {traj.episode_id!r} has wrist images but wrist_image_topic is image_topic {config.image_topic!r}"
        )
    start_ns = config.start_time_ns
    if start_ns is None:
        start_ns = int(traj.extra.get("start_time_ns", time.time_ns()))
    rel = traj.timestamps - traj.timestamps[0]
    stamps = start_ns + np.round(rel * 1e9).astype(np.int64)
    joint_names = list(traj.joint_names) + list(FINGER_JOINT_NAMES)
    try:
        meta_json = json.dumps(trajectory_metadata(traj))
    except (TypeError, ValueError) as e:
        raise ValueError(f"episode {traj.episode_id!r}: extra/metrics are not JSON-serialisable ({e})") from e

    with EpisodeBagWriter(bag_dir, config=config) as w:
        w.set_custom_data(META_FORMAT, BAG_FORMAT_VERSION)
        w.set_custom_data(META_EPISODE_ID, traj.episode_id)
        w.set_custom_data(META_TASK, traj.task)
        w.set_custom_data(META_TRAJECTORY, meta_json)
        w.write_instruction(int(stamps[0]), traj.instruction)
        q = traj.joint_positions.astype(np.float64)
        targets = q + traj.actions[:, : len(ARM_JOINT_NAMES)].astype(np.float64)
        for t in range(len(traj)):
            s = int(stamps[t])
            half = float(traj.gripper[t]) / 2.0
            w.write_joint_state(
                s,
                joint_names,
                np.concatenate([q[t], [half, half]]),
                np.concatenate([traj.joint_velocities[t].astype(np.float64), [0.0, 0.0]]),
            )
            w.write_image(s, traj.images[t])
            if traj.wrist_images is not None:
                w.write_image(s, traj.wrist_images[t], wrist=True)
            w.write_command(s, np.concatenate([targets[t], traj.actions[t, len(ARM_JOINT_NAMES) :].astype(np.float64)]))
            w.write_array(TOPIC_ACTION_RAW, s, traj.actions[t], "action")
            if traj.ee_positions is not None:
                w.write_array(TOPIC_EE_POSITION, s, traj.ee_positions[t], "xyz")
            if traj.object_positions is not None:
                w.write_array(TOPIC_OBJECT_POSITIONS, s, traj.object_positions[t], "objects")
            if traj.contact_forces is not None:
                w.write_array(TOPIC_CONTACT_FORCE, s, traj.contact_forces[t : t + 1], "force")
        w.write_episode_info(
            int(stamps[-1]),
            episode_id=traj.episode_id,
            task=traj.task,
            instruction=traj.instruction,
            policy_version=traj.policy_version,
            source=traj.source,
            start_ns=int(stamps[0]),
            duration_ns=int(stamps[-1] - stamps[0]),
            num_steps=len(traj),
            control_rate_hz=control_rate_of(traj),
            bag_uri=bag_uri if bag_uri is not None else bag_dir.resolve().as_uri(),
            video_uri=video_uri,
            success=traj.success,
            metrics=traj.metrics,
        )
    return bag_dir
