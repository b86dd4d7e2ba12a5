"""Scripted demonstrators with style knobs: the same task done well or clumsily.

A demonstrator walks through task phases (e.g. above cube -> down -> close -> lift -> above pad ->
down -> open). Each phase has a Cartesian goal recomputed every step from the live (privileged)
object positions. A velocity profile moves a Cartesian setpoint towards the goal; inverse
kinematics turns the setpoint into joint positions and the action is their difference from the
env's commanded joint positions. The style shapes that profile:

- speed           cruise speed of the grasp point, m/s
- approach_speed  speed cap within `approach_radius` of any object, m/s (careful near things)
- jerk            0 = smooth (acceleration-limited profile); up to 1 = random speed surges, lateral
                  jolts and a much higher acceleration limit
- hesitation      0 = never stops; up to 1 = frequent pauses of up to ~1.5 s mid-motion
- noise           std of Gaussian noise on each joint delta, rad
- slip            pick-and-place only: probability that the first grasp loses the cube. When the
                  fingers have closed, the cube is moved 6-9 cm away on the table, so the hand lifts
                  an empty gripper and must reopen and grasp again: demonstrations of recovering from
                  a missed grasp, which a clean demonstrator never shows. Every action stays correct
                  for what the demonstrator sees (no deliberate bad grasp to imitate).
- disturb         rate of DART-style disturbances (Laskey et al., 2017) near objects while the hand
                  is empty: on average `disturb` times per second spent within the approach radius
                  of an object with the gripper open, the hand is pushed 1.5-3 cm
                  sideways or upwards over 2-3 steps, and the demonstrator then corrects from where it
                  ends up. The pushed steps are listed in `unimitated_steps` (the trajectory's
                  `extra["unimitated_steps"]`), and BC learns only from the corrections: states off
                  the clean path with the right action there, which is where a cloned policy drifts.

A failed grasp (cube not lifted) or a lost push sends the demonstrator back to re-approach, so
expert demonstrations succeed reliably.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pybullet as p

from sim import panda
from sim.tasks import CUBE_HALF, PAD_HALF_HEIGHT, PICK_PLACE_AREA

APPROACH_RADIUS = 0.10  # m: "near an object" for approach_speed (and the gold safety metric)
DISTURB_LATERAL = (0.015, 0.03)  # m: how far a disturbance pushes the hand sideways ...
DISTURB_UP = (0.0, 0.03)  # m: ... and upwards (never down: into the table or onto the cube)
DISTURB_STEPS = (2, 3)  # control steps a disturbance lasts
SETPOINT_LEAD_MAX = 0.05  # m: the Cartesian setpoint never runs further ahead of the real grasp point
MIN_Z = 0.012  # m: the setpoint's lowest height above the table
DOWN = np.pi  # roll that points the gripper at the table


@dataclass(frozen=True)
class DemoStyle:
    """How a scripted demonstrator moves. See the module docstring for each knob's meaning."""

    name: str = "custom"
    """Label stored with the demonstration (policy_version "scripted:<name>")."""
    speed: float = 0.25
    """Cruise speed of the grasp point, m/s."""
    approach_speed: float = 0.07
    """Speed cap within APPROACH_RADIUS of an object, m/s."""
    accel: float = 0.8
    """Cartesian acceleration limit of the smooth profile, m/s^2."""
    jerk: float = 0.0
    """Jerkiness in [0, 1]."""
    hesitation: float = 0.0
    """Hesitation in [0, 1]."""
    noise: float = 0.0
    """Std of Gaussian joint-delta noise, rad."""
    slip: float = 0.0
    """Probability that the first grasp loses the cube (pick-and-place; see the module docstring)."""
    disturb: float = 0.0
    """Disturbances per second of open-gripper motion near objects (see the module docstring)."""

    def __post_init__(self) -> None:
        if not 0.01 <= self.speed <= 1.0:
            raise ValueError(f"DemoStyle.speed must be in [0.01, 1] m/s, got {self.speed}")
        if not 0.01 <= self.approach_speed <= 1.0:
            raise ValueError(f"DemoStyle.approach_speed must be in [0.01, 1] m/s, got {self.approach_speed}")
        if not 0.05 <= self.accel <= 10.0:
            raise ValueError(f"DemoStyle.accel must be in [0.05, 10] m/s^2, got {self.accel}")
        for knob in ("jerk", "hesitation"):
            if not 0.0 <= getattr(self, knob) <= 1.0:
                raise ValueError(f"DemoStyle.{knob} must be in [0, 1], got {getattr(self, knob)}")
        if not 0.0 <= self.noise <= 0.1:
            raise ValueError(f"DemoStyle.noise must be in [0, 0.1] rad, got {self.noise}")
        if not 0.0 <= self.slip <= 1.0:
            raise ValueError(f"DemoStyle.slip must be in [0, 1], got {self.slip}")
        if not 0.0 <= self.disturb <= 2.0:
            raise ValueError(f"DemoStyle.disturb must be in [0, 2] per second, got {self.disturb}")


STYLES: dict[str, DemoStyle] = {
    "expert": DemoStyle("expert"),
    "slow": DemoStyle("slow", speed=0.09, approach_speed=0.04, accel=0.4),
    "jerky": DemoStyle("jerky", jerk=0.8),
    "hesitant": DemoStyle("hesitant", hesitation=0.7),
    "fast_approach": DemoStyle("fast_approach", speed=0.4, approach_speed=0.4, accel=3.0),
    "noisy": DemoStyle("noisy", noise=0.006),
    "slip": DemoStyle("slip", slip=1.0),
    "disturbed": DemoStyle("disturbed", disturb=1.0),
    "recovery": DemoStyle("recovery", slip=1.0, disturb=1.0),  # both kinds of recovery demonstration
}
MIXED = "mixed"


def sample_style(rng: np.random.Generator) -> DemoStyle:
    """The "mixed" sampler: a random blend of the knobs, from expert-like to clumsy on each axis."""
    speed = float(rng.uniform(0.08, 0.4))
    careful = rng.random() < 0.6
    approach = float(rng.uniform(0.04, 0.09)) if careful else float(rng.uniform(0.15, max(0.16, speed)))
    return DemoStyle(
        name="mixed",
        speed=speed,
        approach_speed=approach,
        accel=float(rng.uniform(0.4, 2.5)),
        jerk=float(rng.choice([0.0, rng.uniform(0.0, 1.0)])),
        hesitation=float(rng.choice([0.0, rng.uniform(0.0, 1.0)])),
        noise=float(rng.choice([0.0, rng.uniform(0.0, 0.01)])),
    )


def resolve_style(style: str | DemoStyle, rng: np.random.Generator) -> DemoStyle:
    """A DemoStyle from a preset name, "mixed" (sampled from rng) or a DemoStyle."""
    if isinstance(style, DemoStyle):
        return style
    if style == MIXED:
        return sample_style(rng)
    if style not in STYLES:
        raise ValueError(f"unknown demo style {style!r}; known: {sorted(STYLES) + [MIXED]}")
    return STYLES[style]


# ---------------------------------------------------------------------- phases
@dataclass
class Phase:
    """One leg of a demonstration: where to go, the gripper command, and when it is done."""

    name: str
    gripper: float  # -1 closed, +1 open
    tolerance: float = 0.01  # m: done when the grasp point is this close to the goal ...
    hold_steps: int = 0  # ... and has been for this many steps (e.g. while the fingers move)


class ScriptedDemonstrator:
    """Base actor: `reset(env)` then `action = actor(obs, info)`. Subclasses define phases and goals."""

    phases: tuple[Phase, ...] = ()
    undisturbed_phases: tuple[str, ...] = ()  # open-gripper phases a disturbance would spoil

    def __init__(self, style: DemoStyle, seed: int | None = None) -> None:
        self.style = style
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.env = None

    @property
    def policy_version(self) -> str:
        return f"scripted:{self.style.name}"

    def reset(self, env) -> None:
        """Bind to the env (after env.reset) and start from the first phase."""
        self.env = env.unwrapped
        # Tie the noise stream to the episode so a (seed, style) pair replays exactly.
        ep_seed = self.env.episode_seed if self.env.episode_seed is not None else 0
        self.rng = np.random.default_rng([ep_seed, 0 if self.seed is None else self.seed])
        ee, _ = self.env.ee_pose()
        self.setpoint = ee.copy()
        self.velocity = np.zeros(3)
        self.yaw = self._current_yaw()
        self.phase_index = 0
        self.steps = 0  # actions returned since reset: the index of the current step
        self.settled_steps = 0
        # A hesitant demonstrator takes a moment before it starts moving.
        self.pause_left = int(round(8 * self.style.hesitation))
        self.retries = 0
        self.unimitated_steps: list[int] = []  # steps whose action carries a disturbance
        self.disturb_left = 0
        self.disturb_step = np.zeros(3)
        self._on_reset()

    # Subclass hooks -----------------------------------------------------------
    def _on_reset(self) -> None:
        pass

    def _goal(self, phase: Phase) -> tuple[np.ndarray, float]:
        """Goal position (3,) and gripper yaw (rad) for `phase`."""
        raise NotImplementedError

    def _check_progress(self, phase: Phase) -> None:
        """Jump to another phase when the plan failed (e.g. the grasp slipped). Default: nothing."""

    # Main loop ------------------------------------------------------------------
    def __call__(self, obs: dict, info: dict) -> np.ndarray:
        if self.env is None:
            raise RuntimeError("call reset(env) before asking the demonstrator for actions")
        env, style, dt = self.env, self.style, self.env.dt
        phase = self.phases[self.phase_index]
        self._check_progress(phase)
        phase = self.phases[self.phase_index]
        goal, goal_yaw = self._goal(phase)
        ee, _ = env.ee_pose()

        # Phase bookkeeping: advance when the goal has been held long enough.
        if np.linalg.norm(goal - ee) < phase.tolerance:
            self.settled_steps += 1
        else:
            self.settled_steps = 0
        if self.settled_steps > phase.hold_steps and self.phase_index < len(self.phases) - 1:
            self.phase_index += 1
            self.settled_steps = 0
            phase = self.phases[self.phase_index]
            goal, goal_yaw = self._goal(phase)
            if style.hesitation > 0 and self.rng.random() < 0.5 * style.hesitation:
                self.pause_left = int(self.rng.integers(3, 4 + int(12 * style.hesitation)))

        # Desired velocity: cruise, capped near objects, decelerating into the goal.
        to_goal = goal - self.setpoint
        dist = float(np.linalg.norm(to_goal))
        near = self._near_object(ee)
        cap = min(style.speed, style.approach_speed) if near else style.speed
        accel = style.accel * (1.0 + 4.0 * style.jerk)
        speed = min(cap, np.sqrt(2.0 * accel * dist) if dist > 0 else 0.0, dist / dt)
        v_des = to_goal / dist * speed if dist > 1e-9 else np.zeros(3)
        if style.jerk > 0:
            v_des = v_des * (1.0 + style.jerk * self.rng.uniform(-0.9, 0.9))
            v_des = v_des + style.jerk * 0.08 * self.rng.standard_normal(3) * (dist > 0.02)
        if style.hesitation > 0 and self.pause_left == 0 and self.rng.random() < 0.06 * style.hesitation:
            self.pause_left = int(self.rng.integers(3, 4 + int(12 * style.hesitation)))
        if self.pause_left > 0:
            self.pause_left -= 1
            v_des = np.zeros(3)
        dv = v_des - self.velocity
        max_dv = accel * dt
        n = np.linalg.norm(dv)
        if n > max_dv:
            dv *= max_dv / n
        self.velocity = self.velocity + dv
        self.setpoint = self.setpoint + self.velocity * dt
        self._disturb(phase, ee, dt)
        # The setpoint leads the real grasp point by at most a few cm, and stays above the table.
        lead = self.setpoint - ee
        ln = np.linalg.norm(lead)
        if ln > SETPOINT_LEAD_MAX:
            self.setpoint = ee + lead * (SETPOINT_LEAD_MAX / ln)
        self.setpoint[2] = max(self.setpoint[2], MIN_Z)
        dyaw = np.clip(_wrap(goal_yaw - self.yaw), -1.0 * dt * 5, 1.0 * dt * 5)
        self.yaw = self.yaw + dyaw

        q_des = self._ik(self.setpoint, self.yaw)
        # Relative to where the arm is already told to go, counting actions delayed by latency.
        delta = q_des - env.planned_joint_positions
        if style.noise > 0:
            delta = delta + self.rng.normal(0.0, style.noise, 7)
        mjd = env.config.max_joint_delta
        action = np.empty(8, dtype=np.float32)
        action[:7] = np.clip(delta, -mjd, mjd)
        action[7] = phase.gripper
        self.steps += 1
        return action

    # Helpers ---------------------------------------------------------------------
    def _disturb(self, phase: Phase, ee: np.ndarray, dt: float) -> None:
        """Push the setpoint off its path, as an outside disturbance would, and record the step.

        The push moves the plan itself, so afterwards the demonstrator returns to its goal with its
        own smooth profile from wherever the hand is: those are the corrections BC learns from.
        The rng is drawn only when `disturb` > 0, so other styles' episodes are unchanged.
        """
        if self.style.disturb <= 0:
            return
        # Near objects is where a cloned policy's small errors matter (and where it drifts from the path).
        can_start = self.disturb_left == 0 and phase.gripper > 0 and phase.name not in self.undisturbed_phases
        if can_start and self._near_object(ee) and self.rng.random() < self.style.disturb * dt:
            angle = self.rng.uniform(-np.pi, np.pi)
            push = self.rng.uniform(*DISTURB_LATERAL) * np.array([np.cos(angle), np.sin(angle), 0.0])
            push[2] = self.rng.uniform(*DISTURB_UP)
            self.disturb_left = int(self.rng.integers(DISTURB_STEPS[0], DISTURB_STEPS[1] + 1))
            self.disturb_step = push / self.disturb_left
        if self.disturb_left > 0:
            self.disturb_left -= 1
            self.setpoint = self.setpoint + self.disturb_step
            self.unimitated_steps.append(self.steps)

    def _near_object(self, ee: np.ndarray) -> bool:
        """Within APPROACH_RADIUS of an object (not the one carried), plus the braking distance,
        so the grasp point is already slow when it enters the radius."""
        objs = self.env.object_positions()
        if self._carrying():
            objs = objs[1:]
        v = float(np.linalg.norm(self.velocity))
        braking = v * v / (2.0 * self.style.accel * (1.0 + 4.0 * self.style.jerk)) + 2.0 * v * self.env.dt
        return bool(np.min(np.linalg.norm(objs - ee, axis=1)) < APPROACH_RADIUS + braking)

    def _carrying(self) -> bool:
        """Whether object 0 is held (so being near it is not "approaching" it)."""
        return False

    def _current_yaw(self) -> float:
        _, quat = self.env.ee_pose()
        return float(p.getEulerFromQuaternion(quat)[2])

    def _grasp_yaw(self, object_yaw: float) -> float:
        """The gripper yaw, among object_yaw + k*pi/2, nearest the current one (no wrist wind-up)."""
        k = np.round((self.yaw - object_yaw) / (np.pi / 2))
        return float(object_yaw + k * np.pi / 2)

    def _ik(self, position: np.ndarray, yaw: float) -> np.ndarray:
        env = self.env
        quat = p.getQuaternionFromEuler((DOWN, 0.0, float(yaw)))
        lower = list(panda.JOINT_LOWER) + [0.0, 0.0]
        upper = list(panda.JOINT_UPPER) + [panda.FINGER_MAX] * 2
        ranges = [u - lo for u, lo in zip(upper, lower, strict=True)]
        rest = list(panda.HOME_POSE) + [panda.FINGER_MAX] * 2
        q = p.calculateInverseKinematics(
            env.robot, panda.EE_LINK, position.tolist(), quat, lowerLimits=lower, upperLimits=upper,
            jointRanges=ranges, restPoses=rest, maxNumIterations=50, residualThreshold=1e-5,
            physicsClientId=env.client_id,
        )
        return np.clip(np.array(q[:7]), panda.JOINT_LOWER, panda.JOINT_UPPER)


def _wrap(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


class ReachDemonstrator(ScriptedDemonstrator):
    phases = (Phase("to_target", gripper=1.0, tolerance=0.005, hold_steps=1000),)

    def _goal(self, phase: Phase) -> tuple[np.ndarray, float]:
        return self.env.object_positions()[0], self.yaw


class PushDemonstrator(ScriptedDemonstrator):
    PUSH_Z = 0.022  # grasp-point height while pushing (fingertips just clear the table)
    CONTACT = CUBE_HALF + 0.012  # grasp point's distance behind the cube centre at contact

    SAFE_Z = 0.10  # height for moving around the cube

    phases = (
        Phase("lift", gripper=-1.0, tolerance=0.02),
        Phase("above_start", gripper=-1.0, tolerance=0.015),
        Phase("down", gripper=-1.0, tolerance=0.008),
        Phase("push", gripper=-1.0, tolerance=0.004, hold_steps=1000),
    )

    def _on_reset(self) -> None:
        objs = self.env.object_positions()
        self.goal_xy = objs[1, :2].copy()
        self.retreat_xy: np.ndarray | None = None  # where a re-approach lifts straight up from

    def _direction(self) -> np.ndarray:
        cube = self.env.object_positions()[0]
        d = self.goal_xy - cube[:2]
        n = np.linalg.norm(d)
        return d / n if n > 1e-6 else np.array([1.0, 0.0])

    def _goal(self, phase: Phase) -> tuple[np.ndarray, float]:
        cube = self.env.object_positions()[0]
        u = self._direction()
        yaw = self._grasp_yaw(float(np.arctan2(u[1], u[0])) + np.pi / 2)  # fingers across the push line
        if phase.name == "lift":
            # Straight up before moving sideways, so a re-approach never sweeps through the cube.
            ee, _ = self.env.ee_pose()
            if self.retreat_xy is None:
                return ee.copy(), self.yaw
            return np.array([self.retreat_xy[0], self.retreat_xy[1], max(self.SAFE_Z, ee[2])]), self.yaw
        if phase.name in ("above_start", "down"):
            start = cube[:2] - u * (self.CONTACT + 0.04)
            z = self.SAFE_Z if phase.name == "above_start" else self.PUSH_Z
            return np.array([start[0], start[1], z]), yaw
        # Push: aim a little past the contact point so the fingers keep pressing, stop at the goal.
        # The wrist keeps its yaw: turning it while in contact would twist and tip the cube.
        remaining = np.linalg.norm(self.goal_xy - cube[:2])
        target = cube[:2] - u * self.CONTACT + u * min(0.02, remaining)
        return np.array([target[0], target[1], self.PUSH_Z]), self.yaw

    def _check_progress(self, phase: Phase) -> None:
        if phase.name != "push":
            return
        ee, _ = self.env.ee_pose()
        cube = self.env.object_positions()[0]
        u = self._direction()
        rel = ee[:2] - cube[:2]
        along = float(np.dot(rel, u))
        across = abs(float(rel[0] * u[1] - rel[1] * u[0]))
        # Off the line behind the cube: lift and line up again.
        if across > 0.025 or along > -CUBE_HALF:
            self.retreat_xy = ee[:2].copy()
            self.phase_index = 0
            self.settled_steps = 0
            self.retries += 1


class PickPlaceDemonstrator(ScriptedDemonstrator):
    CARRY_Z = 0.15
    GRASP_Z = CUBE_HALF + 0.002  # grasp point height at the grasp (fingertips clear the table)

    phases = (
        Phase("above_cube", gripper=1.0, tolerance=0.012),
        Phase("down", gripper=1.0, tolerance=0.006, hold_steps=1),
        Phase("close", gripper=-1.0, tolerance=0.02, hold_steps=4),
        Phase("lift", gripper=-1.0, tolerance=0.02),
        Phase("above_pad", gripper=-1.0, tolerance=0.012),
        Phase("lower", gripper=-1.0, tolerance=0.008),
        Phase("open", gripper=1.0, tolerance=0.03, hold_steps=3),
        Phase("retreat", gripper=1.0, tolerance=0.01, hold_steps=1000),
    )
    undisturbed_phases = ("open",)  # pushing the hand while the fingers release would drag the cube

    def _grasp_yaw_clear_of(self, object_yaw: float, obstacle_xy: np.ndarray, cube_xy: np.ndarray) -> float:
        """Of the two grasps (fingers along either pair of cube faces), the one whose hand, which is
        long along the finger axis, points away from the obstacle; nearest the current yaw among equals."""
        d = obstacle_xy - cube_xy
        d = d / max(float(np.linalg.norm(d)), 1e-9)
        best, best_cost = object_yaw, np.inf
        for k in range(-4, 5):
            yaw = object_yaw + k * np.pi / 2
            axis = np.array([-np.sin(yaw), np.cos(yaw)])  # finger axis in the table plane
            cost = round(abs(float(axis @ d)), 3) + 0.01 * abs(_wrap(yaw - self.yaw)) + 0.1 * abs(yaw)
            if cost < best_cost:
                best, best_cost = yaw, cost
        return float(best)

    def _goal(self, phase: Phase) -> tuple[np.ndarray, float]:
        objs = self.env.object_positions()
        cube, pad = objs[0], objs[1]
        yaw = self._grasp_yaw_clear_of(float(self.env.object_yaws()[0]), objs[2, :2], cube[:2])
        if phase.name == "above_cube":
            return np.array([cube[0], cube[1], self.CARRY_Z]), yaw
        if phase.name == "down":
            return np.array([cube[0], cube[1], self.GRASP_Z]), yaw
        if phase.name == "close":
            ee, _ = self.env.ee_pose()
            return ee.copy(), self.yaw
        if phase.name == "lift":
            ee, _ = self.env.ee_pose()
            return np.array([ee[0], ee[1], self.CARRY_Z]), self.yaw
        if phase.name == "above_pad":
            return np.array([pad[0], pad[1], self.CARRY_Z]), self.yaw
        if phase.name in ("lower", "open"):
            return np.array([pad[0], pad[1], 2 * PAD_HALF_HEIGHT + CUBE_HALF + 0.008]), self.yaw
        return np.array([pad[0], pad[1], self.CARRY_Z]), self.yaw

    SLIP_DISTANCE = (0.06, 0.09)  # m: how far a slipped cube ends up from the fingers
    SLIP_NOTICE_STEPS = 4  # lift this long after a slip, while the fingers close on nothing, then regrasp

    def _on_reset(self) -> None:
        self.slip_decided = False  # whether the first grasp's slip has been drawn
        self.notice_left = 0

    def _carrying(self) -> bool:
        return self.phases[self.phase_index].name in ("lift", "above_pad")

    def _slip_cube(self) -> None:
        """Move the cube out of the closed fingers to a free spot on the table beside them."""
        env = self.env
        objs = env.object_positions()
        for _ in range(50):
            angle = self.rng.uniform(-np.pi, np.pi)
            xy = objs[0, :2] + self.rng.uniform(*self.SLIP_DISTANCE) * np.array([np.cos(angle), np.sin(angle)])
            # Stay in the task's layout area and clear of the pad and the distractor.
            inside = np.all(xy >= PICK_PLACE_AREA[0]) and np.all(xy <= PICK_PLACE_AREA[1])
            if inside and np.min(np.linalg.norm(objs[1:, :2] - xy, axis=1)) > 0.10:
                break
        else:
            return  # no free spot: keep the grasp
        quat = p.getQuaternionFromEuler((0.0, 0.0, float(self.rng.uniform(-np.pi / 4, np.pi / 4))))
        p.resetBasePositionAndOrientation(env.objects[0], (float(xy[0]), float(xy[1]), CUBE_HALF), quat,
                                          physicsClientId=env.client_id)  # fmt: skip
        p.resetBaseVelocity(env.objects[0], (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), physicsClientId=env.client_id)
        # Notice the loss the way a real gripper does, by its fingers closing further: keep lifting
        # for a few steps, so the demos show the empty gripper's reading before the regrasp.
        self.notice_left = self.SLIP_NOTICE_STEPS

    def _check_progress(self, phase: Phase) -> None:
        # The rng is drawn only for styles that slip, so the other styles' episodes are unchanged.
        if phase.name == "lift" and not self.slip_decided and self.style.slip > 0:
            self.slip_decided = True  # only the first grasp may slip
            if self.rng.random() < self.style.slip:
                self._slip_cube()
        if self.notice_left > 0:
            self.notice_left -= 1
            return
        if phase.name in ("lift", "above_pad", "lower"):
            ee, _ = self.env.ee_pose()
            cube = self.env.object_positions()[0]
            # The cube should travel with the fingers; if it stayed behind, grasp again.
            if np.linalg.norm(cube - ee) > 0.04:
                self.phase_index = 0
                self.settled_steps = 0
                self.retries += 1


DEMONSTRATORS = {"reach": ReachDemonstrator, "push": PushDemonstrator, "pick_place": PickPlaceDemonstrator}


def make_demonstrator(task: str, style: str | DemoStyle = "expert", seed: int | None = None) -> ScriptedDemonstrator:
    """A scripted actor for `task` with `style` (a preset name, "mixed", or a DemoStyle).

    "mixed" draws the style from `seed`, so the same seed gives the same style.
    """
    if task not in DEMONSTRATORS:
        raise ValueError(f"unknown task {task!r}; known: {sorted(DEMONSTRATORS)}")
    resolved = resolve_style(style, np.random.default_rng(seed))
    return DEMONSTRATORS[task](dataclasses.replace(resolved), seed=seed)
