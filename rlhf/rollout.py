"""Run an actor in a sim env and record the episode as a `Trajectory` (with gold metrics).

An actor is anything with `reset(env)` and `__call__(obs, info) -> action (8,)`: a scripted
demonstrator from `sim.demonstrators`, or a policy wrapper. `run_vector_episodes` does the same
over a gymnasium vector env (e.g. AsyncVectorEnv) for actors that only read observations.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rlhf.trajectory import Trajectory


class _Recorder:
    """Accumulates one episode's per-step arrays."""

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []
        self.joint_positions: list[np.ndarray] = []
        self.joint_velocities: list[np.ndarray] = []
        self.gripper: list[float] = []
        self.actions: list[np.ndarray] = []
        self.ee: list[np.ndarray] = []
        self.objects: list[np.ndarray] = []
        self.forces: list[float] = []
        self.wrist_images: list[np.ndarray] = []
        self.success_time: float | None = None

    def add(self, obs: dict, info: dict, action: np.ndarray, force_after: float) -> None:
        self.images.append(np.asarray(obs["image"], dtype=np.uint8))
        if "wrist_image" in obs:
            self.wrist_images.append(np.asarray(obs["wrist_image"], dtype=np.uint8))
        self.joint_positions.append(np.asarray(obs["joint_positions"], dtype=np.float32))
        self.joint_velocities.append(np.asarray(obs["joint_velocities"], dtype=np.float32))
        self.gripper.append(float(np.asarray(obs["gripper"]).reshape(-1)[0]))
        self.actions.append(np.asarray(action, dtype=np.float32).reshape(-1))
        self.ee.append(np.asarray(info["ee_position"], dtype=np.float32))
        self.objects.append(np.asarray(info["object_positions"], dtype=np.float32))
        self.forces.append(float(force_after))

    def __len__(self) -> int:
        return len(self.actions)

    def build(
        self, *, episode_id: str, task: str, instruction: str, dt: float, seed: int | None, success: bool,
        policy_version: str, extra: dict[str, Any],
    ) -> Trajectory:
        from sim.metrics import gold_metrics

        n = len(self.actions)
        extra = dict(extra)
        extra["control_dt_s"] = dt
        extra["success_time_s"] = self.success_time
        traj = Trajectory(
            episode_id=episode_id,
            task=task,
            instruction=instruction,
            timestamps=np.arange(n, dtype=np.float64) * dt,
            images=np.stack(self.images) if n else np.zeros((0, 1, 1, 3), np.uint8),
            joint_positions=np.stack(self.joint_positions) if n else np.zeros((0, 7), np.float32),
            joint_velocities=np.stack(self.joint_velocities) if n else np.zeros((0, 7), np.float32),
            gripper=np.asarray(self.gripper, dtype=np.float32),
            actions=np.stack(self.actions) if n else np.zeros((0, 8), np.float32),
            ee_positions=np.stack(self.ee) if n else np.zeros((0, 3), np.float32),
            object_positions=np.stack(self.objects) if n else np.zeros((0, 1, 3), np.float32),
            contact_forces=np.asarray(self.forces, dtype=np.float32),
            wrist_images=np.stack(self.wrist_images) if n and len(self.wrist_images) == n else None,
            source="sim",
            policy_version=policy_version,
            seed=seed,
            success=bool(success),
            extra=extra,
        )
        traj.metrics = gold_metrics(traj)
        return traj


def run_episode(
    env, actor, seed: int | None, policy_version: str = "", episode_id: str | None = None,
    max_steps: int | None = None,
) -> Trajectory:
    """Reset `env` with `seed`, run `actor` to the end of the episode and return it.

    Step t stores the observation seen before action t, the action, the grasp point and object
    positions of that observation, and the largest arm contact force *during* action t.
    `extra` records the control period and `success_time_s`, the time (on the trajectory's clock)
    at which success was first observed (None if never), which the gold metrics use.
    """
    obs, info = env.reset(seed=seed)
    actor.reset(env)
    base = env.unwrapped
    dt = float(base.dt)
    version = policy_version or getattr(actor, "policy_version", "")
    rec = _Recorder()
    success = False
    limit = max_steps if max_steps is not None else 10**9
    while len(rec) < limit:
        action = np.asarray(actor(obs, info), dtype=np.float32)
        next_obs, _, terminated, truncated, next_info = env.step(action)
        rec.add(obs, info, action, next_info["contact_force"])
        if next_info["success"] and not success:
            success = True
            rec.success_time = len(rec) * dt
        obs, info = next_obs, next_info
        if terminated or truncated:
            break
    extra = {"latency_steps": int(getattr(base, "latency_steps", 0)), "time_limit_s": float(base.time_limit_s)}
    style = getattr(actor, "style", None)
    if style is not None and hasattr(style, "__dataclass_fields__"):
        extra["style"] = {k: (v if isinstance(v, str) else float(v)) for k, v in vars(style).items()}
    unimitated = getattr(actor, "unimitated_steps", None)
    if unimitated:
        # Steps whose action is not the actor's choice (a demonstrator's disturbances): BC skips them.
        extra["unimitated_steps"] = [int(i) for i in unimitated if i < len(rec)]
    return rec.build(
        episode_id=episode_id or f"{base.task.name}-s{info['seed']}-{uuid.uuid4().hex[:8]}",
        task=base.task.name,
        instruction=info["instruction"],
        dt=dt,
        seed=info["seed"],
        success=success,
        policy_version=version,
        extra=extra,
    )


def run_vector_episodes(
    vec_env, policy: Callable[[dict], np.ndarray], seeds: Sequence[int], policy_version: str = "",
    task: str = "",
) -> list[Trajectory]:
    """Run one episode per seed on a gymnasium vector env; `policy(obs_batch) -> actions (N, 8)`.

    The vector env must use gymnasium's default NEXT_STEP autoreset. Sub-env i runs seeds
    i, i + N, i + 2N, ...: each finished sub-env is reset explicitly with its next seed, so every
    episode is reproducible from its seed. Episodes come back in the order of `seeds`.
    """
    n_envs = vec_env.num_envs
    seeds = list(seeds)
    queues = [seeds[i::n_envs] for i in range(n_envs)]
    order = {s: k for k, s in enumerate(seeds)}
    results: list[Trajectory | None] = [None] * len(seeds)
    dt = float(vec_env.metadata.get("render_fps", 10.0)) ** -1
    recs = [_Recorder() for _ in range(n_envs)]
    active = [bool(q) for q in queues]
    reset_seeds = [q.pop(0) if q else 0 for q in queues]
    obs, info = vec_env.reset(seed=reset_seeds)
    current = list(reset_seeds)
    succeeded = [False] * n_envs
    while any(active):
        actions = np.asarray(policy(obs), dtype=np.float32).reshape(n_envs, -1)
        next_obs, _, term, trunc, next_info = vec_env.step(actions)
        for i in range(n_envs):
            if not active[i]:
                continue
            o_i = {k: v[i] for k, v in obs.items()}
            inf_i = {k: info[k][i] for k in ("ee_position", "object_positions")}
            recs[i].add(o_i, inf_i, actions[i], float(next_info["contact_force"][i]))
            if bool(next_info["success"][i]) and not succeeded[i]:
                succeeded[i] = True
                recs[i].success_time = len(recs[i]) * dt
            if term[i] or trunc[i]:
                seed = current[i]
                results[order[seed]] = recs[i].build(
                    episode_id=f"{task or 'sim'}-s{seed}-{uuid.uuid4().hex[:8]}",
                    task=str(next_info["task"][i]),
                    instruction=str(next_info["instruction"][i]),
                    dt=dt,
                    seed=seed,
                    success=succeeded[i],
                    policy_version=policy_version,
                    extra={},
                )
                recs[i] = _Recorder()
                succeeded[i] = False
                active[i] = bool(queues[i])
                if active[i]:
                    current[i] = queues[i].pop(0)
        # Finished sub-envs: the next step() would autoreset them with an unseeded draw; reset them
        # ourselves with their next seed instead.
        done = np.logical_or(term, trunc)
        if np.any(done) and any(active):
            mask = np.array([done[i] and active[i] for i in range(n_envs)])
            if mask.any():
                r_obs, r_info = vec_env.reset(seed=[current[i] if mask[i] else None for i in range(n_envs)],
                                              options={"reset_mask": mask})
                next_obs, next_info = r_obs, r_info
        obs, info = next_obs, next_info
    return [t for t in results if t is not None]
