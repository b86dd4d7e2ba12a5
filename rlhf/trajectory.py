"""The core's trajectory type: one episode of the arm, from the sim or a real robot.

Every phase speaks this type: the sim's rollouts produce it, the episode store reads and writes it
as rosbag2/MCAP, the reward model scores it and the policy learns from it.

Shapes (T = number of control steps):

| field              | shape          | dtype   | meaning                                            |
|--------------------|----------------|---------|----------------------------------------------------|
| timestamps         | (T,)           | float64 | seconds since the episode's first observation      |
| images             | (T, H, W, 3)   | uint8   | RGB camera frame seen *before* the action at t     |
| joint_positions    | (T, 7)         | float32 | arm joint positions, rad                           |
| joint_velocities   | (T, 7)         | float32 | arm joint velocities, rad/s                        |
| gripper            | (T,)           | float32 | gripper opening (sum of both fingers), m           |
| actions            | (T, 8)         | float32 | commanded joint deltas (rad) + gripper command [-1, 1] |
| ee_positions       | (T, 3) or None | float32 | end-effector position in the base frame, m         |
| object_positions   | (T, K, 3) or None | float32 | task objects' positions, m (sim only)          |
| contact_forces     | (T,) or None   | float32 | largest contact normal force on the arm, N (sim only) |
| wrist_images       | (T, h, w, 3) or None | uint8 | RGB frame of the camera on the hand, where there is one |
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from rlhf.atomic import atomic_write_bytes
from rlhf.constants import ACTION_DIM, ARM_JOINT_NAMES, NUM_ARM_JOINTS

_ARRAY_FIELDS = (
    "timestamps",
    "images",
    "joint_positions",
    "joint_velocities",
    "gripper",
    "actions",
    "ee_positions",
    "object_positions",
    "contact_forces",
    "wrist_images",
)
_OPTIONAL_ARRAYS = ("ee_positions", "object_positions", "contact_forces", "wrist_images")
FORMAT_VERSION = 1


class TrajectoryError(ValueError):
    """A trajectory (or a file holding one) is malformed; the message names what is wrong."""


@dataclass
class Trajectory:
    """One episode. See the module docstring for array shapes and units."""

    episode_id: str
    task: str
    instruction: str
    timestamps: np.ndarray
    images: np.ndarray
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    gripper: np.ndarray
    actions: np.ndarray
    ee_positions: np.ndarray | None = None
    object_positions: np.ndarray | None = None
    contact_forces: np.ndarray | None = None
    wrist_images: np.ndarray | None = None
    joint_names: tuple[str, ...] = ARM_JOINT_NAMES
    source: str = "sim"  # "sim" or "robot"
    policy_version: str = ""  # e.g. "scripted:expert", "bc:3f2a", "ppo:iter12"
    seed: int | None = None
    success: bool | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # gold metrics where known
    extra: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable annotations

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    @property
    def duration(self) -> float:
        """Seconds between first and last observation (0 for a single step)."""
        return float(self.timestamps[-1] - self.timestamps[0]) if len(self) else 0.0

    def validate(self) -> None:
        """Raise TrajectoryError naming the first field whose shape, dtype or value is wrong."""
        t = self.timestamps
        if not isinstance(t, np.ndarray) or t.ndim != 1:
            raise TrajectoryError(f"episode {self.episode_id!r}: timestamps must be a 1-D array")
        n = t.shape[0]
        expect = {
            "images": (n, None, None, 3),
            "joint_positions": (n, NUM_ARM_JOINTS),
            "joint_velocities": (n, NUM_ARM_JOINTS),
            "gripper": (n,),
            "actions": (n, ACTION_DIM),
            "ee_positions": (n, 3),
            "object_positions": (n, None, 3),
            "contact_forces": (n,),
            "wrist_images": (n, None, None, 3),
        }
        for name, shape in expect.items():
            arr = getattr(self, name)
            if arr is None:
                if name in _OPTIONAL_ARRAYS:
                    continue
                raise TrajectoryError(f"episode {self.episode_id!r}: {name} is missing")
            if not isinstance(arr, np.ndarray):
                raise TrajectoryError(f"episode {self.episode_id!r}: {name} must be a numpy array")
            if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=True)):
                raise TrajectoryError(
                    f"episode {self.episode_id!r}: {name} has shape {arr.shape}, expected "
                    f"{tuple('*' if s is None else s for s in shape)}"
                )
        for name in ("images", "wrist_images"):
            arr = getattr(self, name)
            if arr is not None and arr.dtype != np.uint8:
                raise TrajectoryError(f"episode {self.episode_id!r}: {name} must be uint8, got {arr.dtype}")
        if n > 1 and np.any(np.diff(t) < 0):
            raise TrajectoryError(f"episode {self.episode_id!r}: timestamps go backwards")
        for name in ("timestamps", "joint_positions", "joint_velocities", "gripper", "actions"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise TrajectoryError(f"episode {self.episode_id!r}: {name} contains NaN or inf")
        if len(self.joint_names) != NUM_ARM_JOINTS:
            raise TrajectoryError(
                f"episode {self.episode_id!r}: joint_names has {len(self.joint_names)} names, expected {NUM_ARM_JOINTS}"
            )
        if self.source not in ("sim", "robot"):
            raise TrajectoryError(f"episode {self.episode_id!r}: source must be 'sim' or 'robot', got {self.source!r}")

    def success_step(self, dt: float) -> int | None:
        """Index of the step whose action completed the task, or None: not successful, success outside
        these steps, or its time unknown. The time is `extra["success_time_s"]` on this trajectory's
        clock (sim rollouts and the recorder write it); step t's action takes effect one period later."""
        ts = self.extra.get("success_time_s")
        if not self.success or ts is None or not len(self):
            return None
        k = int(round((float(ts) - dt - float(self.timestamps[0])) / dt))
        return k if 0 <= k < len(self) else None

    # ------------------------------------------------------------------ views
    def slice(self, start: int, stop: int) -> Trajectory:
        """Steps [start, stop) as a new trajectory (timestamps keep their origin)."""
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _ARRAY_FIELDS:
            if kw[name] is not None:
                kw[name] = kw[name][start:stop]
        kw["metrics"] = dict(self.metrics)
        kw["extra"] = dict(self.extra)
        return Trajectory(**kw)

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> Path:
        """Write to a compressed .npz atomically (temp file + rename); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "episode_id": self.episode_id,
            "task": self.task,
            "instruction": self.instruction,
            "joint_names": list(self.joint_names),
            "source": self.source,
            "policy_version": self.policy_version,
            "seed": self.seed,
            "success": self.success,
            "metrics": {k: float(v) for k, v in self.metrics.items()},
            "extra": self.extra,
        }
        arrays = {name: getattr(self, name) for name in _ARRAY_FIELDS if getattr(self, name) is not None}
        buf = io.BytesIO()
        np.savez_compressed(buf, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Trajectory:
        """Read a file written by `save`; raise TrajectoryError naming the file and the problem."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                if "__meta__" not in z.files:
                    raise TrajectoryError(f"{path}: not a trajectory file (no __meta__ entry)")
                meta = json.loads(z["__meta__"].tobytes().decode())
                arrays = {name: z[name] for name in _ARRAY_FIELDS if name in z.files}
        except FileNotFoundError:
            raise
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
            if isinstance(e, TrajectoryError):
                raise
            raise TrajectoryError(f"{path}: unreadable trajectory file ({e})") from e
        if meta.get("format_version") != FORMAT_VERSION:
            raise TrajectoryError(f"{path}: format_version {meta.get('format_version')} is not {FORMAT_VERSION}")
        missing = [n for n in _ARRAY_FIELDS if n not in arrays and n not in _OPTIONAL_ARRAYS]
        if missing:
            raise TrajectoryError(f"{path}: missing arrays {missing}")
        meta.pop("format_version")
        meta["joint_names"] = tuple(meta["joint_names"])
        try:
            return cls(**meta, **arrays)
        except TrajectoryError as e:
            raise TrajectoryError(f"{path}: {e}") from e

