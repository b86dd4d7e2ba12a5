"""The gymnasium env: a Franka Panda on a table in PyBullet (DIRECT mode), one task per env.

Observation (Dict):
    image             (H, W, 3) uint8   RGB from the fixed scene camera (tiny renderer)
    wrist_image       (h, w, 3) uint8   RGB from the camera on the hand (only with SimConfig.wrist_camera)
    joint_positions   (7,) float32      rad
    joint_velocities  (7,) float32      rad/s, clipped to ±10
    gripper           (1,) float32      opening (sum of both fingers), m, in [0, 0.08]
    instruction       Text              e.g. "pick up the red cube and place it on the green pad"

Action: Box (8,) float32 — 7 joint-position deltas (rad, within ±max_joint_delta) and a gripper
command in [-1, 1] (-1 closed, +1 open). Out-of-range actions are clipped. The deltas move the
*commanded* joint position, as a real arm's position controller takes setpoints: the command
starts at the measured position on reset, is clipped to the joint limits, and is kept within
2·max_joint_delta of the measured position so a blocked arm does not wind up.

Reward: 1.0 on the step the task first succeeds, else 0.0 (later phases replace it with a learned
reward). `terminated` is True on success when `SimConfig.terminate_on_success` (the default);
`truncated` is True at the time limit.

info (reset and every step): success (bool), ee_position (3,), object_positions (K, 3),
contact_force (float, N: the largest normal force on the arm over the control step from any
contact except the gripper's with the manipulated object), task, instruction, seed (the seed
that reproduces this episode), time_s.

Determinism: the scene is built once, its physics state saved, and every reset restores that
state before placing this episode's objects, so an episode depends only on its seed and actions.
"""

from __future__ import annotations

import collections
import dataclasses
import string
from typing import Any

import gymnasium as gym
import numpy as np
import pybullet as p
from gymnasium import spaces

from sim import panda
from sim.config import SimConfig
from sim.tasks import STAND_LENGTH, STAND_RADIUS, STAND_RGB, TASKS, EpisodeLayout, ObjectSpec

INSTRUCTION_CHARSET = string.ascii_lowercase + string.digits + " ,.'-"
INSTRUCTION_MAX_LEN = 128
TABLE_HALF = (0.55, 0.6, 0.025)
TABLE_CENTRE = (0.35, 0.0, -0.025)
TABLE_RGB = (0.62, 0.52, 0.40)
HOME_JITTER_RAD = 0.03
MAX_OBS_JOINT_VELOCITY = 10.0  # rad/s; the Panda's limit is 2.6, only impacts exceed it
# The wrist camera's mount in the hand frame (z from the flange towards the fingertips, y the fingers'
# opening direction): 7 cm off the axis beside the fingers, aimed at a point 5.5 cm beyond the grasp
# point, image "up" away from the fingers. The fingertips sit at the bottom of the image and the
# object between them in the middle, as with a camera clamped to a real Panda's hand.
WRIST_CAMERA_EYE = (0.07, 0.0, 0.0)
WRIST_CAMERA_TARGET = (0.0, 0.0, 0.16)
WRIST_CAMERA_UP = (1.0, 0.0, 0.0)
WRIST_CAMERA_NEAR_FAR = (0.01, 2.0)


class PandaEnv(gym.Env):
    """Franka Panda on a table with a language-instructed task. See the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self, config: SimConfig | None = None, task: str | None = None, render_mode: str | None = None
    ) -> None:
        config = config if config is not None else SimConfig()
        if not isinstance(config, SimConfig):
            raise TypeError(f"config must be a SimConfig, got {type(config).__name__}")
        if task is not None and task != config.task:
            config = dataclasses.replace(config, task=task)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.config = config
        self.task = TASKS[config.task]
        self.render_mode = render_mode
        self.metadata = dict(self.metadata, render_fps=config.control_hz)
        self.time_limit_s = config.time_limit_s if config.time_limit_s is not None else self.task.time_limit_s
        self.max_steps = int(round(self.time_limit_s * config.control_hz))

        s = config.image_size
        mjd = config.max_joint_delta
        wrist = (
            {"wrist_image": spaces.Box(0, 255, (config.wrist_image_size, config.wrist_image_size, 3), np.uint8)}
            if config.wrist_camera
            else {}
        )
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, (s, s, 3), np.uint8),
                **wrist,
                "joint_positions": spaces.Box(
                    panda.JOINT_LOWER.astype(np.float32), panda.JOINT_UPPER.astype(np.float32), dtype=np.float32
                ),
                "joint_velocities": spaces.Box(-MAX_OBS_JOINT_VELOCITY, MAX_OBS_JOINT_VELOCITY, (7,), np.float32),
                "gripper": spaces.Box(0.0, 2 * panda.FINGER_MAX, (1,), np.float32),
                "instruction": spaces.Text(INSTRUCTION_MAX_LEN, min_length=1, charset=INSTRUCTION_CHARSET),
            }
        )
        self.action_space = spaces.Box(
            np.array([-mjd] * 7 + [-1.0], np.float32), np.array([mjd] * 7 + [1.0], np.float32), dtype=np.float32
        )

        self._cid = p.connect(p.DIRECT)
        self._build_scene()
        self._state_id = p.saveState(physicsClientId=self._cid)
        self.layout: EpisodeLayout | None = None
        self.episode_seed: int | None = None
        self.commanded_joint_positions = panda.HOME_POSE.copy()
        self._image = np.zeros((s, s, 3), np.uint8)
        self._wrist_image = np.zeros((config.wrist_image_size, config.wrist_image_size, 3), np.uint8)
        self._steps = 0
        self._succeeded = False

    # ------------------------------------------------------------------ scene
    def _build_scene(self) -> None:
        cid = self._cid
        p.setTimeStep(1.0 / self.config.physics_hz, physicsClientId=cid)
        p.setGravity(0, 0, -9.81, physicsClientId=cid)
        # Sorted broadphase pairs: the solver order no longer depends on the previous episode.
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=cid)
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=TABLE_HALF, physicsClientId=cid)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=TABLE_HALF, rgbaColor=(*TABLE_RGB, 1), physicsClientId=cid)
        self.table = p.createMultiBody(0, col, vis, TABLE_CENTRE, physicsClientId=cid)
        self.robot = p.loadURDF(
            str(panda.lowpoly_urdf() if self.config.lowpoly_visuals else panda.full_urdf()), (0, 0, 0), useFixedBase=True, flags=p.URDF_ENABLE_CACHED_GRAPHICS_SHAPES,
            physicsClientId=cid,
        )
        for j in panda.FINGER_LINKS:
            p.changeDynamics(self.robot, j, lateralFriction=1.5, spinningFriction=0.01, physicsClientId=cid)
        self.objects = [self._create_object(spec) for spec in self.task.objects]
        # Rendering splits the scene: bodies that never move (table, pads, floating targets) are
        # drawn once per episode into a background; each step draws only the arm and the movable
        # objects and composites them over it by depth. See `_render_background`.
        self._robot_rgba = {
            d[1]: tuple(d[7]) for d in p.getVisualShapeData(self.robot, physicsClientId=cid)
        }
        # Stands: visual-only rods under floating objects (see ObjectSpec.on_stand), static bodies.
        self._stands = {
            i: self._create_stand() for i, spec in enumerate(self.task.objects) if spec.on_stand
        }
        self._static_objects = [b for b, s in zip(self.objects, self.task.objects, strict=True) if s.mass == 0]
        self._static_objects += list(self._stands.values())
        self._moving_objects = [b for b, s in zip(self.objects, self.task.objects, strict=True) if s.mass > 0]

    def _create_stand(self) -> int:
        vis = p.createVisualShape(
            p.GEOM_CYLINDER, radius=STAND_RADIUS, length=STAND_LENGTH, rgbaColor=(*STAND_RGB, 1),
            physicsClientId=self._cid,
        )
        return p.createMultiBody(0, -1, vis, (0, 0, -1), physicsClientId=self._cid)

    def _create_object(self, spec: ObjectSpec) -> int:
        cid = self._cid
        shape = {"box": p.GEOM_BOX, "sphere": p.GEOM_SPHERE, "cylinder": p.GEOM_CYLINDER, "disc": p.GEOM_CYLINDER}[
            spec.shape
        ]
        if spec.shape == "box":
            kw: dict[str, Any] = {"halfExtents": spec.size}
            vkw = kw
        elif spec.shape == "sphere":
            kw = {"radius": spec.size[0]}
            vkw = kw
        else:
            kw = {"radius": spec.size[0], "height": 2 * spec.size[1]}
            vkw = {"radius": spec.size[0], "length": 2 * spec.size[1]}
        col = p.createCollisionShape(shape, physicsClientId=cid, **kw) if spec.collides else -1
        vis = p.createVisualShape(shape, rgbaColor=(1, 1, 1, 1), physicsClientId=cid, **vkw)
        body = p.createMultiBody(spec.mass, col, vis, (0, 0, -1), physicsClientId=cid)
        if spec.mass > 0:
            p.changeDynamics(
                body, -1, lateralFriction=1.0, spinningFriction=0.002,
                activationState=p.ACTIVATION_STATE_DISABLE_SLEEPING, physicsClientId=cid,
            )
        return body

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        # Every episode is fixed by one integer, so any episode (also auto-reset ones) can be replayed.
        self.episode_seed = int(seed) if seed is not None else int(self.np_random.integers(2**31 - 1))
        rng = np.random.default_rng(self.episode_seed)
        rand, cid = self.config.randomization, self._cid
        self._clear_contacts()
        p.restoreState(self._state_id, physicsClientId=cid)

        self.layout = layout = self.task.sample(rng, rand)
        for body, pos, yaw in zip(self.objects, layout.positions, layout.yaws, strict=True):
            quat = p.getQuaternionFromEuler((0, 0, float(yaw)))
            p.resetBasePositionAndOrientation(body, pos.tolist(), quat, physicsClientId=cid)
            p.resetBaseVelocity(body, (0, 0, 0), (0, 0, 0), physicsClientId=cid)
        for i, stand in self._stands.items():
            x, y, z = layout.positions[i]
            top = z - self.task.objects[i].size[0]  # the rod ends at the ball's underside
            p.resetBasePositionAndOrientation(
                stand, (float(x), float(y), float(top - STAND_LENGTH / 2)), (0, 0, 0, 1), physicsClientId=cid
            )
        table_rgb = np.array(TABLE_RGB)
        if rand.active("colours"):
            table_rgb = np.clip(table_rgb + rng.uniform(-rand.colour_jitter, rand.colour_jitter, 3), 0, 1)
        self._table_rgba = (*table_rgb, 1.0)
        friction = 1.0
        if rand.active("friction"):
            friction = float(rng.uniform(*rand.friction_range))
        for body, spec in zip(self.objects, self.task.objects, strict=True):
            if spec.mass > 0:
                p.changeDynamics(body, -1, lateralFriction=friction, physicsClientId=cid)
        p.changeDynamics(self.table, -1, lateralFriction=friction, physicsClientId=cid)

        q0 = panda.HOME_POSE + rng.uniform(-HOME_JITTER_RAD, HOME_JITTER_RAD, 7)
        for j, q in zip(panda.ARM_JOINTS, q0, strict=True):
            p.resetJointState(self.robot, j, float(q), 0.0, physicsClientId=cid)
        for j in panda.FINGER_JOINTS:
            p.resetJointState(self.robot, j, panda.FINGER_MAX, 0.0, physicsClientId=cid)
        self.commanded_joint_positions = q0.copy()
        self._gripper_command = 1.0
        self._apply_motor_targets()

        self._setup_camera(rng)
        if self.config.render_images and self.config.cache_static_background:
            self._render_background()
        elif self.config.render_images:
            self._set_alpha([self.table, *self.objects], visible=True, robot=False)
        latency = int(rng.integers(0, rand.max_latency_steps + 1)) if rand.active("action_latency") else 0
        self.latency_steps = latency
        self._action_queue: collections.deque[np.ndarray] = collections.deque(
            [self._hold_action()] * latency, maxlen=latency + 1
        )
        self._steps = 0
        self._succeeded = False
        self._contact_force = 0.0
        obs = self._observation()
        info = self._info(success=False)
        return obs, info

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        if self.layout is None:
            raise RuntimeError("PandaEnv.step called before reset")
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (8,):
            raise ValueError(f"action must have shape (8,), got {np.shape(action)}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action contains NaN or inf: {a}")
        a = np.clip(a, self.action_space.low, self.action_space.high)
        self._action_queue.append(a)
        a = self._action_queue.popleft()

        cfg, cid = self.config, self._cid
        q = self._joint_positions()
        cmd = np.clip(self.commanded_joint_positions + a[:7], panda.JOINT_LOWER, panda.JOINT_UPPER)
        bound = 2 * cfg.max_joint_delta
        self.commanded_joint_positions = np.clip(cmd, q - bound, q + bound)
        self._gripper_command = float(a[7])
        self._apply_motor_targets()

        force = 0.0
        for i in range(cfg.substeps):
            p.stepSimulation(physicsClientId=cid)
            if i % 4 == 3 or i == cfg.substeps - 1:  # contacts every 1/60 s catch impacts at a quarter of the cost
                force = max(force, self._arm_contact_force())
        self._contact_force = force
        self._steps += 1

        obs = self._observation()
        success = self._is_success()
        reward = 1.0 if success and not self._succeeded else 0.0
        self._succeeded = self._succeeded or success
        terminated = bool(success and cfg.terminate_on_success)
        truncated = bool(self._steps >= self.max_steps and not terminated)
        return obs, reward, terminated, truncated, self._info(success=success)

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return self._image.copy()
        return None

    def close(self) -> None:
        if getattr(self, "_cid", None) is not None and p.isConnected(self._cid):
            p.disconnect(self._cid)
        self._cid = None
        super().close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: pybullet may already be gone
            pass

    # ------------------------------------------------------------------ state (privileged)
    @property
    def client_id(self) -> int:
        """PyBullet physics client of this env (for demonstrators' inverse kinematics)."""
        return self._cid

    @property
    def planned_joint_positions(self) -> np.ndarray:
        """Commanded joint positions once the actions still held back by latency are applied (7,)."""
        pending = sum((a[:7] for a in self._action_queue), np.zeros(7))
        return np.clip(self.commanded_joint_positions + pending, panda.JOINT_LOWER, panda.JOINT_UPPER)

    @property
    def dt(self) -> float:
        return self.config.dt

    @property
    def step_count(self) -> int:
        return self._steps

    def _joint_positions(self) -> np.ndarray:
        states = p.getJointStates(self.robot, panda.ARM_JOINTS, physicsClientId=self._cid)
        return np.array([s[0] for s in states])

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Measured arm joint positions and velocities, (7,) each."""
        states = p.getJointStates(self.robot, panda.ARM_JOINTS, physicsClientId=self._cid)
        return np.array([s[0] for s in states]), np.array([s[1] for s in states])

    def gripper_opening(self) -> float:
        states = p.getJointStates(self.robot, panda.FINGER_JOINTS, physicsClientId=self._cid)
        return float(states[0][0] + states[1][0])

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Grasp point position (3,) and orientation quaternion (x, y, z, w) in the base frame."""
        ls = p.getLinkState(self.robot, panda.EE_LINK, computeForwardKinematics=True, physicsClientId=self._cid)
        return np.array(ls[4]), np.array(ls[5])

    def object_positions(self) -> np.ndarray:
        """(K, 3) positions of the task's objects, in the order of `sim.tasks`."""
        return np.array(
            [p.getBasePositionAndOrientation(b, physicsClientId=self._cid)[0] for b in self.objects]
        )

    def object_yaws(self) -> np.ndarray:
        """(K,) yaw of each object, rad."""
        out = []
        for b in self.objects:
            quat = p.getBasePositionAndOrientation(b, physicsClientId=self._cid)[1]
            out.append(p.getEulerFromQuaternion(quat)[2])
        return np.array(out)

    def gripper_touches_object(self) -> bool:
        """Whether either finger touches object 0 (the manipulated object)."""
        for link in panda.FINGER_LINKS:
            if p.getContactPoints(self.robot, self.objects[0], link, -1, physicsClientId=self._cid):
                return True
        return False

    def _clear_contacts(self) -> None:
        """Drop last episode's contact manifolds (restoreState keeps them, and their warm-start
        impulses would make an episode depend on the one before): pull every body apart and let
        collision detection discard the pairs."""
        cid = self._cid
        for i, body in enumerate(self.objects):
            p.resetBasePositionAndOrientation(body, (10.0 + i, 10.0, 10.0), (0, 0, 0, 1), physicsClientId=cid)
        for j, q in zip(panda.ARM_JOINTS, panda.HOME_POSE, strict=True):
            p.resetJointState(self.robot, j, float(q), 0.0, physicsClientId=cid)
        p.performCollisionDetection(physicsClientId=cid)

    def _hold_action(self) -> np.ndarray:
        return np.array([0.0] * 7 + [1.0])

    def _apply_motor_targets(self) -> None:
        cid = self._cid
        p.setJointMotorControlArray(
            self.robot, panda.ARM_JOINTS, p.POSITION_CONTROL,
            targetPositions=self.commanded_joint_positions.tolist(), forces=panda.JOINT_EFFORT.tolist(),
            physicsClientId=cid,
        )
        finger = (self._gripper_command + 1.0) / 2.0 * panda.FINGER_MAX
        p.setJointMotorControlArray(
            self.robot, panda.FINGER_JOINTS, p.POSITION_CONTROL, targetPositions=[finger, finger],
            forces=[panda.FINGER_FORCE] * 2, physicsClientId=cid,
        )

    def _arm_contact_force(self) -> float:
        """Largest normal force on the robot, ignoring the gripper's contacts with object 0."""
        best = 0.0
        target = self.objects[0]
        for c in p.getContactPoints(bodyA=self.robot, physicsClientId=self._cid):
            link, other, force = c[3], c[2], c[9]
            if other == target and (link == panda.HAND_LINK or link in panda.FINGER_LINKS):
                continue
            best = max(best, force)
        return best

    def _is_success(self) -> bool:
        ee, _ = self.ee_pose()
        touching = self.gripper_touches_object() if self.task.name == "pick_place" else False
        return self.task.is_success(ee, self.object_positions(), touching)

    # ------------------------------------------------------------------ observation
    def _setup_camera(self, rng: np.random.Generator) -> None:
        cfg, rand = self.config, self.config.randomization
        eye = np.array(cfg.camera_eye, dtype=np.float64)
        target = np.array(cfg.camera_target, dtype=np.float64)
        fov = cfg.camera_fov_deg
        if rand.active("camera_jitter"):
            eye += rng.uniform(-rand.camera_jitter_m, rand.camera_jitter_m, 3)
            target += rng.uniform(-rand.camera_jitter_m, rand.camera_jitter_m, 3)
            fov += float(rng.uniform(-rand.fov_jitter_deg, rand.fov_jitter_deg))
        self._view = p.computeViewMatrix(eye.tolist(), target.tolist(), (0, 0, 1), physicsClientId=self._cid)
        self._proj = p.computeProjectionMatrixFOV(fov, 1.0, 0.3, 2.5, physicsClientId=self._cid)
        # The wrist mount: a real bracket is rigid but never exactly where the drawing puts it, so
        # randomisation moves it by a third of the scene camera's jitter and changes its FOV alike.
        # Its own generator (from the episode seed): turning the wrist camera on changes no other draw.
        self._wrist_eye = np.array(WRIST_CAMERA_EYE)
        wrist_fov = cfg.wrist_camera_fov_deg
        if cfg.wrist_camera and rand.active("camera_jitter"):
            wrist_rng = np.random.default_rng([self.episode_seed, 1])
            self._wrist_eye = self._wrist_eye + wrist_rng.uniform(-rand.camera_jitter_m, rand.camera_jitter_m, 3) / 3
            wrist_fov += float(wrist_rng.uniform(-rand.fov_jitter_deg, rand.fov_jitter_deg))
        near, far = WRIST_CAMERA_NEAR_FAR
        self._wrist_proj = p.computeProjectionMatrixFOV(wrist_fov, 1.0, near, far, physicsClientId=self._cid)
        light = {
            "lightDirection": (0.6, 0.3, 1.0),
            "lightColor": (1.0, 1.0, 1.0),
            "lightAmbientCoeff": 0.6,
            "lightDiffuseCoeff": 0.35,
            "lightSpecularCoeff": 0.05,
        }
        if rand.active("lighting"):
            d = rng.uniform([-1.0, -1.0, 0.6], [1.0, 1.0, 1.2])
            warm = float(rng.uniform(-0.1, 0.1))
            light = {
                "lightDirection": tuple(d.tolist()),
                "lightColor": (1.0, 1.0 - abs(warm) / 2, 1.0 - warm),
                "lightAmbientCoeff": float(rng.uniform(0.45, 0.75)),
                "lightDiffuseCoeff": float(rng.uniform(0.2, 0.5)),
                "lightSpecularCoeff": float(rng.uniform(0.0, 0.15)),
            }
        self._light = light

    def _camera(self) -> tuple[np.ndarray, np.ndarray]:
        """Draw what is visible now: RGB (H, W, 3) uint8 and z-buffer depth (H, W) float32."""
        s = self.config.image_size
        _, _, rgba, depth, _ = p.getCameraImage(
            s, s, self._view, self._proj, renderer=p.ER_TINY_RENDERER, shadow=0,
            flags=p.ER_NO_SEGMENTATION_MASK, physicsClientId=self._cid, **self._light,
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(s, s, 4)[:, :, :3]
        return rgb, np.asarray(depth, dtype=np.float32).reshape(s, s)

    def _set_alpha(self, bodies: list[int], visible: bool, robot: bool) -> None:
        """Show or hide bodies from the tiny renderer (alpha 0 is skipped; physics is untouched)."""
        cid = self._cid
        colours = {b: c for b, c in zip(self.objects, self.layout.colours, strict=True)}
        colours.update({stand: STAND_RGB for stand in self._stands.values()})
        for b in bodies:
            rgba = self._table_rgba if b == self.table else (*colours[b], 1.0)
            p.changeVisualShape(b, -1, rgbaColor=rgba if visible else (1, 1, 1, 0), physicsClientId=cid)
        if robot:
            for link, rgba in self._robot_rgba.items():
                p.changeVisualShape(
                    self.robot, link, rgbaColor=rgba if visible else (*rgba[:3], 0), physicsClientId=cid
                )

    def _render_background(self) -> None:
        """Draw the static bodies once for this episode (camera, lighting and colours are fixed per
        episode), then leave only the arm and movable objects visible for the per-step frames.

        Pixels of a flat, unshadowed table cost the tiny renderer as much as the arm's triangles;
        drawing them once per episode instead of once per step halves the frame time."""
        static = [self.table, *self._static_objects]
        self._set_alpha(self._moving_objects, visible=False, robot=True)
        self._set_alpha(static, visible=True, robot=False)
        self._bg_rgb, self._bg_depth = self._camera()
        self._bg_rgb = self._bg_rgb.copy()
        self._set_alpha(static, visible=False, robot=False)
        self._set_alpha(self._moving_objects, visible=True, robot=True)

    def _render_wrist_image(self) -> np.ndarray:
        """Draw the whole scene from the camera on the hand (no background cache: the view moves)."""
        cid, s = self._cid, self.config.wrist_image_size
        ls = p.getLinkState(self.robot, panda.HAND_LINK, computeForwardKinematics=True, physicsClientId=cid)
        pos, rot = np.array(ls[4]), np.array(p.getMatrixFromQuaternion(ls[5])).reshape(3, 3)
        eye = pos + rot @ self._wrist_eye
        target = pos + rot @ np.array(WRIST_CAMERA_TARGET)
        view = p.computeViewMatrix(eye.tolist(), target.tolist(), (rot @ np.array(WRIST_CAMERA_UP)).tolist(),
                                   physicsClientId=cid)  # fmt: skip
        static = [self.table, *self._static_objects]
        if self.config.cache_static_background:
            self._set_alpha(static, visible=True, robot=False)
        _, _, rgba, _, _ = p.getCameraImage(
            s, s, view, self._wrist_proj, renderer=p.ER_TINY_RENDERER, shadow=0,
            flags=p.ER_NO_SEGMENTATION_MASK, physicsClientId=cid, **self._light,
        )
        if self.config.cache_static_background:
            self._set_alpha(static, visible=False, robot=False)
        return np.asarray(rgba, dtype=np.uint8).reshape(s, s, 4)[:, :, :3].copy()

    def _render_image(self) -> np.ndarray:
        rgb, depth = self._camera()
        if not self.config.cache_static_background:
            return rgb.copy()
        return np.where((depth < self._bg_depth)[:, :, None], rgb, self._bg_rgb)

    def _observation(self) -> dict[str, Any]:
        q, qd = self.joint_state()
        if self.config.render_images:
            self._image = self._render_image()
            if self.config.wrist_camera:
                self._wrist_image = self._render_wrist_image()
        wrist = {"wrist_image": self._wrist_image.copy()} if self.config.wrist_camera else {}
        return {
            "image": self._image.copy() if not self.config.render_images else self._image,
            **wrist,
            "joint_positions": np.clip(q, panda.JOINT_LOWER, panda.JOINT_UPPER).astype(np.float32),
            "joint_velocities": np.clip(qd, -MAX_OBS_JOINT_VELOCITY, MAX_OBS_JOINT_VELOCITY).astype(np.float32),
            "gripper": np.array([np.clip(self.gripper_opening(), 0.0, 2 * panda.FINGER_MAX)], np.float32),
            "instruction": self.layout.instruction,
        }

    def _info(self, success: bool) -> dict[str, Any]:
        ee, _ = self.ee_pose()
        return {
            "success": bool(success),
            "ee_position": ee.astype(np.float32),
            "object_positions": self.object_positions().astype(np.float32),
            "contact_force": float(self._contact_force),
            "task": self.task.name,
            "instruction": self.layout.instruction,
            "seed": self.episode_seed,
            "time_s": self._steps * self.config.dt,
        }
