"""Synthetic trajectories with a known per-step gold reward, for tests, smoke runs and benchmarks.

Each episode has a hidden "roughness" in [0, 1]: joint velocities are a smooth random walk plus
roughness-scaled jitter, and the camera frame shows a square whose brightness falls with speed.
The gold per-step reward is minus the joint speed, so smoother, slower segments are better.
"""

from __future__ import annotations

import numpy as np

from rlhf.constants import ACTION_DIM, NUM_ARM_JOINTS
from rlhf.reward.config import RewardConfig
from rlhf.trajectory import Trajectory


def synthetic_episode(
    episode_id: str,
    rng: np.random.Generator,
    steps: int = 40,
    rate_hz: float = 10.0,
    image_size: int = 16,
    roughness: float | None = None,
    scale: float = 1.0,
) -> Trajectory:
    """One synthetic episode; `scale` multiplies velocities (scale >> 1 gives out-of-distribution data)."""
    rough = float(rng.uniform(0.0, 1.0)) if roughness is None else float(roughness)
    base = np.cumsum(rng.normal(0, 0.05, size=(steps, NUM_ARM_JOINTS)), axis=0)
    jitter = rng.normal(0, 1.0, size=(steps, NUM_ARM_JOINTS)) * rough
    vel = ((0.2 + base * 0.5 + jitter) * scale).astype(np.float32)
    pos = np.cumsum(vel / rate_hz, axis=0).astype(np.float32)
    speed = np.linalg.norm(vel, axis=1)
    images = np.zeros((steps, image_size, image_size, 3), np.uint8)
    lo, hi = image_size // 4, 3 * image_size // 4
    for t in range(steps):
        images[t, lo:hi, lo:hi, 0] = np.uint8(np.clip(255 - 60 * speed[t], 0, 255))
        images[t, :, :, 2] = np.uint8(np.clip(40 * speed[t], 0, 255))
    ee = (0.4 + 0.05 * pos[:, :3]).astype(np.float32)  # a stand-in for forward kinematics
    actions = np.concatenate(
        [vel / rate_hz, np.zeros((steps, ACTION_DIM - NUM_ARM_JOINTS), np.float32)], axis=1
    )
    return Trajectory(
        episode_id=episode_id,
        task="synthetic",
        instruction="move smoothly",
        timestamps=np.arange(steps, dtype=np.float64) / rate_hz,
        images=images,
        joint_positions=pos,
        joint_velocities=vel,
        gripper=np.full(steps, 0.04, np.float32),
        actions=actions.astype(np.float32),
        ee_positions=ee,
        policy_version=f"synthetic:rough{rough:.2f}",
        extra={"roughness": rough},
    )


def synthetic_episodes(n: int, seed: int = 0, prefix: str = "syn", **kwargs) -> dict[str, Trajectory]:
    """`n` synthetic episodes keyed by id (`<prefix>-<i>`); kwargs go to `synthetic_episode`."""
    rng = np.random.default_rng(seed)
    return {f"{prefix}-{i}": synthetic_episode(f"{prefix}-{i}", rng, **kwargs) for i in range(n)}


def synthetic_gold_rewards(traj: Trajectory) -> np.ndarray:
    """Gold per-step reward (T,): minus the joint speed."""
    return -np.linalg.norm(traj.joint_velocities.astype(np.float64), axis=1)


def tiny_config(**overrides) -> RewardConfig:
    """A RewardConfig small enough to train in seconds on synthetic episodes (tests, smoke runs)."""
    base = dict(
        image_size=16,
        cnn_channels=(8, 16),
        d_model=32,
        n_heads=2,
        head_hidden=32,
        max_steps=32,
        epochs=4,
        ensemble_size=2,
        batch_size=32,
        lr=3e-3,
    )
    base.update(overrides)
    return RewardConfig(**base)
