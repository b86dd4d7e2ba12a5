"""Tasks: which objects are on the table, what the instruction says and what counts as success.

Pure numpy (no PyBullet): the env builds the bodies from an `EpisodeLayout`, and the gold metrics
reuse `progress_potential` on recorded trajectories.

Object order is fixed per task and is the order of `info["object_positions"]` (K, 3):

| task        | K | objects (index: role)                                   |
|-------------|---|---------------------------------------------------------|
| reach       | 2 | 0: target ball (floating, no collision), 1: distractor ball |
| push        | 3 | 0: cube, 1: goal disc (flat, no collision), 2: distractor cylinder |
| pick_place  | 3 | 0: cube, 1: pad (flat), 2: distractor cylinder            |

Success:
- reach: the grasp point (between the fingertips) is within 3 cm of the target ball's centre.
- push: the cube's centre is within 3 cm (in x, y) of the goal disc's centre, cube on the table.
- pick_place: the cube rests on the pad (centre within 4 cm of the pad's centre in x, y, and
  less than 3.5 cm above the table) and no finger touches it (it was released).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.config import RandomizationConfig

# Named colours (RGB in [0, 1]); instructions use the names.
PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.10),
    "green": (0.15, 0.70, 0.20),
    "blue": (0.12, 0.30, 0.85),
    "yellow": (0.92, 0.82, 0.10),
    "purple": (0.55, 0.20, 0.70),
    "orange": (0.95, 0.50, 0.08),
}
PICK_PLACE_AREA = ((0.38, -0.2), (0.62, 0.2))  # (x, y) low and high corners of the objects' layout, m
CUBE_HALF = 0.02  # m; a 4 cm cube fits the 8 cm gripper
BALL_RADIUS = 0.025
PAD_RADIUS = 0.055
PAD_HALF_HEIGHT = 0.002
GOAL_RADIUS = 0.04
CYLINDER_RADIUS = 0.025
CYLINDER_HALF_HEIGHT = 0.04

STAND_RADIUS = 0.008  # m; the rod under a floating ball
STAND_LENGTH = 0.6  # m; longer than any ball height: the part below the table top is hidden by it
STAND_RGB = (0.55, 0.55, 0.58)

REACH_TOLERANCE = 0.03
PUSH_TOLERANCE = 0.03
PLACE_TOLERANCE = 0.04
PLACE_MAX_HEIGHT = 0.035


@dataclass(frozen=True)
class ObjectSpec:
    """One body of a task. `shape` is "box", "sphere", "cylinder" or "disc" (a flat cylinder)."""

    role: str
    shape: str
    size: tuple[float, ...]  # box: half extents; sphere: (radius,); cylinder/disc: (radius, half height)
    mass: float  # kg; 0 = static
    collides: bool = True
    on_stand: bool = False
    """Draw a thin vertical rod from the table up to the body (visual only, like a target on a
    stand). Without it a floating ball's height is ambiguous along the camera ray: one camera sees
    only its apparent size (a few pixels), while the rod's foot on the table fixes x, y."""


@dataclass
class EpisodeLayout:
    """What one seed puts on the table: positions (K, 3), yaws (K,), colours and the instruction."""

    positions: np.ndarray
    yaws: np.ndarray
    colour_names: list[str]
    colours: np.ndarray  # (K, 3) RGB actually drawn (after any colour jitter)
    instruction: str
    extra: dict = field(default_factory=dict)


class Task:
    """Base class: a task names its objects, samples layouts and judges success."""

    name: str = ""
    time_limit_s: float = 15.0
    objects: tuple[ObjectSpec, ...] = ()

    def sample(self, rng: np.random.Generator, rand: RandomizationConfig) -> EpisodeLayout:
        raise NotImplementedError

    def is_success(self, ee: np.ndarray, objects: np.ndarray, touching: bool) -> bool:
        """ee (3,), objects (K, 3), touching: a finger touches object 0."""
        raise NotImplementedError

    # Shared helpers -------------------------------------------------------------------
    @staticmethod
    def _colours(rng: np.random.Generator, n: int) -> list[str]:
        names = list(PALETTE)
        return [names[i] for i in rng.permutation(len(names))[:n]]

    @staticmethod
    def _rgb(names: list[str], rng: np.random.Generator, rand: RandomizationConfig) -> np.ndarray:
        rgb = np.array([PALETTE[n] for n in names], dtype=np.float64)
        if rand.active("colours"):
            rgb = np.clip(rgb + rng.uniform(-rand.colour_jitter, rand.colour_jitter, rgb.shape), 0.0, 1.0)
        return rgb

    @staticmethod
    def _margin(rand: RandomizationConfig) -> float:
        return rand.object_position_jitter_m if rand.active("object_poses") else 0.0

    @staticmethod
    def _yaw(rng: np.random.Generator, rand: RandomizationConfig) -> float:
        return float(rng.uniform(-np.pi / 4, np.pi / 4)) if rand.active("object_poses") else 0.0


def _far_from(p: np.ndarray, others: list[np.ndarray], dist: float) -> bool:
    return all(np.linalg.norm(p[:2] - o[:2]) >= dist for o in others)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b[:2] - a[:2]
    t = np.clip(np.dot(p[:2] - a[:2], ab) / max(np.dot(ab, ab), 1e-12), 0.0, 1.0)
    return float(np.linalg.norm(a[:2] + t * ab - p[:2]))


class ReachTask(Task):
    name = "reach"
    time_limit_s = 8.0
    objects = (
        ObjectSpec("target", "sphere", (BALL_RADIUS,), 0.0, collides=False, on_stand=True),
        ObjectSpec("distractor", "sphere", (BALL_RADIUS,), 0.0, collides=False, on_stand=True),
    )

    def sample(self, rng: np.random.Generator, rand: RandomizationConfig) -> EpisodeLayout:
        m = self._margin(rand)
        lo = np.array([0.35 - m, -0.22 - m, 0.08])
        hi = np.array([0.62 + m, 0.22 + m, 0.32])
        target = rng.uniform(lo, hi)
        while True:
            distractor = rng.uniform(lo, hi)
            if np.linalg.norm(distractor - target) >= 0.15:
                break
        names = self._colours(rng, 2)
        return EpisodeLayout(
            positions=np.stack([target, distractor]),
            yaws=np.zeros(2),
            colour_names=names,
            colours=self._rgb(names, rng, rand),
            instruction=f"move the gripper to the {names[0]} ball",
        )

    def is_success(self, ee: np.ndarray, objects: np.ndarray, touching: bool) -> bool:
        return bool(np.linalg.norm(ee - objects[0]) < REACH_TOLERANCE)


class PushTask(Task):
    name = "push"
    time_limit_s = 15.0
    objects = (
        ObjectSpec("cube", "box", (CUBE_HALF,) * 3, 0.1),
        ObjectSpec("goal", "disc", (GOAL_RADIUS, 0.0005), 0.0, collides=False),
        ObjectSpec("distractor", "cylinder", (CYLINDER_RADIUS, CYLINDER_HALF_HEIGHT), 0.2),
    )

    def sample(self, rng: np.random.Generator, rand: RandomizationConfig) -> EpisodeLayout:
        m = self._margin(rand)
        while True:
            cube = np.array([rng.uniform(0.40 - m, 0.50 + m), rng.uniform(-0.15 - m, 0.15 + m), CUBE_HALF])
            angle = rng.uniform(-np.pi / 3, np.pi / 3)
            dist = rng.uniform(0.10, 0.15)
            goal = cube + dist * np.array([np.cos(angle), np.sin(angle), 0.0])
            goal[2] = 0.0005
            if goal[0] <= 0.66 and abs(goal[1]) <= 0.25:
                break
        while True:
            d = np.array([rng.uniform(0.35, 0.65), rng.uniform(-0.25, 0.25), CYLINDER_HALF_HEIGHT])
            # Keep the distractor off the pushing path and out of the arm's way behind the cube.
            behind = cube - 0.12 * (goal - cube) / np.linalg.norm(goal - cube)
            if _segment_distance(d, behind, goal) >= 0.14 and _far_from(d, [cube, goal], 0.15):
                break
        names = self._colours(rng, 3)
        return EpisodeLayout(
            positions=np.stack([cube, goal, d]),
            yaws=np.array([self._yaw(rng, rand), 0.0, 0.0]),
            colour_names=names,
            colours=self._rgb(names, rng, rand),
            instruction=f"push the {names[0]} cube onto the {names[1]} circle",
        )

    def is_success(self, ee: np.ndarray, objects: np.ndarray, touching: bool) -> bool:
        cube, goal = objects[0], objects[1]
        return bool(np.linalg.norm(cube[:2] - goal[:2]) < PUSH_TOLERANCE and cube[2] < 0.03)


class PickPlaceTask(Task):
    name = "pick_place"
    time_limit_s = 20.0
    objects = (
        ObjectSpec("cube", "box", (CUBE_HALF,) * 3, 0.1),
        ObjectSpec("pad", "disc", (PAD_RADIUS, PAD_HALF_HEIGHT), 0.0),
        ObjectSpec("distractor", "cylinder", (CYLINDER_RADIUS, CYLINDER_HALF_HEIGHT), 0.2),
    )

    def sample(self, rng: np.random.Generator, rand: RandomizationConfig) -> EpisodeLayout:
        m = self._margin(rand)
        lo = np.array(PICK_PLACE_AREA[0]) - m
        hi = np.array(PICK_PLACE_AREA[1]) + m
        cube = np.append(rng.uniform(lo, hi), CUBE_HALF)
        while True:
            pad = np.append(rng.uniform(lo, hi), PAD_HALF_HEIGHT)
            if _far_from(pad, [cube], 0.15):
                break
        while True:
            d = np.append(rng.uniform(lo, hi), CYLINDER_HALF_HEIGHT)
            # The hand is ~20 cm across its fingers: keep the distractor clear of grasp and place.
            if _far_from(d, [cube, pad], 0.16) and _segment_distance(d, cube, pad) >= 0.08:
                break
        names = self._colours(rng, 3)
        return EpisodeLayout(
            positions=np.stack([cube, pad, d]),
            yaws=np.array([self._yaw(rng, rand), 0.0, 0.0]),
            colour_names=names,
            colours=self._rgb(names, rng, rand),
            instruction=f"pick up the {names[0]} cube and place it on the {names[1]} pad",
        )

    def is_success(self, ee: np.ndarray, objects: np.ndarray, touching: bool) -> bool:
        cube, pad = objects[0], objects[1]
        on_pad = np.linalg.norm(cube[:2] - pad[:2]) < PLACE_TOLERANCE and cube[2] < PLACE_MAX_HEIGHT
        return bool(on_pad and not touching)


TASKS: dict[str, Task] = {t.name: t for t in (ReachTask(), PushTask(), PickPlaceTask())}


def progress_potential(task: str, ee: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """Task progress Phi (<= 0, higher = closer to done) per step, from recorded positions.

    ee (T, 3), objects (T, K, 3) -> (T,). Distances in m:
    - reach:      Phi = -|ee - target|
    - push:       Phi = -(2 |cube_xy - goal_xy| + 0.5 |ee - behind|), `behind` being the point 5 cm
                  behind the cube on the line from the goal through the cube (where a push starts)
    - pick_place: Phi = -(0.5 |ee - cube| + 2 |cube_xy - pad_xy|)
    """
    ee = np.asarray(ee, dtype=np.float64)
    obj = np.asarray(objects, dtype=np.float64)
    if task == "reach":
        return -np.linalg.norm(ee - obj[:, 0], axis=-1)
    if task == "push":
        cube, goal = obj[:, 0], obj[:, 1]
        d = goal[:, :2] - cube[:, :2]
        n = np.linalg.norm(d, axis=-1, keepdims=True)
        u = np.where(n > 1e-6, d / np.maximum(n, 1e-6), 0.0)
        behind = cube.copy()
        behind[:, :2] -= 0.05 * u
        return -(2.0 * n[:, 0] + 0.5 * np.linalg.norm(ee - behind, axis=-1))
    if task == "pick_place":
        cube, pad = obj[:, 0], obj[:, 1]
        return -(0.5 * np.linalg.norm(ee - cube, axis=-1) + 2.0 * np.linalg.norm(cube[:, :2] - pad[:, :2], axis=-1))
    raise ValueError(f"unknown task {task!r}; known: {sorted(TASKS)}")
