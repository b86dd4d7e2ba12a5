"""Turning the message stream of one recording into a `rlhf.trajectory.Trajectory` (no ROS types here).

One control step per observation that a command followed: the newest joint state and camera frame
received before a command are the step's observation, and the command's absolute target gives the
action, `action = (target - q (7), gripper command)` (the inverse of the bag writer's mapping). A
further command before the next joint state replaces the step's action (the arm's newest target).
A step's timestamp is its joint state's stamp, so steps follow the arm's (sim or robot) clock.
Where a hand camera publishes, its newest frame goes with each step too (`Trajectory.wrist_images`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from rlhf.trajectory import Trajectory

_NS = 1_000_000_000


@dataclass
class EpisodeBuilder:
    """Collects one episode's steps; `build()` makes the Trajectory."""

    episode_id: str
    task: str
    instruction: str
    policy_version: str
    source: str
    joint_names: tuple[str, ...]
    max_steps: int = 20000
    stamps_ns: list[int] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    wrist_images: list[np.ndarray | None] = field(default_factory=list)
    """The hand camera's newest frame at each step; None where none had arrived (or there is none)."""
    qpos: list[np.ndarray] = field(default_factory=list)
    qvel: list[np.ndarray] = field(default_factory=list)
    grip: list[float] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    dropped: int = 0
    """Commands not recorded: no observation yet, or past max_steps."""
    replaced: int = 0
    """Commands that replaced an earlier command for the same observation."""
    held: int = 0
    """Steps recorded with the held target because no command came in that control period."""
    observations: int = 0
    """Joint states received while recording (to tell lost observations from lost commands)."""
    start_ns: int | None = None
    """Where the episode begins on the arm's clock when the recording was started at a known moment
    (StartEpisode.start_stamp); None: with its first command."""

    def add_step(
        self, stamp_ns: int, image: np.ndarray | None, q: np.ndarray | None, qd: np.ndarray | None,
        gripper: float, target: np.ndarray, gripper_command: float, wrist_image: np.ndarray | None = None,
    ) -> bool:
        """Record one command (target (7,) absolute rad) against the latest observation; False if dropped.

        `wrist_image`: the hand camera's latest frame, if there is one; a step never waits for it."""
        if image is None or q is None or len(self.stamps_ns) >= self.max_steps:
            self.dropped += 1
            return False
        action = np.concatenate([np.asarray(target, np.float64) - np.asarray(q, np.float64), [gripper_command]])
        if self.stamps_ns and stamp_ns <= self.stamps_ns[-1]:
            # A second command for the same observation (jitter between the command and sensor
            # rates): the arm's target for that step is the newest command.
            self.actions[-1] = action.astype(np.float32)
            self.replaced += 1
            return True
        self.stamps_ns.append(int(stamp_ns))
        self.images.append(image)
        self.wrist_images.append(wrist_image)
        self.qpos.append(np.asarray(q, np.float32))
        self.qvel.append(np.asarray(qd, np.float32))
        self.grip.append(float(gripper))
        self.actions.append(action.astype(np.float32))
        return True

    def __len__(self) -> int:
        return len(self.stamps_ns)

    _STEP_FIELDS = ("stamps_ns", "images", "wrist_images", "qpos", "qvel", "grip", "actions")

    def drop_before(self, stamp_ns: int) -> int:
        """Remove the steps observed before `stamp_ns` (stamps are increasing); returns how many."""
        k = bisect.bisect_left(self.stamps_ns, int(stamp_ns))
        for name in self._STEP_FIELDS:
            del getattr(self, name)[:k]
        return k

    def adopt_steps(self, other: EpisodeBuilder) -> int:
        """Take over `other`'s steps (a pre-roll buffer) as this episode's first; returns how many.

        Only before this builder has steps of its own, so the stamps stay increasing. The counters
        (held, replaced, dropped) stay this episode's own: the buffer's count steps it has since dropped."""
        if self.stamps_ns:
            raise ValueError(f"episode {self.episode_id!r} already has steps; a pre-roll can only start it")
        for name in self._STEP_FIELDS:
            setattr(self, name, list(getattr(other, name)))
        return len(self.stamps_ns)

    def build(self, success: bool | None = None, ee_fn=None) -> Trajectory:
        """The recorded episode (raises TrajectoryError / ValueError if it has no steps).

        `ee_fn` maps joint positions (T, 7) to end-effector positions (T, 3) (forward kinematics),
        filling `ee_positions` on a real arm as well as in sim.
        """
        if not self.stamps_ns:
            raise ValueError(f"episode {self.episode_id!r} recorded no steps (no command met an observation)")
        stamps = np.asarray(self.stamps_ns, np.int64)
        size = max(img.shape for img in self.images)
        images = np.stack([img if img.shape == size else _pad(img, size) for img in self.images])
        extra = {"start_time_ns": int(stamps[0]), "dropped_commands": int(self.dropped),
                 "replaced_commands": int(self.replaced), "held_steps": int(self.held),
                 "observations_received": int(self.observations)}
        wrist_images = None
        frames = [w for w in self.wrist_images if w is not None]
        if frames:
            # Steps before the hand camera's first frame get a black one (counted), rather than the
            # episode losing them or its wrist view: a camera starting late is not a failed episode.
            wsize = max(w.shape for w in frames)
            wrist_images = np.stack([
                np.zeros(wsize, np.uint8) if w is None else w if w.shape == wsize else _pad(w, wsize)
                for w in self.wrist_images
            ])
            extra["wrist_frames_missing"] = len(self.wrist_images) - len(frames)
        return Trajectory(
            episode_id=self.episode_id,
            task=self.task,
            instruction=self.instruction,
            timestamps=(stamps - stamps[0]).astype(np.float64) / _NS,
            images=images,
            joint_positions=np.stack(self.qpos),
            joint_velocities=np.stack(self.qvel),
            gripper=np.asarray(self.grip, np.float32),
            actions=np.stack(self.actions),
            ee_positions=None if ee_fn is None else np.asarray(ee_fn(np.stack(self.qpos)), np.float32),
            wrist_images=wrist_images,
            joint_names=tuple(self.joint_names),
            source=self.source,
            policy_version=self.policy_version,
            success=success,
            extra=extra,
        )


def _pad(img: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A frame of another size (camera reconfigured mid-episode) padded/cropped to the episode's size."""
    out = np.zeros(shape, np.uint8)
    h, w = min(img.shape[0], shape[0]), min(img.shape[1], shape[1])
    out[:h, :w] = img[:h, :w]
    return out


def trajectory_target(times: np.ndarray, points: np.ndarray, q: np.ndarray, at: float) -> np.ndarray:
    """Position a trajectory (times (K,) s, points (K, J)) asks for `at` s after it starts, from q at 0."""
    knots_t = np.concatenate([[0.0], times])
    knots_p = np.vstack([q[None], points])
    return np.array([np.interp(at, knots_t, knots_p[:, j]) for j in range(knots_p.shape[1])])
