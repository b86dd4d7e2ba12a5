"""Synthetic demonstrations for tests, benchmarks and CLI smoke runs (no sim needed).

A toy "reach the coloured dot" task: the frame shows two dots of different colours, the
instruction names one; joints 0 and 1 move towards that dot's image coordinates, so imitating the
demos needs the image *and* the instruction. Trajectories have the real `Trajectory` layout.
"""

from __future__ import annotations

import numpy as np

from rlhf.trajectory import Trajectory

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (40, 180, 50)}


def _draw(size: int, dots: list[tuple[np.ndarray, tuple[int, int, int]]]) -> np.ndarray:
    img = np.full((size, size, 3), 120, dtype=np.uint8)
    ys, xs = np.mgrid[0:size, 0:size]
    for (x, y), rgb in dots:
        mask = (xs - (x + 1) / 2 * (size - 1)) ** 2 + (ys - (y + 1) / 2 * (size - 1)) ** 2 <= (size / 16) ** 2
        img[mask] = rgb
    return img


def synthetic_trajectory(seed: int, steps: int = 20, image_size: int = 32, task: str = "synthetic") -> Trajectory:
    """One toy episode (T = steps) with images (T, image_size, image_size, 3)."""
    rng = np.random.default_rng(seed)
    names = list(rng.choice(list(COLOURS), size=2, replace=False))
    target, other = rng.uniform(-0.8, 0.8, 2), rng.uniform(-0.8, 0.8, 2)
    frame = _draw(image_size, [(target, COLOURS[names[0]]), (other, COLOURS[names[1]])])
    q = np.zeros(7, np.float32)
    q[:2] = rng.uniform(-0.5, 0.5, 2)
    qs, qds, acts, ees = [], [], [], []
    qd = np.zeros(7, np.float32)
    for _ in range(steps):
        a = np.zeros(8, np.float32)
        a[:2] = np.clip(0.3 * (target - q[:2]), -0.15, 0.15)
        a[7] = 1.0 if np.linalg.norm(target - q[:2]) > 0.1 else -1.0
        qs.append(q.copy())
        ees.append(np.array([q[0], q[1], 0.0], np.float32))
        qds.append(qd.copy())
        acts.append(a)
        qd = a[:7] * 10.0
        q = q + a[:7]
    return Trajectory(
        episode_id=f"{task}-{seed}",
        task=task,
        instruction=f"move to the {names[0]} dot",
        timestamps=np.arange(steps, dtype=np.float64) * 0.1,
        images=np.repeat(frame[None], steps, axis=0),
        joint_positions=np.stack(qs),
        joint_velocities=np.stack(qds),
        gripper=np.full(steps, 0.08, np.float32),
        actions=np.stack(acts),
        ee_positions=np.stack(ees),
        object_positions=np.repeat(
            np.array([[*target, 0.0], [*other, 0.0]], np.float32)[None], steps, axis=0
        ),
        seed=seed,
        success=True,
        policy_version="synthetic",
    )


def synthetic_trajectories(n: int, steps: int = 20, image_size: int = 32, seed: int = 0) -> list[Trajectory]:
    return [synthetic_trajectory(seed + i, steps, image_size) for i in range(n)]
