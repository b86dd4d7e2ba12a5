"""Reading rosbag2 bags (MCAP or SQLite3) into trajectories: our own bags and real-robot recordings.

A bag from `ros2 bag record` may carry any extra topics (ignored), joint states in another joint
order or with extra joints (matched by name), images at another rate than the joint states, and no
episode markers. Reading it:

1. Collect the needed topics, checking each one's message type.
2. Cut episodes: by `rlhf_msgs/EpisodeInfo` markers (each gives a start stamp and a duration) when
   the bag has them, else by gaps in `/joint_states` longer than `gap_s`.
3. Choose control steps: on a grid at `control_rate_hz` when given; else our own bags step at
   every joint-state message and other bags at every camera frame.
4. At each step take the latest joint state and image at or before it, and the command in effect
   (the last one issued before the next step; see `segment.command_in_effect`). A bag with frames on
   `wrist_image_topic` (the hand camera; optional) gives `wrist_images` the same way; an episode's
   first step then also waits for its first wrist frame. Without any, `wrist_images` is None.
5. Actions: `/rlhf/action` when present (exact), else `Δq = target - q` from the command topic.

Every failure is a `BagError` naming the bag and what is wrong: a missing topic, a wrong message
type, a truncated or corrupted file, an unknown image encoding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import Reader
from rosbags.rosbag2.errors import ReaderError
from tqdm import tqdm

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
    FINGER_JOINT_NAMES,
    META_FORMAT,
    META_TRAJECTORY,
    MSG_COMPRESSED_IMAGE,
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
from rlhf.episodes.segment import (
    NS,
    command_in_effect,
    control_grid,
    latest_at_or_before,
    split_by_gaps,
)
from rlhf.trajectory import Trajectory, TrajectoryError

GRIPPER_COMMAND = "gripper"  # name of the gripper entry in `command_joint_names`

try:  # rosbags reads SQLite3 bags through apsw; its errors are not sqlite3's
    import apsw

    _DB_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, apsw.Error)
except ImportError:  # pragma: no cover - apsw is a rosbags dependency
    _DB_ERRORS = (sqlite3.Error,)


class BagError(ValueError):
    """A bag cannot be read as episodes; the message names the bag and what is wrong."""


@dataclass
class BagReadConfig:
    """How bags are read and cut into episodes."""

    joint_states_topic: str = TOPIC_JOINT_STATES
    """sensor_msgs/JointState topic; required."""
    image_topic: str = TOPIC_IMAGE
    """sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8) or sensor_msgs/CompressedImage topic."""
    wrist_image_topic: str = TOPIC_WRIST_IMAGE
    """The hand camera's frames, same types as `image_topic`; optional (absent: no `wrist_images`).
    Not read when it equals `image_topic` (a robot whose only camera is on the hand)."""
    command_topic: str = TOPIC_FORWARD_COMMANDS
    """std_msgs/Float64MultiArray of absolute joint-position targets (+ gripper command)."""
    instruction_topic: str = TOPIC_INSTRUCTION
    """std_msgs/String with the task instruction; optional."""
    episode_info_topic: str = TOPIC_EPISODE_INFO
    """rlhf_msgs/EpisodeInfo episode markers; optional."""
    joint_names: tuple[str, ...] = ARM_JOINT_NAMES
    """Arm joints, in the trajectory's order; looked up by name in each JointState."""
    finger_joint_names: tuple[str, ...] = FINGER_JOINT_NAMES
    """Gripper finger joints; the trajectory's gripper is their summed position (0 if absent)."""
    command_joint_names: tuple[str, ...] = ARM_JOINT_NAMES + (GRIPPER_COMMAND,)
    """Meaning of each entry of a command message, in order (the controller's `joints` parameter);
    the entry named "gripper" is the gripper command in [-1, 1] (0 when the command has none)."""
    control_rate_hz: float | None = None
    """Control steps per second (a fixed grid). None: one step per joint state for our own bags,
    one per camera frame for other bags."""
    segment_by: str = "auto"
    """"markers" (EpisodeInfo), "gaps" (silences in the joint states), "none" (one episode) or
    "auto" (markers when present, else gaps)."""
    gap_s: float = 1.0
    """A silence in the joint states longer than this (s) separates two episodes."""
    min_steps: int = 2
    """Segments with fewer control steps are dropped (a stray message is not an episode)."""
    prefer_raw_actions: bool = True
    """Take actions from /rlhf/action when the bag has it (exact); False derives them from the
    command topic, as for bags recorded elsewhere."""
    salvage_truncated: bool = False
    """Read what survives of a cut-off MCAP file (every complete chunk) instead of refusing it; the
    episodes get `extra["salvaged"]` naming what ended the scan."""
    progress: bool = False
    """Show a progress bar over the messages while reading (for long recordings)."""
    use_header_stamps: bool = True
    """Align by the messages' header stamps (sensor time); False: by the bag's receive times."""
    task: str = "robot"
    """Task name of episodes without an EpisodeInfo marker."""
    instruction: str = ""
    """Instruction of episodes whose bag has none on `instruction_topic`."""
    source: str = "robot"
    """Source ("sim" or "robot") of episodes without an EpisodeInfo marker."""

    def __post_init__(self) -> None:
        if self.control_rate_hz is not None and not self.control_rate_hz > 0:
            raise ValueError(f"BagReadConfig.control_rate_hz must be > 0 or None, got {self.control_rate_hz}")
        if self.segment_by not in ("auto", "markers", "gaps", "none"):
            raise ValueError(f"BagReadConfig.segment_by must be auto|markers|gaps|none, got {self.segment_by!r}")
        if not self.gap_s > 0:
            raise ValueError(f"BagReadConfig.gap_s must be > 0, got {self.gap_s}")
        if self.min_steps < 1:
            raise ValueError(f"BagReadConfig.min_steps must be >= 1, got {self.min_steps}")
        if len(self.joint_names) != len(ARM_JOINT_NAMES):
            raise ValueError(
                f"BagReadConfig.joint_names must name {len(ARM_JOINT_NAMES)} arm joints, got {len(self.joint_names)}"
            )
        missing = [n for n in self.joint_names if n not in self.command_joint_names]
        if missing:
            raise ValueError(f"BagReadConfig.command_joint_names lacks arm joints {missing}")
        if self.source not in ("sim", "robot"):
            raise ValueError(f"BagReadConfig.source must be 'sim' or 'robot', got {self.source!r}")


# ---------------------------------------------------------------------------------------------------
# Raw streams: what one bag holds on the topics we use, as arrays sorted by stamp.


@dataclass
class _Streams:
    """Per-topic messages, appended while reading; `_stack_streams` turns the lists into arrays."""

    js_stamps: list[int] = field(default_factory=list)
    js_pos: list[np.ndarray] = field(default_factory=list)  # each (7,) float64, trajectory order
    js_vel: list[np.ndarray] = field(default_factory=list)
    js_grip: list[float] = field(default_factory=list)
    img_stamps: list[int] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    wrist_stamps: list[int] = field(default_factory=list)
    wrist_images: list[np.ndarray] = field(default_factory=list)
    cmd_stamps: list[int] = field(default_factory=list)
    cmds: list[np.ndarray] = field(default_factory=list)
    raw_stamps: list[int] = field(default_factory=list)
    raw_actions: list[np.ndarray] = field(default_factory=list)
    instr_stamps: list[int] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    infos: list[Any] = field(default_factory=list)
    sim: dict[str, tuple[list[int], list[np.ndarray]]] = field(default_factory=dict)


def _stamp(msg, log_ns: int, use_header: bool) -> int:
    if use_header:
        s = msg.header.stamp
        ns = int(s.sec) * NS + int(s.nanosec)
        if ns > 0:
            return ns
    return int(log_ns)


def _decode_image(msg, msgtype: str, where: str) -> np.ndarray:
    """An RGB (H, W, 3) uint8 frame from an Image or CompressedImage message."""
    if msgtype == MSG_COMPRESSED_IMAGE:
        import cv2

        bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise BagError(f"{where}: compressed image (format {msg.format!r}) does not decode")
        return np.ascontiguousarray(bgr[:, :, ::-1])
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8UC3": 3, "8UC1": 1}
    enc = msg.encoding
    if enc not in channels:
        raise BagError(f"{where}: image encoding {enc!r} is not supported (use one of {sorted(channels)})")
    c = channels[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.asarray(msg.data, dtype=np.uint8)
    if step < w * c or data.size < h * step:
        raise BagError(f"{where}: image data has {data.size} bytes, expected {h}x{step} for {w}x{h} {enc}")
    img = data[: h * step].reshape(h, step)[:, : w * c].reshape(h, w, c)
    if c == 1:
        img = np.repeat(img, 3, axis=2)
    elif enc in ("bgr8", "bgra8"):
        img = img[:, :, 2::-1]
    elif c == 4:
        img = img[:, :, :3]
    return np.ascontiguousarray(img)


def _check_type(conn, expected: Iterable[str], bag: Path) -> None:
    expected = tuple(expected)
    if conn.msgtype not in expected:
        raise BagError(
            f"{bag}: topic {conn.topic} has message type {conn.msgtype}, expected {' or '.join(expected)}"
        )


def _open_reader(bag: Path) -> Reader:
    """A rosbag2 reader of a bag folder, or of a lone .mcap/.db3 file (or folder whose metadata.yaml
    is missing because the recording was killed before closing)."""
    if not bag.exists():
        raise BagError(f"{bag}: no such bag")
    if bag.is_dir() and not (bag / "metadata.yaml").exists():
        files = sorted(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
        if len(files) != 1:
            raise BagError(
                f"{bag}: no metadata.yaml and {len(files)} storage files - the recording was cut off "
                f"before it was closed; run `ros2 bag reindex {bag}` to rebuild it"
            )
        bag = files[0]
    if bag.is_file() and bag.suffix not in (".mcap", ".db3"):
        raise BagError(f"{bag}: not a rosbag2 folder nor a .mcap/.db3 file")
    return Reader(bag)


def _custom_data(reader: Reader) -> dict[str, str]:
    """The bag's custom metadata: from metadata.yaml, or for a lone .mcap file from the copy rosbag2
    keeps inside it (the "rosbag2" metadata record)."""
    meta = getattr(reader.storage, "metadata", None)
    custom = dict(getattr(meta, "custom", None) or {})
    path = Path(reader.path)
    if custom or path.suffix != ".mcap":
        return custom
    try:
        import yaml
        from mcap.reader import make_reader

        with open(path, "rb") as f:
            for record in make_reader(f).iter_metadata():
                if record.name == "rosbag2" and "serialized_metadata" in record.metadata:
                    info = yaml.safe_load(record.metadata["serialized_metadata"]) or {}
                    custom = dict(info.get("custom_data") or {})
    except Exception:  # noqa: BLE001 - metadata is a bonus; the messages are what count
        return {}
    return custom


def _describe(err: BaseException) -> str:
    """Name the kind of damage a low-level reader error means (from its text, which names no path)."""
    text = str(err) or type(err).__name__
    low = text.lower()
    if isinstance(err, _DB_ERRORS) or "database disk image" in low or "cannot open database" in low:
        return f"SQLite storage is truncated or corrupted: {text}"
    if isinstance(err, (EOFError, struct.error)) or any(
        k in low for k in ("truncated record", "end magic", "mcap footer", "summary offset", "seems to be empty")
    ):
        return f"file is truncated (cut-off tail?): {text}"
    if any(k in low for k in ("checksum", "chunk", "record", "magic", "decompress")):
        return f"file is corrupted (bad chunk): {text}"
    return text


def _collect(reader, bag: Path, cfg: BagReadConfig) -> tuple[_Streams, dict[str, str]]:
    store = episode_typestore()
    by_topic: dict[str, list] = {}
    for c in reader.connections:
        by_topic.setdefault(c.topic, []).append(c)
    present = sorted(by_topic)

    def needed(topic: str, types: tuple[str, ...], required: bool, what: str) -> list:
        conns = by_topic.get(topic, [])
        if not conns:
            if required:
                raise BagError(f"{bag}: missing topic {topic} ({what}); topics present: {present}")
            return []
        for c in conns:
            _check_type(c, types, bag)
        return conns

    has_raw = cfg.prefer_raw_actions and bool(by_topic.get(TOPIC_ACTION_RAW))
    conns = {
        "js": needed(cfg.joint_states_topic, (MSG_JOINT_STATE,), True, "joint states, sensor_msgs/msg/JointState"),
        "img": needed(cfg.image_topic, (MSG_IMAGE, MSG_COMPRESSED_IMAGE), True, "camera, sensor_msgs/msg/Image"),
        "cmd": needed(
            cfg.command_topic, (MSG_FLOAT64_ARRAY,), not has_raw, "joint commands, std_msgs/msg/Float64MultiArray"
        ),
        "raw": needed(TOPIC_ACTION_RAW, (MSG_FLOAT32_ARRAY,), False, "raw actions") if has_raw else [],
        "wrist": []
        if cfg.wrist_image_topic == cfg.image_topic  # one connection must map to one stream
        else needed(cfg.wrist_image_topic, (MSG_IMAGE, MSG_COMPRESSED_IMAGE), False, "wrist camera"),
        "instr": needed(cfg.instruction_topic, (MSG_STRING,), False, "instruction"),
        "info": needed(cfg.episode_info_topic, (MSG_EPISODE_INFO,), False, "episode markers"),
    }
    for t in (TOPIC_EE_POSITION, TOPIC_OBJECT_POSITIONS, TOPIC_CONTACT_FORCE):
        conns[t] = needed(t, (MSG_FLOAT32_ARRAY,), False, "sim state")
    kind_of = {c.id: k for k, cs in conns.items() for c in cs}

    s = _Streams()
    cmd_index = {n: i for i, n in enumerate(cfg.command_joint_names)}
    n_arm = len(cfg.joint_names)
    js_index_cache: dict[tuple[str, ...], tuple[np.ndarray, list[int]]] = {}
    frame_shapes: dict[str, tuple[int, ...]] = {}  # per camera ("img", "wrist"): its first frame's shape
    wanted = [c for cs in conns.values() for c in cs]
    total = sum(getattr(c, "msgcount", 0) for c in wanted) or None
    stream = tqdm(
        reader.messages(connections=wanted), total=total, desc=bag.name, unit="msg", leave=False, disable=not cfg.progress
    )
    for conn, log_ns, raw in stream:
        kind = kind_of[conn.id]
        try:
            msg = store.deserialize_cdr(raw, conn.msgtype)
        except Exception as e:
            raise BagError(f"{bag}: a {conn.msgtype} message on {conn.topic} at {log_ns} ns does not decode ({e})") from e
        where = f"{bag}: {conn.topic} at {log_ns} ns"
        if kind == "js":
            names = tuple(msg.name)
            cached = js_index_cache.get(names)
            if cached is None:
                lookup = {n: i for i, n in enumerate(names)}
                missing = [n for n in cfg.joint_names if n not in lookup]
                if missing:
                    raise BagError(f"{where}: joint state lacks joints {missing} (has {list(names)})")
                cached = (np.array([lookup[n] for n in cfg.joint_names]), [lookup[n] for n in cfg.finger_joint_names if n in lookup])
                js_index_cache[names] = cached
            arm_idx, finger_idx = cached
            pos = np.asarray(msg.position, dtype=np.float64)
            vel = np.asarray(msg.velocity, dtype=np.float64)
            if pos.shape[0] != len(names):
                raise BagError(f"{where}: joint state has {len(names)} names but {pos.shape[0]} positions")
            s.js_stamps.append(_stamp(msg, log_ns, cfg.use_header_stamps))
            s.js_pos.append(pos[arm_idx])
            s.js_vel.append(vel[arm_idx] if vel.shape[0] == len(names) else np.zeros(n_arm))
            s.js_grip.append(float(sum(pos[i] for i in finger_idx)))
        elif kind in ("img", "wrist"):
            img = _decode_image(msg, conn.msgtype, where)
            first = frame_shapes.setdefault(kind, img.shape)
            if img.shape != first:
                raise BagError(f"{where}: image size changed from {first[:2]} to {img.shape[:2]}")
            stamps, frames = (s.img_stamps, s.images) if kind == "img" else (s.wrist_stamps, s.wrist_images)
            stamps.append(_stamp(msg, log_ns, cfg.use_header_stamps))
            frames.append(img)
        elif kind == "cmd":
            data = np.asarray(msg.data, dtype=np.float64)
            need = max(cmd_index[n] for n in cfg.joint_names) + 1
            if data.shape[0] < need:
                raise BagError(f"{where}: command has {data.shape[0]} values, expected at least {need}")
            arm = data[[cmd_index[n] for n in cfg.joint_names]]
            gi = cmd_index.get(GRIPPER_COMMAND)
            grip = data[gi] if gi is not None and gi < data.shape[0] else 0.0
            s.cmd_stamps.append(int(log_ns))
            s.cmds.append(np.concatenate([arm, [grip]]))
        elif kind == "raw":
            s.raw_stamps.append(int(log_ns))
            s.raw_actions.append(np.asarray(msg.data, dtype=np.float32))
        elif kind == "instr":
            s.instr_stamps.append(int(log_ns))
            s.instructions.append(str(msg.data))
        elif kind == "info":
            s.infos.append(msg)
        else:
            stamps, values = s.sim.setdefault(kind, ([], []))
            stamps.append(int(log_ns))
            dims = [int(d.size) for d in msg.layout.dim] or [len(msg.data)]
            values.append(np.asarray(msg.data, dtype=np.float32).reshape(dims))
    return s, _custom_data(reader)


# ---------------------------------------------------------------------------------------------------
# Episodes from streams.


@dataclass
class _Segment:
    start_ns: int
    end_ns: int
    info: Any = None  # the EpisodeInfo marker, if any


def _segments(s: _Streams, js: np.ndarray, cfg: BagReadConfig, bag: Path) -> list[_Segment]:
    mode = cfg.segment_by
    if mode == "auto":
        mode = "markers" if s.infos else "gaps"
    if mode == "markers":
        if not s.infos:
            raise BagError(f"{bag}: segment_by='markers' but topic {cfg.episode_info_topic} has no EpisodeInfo")
        segs = []
        for info in s.infos:
            start = int(info.start_time.sec) * NS + int(info.start_time.nanosec)
            dur = int(info.duration.sec) * NS + int(info.duration.nanosec)
            segs.append(_Segment(start, start + dur, info))
        return sorted(segs, key=lambda g: g.start_ns)
    if mode == "none":
        return [_Segment(int(js[0]), int(js[-1]))]
    return [_Segment(int(js[a]), int(js[b - 1])) for a, b in split_by_gaps(js, int(cfg.gap_s * NS))]


def _episode_id(bag: Path, start_ns: int) -> str:
    """A stable 32-hex id for an unmarked episode: the same bag imported twice gives the same ids."""
    return hashlib.sha256(f"{bag.resolve().name}:{start_ns}".encode()).hexdigest()[:32]


def _build(
    s: _Streams, seg: _Segment, custom: dict[str, str], ours: bool, cfg: BagReadConfig, bag: Path
) -> Trajectory | None:
    js, img, wr = s.js_stamps, s.img_stamps, s.wrist_stamps
    # The first step is the first moment with both a joint state and an image of this segment.
    first_js = np.searchsorted(js, seg.start_ns, side="left")
    first_img = np.searchsorted(img, seg.start_ns, side="left")
    if first_js >= len(js) or first_img >= len(img):
        return None
    lo = max(int(js[first_js]), int(img[first_img]))
    # A segment with wrist frames also waits for its first one, so every step has a wrist frame at or
    # before it; a segment without any (the camera was off) keeps its steps and gets no wrist images.
    first_wr = np.searchsorted(wr, seg.start_ns, side="left")
    has_wrist = first_wr < len(wr) and int(wr[first_wr]) <= seg.end_ns
    if has_wrist:
        lo = max(lo, int(wr[first_wr]))
    if lo > seg.end_ns:
        return None
    if cfg.control_rate_hz is None:
        # Ours: one step per joint state (each step wrote one). Others: one step per camera frame,
        # so no frame is shown twice or skipped.
        stamps = js if ours else img
        steps = stamps[(stamps >= lo) & (stamps <= seg.end_ns)]
    else:
        steps = control_grid(lo, seg.end_ns, cfg.control_rate_hz)
    if len(steps) < cfg.min_steps:
        return None
    ji = latest_at_or_before(js, steps)
    ii = latest_at_or_before(img, steps)
    q = s.js_pos[ji]  # (T, 7) float64
    if len(s.raw_actions):
        ri = command_in_effect(s.raw_stamps, steps)
        if (ri < 0).any():
            raise BagError(f"{bag}: {TOPIC_ACTION_RAW} has no action for a step at {int(steps[ri < 0][0])} ns")
        actions = s.raw_actions[ri]
    else:
        ci = command_in_effect(s.cmd_stamps, steps)
        cmds = s.cmds[np.maximum(ci, 0)]
        actions = np.concatenate([cmds[:, :-1] - q, cmds[:, -1:]], axis=1).astype(np.float32)
        actions[ci < 0] = 0.0  # nothing commanded yet: hold still
    if actions.shape[1] != len(ARM_JOINT_NAMES) + 1:
        raise BagError(f"{bag}: actions have {actions.shape[1]} values, expected {len(ARM_JOINT_NAMES) + 1}")

    meta: dict[str, Any] = {}
    if META_TRAJECTORY in custom:
        try:
            meta = json.loads(custom[META_TRAJECTORY])
        except json.JSONDecodeError as e:
            raise BagError(f"{bag}: custom metadata {META_TRAJECTORY} is not JSON ({e})") from e
    info = seg.info
    if info is not None:
        episode_id, task, source = info.episode_id, info.task, info.source or cfg.source
        instruction, policy_version = info.instruction, info.policy_version
        success = bool(info.success) if info.success_known else None
        if len(info.metric_names) != len(info.metric_values):
            raise BagError(f"{bag}: EpisodeInfo {info.episode_id!r} has {len(info.metric_names)} metric names "
                           f"but {len(info.metric_values)} values")
        metrics = {str(n): float(v) for n, v in zip(info.metric_names, info.metric_values, strict=True)}
    else:
        episode_id, task, source = _episode_id(bag, int(steps[0])), cfg.task, cfg.source
        instruction, policy_version, success, metrics = "", "", None, {}
    if not instruction:
        k = int(latest_at_or_before(s.instr_stamps, np.array([seg.end_ns]))[0])
        instruction = s.instructions[k] if k >= 0 else cfg.instruction
    mine = meta if meta.get("episode_id") == episode_id else {}
    if source not in ("sim", "robot"):
        source = cfg.source

    origin = float(mine.get("time_origin_s", 0.0))
    kw: dict[str, Any] = dict(
        episode_id=episode_id,
        task=task,
        instruction=instruction,
        timestamps=origin + (steps - steps[0]).astype(np.float64) / NS,
        images=s.images[ii],
        joint_positions=q.astype(np.float32),
        joint_velocities=s.js_vel[ji].astype(np.float32),
        gripper=s.js_grip[ji].astype(np.float32),
        actions=actions.astype(np.float32),
        joint_names=tuple(mine.get("joint_names", cfg.joint_names)),
        source=source,
        policy_version=policy_version or mine.get("policy_version", ""),
        seed=mine.get("seed"),
        success=success if info is not None else mine.get("success"),
        metrics=metrics or dict(mine.get("metrics", {})),
        extra=dict(mine.get("extra", {})),
    )
    if not mine:
        kw["extra"] = {"source_bag": str(bag.resolve()), "start_time_ns": int(steps[0])}
    if has_wrist:
        kw["wrist_images"] = s.wrist_images[latest_at_or_before(wr, steps)]
    # Sim-only state, where every step has a sample (stacked per episode: object counts may differ).
    for topic, name in (
        (TOPIC_EE_POSITION, "ee_positions"),
        (TOPIC_OBJECT_POSITIONS, "object_positions"),
        (TOPIC_CONTACT_FORCE, "contact_forces"),
    ):
        if topic in s.sim:
            st, vals = s.sim[topic]
            k = latest_at_or_before(np.asarray(st, np.int64), steps)
            if (k >= 0).all():
                try:
                    arr = np.stack([vals[i] for i in k]).astype(np.float32)
                except ValueError as e:
                    raise BagError(f"{bag}: {topic} changes shape within episode {episode_id!r} ({e})") from e
                kw[name] = arr.reshape(-1) if name == "contact_forces" else arr
    try:
        return Trajectory(**kw)
    except TrajectoryError as e:
        raise BagError(f"{bag}: episode {episode_id!r} is malformed: {e}") from e


def read_episodes(bag_dir: str | Path, config: BagReadConfig | None = None, **overrides) -> list[Trajectory]:
    """All episodes of one rosbag2 folder (MCAP or SQLite3) or lone .mcap/.db3 file, in time order.

    Keywords override fields of `config` (e.g. `image_topic=`, `control_rate_hz=`, `segment_by=`).

    Raises BagError naming the bag and the problem: missing topic, wrong message type, a truncated
    or corrupted file, an unsupported image encoding, a joint missing from the joint states.
    """
    cfg = config or BagReadConfig()
    if overrides:
        cfg = dataclasses.replace(cfg, **overrides)
    bag = Path(bag_dir)
    salvaged = ""
    try:
        with _open_reader(bag) as reader:
            streams, custom = _collect(reader, bag, cfg)
    except BagError:
        raise
    except (ReaderError, *_DB_ERRORS, struct.error, EOFError, OSError, KeyError, IndexError, ValueError) as e:
        what = _describe(e)
        mcaps = [bag] if bag.suffix == ".mcap" else sorted(bag.glob("*.mcap")) if bag.is_dir() else []
        if not (cfg.salvage_truncated and what.startswith("file is truncated") and len(mcaps) == 1):
            raise BagError(f"{bag}: {what}") from e
        from rlhf.episodes.salvage import SalvageReader

        reader = SalvageReader(mcaps[0])
        streams, custom = _collect(reader, bag, cfg)
        salvaged = reader.stopped_by or what
    if not streams.js_stamps:
        raise BagError(f"{bag}: topic {cfg.joint_states_topic} has no messages")
    if not streams.img_stamps:
        raise BagError(f"{bag}: topic {cfg.image_topic} has no messages")
    # Bags are ordered by receive time; header stamps may interleave differently.
    _sort_stream(streams, "js_stamps", ("js_pos", "js_vel", "js_grip"))
    _sort_stream(streams, "img_stamps", ("images",))
    _sort_stream(streams, "wrist_stamps", ("wrist_images",))
    if not streams.cmds and not streams.raw_actions:
        raise BagError(f"{bag}: topic {cfg.command_topic} has no messages (actions cannot be recovered)")
    _stack_streams(streams)
    ours = META_FORMAT in custom
    js = streams.js_stamps
    episodes = []
    for seg in _segments(streams, js, cfg, bag):
        traj = _build(streams, seg, custom, ours, cfg, bag)
        if traj is not None:
            if salvaged:
                traj.extra["salvaged"] = salvaged
            episodes.append(traj)
    if not episodes:
        raise BagError(f"{bag}: no episode with at least {cfg.min_steps} steps holding both joint states and images")
    return episodes


def _stack_streams(s: _Streams) -> None:
    """Turn the per-message lists into arrays once, so each episode only indexes into them."""
    s.js_stamps = np.asarray(s.js_stamps, dtype=np.int64)
    s.js_pos, s.js_vel = np.stack(s.js_pos), np.stack(s.js_vel)
    s.js_grip = np.asarray(s.js_grip, dtype=np.float64)
    s.img_stamps = np.asarray(s.img_stamps, dtype=np.int64)
    s.images = np.stack(s.images)
    s.wrist_stamps = np.asarray(s.wrist_stamps, dtype=np.int64)
    s.wrist_images = np.stack(s.wrist_images) if len(s.wrist_images) else np.zeros((0, 1, 1, 3), np.uint8)
    s.cmd_stamps = np.asarray(s.cmd_stamps, dtype=np.int64)
    s.cmds = np.stack(s.cmds) if len(s.cmds) else np.zeros((0, len(ARM_JOINT_NAMES) + 1))
    s.raw_stamps = np.asarray(s.raw_stamps, dtype=np.int64)
    if len(s.raw_actions):
        s.raw_actions = np.stack(s.raw_actions)
    s.instr_stamps = np.asarray(s.instr_stamps, dtype=np.int64)


def _sort_stream(s: _Streams, stamps_attr: str, value_attrs: tuple[str, ...]) -> None:
    stamps = getattr(s, stamps_attr)
    order = np.argsort(np.asarray(stamps, dtype=np.int64), kind="stable")
    if np.all(order[:-1] < order[1:]):
        return
    setattr(s, stamps_attr, [stamps[i] for i in order])
    for a in value_attrs:
        vals = getattr(s, a)
        setattr(s, a, [vals[i] for i in order])


def bag_summary(bag_dir: str | Path) -> dict[str, Any]:
    """Topics (type, count), duration and custom metadata of a bag, without decoding messages."""
    bag = Path(bag_dir)
    try:
        with _open_reader(bag) as reader:
            return {
                "path": str(bag),
                "storage": sorted({p.suffix.lstrip(".") for p in ([bag] if bag.is_file() else bag.iterdir()) if p.suffix in (".mcap", ".db3")}),
                "duration_s": reader.duration / NS,
                "message_count": reader.message_count,
                "topics": {t: {"type": i.msgtype, "count": i.msgcount} for t, i in reader.topics.items()},
                "custom_data": _custom_data(reader),
            }
    except BagError:
        raise
    except (ReaderError, *_DB_ERRORS, struct.error, EOFError, OSError) as e:
        raise BagError(f"{bag}: {_describe(e)}") from e
