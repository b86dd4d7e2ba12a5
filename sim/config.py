"""Configuration of the sim: one dataclass for the env, one for domain randomisation."""

from __future__ import annotations

from dataclasses import dataclass, field

TASK_NAMES: tuple[str, ...] = ("reach", "push", "pick_place")


@dataclass
class RandomizationConfig:
    """Domain randomisation for sim-to-real. `enabled` is the master switch; each knob can be
    turned off on its own. Everything is drawn from the episode's seed, so a seed still fixes
    the episode exactly."""

    enabled: bool = False
    """Master switch: when False no knob below has any effect."""
    lighting: bool = True
    """Random light direction, colour temperature and ambient/diffuse/specular coefficients."""
    colours: bool = True
    """Jitter object and table colours (each object keeps its named hue) by up to `colour_jitter`."""
    colour_jitter: float = 0.12
    """Largest per-channel RGB change, in [0, 1] units."""
    object_poses: bool = True
    """Random object yaw and a wider placement region (`object_position_jitter_m` on each side)."""
    object_position_jitter_m: float = 0.03
    """Extra placement-region margin, m."""
    friction: bool = True
    """Random lateral friction of table and objects in `friction_range`."""
    friction_range: tuple[float, float] = (0.5, 1.2)
    """(low, high) lateral friction coefficients."""
    camera_jitter: bool = True
    """Random camera eye/target offset (up to `camera_jitter_m` per axis) and FOV (up to `fov_jitter_deg`)."""
    camera_jitter_m: float = 0.03
    """Largest camera eye/target offset per axis, m."""
    fov_jitter_deg: float = 3.0
    """Largest change of the vertical field of view, degrees."""
    action_latency: bool = True
    """Apply each action `L` control steps late, L drawn per episode from 0..`max_latency_steps`."""
    max_latency_steps: int = 1
    """Largest action latency in control steps."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.colour_jitter <= 0.5:
            raise ValueError(f"RandomizationConfig.colour_jitter must be in [0, 0.5], got {self.colour_jitter}")
        if not 0.0 <= self.object_position_jitter_m <= 0.1:
            raise ValueError(
                f"RandomizationConfig.object_position_jitter_m must be in [0, 0.1], got {self.object_position_jitter_m}"
            )
        lo, hi = self.friction_range
        if not 0.0 < lo <= hi:
            raise ValueError(f"RandomizationConfig.friction_range must satisfy 0 < low <= high, got {self.friction_range}")
        if not 0.0 <= self.camera_jitter_m <= 0.2:
            raise ValueError(f"RandomizationConfig.camera_jitter_m must be in [0, 0.2], got {self.camera_jitter_m}")
        if not 0.0 <= self.fov_jitter_deg <= 20.0:
            raise ValueError(f"RandomizationConfig.fov_jitter_deg must be in [0, 20], got {self.fov_jitter_deg}")
        if not 0 <= self.max_latency_steps <= 5:
            raise ValueError(f"RandomizationConfig.max_latency_steps must be in 0..5, got {self.max_latency_steps}")

    def active(self, knob: str) -> bool:
        """Whether randomisation `knob` (a field name) applies: the master switch and the knob are on."""
        return self.enabled and bool(getattr(self, knob))


@dataclass
class SimConfig:
    """The PyBullet Panda env. Defaults are the measured choice: 96x96 images at 10 Hz control run
    well above 150 control steps/s on one core (see bench/results/sim.md)."""

    task: str = "pick_place"
    """One of "reach", "push", "pick_place"."""
    image_size: int = 96
    """Camera image height and width, pixels (square)."""
    render_images: bool = True
    """When False the "image" observation is all zeros (for physics-only rollouts and benchmarks)."""
    control_hz: float = 10.0
    """Control (env step) rate, Hz; physics_hz must be an integer multiple."""
    physics_hz: int = 240
    """Physics step rate, Hz."""
    max_joint_delta: float = 0.15
    """Largest joint-position change per control step, rad (1.5 rad/s at 10 Hz)."""
    time_limit_s: float | None = None
    """Episode time limit, s (truncation); None uses the task's own (reach 8, push 15, pick_place 20)."""
    terminate_on_success: bool = True
    """End the episode (terminated=True) on the first step the task succeeds."""
    camera_eye: tuple[float, float, float] = (1.0, 0.35, 0.85)
    """Scene camera position in the robot base frame, m."""
    camera_target: tuple[float, float, float] = (0.47, 0.0, 0.14)
    """Point the scene camera looks at, m."""
    camera_fov_deg: float = 50.0
    """Vertical field of view, degrees."""
    wrist_camera: bool = False
    """Also render a camera on the hand ("wrist_image" observation), looking past the fingertips as a
    hand-mounted camera on a real Panda does. It sees the object between the fingers where the scene
    camera sees the back of the hand. Off by default: with it the env steps at 176 instead of 334 steps/s
    (96 px scene camera, 64 px wrist camera, bench/bench_sim.py)."""
    wrist_image_size: int = 64
    """Wrist camera image height and width, pixels (square)."""
    wrist_camera_fov_deg: float = 70.0
    """Vertical field of view of the wrist camera, degrees."""
    lowpoly_visuals: bool = True
    """Draw the Panda with its low-poly collision meshes (~40x fewer triangles than the visual meshes)."""
    cache_static_background: bool = True
    """Draw static bodies (table, pads, targets) once per episode and composite each frame over them."""
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    """Domain randomisation knobs (off by default)."""

    def __post_init__(self) -> None:
        if isinstance(self.randomization, dict):
            self.randomization = RandomizationConfig(**self.randomization)
        if self.task not in TASK_NAMES:
            raise ValueError(f"SimConfig.task must be one of {TASK_NAMES}, got {self.task!r}")
        if not 16 <= self.image_size <= 512:
            raise ValueError(f"SimConfig.image_size must be in [16, 512], got {self.image_size}")
        if not 1.0 <= self.control_hz <= 60.0:
            raise ValueError(f"SimConfig.control_hz must be in [1, 60], got {self.control_hz}")
        if self.physics_hz <= 0:
            raise ValueError(f"SimConfig.physics_hz must be > 0, got {self.physics_hz}")
        ratio = self.physics_hz / self.control_hz
        if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(
                f"SimConfig.physics_hz ({self.physics_hz}) must be an integer multiple of control_hz ({self.control_hz})"
            )
        if not 0.0 < self.max_joint_delta <= 0.5:
            raise ValueError(f"SimConfig.max_joint_delta must be in (0, 0.5] rad, got {self.max_joint_delta}")
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise ValueError(f"SimConfig.time_limit_s must be > 0 or None, got {self.time_limit_s}")
        if not 10.0 <= self.camera_fov_deg <= 120.0:
            raise ValueError(f"SimConfig.camera_fov_deg must be in [10, 120], got {self.camera_fov_deg}")
        if not 16 <= self.wrist_image_size <= 512:
            raise ValueError(f"SimConfig.wrist_image_size must be in [16, 512], got {self.wrist_image_size}")
        if not 10.0 <= self.wrist_camera_fov_deg <= 120.0:
            raise ValueError(f"SimConfig.wrist_camera_fov_deg must be in [10, 120], got {self.wrist_camera_fov_deg}")

    @property
    def substeps(self) -> int:
        """Physics steps per control step."""
        return int(round(self.physics_hz / self.control_hz))

    @property
    def dt(self) -> float:
        """Control period, s."""
        return 1.0 / self.control_hz
