"""Per-step model inputs from a Trajectory: small frames, proprioception, actions, and their stats.

Shapes (T = control steps, S = RewardConfig.image_size):

| array    | shape        | dtype   | content                                                  |
|----------|--------------|---------|----------------------------------------------------------|
| images   | (T, 3, S, S) | uint8   | RGB frames resized with area interpolation               |
| state    | (T, D)       | float32 | joint positions (7), joint velocities (7), gripper (1);  |
|          |              |         | with use_ee also grasp point position (3) and velocity (3) |
|          |              |         | with kinematic also the scene features of `kinematics`  |
| actions  | (T, 8)       | float32 | commanded joint deltas (7) + gripper command (1)         |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from rlhf.constants import ACTION_DIM, NUM_ARM_JOINTS
from rlhf.reward.config import RewardConfig
from rlhf.reward.kinematics import kinematic_dim, kinematic_features
from rlhf.trajectory import Trajectory

STATE_DIM = 2 * NUM_ARM_JOINTS + 1
EE_DIM = 6  # grasp point position (3) + its backward-difference velocity (3)
STD_FLOOR = 1e-3
"""FeatureStats never divides by a smaller std; a column at the floor did not vary in training."""


def state_dim(use_ee: bool, kinematic_objects: int = 0) -> int:
    """Width D of the state features (kinematic columns, if any, come last)."""
    return STATE_DIM + (EE_DIM if use_ee else 0) + (kinematic_dim(kinematic_objects) if kinematic_objects else 0)


def kinematic_object_count(config: RewardConfig) -> int:
    """Objects whose kinematic features a reward model built from `config` reads (0: none)."""
    return config.num_objects if config.kinematic else 0


def config_state_dim(config: RewardConfig) -> int:
    """Width D of the state features a reward model built from `config` reads."""
    return state_dim(config.use_ee, kinematic_object_count(config))


def control_rate(traj: Trajectory) -> float:
    """Control rate in Hz from the median timestamp step; raises ValueError if it cannot be read."""
    if len(traj) < 2:
        raise ValueError(f"episode {traj.episode_id!r}: needs >= 2 steps to read its control rate")
    dt = float(np.median(np.diff(traj.timestamps)))
    if not dt > 0:
        raise ValueError(f"episode {traj.episode_id!r}: timestamps do not advance (median step {dt})")
    return 1.0 / dt


def segment_steps(traj: Trajectory, seconds: float) -> int:
    """Number of control steps spanning `seconds` at the episode's control rate (at least 2)."""
    return max(2, int(round(seconds * control_rate(traj))))


@dataclass
class EpisodeFeatures:
    """Model inputs for every step of one episode (see the module docstring for shapes)."""

    images: np.ndarray
    state: np.ndarray
    actions: np.ndarray

    def __len__(self) -> int:
        return int(self.state.shape[0])


def extract_features(
    traj: Trajectory, image_size: int, use_ee: bool = False, kinematic_objects: int = 0
) -> EpisodeFeatures:
    """Resize frames to (3, image_size, image_size) and stack proprio; no normalisation here.

    use_ee adds the grasp point's position and velocity (forward kinematics of the joint positions,
    recorded as `ee_positions`); the velocity is a backward difference so it never looks ahead.
    kinematic_objects > 0 appends `kinematics.kinematic_features` for that many task objects.
    """
    imgs = traj.images
    if imgs.shape[1] != image_size or imgs.shape[2] != image_size:
        # INTER_AREA averages pixels, so small objects stay visible as blobs instead of aliasing away.
        imgs = np.stack([cv2.resize(f, (image_size, image_size), interpolation=cv2.INTER_AREA) for f in imgs])
    images = np.ascontiguousarray(imgs.transpose(0, 3, 1, 2))
    parts = [traj.joint_positions, traj.joint_velocities, traj.gripper[:, None]]
    # Only the grasp-point and kinematic columns need the control period (and a readable rate).
    dt = 1.0 / control_rate(traj) if (use_ee or kinematic_objects) and len(traj) > 1 else 1.0
    if use_ee:
        if traj.ee_positions is None:
            raise ValueError(
                f"episode {traj.episode_id!r} has no ee_positions, which RewardConfig.use_ee=True needs"
            )
        ee = traj.ee_positions.astype(np.float64)
        vel = np.zeros_like(ee)
        vel[1:] = np.diff(ee, axis=0) / dt
        parts += [ee, vel]
    if kinematic_objects:
        parts.append(kinematic_features(traj, dt, kinematic_objects))
    state = np.concatenate(parts, axis=1).astype(np.float32)
    return EpisodeFeatures(images=images, state=state, actions=traj.actions.astype(np.float32))


def features_for(traj: Trajectory, config: RewardConfig) -> EpisodeFeatures:
    """`extract_features` with the inputs `config` asks for."""
    return extract_features(traj, config.image_size, config.use_ee, kinematic_object_count(config))


def with_num_objects(config: RewardConfig, episodes: Iterable[Trajectory]) -> RewardConfig:
    """`config` with `num_objects` read from `episodes` when its kinematic features need it and it
    is 0; raises ValueError when the episodes lack object positions or disagree on the count."""
    if not config.kinematic or config.num_objects:
        return config
    counts = {t.object_positions.shape[1] for t in episodes if t.object_positions is not None}
    if len(counts) > 1:
        raise ValueError(f"reward model: episodes record different numbers of objects {sorted(counts)}")
    if not counts:
        raise ValueError("reward model: RewardConfig.kinematic needs episodes with object_positions")
    return dataclasses.replace(config, num_objects=counts.pop())


@dataclass
class FeatureStats:
    """Mean and std of state (15,) and actions (8,) over training episodes; stored in checkpoints."""

    state_mean: np.ndarray
    state_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray

    @classmethod
    def identity(cls, state_width: int = STATE_DIM) -> FeatureStats:
        return cls(
            np.zeros(state_width, np.float32),
            np.ones(state_width, np.float32),
            np.zeros(ACTION_DIM, np.float32),
            np.ones(ACTION_DIM, np.float32),
        )

    @classmethod
    def fit(cls, feats: Iterable[EpisodeFeatures]) -> FeatureStats:
        feats = list(feats)
        if not feats:
            raise ValueError("FeatureStats.fit needs at least one episode")
        s = np.concatenate([f.state for f in feats]).astype(np.float64)
        a = np.concatenate([f.actions for f in feats]).astype(np.float64)
        # A floor on std keeps constant channels (e.g. a gripper that never moves) from exploding.
        return cls(
            s.mean(0).astype(np.float32),
            np.maximum(s.std(0), STD_FLOOR).astype(np.float32),
            a.mean(0).astype(np.float32),
            np.maximum(a.std(0), STD_FLOOR).astype(np.float32),
        )

    def varies(self) -> np.ndarray:
        """(D,) bool: state columns whose std over the fitted steps is above the floor."""
        return self.state_std > np.float32(STD_FLOOR)

    def to_dict(self) -> dict[str, list[float]]:
        return {
            k: [float(x) for x in getattr(self, k)]
            for k in ("state_mean", "state_std", "action_mean", "action_std")
        }

    @classmethod
    def from_dict(cls, d: dict, state_width: int = STATE_DIM) -> FeatureStats:
        want = {
            "state_mean": state_width,
            "state_std": state_width,
            "action_mean": ACTION_DIM,
            "action_std": ACTION_DIM,
        }
        out = {}
        for key, n in want.items():
            if key not in d:
                raise ValueError(f"feature stats: missing {key!r}")
            arr = np.asarray(d[key], dtype=np.float32)
            if arr.shape != (n,) or not np.all(np.isfinite(arr)):
                raise ValueError(f"feature stats: {key!r} must be {n} finite numbers, got shape {arr.shape}")
            if key.endswith("_std") and np.any(arr <= 0):
                raise ValueError(f"feature stats: {key!r} must be > 0")
            out[key] = arr
        return cls(**out)
