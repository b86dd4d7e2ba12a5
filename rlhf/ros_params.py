"""ROS parameters declared from config dataclasses, so each default is written once (in the dataclass).

ROS-free: `param_specs(SimConfig, prefix="sim.")` lists (name, default, type, description) for every
field (the description is the field's docstring), and `config_from_params(SimConfig, values, "sim.")`
builds the dataclass back from the values a node read. `rlhf_nodes.params` turns the specs into
`declare_parameter` calls. Nested dataclass fields become dotted names (`sim.randomization.enabled`).

ROS parameters cannot be None, so an optional field whose default is None is declared with a
sentinel meaning "none": NaN for a float, "" for a string, -1 for an int. Fields that ROS
parameters cannot carry (dicts) are not declared; the dataclass default applies.

This module also holds each node's own config (topics, rates, paths) and `NODE_PARAMETERS`: which
configs, under which prefixes, make up each node's parameters.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Any

from rlhf.constants import (
    ARM_JOINT_NAMES,
    TOPIC_CAMERA_INFO,
    TOPIC_EPISODE_INFO,
    TOPIC_EPISODE_REWARD,
    TOPIC_FORWARD_COMMANDS,
    TOPIC_IMAGE,
    TOPIC_INSTRUCTION,
    TOPIC_JOINT_STATES,
    TOPIC_POLICY_STATUS,
    TOPIC_POLICY_UPDATE,
    TOPIC_TRAJECTORY_COMMANDS,
    TOPIC_WRIST_CAMERA_INFO,
    TOPIC_WRIST_IMAGE,
)

# Where the policy sends raw commands when a separate safety_node filters them onto the arm's topics.
TOPIC_SAFETY_FORWARD_IN = "/safety/forward_position_commands"
TOPIC_SAFETY_TRAJECTORY_IN = "/safety/joint_trajectory"
TOPIC_SAFETY_STATUS = "/safety/status"


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: dotted name, default (ROS-typed), type name and description."""

    name: str
    default: Any
    type: str  # bool | int | double | string | bool_array | int_array | double_array | string_array
    description: str


# ---------------------------------------------------------------------- dataclass -> specs
@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Docstring of each dataclass field: the string literal right after its annotation."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body
        for node, nxt in zip(body, body[1:] + [None], strict=True):
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                    docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


_SCALARS = {bool: "bool", int: "int", float: "double", str: "string"}
_NONE_SENTINEL = {"double": math.nan, "string": "", "int": -1}


def _ros_type(tp: Any) -> str | None:
    """The ROS parameter type for a Python annotation, or None if parameters cannot carry it."""
    if tp in _SCALARS:
        return _SCALARS[tp]
    if typing.get_origin(tp) in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if args and all(a == args[0] for a in args) and args[0] in _SCALARS:
            return _SCALARS[args[0]] + "_array"
    return None


def _ros_value(value: Any, ros_type: str) -> Any:
    if ros_type.endswith("_array"):
        conv = {"bool_array": bool, "int_array": int, "double_array": float, "string_array": str}[ros_type]
        return [conv(v) for v in value]
    return {"bool": bool, "int": int, "double": float, "string": str}[ros_type](value)


def param_specs(cls: type, prefix: str = "") -> list[ParamSpec]:
    """Every parameter of dataclass `cls` (recursing into nested dataclasses), names prefixed."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    out: list[ParamSpec] = []
    defaults = cls()
    for f in dataclasses.fields(cls):
        tp, optional = _unwrap_optional(hints[f.name])
        default = getattr(defaults, f.name)
        if dataclasses.is_dataclass(tp):
            out.extend(param_specs(tp, f"{prefix}{f.name}."))
            continue
        ros_type = _ros_type(tp)
        if ros_type is None:
            continue
        doc = docs.get(f.name, "")
        if optional:
            if ros_type not in _NONE_SENTINEL:
                continue
            sentinel = _NONE_SENTINEL[ros_type]
            doc = f"{doc} ({'NaN' if ros_type == 'double' else repr(sentinel)} means none)"
            if default is None:
                default = sentinel
        out.append(ParamSpec(prefix + f.name, _ros_value(default, ros_type), ros_type, doc))
    return out


def config_from_params(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from parameter values keyed by dotted name (missing names keep defaults).

    The dataclass's own `__post_init__` rejects bad values by naming them.
    """
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        tp, optional = _unwrap_optional(hints[f.name])
        name = prefix + f.name
        if dataclasses.is_dataclass(tp):
            kwargs[f.name] = config_from_params(tp, values, name + ".")
            continue
        if name not in values or _ros_type(tp) is None:
            continue
        v = values[name]
        if optional:
            sentinel = _NONE_SENTINEL.get(_ros_type(tp))
            if (isinstance(v, float) and math.isnan(v)) or (sentinel is not None and v == sentinel and not isinstance(sentinel, float)):
                v = None
        if v is not None and typing.get_origin(tp) in (tuple, list):
            v = tuple(v)
        if v is not None and tp is float:
            v = float(v)
        kwargs[f.name] = v
    return cls(**kwargs)


# ---------------------------------------------------------------------- node configs
@dataclass
class SimNodeConfig:
    """sim_node: the PyBullet arm behind the topics of a ros2_control arm."""

    seed: int = 0
    """Seed of the first episode."""
    real_time_factor: float = 1.0
    """Sim seconds per wall second; > 1 runs faster than real time (the /clock topic shows sim time)."""
    publish_clock: bool = True
    """Publish sim time on /clock (nodes with use_sim_time follow it)."""
    joint_states_topic: str = TOPIC_JOINT_STATES
    """Where joint states are published (sensor_msgs/JointState)."""
    image_topic: str = TOPIC_IMAGE
    """Where camera frames are published (sensor_msgs/Image, rgb8)."""
    camera_info_topic: str = TOPIC_CAMERA_INFO
    """Where the camera's intrinsics are published (sensor_msgs/CameraInfo)."""
    forward_command_topic: str = TOPIC_FORWARD_COMMANDS
    """Absolute joint targets (std_msgs/Float64MultiArray: 7 joints, optional 8th = gripper in [-1, 1])."""
    trajectory_command_topic: str = TOPIC_TRAJECTORY_COMMANDS
    """Joint trajectories (trajectory_msgs/JointTrajectory), interpolated in sim time."""
    instruction_topic: str = TOPIC_INSTRUCTION
    """Where each episode's instruction is published (std_msgs/String, latched)."""
    camera_frame_id: str = "camera_color_optical_frame"
    """frame_id of images and camera info."""
    wrist_image_topic: str = TOPIC_WRIST_IMAGE
    """Where the hand camera's frames are published (sensor_msgs/Image, rgb8), when `sim.wrist_camera` is on."""
    wrist_camera_info_topic: str = TOPIC_WRIST_CAMERA_INFO
    """Where the hand camera's intrinsics are published (sensor_msgs/CameraInfo), when `sim.wrist_camera` is on."""
    wrist_camera_frame_id: str = "wrist_camera_color_optical_frame"
    """frame_id of the hand camera's images and camera info."""

    def __post_init__(self) -> None:
        if not 0.0 < self.real_time_factor <= 100.0:
            raise ValueError(f"SimNodeConfig.real_time_factor must be in (0, 100], got {self.real_time_factor}")


@dataclass
class PolicyNodeConfig:
    """policy_node: runs the policy at the control rate on the latest observation."""

    policy_path: str = ""
    """Policy checkpoint folder (or file:// URI); empty: hold position until `~/load_policy`."""
    head_path: str = ""
    """Optional head-only checkpoint loaded on top of the policy at start."""
    control_hz: float = 10.0
    """Control rate, Hz."""
    command_interface: str = "forward"
    """'forward' (Float64MultiArray of absolute targets) or 'trajectory' (JointTrajectory chunks)."""
    forward_command_topic: str = TOPIC_SAFETY_FORWARD_IN
    """Where forward commands go (the safety filter's input; the controller's topic without one)."""
    trajectory_command_topic: str = TOPIC_SAFETY_TRAJECTORY_IN
    """Where trajectory chunks go (the safety filter's input; the controller's topic without one)."""
    trajectory_points: int = 3
    """Points per trajectory chunk (one per control period; at most the policy's chunk size)."""
    send_gripper: bool = True
    """Append the gripper command as an 8th value of forward commands."""
    joint_names: tuple[str, ...] = ARM_JOINT_NAMES
    """Arm joints, in command order (names in /joint_states are matched to these)."""
    joint_states_topic: str = TOPIC_JOINT_STATES
    """Joint states of the arm."""
    image_topic: str = TOPIC_IMAGE
    """Camera frames the policy sees."""
    wrist_image_topic: str = TOPIC_WRIST_IMAGE
    """The hand camera's frames; subscribed to, and watched for staleness, only while the running
    policy was trained with a wrist camera (PolicyConfig.wrist_camera)."""
    instruction_topic: str = TOPIC_INSTRUCTION
    """Task instruction (std_msgs/String)."""
    instruction: str = ""
    """Instruction to use until one arrives on the instruction topic."""
    max_obs_age_s: float = 0.5
    """Observations older than this are stale: the policy does not act on them (no command sent)."""
    deterministic: bool = True
    """Act with the mean action (True) or a Gaussian sample."""
    update_topic: str = TOPIC_POLICY_UPDATE
    """New action heads (rlhf_msgs/PolicyUpdate) arrive here and are hot-swapped."""
    status_topic: str = TOPIC_POLICY_STATUS
    """Per-tick status (std_msgs/String JSON: tick, version, head sha256, action, timing)."""
    torch_threads: int = 1
    """Torch CPU threads for inference (1 keeps the tick steady beside other processes)."""
    tick_source: str = "steady"
    """'steady': a thread on the steady clock with absolute deadlines (wall time, steadiest);
    'ros_timer': a ROS timer in the executor (follows /clock when use_sim_time is set)."""

    def __post_init__(self) -> None:
        if self.tick_source not in ("steady", "ros_timer"):
            raise ValueError(f"PolicyNodeConfig.tick_source must be 'steady' or 'ros_timer', got {self.tick_source!r}")
        if not 0.5 <= self.control_hz <= 200.0:
            raise ValueError(f"PolicyNodeConfig.control_hz must be in [0.5, 200], got {self.control_hz}")
        if self.command_interface not in ("forward", "trajectory"):
            raise ValueError(
                f"PolicyNodeConfig.command_interface must be 'forward' or 'trajectory', got {self.command_interface!r}"
            )
        if self.trajectory_points < 1:
            raise ValueError(f"PolicyNodeConfig.trajectory_points must be >= 1, got {self.trajectory_points}")
        if self.max_obs_age_s <= 0:
            raise ValueError(f"PolicyNodeConfig.max_obs_age_s must be > 0, got {self.max_obs_age_s}")
        if self.torch_threads < 1:
            raise ValueError(f"PolicyNodeConfig.torch_threads must be >= 1, got {self.torch_threads}")
        self.joint_names = tuple(self.joint_names)


@dataclass
class SafetyNodeConfig:
    """safety_node: filters every command on its way to the arm (rlhf.safety)."""

    forward_input_topic: str = TOPIC_SAFETY_FORWARD_IN
    """Raw absolute-target commands in (std_msgs/Float64MultiArray)."""
    trajectory_input_topic: str = TOPIC_SAFETY_TRAJECTORY_IN
    """Raw trajectories in (trajectory_msgs/JointTrajectory)."""
    forward_output_topic: str = TOPIC_FORWARD_COMMANDS
    """Filtered commands out: the arm's forward position controller."""
    trajectory_output_topic: str = TOPIC_TRAJECTORY_COMMANDS
    """Filtered trajectories out: the arm's joint trajectory controller."""
    joint_states_topic: str = TOPIC_JOINT_STATES
    """Measured joint states (the watchdog's main stream)."""
    image_topic: str = TOPIC_IMAGE
    """Camera frames; watched when `watch_image` (a blind policy must not move the arm)."""
    watch_image: bool = True
    """Hold when camera frames are stale, too."""
    status_topic: str = TOPIC_SAFETY_STATUS
    """Counters of clipped, held and refused commands (std_msgs/String JSON)."""
    status_period_s: float = 1.0
    """How often the status is published and clip/refusal counts are logged, s."""

    def __post_init__(self) -> None:
        if self.status_period_s <= 0:
            raise ValueError(f"SafetyNodeConfig.status_period_s must be > 0, got {self.status_period_s}")


@dataclass
class RecorderNodeConfig:
    """recorder_node: records episodes into the episode store (MCAP bag + video + index row)."""

    store_root: str = "episodes"
    """Folder of the episode store."""
    source: str = "sim"
    """Trajectory source written to each episode: 'sim' or 'robot'."""
    write_videos: bool = True
    """Write a browser-playable video of each episode."""
    joint_names: tuple[str, ...] = ARM_JOINT_NAMES
    """Arm joints, in command order."""
    joint_states_topic: str = TOPIC_JOINT_STATES
    """Joint states recorded."""
    image_topic: str = TOPIC_IMAGE
    """Camera frames recorded."""
    wrist_image_topic: str = TOPIC_WRIST_IMAGE
    """The hand camera's frames, recorded as the episode's wrist images while messages arrive on it."""
    forward_command_topic: str = TOPIC_FORWARD_COMMANDS
    """Commands recorded (what the arm was sent, after the safety filter)."""
    trajectory_command_topic: str = TOPIC_TRAJECTORY_COMMANDS
    """Trajectory commands recorded (their point one control period ahead is the step's target)."""
    instruction_topic: str = TOPIC_INSTRUCTION
    """Instruction topic (used when StartEpisode gives none)."""
    policy_status_topic: str = TOPIC_POLICY_STATUS
    """Policy status (the running policy version is recorded when StartEpisode gives none)."""
    episode_topic: str = TOPIC_EPISODE_INFO
    """Where each stored episode is announced (rlhf_msgs/EpisodeInfo)."""
    control_period_s: float = 0.1
    """Nominal control period, s (where trajectory targets are sampled)."""
    urdf_path: str = ""
    """URDF for the end-effector positions recorded with each step (forward kinematics); empty: the pybullet_data Panda."""
    ee_link: str = "panda_grasptarget"
    """End-effector link of that URDF; empty: record no end-effector positions."""
    max_steps: int = 20000
    """A recording stops taking steps after this many (memory bound)."""
    preroll_s: float = 2.0
    """Steps of the last this many seconds (arm clock) are kept while no recording runs, so that
    StartEpisode.start_stamp can begin an episode at a moment that already passed (the sim reset,
    the operator's cue) instead of when the service call arrived."""

    def __post_init__(self) -> None:
        if not self.preroll_s >= 0:
            raise ValueError(f"RecorderNodeConfig.preroll_s must be >= 0, got {self.preroll_s}")
        if self.source not in ("sim", "robot"):
            raise ValueError(f"RecorderNodeConfig.source must be 'sim' or 'robot', got {self.source!r}")
        if self.control_period_s <= 0 or self.max_steps < 1:
            raise ValueError("RecorderNodeConfig.control_period_s must be > 0 and max_steps >= 1")
        self.joint_names = tuple(self.joint_names)


@dataclass
class RewardNodeConfig:
    """reward_node: scores recorded episodes with the reward-model ensemble."""

    reward_checkpoint: str = ""
    """Reward-ensemble checkpoint folder (required)."""
    store_root: str = "episodes"
    """Episode store the episode ids refer to."""
    auto_score: bool = True
    """Score every episode announced on the episode topic."""
    conservative_k: float = 1.0
    """k in the conservative score mean - k * std."""
    episode_topic: str = TOPIC_EPISODE_INFO
    """Announced episodes (rlhf_msgs/EpisodeInfo)."""
    reward_topic: str = TOPIC_EPISODE_REWARD
    """Where scores are published (rlhf_msgs/RewardScore)."""

    def __post_init__(self) -> None:
        if self.conservative_k < 0:
            raise ValueError(f"RewardNodeConfig.conservative_k must be >= 0, got {self.conservative_k}")


@dataclass
class LearnerNodeConfig:
    """ppo_learner_node: PPO on the action head; publishes each new head as a PolicyUpdate."""

    mode: str = "graph"
    """'graph': train on scored episodes arriving over ROS; 'sim': own vectorised sims + reward model."""
    policy_path: str = ""
    """BC policy checkpoint (the reference and the starting head); required."""
    reward_checkpoint: str = ""
    """Reward-ensemble checkpoint ('sim' mode's reward)."""
    store_root: str = "episodes"
    """Episode store of the scored episodes ('graph' mode)."""
    out_dir: str = "learner_out"
    """Where head checkpoints and the trainer state are written."""
    episodes_per_update: int = 4
    """'graph' mode: scored episodes gathered before one PPO iteration runs on them."""
    iterations_per_update: int = 1
    """PPO iterations per update ('graph': passes over the same batch)."""
    task: str = "reach"
    """'sim' mode: task of the learner's own sims."""
    image_size: int = 64
    """'sim' mode: camera size of the learner's own sims."""
    reward_topic: str = TOPIC_EPISODE_REWARD
    """Scores arrive here (rlhf_msgs/RewardScore)."""
    update_topic: str = TOPIC_POLICY_UPDATE
    """New heads are announced here (rlhf_msgs/PolicyUpdate)."""
    torch_threads: int = 1
    """Torch CPU threads for training."""

    def __post_init__(self) -> None:
        if self.mode not in ("graph", "sim"):
            raise ValueError(f"LearnerNodeConfig.mode must be 'graph' or 'sim', got {self.mode!r}")
        if self.episodes_per_update < 1 or self.iterations_per_update < 1:
            raise ValueError("LearnerNodeConfig.episodes_per_update and iterations_per_update must be >= 1")
        if self.torch_threads < 1:
            raise ValueError(f"LearnerNodeConfig.torch_threads must be >= 1, got {self.torch_threads}")


def _sim_config() -> type:
    from sim.config import SimConfig

    return SimConfig


def _ppo_config() -> type:
    from rlhf.rl.config import PPOConfig

    return PPOConfig


def _safety_config() -> type:
    from rlhf.safety_config import SafetyConfig

    return SafetyConfig


# Node name -> ((config class factory, parameter prefix), ...). The node's own config has no prefix.
NODE_PARAMETERS: dict[str, tuple[tuple[Any, str], ...]] = {
    "sim_node": ((lambda: SimNodeConfig, ""), (_sim_config, "sim.")),
    "policy_node": ((lambda: PolicyNodeConfig, ""),),
    "safety_node": ((lambda: SafetyNodeConfig, ""), (_safety_config, "safety.")),
    "recorder_node": ((lambda: RecorderNodeConfig, ""),),
    "reward_node": ((lambda: RewardNodeConfig, ""),),
    "ppo_learner_node": ((lambda: LearnerNodeConfig, ""), (_ppo_config, "ppo.")),
}


def node_param_specs(node: str) -> list[ParamSpec]:
    """Every parameter node `node` declares."""
    if node not in NODE_PARAMETERS:
        raise KeyError(f"unknown node {node!r}; known: {sorted(NODE_PARAMETERS)}")
    out: list[ParamSpec] = []
    for factory, prefix in NODE_PARAMETERS[node]:
        out.extend(param_specs(factory(), prefix))
    return out
