"""Configuration of the command-path safety filter, and the arm model it needs (limits, kinematics).

The joint limits and the kinematic chain come from a URDF (by default the pybullet_data Franka
Panda, the arm the sim drives), so the filter knows the same arm the controller does. Any limit
can be overridden from parameters (`SafetyConfig.position_lower`, ...): an empty tuple means "take
it from the URDF".

`ArmModel.ee_poses(q)` / `ee_positions(q)` is forward kinematics of the URDF chain (revolute joints,
fixed joints, origins as xyz + rpy), vectorised over a batch of joint vectors, used for the
workspace box and for the policy's grasp-point features (`rlhf.policy.kinematics`).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlhf.constants import ARM_JOINT_NAMES

# Franka's published joint acceleration limits (rad/s^2); URDFs carry no acceleration limits.
PANDA_ACCELERATION_LIMITS: tuple[float, ...] = (15.0, 7.5, 10.0, 12.5, 15.0, 20.0, 20.0)


@dataclass
class SafetyConfig:
    """Limits and timing of the safety filter between the policy and the arm."""

    joint_names: tuple[str, ...] = ARM_JOINT_NAMES
    """Arm joints the commands address, in command order."""
    urdf_path: str = ""
    """URDF giving limits and kinematics; empty: the pybullet_data Franka Panda."""
    ee_link: str = "panda_grasptarget"
    """URDF link whose position must stay inside the workspace box."""
    position_lower: tuple[float, ...] = ()
    """Lower joint position limits, rad (one per joint); empty: the URDF's."""
    position_upper: tuple[float, ...] = ()
    """Upper joint position limits, rad; empty: the URDF's."""
    velocity_limits: tuple[float, ...] = ()
    """Joint speed limits, rad/s; empty: the URDF's, times `velocity_scale`."""
    acceleration_limits: tuple[float, ...] = PANDA_ACCELERATION_LIMITS
    """Joint acceleration limits, rad/s^2 (URDFs have none; default: Franka's datasheet)."""
    position_margin: float = 0.02
    """Commands stay this far inside the position limits, rad."""
    velocity_scale: float = 0.5
    """Fraction of the URDF's speed limits a command may use (when velocity_limits is empty)."""
    max_tracking_error: float = 0.3
    """Largest distance of a command from the measured position per joint, rad (no wind-up)."""
    workspace_min: tuple[float, float, float] = (0.05, -0.6, 0.0)
    """Lower corner of the box the end effector must stay in, m, robot base frame."""
    workspace_max: tuple[float, float, float] = (0.85, 0.6, 0.9)
    """Upper corner of the workspace box, m."""
    gripper_min: float = -1.0
    """Lowest gripper command (closed)."""
    gripper_max: float = 1.0
    """Highest gripper command (open)."""
    control_period_s: float = 0.1
    """Nominal time between commands, s: the longest step a velocity limit is applied over."""
    watchdog_timeout_s: float = 0.5
    """Observations older than this make the filter hold position, s."""
    log_capacity: int = 1000
    """How many recent clip/refusal events the filter keeps in memory (all are counted)."""

    def __post_init__(self) -> None:
        self.joint_names = tuple(str(n) for n in self.joint_names)
        n = len(self.joint_names)
        if n == 0:
            raise ValueError("SafetyConfig.joint_names must not be empty")
        for name in ("position_lower", "position_upper", "velocity_limits", "acceleration_limits"):
            value = tuple(float(v) for v in getattr(self, name))
            setattr(self, name, value)
            if value and len(value) != n:
                raise ValueError(f"SafetyConfig.{name} has {len(value)} values for {n} joints")
            if not all(math.isfinite(v) for v in value):
                raise ValueError(f"SafetyConfig.{name} must be finite, got {value}")
        for name in ("velocity_limits", "acceleration_limits"):
            if any(v <= 0 for v in getattr(self, name)):
                raise ValueError(f"SafetyConfig.{name} must be > 0, got {getattr(self, name)}")
        if not self.acceleration_limits:
            raise ValueError("SafetyConfig.acceleration_limits must be given (a URDF has none)")
        self.workspace_min = tuple(float(v) for v in self.workspace_min)
        self.workspace_max = tuple(float(v) for v in self.workspace_max)
        if len(self.workspace_min) != 3 or len(self.workspace_max) != 3:
            raise ValueError("SafetyConfig.workspace_min and workspace_max must have 3 values (x, y, z)")
        if any(lo >= hi for lo, hi in zip(self.workspace_min, self.workspace_max, strict=True)):
            raise ValueError(
                f"SafetyConfig.workspace_min {self.workspace_min} must be below workspace_max {self.workspace_max}"
            )
        checks = {
            "position_margin": 0.0 <= self.position_margin < 0.5,
            "velocity_scale": 0.0 < self.velocity_scale <= 1.0,
            "max_tracking_error": self.max_tracking_error > 0,
            "control_period_s": 0.0 < self.control_period_s <= 1.0,
            "watchdog_timeout_s": self.watchdog_timeout_s > 0,
            "log_capacity": self.log_capacity >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"SafetyConfig.{name} is out of range: {getattr(self, name)!r}")
        if not self.gripper_min < self.gripper_max:
            raise ValueError(f"SafetyConfig.gripper_min {self.gripper_min} must be < gripper_max {self.gripper_max}")


# ---------------------------------------------------------------------- URDF
def default_urdf() -> Path:
    """The pybullet_data Franka Panda URDF (the arm the sim drives)."""
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "franka_panda" / "panda.urdf"


def _rpy_matrix(r: float, p: float, y: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def _floats(text: str | None, n: int, default: float = 0.0) -> list[float]:
    if not text:
        return [default] * n
    values = [float(v) for v in text.split()]
    if len(values) != n:
        raise ValueError(f"expected {n} numbers, got {text!r}")
    return values


@dataclass
class _ChainJoint:
    origin: np.ndarray  # (4, 4) parent link -> joint frame at q = 0
    axis: np.ndarray  # (3,) unit rotation axis (revolute) or zeros (fixed)
    index: int  # position in the command vector, or -1 for a fixed joint


class ArmModel:
    """Joint limits and forward kinematics of an arm, read from a URDF.

    lower, upper, velocity: (J,) in the order of `joint_names`.
    """

    def __init__(self, urdf_path: str | Path, joint_names: tuple[str, ...], ee_link: str) -> None:
        path = Path(urdf_path)
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            raise ValueError(f"{path}: cannot read the URDF ({e})") from e
        joints = {j.get("name"): j for j in root.iter("joint")}
        by_child = {j.find("child").get("link"): j for j in joints.values() if j.find("child") is not None}
        missing = [n for n in joint_names if n not in joints]
        if missing:
            raise ValueError(f"{path}: URDF has no joints {missing}")
        lower, upper, velocity = [], [], []
        for name in joint_names:
            lim = joints[name].find("limit")
            if lim is None or lim.get("lower") is None or lim.get("upper") is None:
                raise ValueError(f"{path}: joint {name!r} has no <limit lower upper>")
            lower.append(float(lim.get("lower")))
            upper.append(float(lim.get("upper")))
            velocity.append(float(lim.get("velocity", "inf")))
        self.joint_names = tuple(joint_names)
        self.lower = np.array(lower)
        self.upper = np.array(upper)
        self.velocity = np.array(velocity)
        # Walk from the end-effector link up to the root, then reverse: the chain base -> ee.
        chain: list[_ChainJoint] = []
        link = ee_link
        if link not in by_child and link not in {lk.get("name") for lk in root.iter("link")}:
            raise ValueError(f"{path}: URDF has no link {ee_link!r}")
        index_of = {n: i for i, n in enumerate(joint_names)}
        while link in by_child:
            j = by_child[link]
            o = j.find("origin")
            xyz = _floats(o.get("xyz") if o is not None else None, 3)
            rpy = _floats(o.get("rpy") if o is not None else None, 3)
            t = np.eye(4)
            t[:3, :3] = _rpy_matrix(*rpy)
            t[:3, 3] = xyz
            jtype = j.get("type")
            if jtype in ("revolute", "continuous"):
                if j.get("name") not in index_of:
                    raise ValueError(f"{path}: joint {j.get('name')!r} on the way to {ee_link!r} is not commanded")
                ax = j.find("axis")
                axis = np.array(_floats(ax.get("xyz") if ax is not None else None, 3, 0.0))
                if ax is None:
                    axis = np.array([1.0, 0.0, 0.0])
                chain.append(_ChainJoint(t, axis / np.linalg.norm(axis), index_of[j.get("name")]))
            elif jtype == "fixed":
                chain.append(_ChainJoint(t, np.zeros(3), -1))
            else:
                raise ValueError(f"{path}: joint {j.get('name')!r} of type {jtype!r} is not supported in the chain")
            link = j.find("parent").get("link")
        self.chain = chain[::-1]

    def ee_poses(self, q: np.ndarray) -> np.ndarray:
        """End-effector poses of joint vectors q (N, J) -> (N, 4, 4) homogeneous transforms, base frame."""
        q = np.atleast_2d(np.asarray(q, dtype=np.float64))
        n = q.shape[0]
        t = np.broadcast_to(np.eye(4), (n, 4, 4)).copy()
        for cj in self.chain:
            t = t @ cj.origin
            if cj.index >= 0:
                t = t @ _axis_rotations(cj.axis, q[:, cj.index])
        return t

    def ee_positions(self, q: np.ndarray) -> np.ndarray:
        """End-effector positions of joint vectors q (N, J) -> (N, 3), m, base frame."""
        return self.ee_poses(q)[:, :3, 3]


def _axis_rotations(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(N, 4, 4) homogeneous rotations about one unit axis by each angle (Rodrigues)."""
    x, y, z = axis
    c, s = np.cos(angles), np.sin(angles)
    r = np.zeros((angles.shape[0], 4, 4))
    if x == 0.0 and y == 0.0:  # the usual URDF joint axis (every Panda joint): a plain z rotation
        s = s * np.sign(z)
        r[:, 0, 0] = c
        r[:, 0, 1] = -s
        r[:, 1, 0] = s
        r[:, 1, 1] = c
        r[:, 2, 2] = 1.0
        r[:, 3, 3] = 1.0
        return r
    v = 1.0 - c
    r[:, 0, 0] = c + x * x * v
    r[:, 0, 1] = x * y * v - z * s
    r[:, 0, 2] = x * z * v + y * s
    r[:, 1, 0] = y * x * v + z * s
    r[:, 1, 1] = c + y * y * v
    r[:, 1, 2] = y * z * v - x * s
    r[:, 2, 0] = z * x * v - y * s
    r[:, 2, 1] = z * y * v + x * s
    r[:, 2, 2] = c + z * z * v
    r[:, 3, 3] = 1.0
    return r


@dataclass
class ResolvedLimits:
    """The limits the filter enforces, after URDF defaults, overrides and margins. All (J,)."""

    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray


def resolve_limits(config: SafetyConfig, model: ArmModel) -> ResolvedLimits:
    """URDF limits, overridden where the config gives values, shrunk by the position margin."""
    lower = np.array(config.position_lower) if config.position_lower else model.lower.copy()
    upper = np.array(config.position_upper) if config.position_upper else model.upper.copy()
    velocity = np.array(config.velocity_limits) if config.velocity_limits else model.velocity * config.velocity_scale
    lower, upper = lower + config.position_margin, upper - config.position_margin
    if np.any(lower >= upper):
        bad = [config.joint_names[i] for i in np.flatnonzero(lower >= upper)]
        raise ValueError(f"SafetyConfig: position limits leave no room for joints {bad} after the margin")
    if not np.all(np.isfinite(velocity)) or np.any(velocity <= 0):
        raise ValueError(f"SafetyConfig: velocity limits must be finite and > 0, got {velocity}")
    return ResolvedLimits(lower, upper, velocity, np.array(config.acceleration_limits))
