"""The safety filter of the command path: what a policy asks for -> what the arm may be sent.

Pure and ROS-free: the caller passes measured joint positions (`observe`), liveness of other
sensor streams (`heartbeat`), and each command with the time it arrived (`filter` for one absolute
joint-position target, `filter_trajectory` for a short trajectory). Times are seconds on one
monotonic clock chosen by the caller.

For each command, in this order (a later rule wins over an earlier one):
  1. e-stop engaged        -> nothing may be sent (`positions is None`) until `release_estop`
  2. a watched stream is stale (older than `watchdog_timeout_s`, or never seen) -> hold
  3. wrong length, NaN or inf anywhere -> refused, hold
  4. joint position limits (URDF or parameters, shrunk by `position_margin`) -> clip
  5. joint velocity limit over the time since the last command (at most `control_period_s`) -> clip
  6. joint acceleration limit, and braking so the arm can still stop before a position limit -> clip
  7. distance from the measured position (`max_tracking_error`, so a blocked arm does not wind up) -> clip
  8. workspace box for the end effector (forward kinematics of the URDF): the step is shortened until
     the end effector stays in the box (or, if it is already outside, gets no farther out) -> clip
  9. gripper command range -> clip

"Hold" sends the last target the filter let through (or the measured position if none yet): the
arm stops where it was last told to be and goes no farther. Every clip, hold and refusal is counted
in `stats` (by reason) and kept in `events` (the most recent `log_capacity`) for the node to log.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlhf.safety_config import ArmModel, ResolvedLimits, SafetyConfig, default_urdf, resolve_limits

# Statuses of a filtered command.
OK = "ok"
CLIPPED = "clipped"
HOLD = "hold"
REFUSED = "refused"
ESTOP = "estop"

_EPS = 1e-12


@dataclass
class FilterResult:
    """What may be sent for one command.

    positions: (J,) absolute joint targets, rad, or None when nothing may be sent (e-stop, or no
    position known yet). velocities: (J,) rad/s the filter assumed for this step. gripper: command
    in [gripper_min, gripper_max], or None to leave the gripper as it is.
    """

    status: str
    positions: np.ndarray | None
    velocities: np.ndarray | None
    gripper: float | None
    reasons: tuple[str, ...] = ()

    @property
    def send(self) -> bool:
        return self.positions is not None


@dataclass
class SafetyEvent:
    """One clipped, held or refused command."""

    time: float
    status: str
    reasons: tuple[str, ...]


@dataclass
class TrajectoryPoint:
    """One filtered trajectory point: time after the trajectory's start (s), positions and velocities (J,)."""

    time_from_start: float
    positions: np.ndarray
    velocities: np.ndarray


class SafetyFilter:
    """Stateful filter; see the module docstring. `watch` names the streams the watchdog requires."""

    def __init__(
        self,
        config: SafetyConfig | None = None,
        model: ArmModel | None = None,
        watch: Sequence[str] = ("joint_states",),
    ) -> None:
        self.config = c = config or SafetyConfig()
        self.model = model or ArmModel(c.urdf_path or default_urdf(), c.joint_names, c.ee_link)
        self.limits: ResolvedLimits = resolve_limits(c, self.model)
        self.n = len(c.joint_names)
        self.box_min = np.array(c.workspace_min)
        self.box_max = np.array(c.workspace_max)
        self.watch = tuple(watch)
        if "joint_states" not in self.watch:
            self.watch = ("joint_states", *self.watch)
        self.stats: collections.Counter[str] = collections.Counter()
        self.events: collections.deque[SafetyEvent] = collections.deque(maxlen=c.log_capacity)
        self.estop_engaged = False
        self.estop_reason = ""
        self._seen: dict[str, float] = {}
        self._measured: np.ndarray | None = None
        self._last_target: np.ndarray | None = None
        self._last_velocity = np.zeros(self.n)
        self._last_time: float | None = None
        self._last_gripper: float | None = None

    # ------------------------------------------------------------------ inputs
    def observe(self, positions: np.ndarray, t: float) -> bool:
        """Measured joint positions (J,) at time t. Returns False (and ignores them) if malformed."""
        q = np.asarray(positions, dtype=np.float64).reshape(-1)
        if q.shape != (self.n,) or not np.all(np.isfinite(q)):
            self._record(t, REFUSED, ("bad_joint_state",))
            return False
        self._measured = q
        self._seen["joint_states"] = float(t)
        return True

    def heartbeat(self, stream: str, t: float) -> None:
        """A message of a watched stream (e.g. "image") arrived at time t."""
        self._seen[stream] = float(t)

    def stale_streams(self, t: float) -> list[str]:
        """Watched streams never seen or older than the watchdog timeout at time t."""
        timeout = self.config.watchdog_timeout_s
        return [s for s in self.watch if s not in self._seen or t - self._seen[s] > timeout]

    @property
    def measured(self) -> np.ndarray | None:
        return None if self._measured is None else self._measured.copy()

    @property
    def last_target(self) -> np.ndarray | None:
        return None if self._last_target is None else self._last_target.copy()

    # ------------------------------------------------------------------ e-stop
    def engage_estop(self, t: float, reason: str = "") -> None:
        """Stop: no command passes until `release_estop`."""
        self.estop_engaged = True
        self.estop_reason = reason
        self._record(t, ESTOP, ("engaged",) + ((reason,) if reason else ()))

    def release_estop(self, t: float, reason: str = "") -> None:
        """Reset after an e-stop: motion restarts from the measured position, at rest."""
        self.estop_engaged = False
        self.estop_reason = ""
        self._last_target = None
        self._last_velocity = np.zeros(self.n)
        self._last_time = None
        self._record(t, OK, ("estop_released",) + ((reason,) if reason else ()))

    # ------------------------------------------------------------------ filtering
    def filter(self, positions: Sequence[float] | np.ndarray, gripper: float | None, t: float) -> FilterResult:
        """Filter one absolute joint-position target (J,) (+ optional gripper command) arriving at t."""
        blocked = self._blocked(t)
        if blocked is not None:
            return blocked
        target, why = self._validate(positions, gripper)
        if target is None:
            return self.hold(t, (why,), status=REFUSED)
        ref, v_prev, dt = self._reference(t, horizon=self.config.control_period_s)
        new, velocity, reasons = self._limit_step(ref, v_prev, target, dt, self._measured)
        g, g_reason = self._gripper(gripper)
        reasons += g_reason
        self._commit(new, velocity, g, t)
        return self._result(t, new, velocity, g, reasons)

    def filter_trajectory(
        self, times_from_start: Sequence[float], positions: Sequence[Sequence[float]] | np.ndarray,
        gripper: float | None, t: float,
    ) -> tuple[FilterResult, list[TrajectoryPoint]]:
        """Filter a trajectory of K points (times (K,) s after t, positions (K, J)) arriving at t.

        Returns the first point's result (what the filter commits to) and the filtered points, whose
        velocities are finite differences of the filtered positions (0 at the last point, so a late
        next trajectory ends at rest). An empty list means nothing may be sent (e-stop); a hold is
        one point at the held position.
        """
        blocked = self._blocked(t)
        if blocked is not None:
            return blocked, self._as_points(blocked)
        times = np.asarray(times_from_start, dtype=np.float64).reshape(-1)
        pts = np.asarray(positions, dtype=np.float64) if len(times) else np.zeros((0, self.n))
        bad = (
            len(times) == 0 or pts.shape != (len(times), self.n) or not np.all(np.isfinite(times))
            or not np.all(np.isfinite(pts)) or np.any(times <= 0) or np.any(np.diff(times) <= 0)
        )
        g_bad = gripper is not None and not math.isfinite(float(gripper))
        if bad or g_bad:
            res = self.hold(t, ("bad_trajectory",), status=REFUSED)
            return res, self._as_points(res)
        ref, v_prev, dt0 = self._reference(t, horizon=min(self.config.control_period_s, float(times[0])))
        out_pos, reasons, first_v = [], [], None
        prev_t = 0.0
        measured = self._measured
        for k in range(len(times)):
            dt = dt0 if k == 0 else min(self.config.control_period_s, float(times[k] - prev_t))
            p, v, r = self._limit_step(ref, v_prev, self._clip_positions(pts[k], reasons), dt, measured)
            if k == 0:
                first_v = v
                # Later points may go on beyond the tracking bound by as much as they move.
                measured = None
            out_pos.append(p)
            reasons.extend(x for x in r if x not in reasons)
            ref, v_prev, prev_t = p, v, float(times[k])
        g, g_reason = self._gripper(gripper)
        reasons.extend(g_reason)
        self._commit(out_pos[0], first_v, g, t)
        res = self._result(t, out_pos[0], first_v, g, tuple(reasons))
        arr = np.stack(out_pos)
        vel = np.zeros_like(arr)
        all_t = np.concatenate([[0.0], times])
        for k in range(len(times) - 1):
            lo = arr[k - 1] if k > 0 else res.positions - first_v * dt0
            vel[k] = (arr[k + 1] - lo) / (all_t[k + 2] - all_t[k])
        vel = np.clip(vel, -self.limits.velocity, self.limits.velocity)
        return res, [TrajectoryPoint(float(times[k]), arr[k], vel[k]) for k in range(len(times))]

    def hold(self, t: float, reasons: tuple[str, ...] = ("hold",), status: str = HOLD) -> FilterResult:
        """Hold position: repeat the last target let through (or the measured position), at rest."""
        target = self._last_target if self._last_target is not None else self._measured
        self._record(t, status, reasons)
        for r in reasons:
            self.stats[f"{status}:{r}"] += 1
        self.stats[status] += 1
        if target is None:  # nothing measured yet: no position to hold at, so nothing to send
            return FilterResult(status, None, None, None, reasons)
        self._commit(target.copy(), np.zeros(self.n), self._last_gripper, t)
        return FilterResult(status, target.copy(), np.zeros(self.n), self._last_gripper, reasons)

    # ------------------------------------------------------------------ steps
    def _blocked(self, t: float) -> FilterResult | None:
        if self.estop_engaged:
            self.stats[ESTOP] += 1
            self._record(t, ESTOP, ("blocked",))
            return FilterResult(ESTOP, None, None, None, ("estop",))
        stale = self.stale_streams(t)
        if stale:
            return self.hold(t, tuple(f"stale:{s}" for s in stale))
        return None

    def _validate(self, positions, gripper) -> tuple[np.ndarray | None, str]:
        """(target, "") or (None, why it is refused)."""
        try:
            q = np.asarray(positions, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            return None, "not_numeric"
        if q.shape != (self.n,):
            return None, "shape"
        if not np.all(np.isfinite(q)) or (gripper is not None and not math.isfinite(float(gripper))):
            return None, "nonfinite"
        return q, ""

    def _reference(self, t: float, horizon: float) -> tuple[np.ndarray, np.ndarray, float]:
        """Where the last step left the arm, its velocity, and the time the next step spans."""
        if self._last_target is None:
            return self._measured.copy(), np.zeros(self.n), max(horizon, 0.0)
        elapsed = max(0.0, t - self._last_time)
        return self._last_target.copy(), self._last_velocity.copy(), min(elapsed, horizon)

    def _clip_positions(self, q: np.ndarray, reasons: list[str]) -> np.ndarray:
        lim = self.limits
        out = np.clip(q, lim.lower, lim.upper)
        if np.any(out != q) and "position" not in reasons:
            reasons.append("position")
        return out

    def _limit_step(
        self, ref: np.ndarray, v_prev: np.ndarray, target: np.ndarray, dt: float, measured: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        """One step from `ref` toward `target` over `dt` s within every limit; (new target, velocity, reasons)."""
        lim, reasons = self.limits, []
        target = self._clip_positions(target, reasons)
        if dt <= _EPS:
            if np.any(target != ref):
                reasons.append("velocity")
            return ref.copy(), np.zeros(self.n), tuple(reasons)
        v = (target - ref) / dt
        v1 = np.clip(v, -lim.velocity, lim.velocity)
        if np.any(v1 != v):
            reasons.append("velocity")
        acc_lo, acc_hi = v_prev - lim.acceleration * dt, v_prev + lim.acceleration * dt
        v2 = np.clip(v1, acc_lo, acc_hi)
        if np.any(v2 != v1):
            reasons.append("acceleration")
        # Braking: from speed v the arm needs about v^2 / (2a) + v dt / 2 to stop in steps of dt.
        a = lim.acceleration
        room_up = np.maximum(lim.upper - ref, 0.0)
        room_down = np.maximum(ref - lim.lower, 0.0)
        brake_hi = -a * dt / 2 + np.sqrt((a * dt / 2) ** 2 + 2 * a * room_up)
        brake_lo = a * dt / 2 - np.sqrt((a * dt / 2) ** 2 + 2 * a * room_down)
        v3 = np.clip(v2, np.minimum(brake_lo, 0.0), np.maximum(brake_hi, 0.0))
        # The acceleration limit wins over the braking bound; the position clip below still holds.
        v3 = np.clip(np.clip(v3, acc_lo, acc_hi), -lim.velocity, lim.velocity)
        if np.any(v3 != v2):
            reasons.append("braking")
        new = np.clip(ref + v3 * dt, lim.lower, lim.upper)
        if measured is not None:
            e = self.config.max_tracking_error
            tracked = np.clip(new, measured - e, measured + e)
            # Never let the tracking bound push a command outside the step it may take from ref.
            tracked = np.clip(tracked, ref - lim.velocity * dt, ref + lim.velocity * dt)
            tracked = np.clip(tracked, lim.lower, lim.upper)
            if np.any(tracked != new):
                reasons.append("tracking")
            new = tracked
        new, ws = self._workspace(ref, new)
        if ws:
            reasons.append("workspace")
        velocity = (new - ref) / dt
        # Position, tracking and workspace bounds are hard: where keeping them needs a harder
        # deceleration than the acceleration limit, they win, and the command says so.
        if np.any(np.abs(velocity - v_prev) > lim.acceleration * dt + 1e-9):
            reasons.append("acceleration_overridden")
        return new, velocity, tuple(reasons)

    def box_violation(self, q: np.ndarray) -> np.ndarray:
        """Distance (m) of the end effector outside the workspace box for joint vectors (N, J) -> (N,)."""
        p = self.model.ee_positions(q)
        out = np.maximum(self.box_min - p, 0.0) + np.maximum(p - self.box_max, 0.0)
        return np.linalg.norm(out, axis=-1)

    def _workspace(self, ref: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, bool]:
        """Shorten the step ref -> new so the end effector stays in the box (or gets no farther out)."""
        v_ref, v_new = self.box_violation(np.stack([ref, new]))  # one batched FK call
        allowed = float(v_ref) + 1e-9
        if float(v_new) <= allowed:
            return new, False
        # Largest fraction s of the step that keeps the end effector within `allowed`: sample the
        # segment in one batched FK call, take the last admissible sample before the first bad one.
        s = np.linspace(0.0, 1.0, 33)
        viol = self.box_violation(ref[None] + s[:, None] * (new - ref)[None])
        bad = np.flatnonzero(viol > allowed)
        k = int(bad[0]) - 1 if len(bad) else len(s) - 1
        return ref + s[max(k, 0)] * (new - ref), True

    def _gripper(self, gripper: float | None) -> tuple[float | None, tuple[str, ...]]:
        if gripper is None:
            return self._last_gripper, ()
        c = self.config
        g = float(np.clip(float(gripper), c.gripper_min, c.gripper_max))
        return g, (("gripper",) if g != float(gripper) else ())

    def _commit(self, target: np.ndarray, velocity: np.ndarray, gripper: float | None, t: float) -> None:
        self._last_target = target
        self._last_velocity = velocity
        self._last_time = float(t)
        self._last_gripper = gripper

    def _result(self, t, new, velocity, g, reasons: tuple[str, ...]) -> FilterResult:
        if reasons:
            self.stats[CLIPPED] += 1
            for r in reasons:
                self.stats[f"{CLIPPED}:{r}"] += 1
            self._record(t, CLIPPED, reasons)
            return FilterResult(CLIPPED, new.copy(), velocity.copy(), g, reasons)
        self.stats[OK] += 1
        return FilterResult(OK, new.copy(), velocity.copy(), g, ())

    def _as_points(self, res: FilterResult) -> list[TrajectoryPoint]:
        if not res.send:
            return []
        return [TrajectoryPoint(self.config.control_period_s, res.positions, np.zeros(self.n))]

    def _record(self, t: float, status: str, reasons: tuple[str, ...]) -> None:
        self.events.append(SafetyEvent(float(t), status, tuple(reasons)))

    # ------------------------------------------------------------------ reporting
    def summary(self) -> dict[str, object]:
        """Counters and state, JSON-friendly (the node publishes this as its status)."""
        return {
            "estop_engaged": self.estop_engaged,
            "estop_reason": self.estop_reason,
            "counts": dict(sorted(self.stats.items())),
        }
