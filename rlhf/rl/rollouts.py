"""Rollouts of the current policy on vectorised sim envs (all cores), and optionally on Ray actors.

Collection is episode-synchronous: each wave resets up to N envs with given seeds and steps them
until every one has finished its episode, so each episode is complete when the reward model scores
it and paired rollouts from the same seeds start from the same initial state. An env that finishes
early keeps stepping (autoreset) but those steps are discarded.

A collector returns `EpisodeRecord`s: the trajectory (for the reward model and the gold metrics),
the backbone features of every step (the frozen backbone is run once, here), the raw action
samples PPO scores, and the features of the final observation (to bootstrap a cut episode).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rlhf.rl.exploration import CorrelatedNoise, check_noise_correlation
from rlhf.rl.policy_adapter import RLPolicy
from rlhf.trajectory import Trajectory

EnvFn = Callable[[], Any]


@dataclass
class EpisodeRecord:
    """One finished episode as PPO needs it. T steps, F feature width, A action width."""

    trajectory: Trajectory
    features: np.ndarray
    """(T, F) float32 backbone features of each step's observation."""
    samples: np.ndarray
    """(T, A) float32 raw action samples (before clipping to the env's range): what log-probs score."""
    last_features: np.ndarray
    """(F,) features of the observation after the last step."""
    terminated: bool
    """True if the episode reached a terminal state (no bootstrap); False if it was cut."""
    seed: int


@dataclass
class _Builder:
    """Accumulates one env's episode step by step."""

    seed: int
    images: list = field(default_factory=list)
    wrist_images: list = field(default_factory=list)
    qpos: list = field(default_factory=list)
    qvel: list = field(default_factory=list)
    grip: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    samples: list = field(default_factory=list)
    feats: list = field(default_factory=list)
    ee: list = field(default_factory=list)
    objs: list = field(default_factory=list)
    contact: list = field(default_factory=list)
    instruction: str = ""
    success: bool = False
    success_time: float | None = None
    terminated: bool = False
    done: bool = False
    last_features: np.ndarray | None = None


def _info_item(info: dict, key: str, i: int) -> Any:
    """Env i's value of `key` in a vector env's info dict, or None where that env did not report it."""
    if key not in info:
        return None
    mask = info.get(f"_{key}")
    if mask is not None and not bool(np.asarray(mask)[i]):
        return None
    return np.asarray(info[key][i])


class VectorRolloutCollector:
    """Collects complete episodes from N gymnasium envs (AsyncVectorEnv: one process per env)."""

    def __init__(
        self,
        env_fns: Sequence[EnvFn],
        policy: RLPolicy,
        mode: str = "async",
        max_episode_steps: int = 0,
        control_dt: float = 0.1,
        policy_version: str = "",
        task: str = "",
        sample_seed: int = 0,
        noise_correlation: float = 0.0,
    ) -> None:
        if not env_fns:
            raise ValueError("VectorRolloutCollector needs at least one env factory")
        if mode not in ("async", "sync"):
            raise ValueError(f"mode must be 'async' or 'sync', got {mode!r}")
        self.policy = policy
        self.num_envs = len(env_fns)
        self.max_episode_steps = int(max_episode_steps)
        self.control_dt = float(control_dt)
        self.policy_version = policy_version
        self.task = task
        self.envs = make_vector_env(env_fns, mode)
        self.generator = torch.Generator().manual_seed(sample_seed)
        self.noise_correlation = check_noise_correlation(noise_correlation)
        """rho of the exploration noise's AR(1) process along each episode (`rlhf.rl.exploration`);
        0 is white noise. PPOTrainer sets it from PPOConfig.exploration_noise_correlation."""
        self.extra: dict[str, Any] = {}
        try:  # the sim's control period and time limit, which its gold metrics read from `extra`
            self.control_dt = float(self.envs.get_attr("dt")[0])
            self.extra["time_limit_s"] = float(self.envs.get_attr("time_limit_s")[0])
        except Exception:  # noqa: BLE001 - any env without these attributes keeps the given dt
            pass
        self.env_steps = 0
        """Every env step taken, discarded ones included (what the raw env rate counts)."""
        self.step_time = 0.0
        """Seconds spent inside envs.step / reset."""

    def close(self) -> None:
        self.envs.close()

    def set_head_state(self, state: dict[str, torch.Tensor]) -> None:
        self.policy.policy.action_head.load_state_dict(state)

    needs_head_state = False
    """The learner's policy object is this collector's own, so no weights need sending."""

    @torch.no_grad()
    def collect(
        self, seeds: Sequence[int], deterministic: bool = False, head_state: dict | None = None
    ) -> list[EpisodeRecord]:
        """One complete episode per seed, in order. deterministic=True acts with the Gaussian's mean."""
        if head_state is not None:
            self.set_head_state(head_state)
        out: list[EpisodeRecord] = []
        seeds = [int(s) for s in seeds]
        for start in range(0, len(seeds), self.num_envs):
            out.extend(self._wave(seeds[start : start + self.num_envs], deterministic))
        return out

    def _wave(self, seeds: list[int], deterministic: bool) -> list[EpisodeRecord]:
        n = self.num_envs
        k = len(seeds)
        # Envs beyond k run an ignored episode (the vector env steps all of them).
        all_seeds = seeds + [seeds[-1] + 1_000_003 * (j + 1) for j in range(n - k)]
        t0 = time.perf_counter()
        obs, info = self.envs.reset(seed=all_seeds)
        obs = _with_instructions(obs, info)
        self.step_time += time.perf_counter() - t0
        builders = [_Builder(seed=s) for s in seeds]
        head = self.policy.policy.action_head
        was_training = head.training
        head.eval()
        # A fresh noise process per wave: every episode's noise starts from its stationary draw.
        noise: CorrelatedNoise | None = None
        steps = 0
        try:
            while True:
                feats = self.policy.features(self.policy.batch_from_obs(obs))
                feats_np = feats.float().cpu().numpy()
                for i, b in enumerate(builders):
                    if b.done and b.last_features is None:
                        b.last_features = feats_np[i].copy()
                if all(b.done for b in builders):
                    break
                dist = self.policy.head_distribution(feats)
                if deterministic:
                    samples = dist.mean
                else:
                    if noise is None:
                        noise = CorrelatedNoise(n, dist.mean.shape[-1], self.noise_correlation, self.generator)
                    # Drawn on the CPU from the collector's generator (the same noise whatever the
                    # policy's device), then moved to the policy's.
                    samples = dist.mean + dist.stddev * noise.sample(dist.mean.dtype).to(dist.mean.device)
                samples_np = samples.float().cpu().numpy()
                actions = self.policy.to_env_action(samples_np)
                space = self.envs.single_action_space
                actions = np.clip(actions, space.low, space.high).astype(np.float32)
                for i, b in enumerate(builders):
                    if not b.done:
                        self._record_obs(b, obs, info, i)
                        b.actions.append(actions[i])
                        b.samples.append(samples_np[i])
                        b.feats.append(feats_np[i])
                t0 = time.perf_counter()
                obs, _reward, terminated, truncated, info = self.envs.step(actions)
                obs = _with_instructions(obs, info)
                self.step_time += time.perf_counter() - t0
                self.env_steps += n
                steps += 1
                for i, b in enumerate(builders):
                    if b.done:
                        continue
                    # As rlhf.rollout records it: the contact force *during* action t.
                    force = _info_item(info, "contact_force", i)
                    b.contact.append(None if force is None else float(force))
                    succ = _info_item(info, "success", i)
                    if succ is not None and bool(succ) and not b.success:
                        b.success = True
                        b.success_time = len(b.actions) * self.control_dt
                    cut = self.max_episode_steps > 0 and len(b.actions) >= self.max_episode_steps
                    if terminated[i] or truncated[i] or cut:
                        b.done = True
                        b.terminated = bool(terminated[i])
        finally:
            head.train(was_training)
        # The final observation's features were filled on the loop's last pass.
        return [self._finish(b) for b in builders]

    @staticmethod
    def _record_obs(b: _Builder, obs: dict, info: dict, i: int) -> None:
        b.images.append(np.asarray(obs["image"][i], dtype=np.uint8))
        if "wrist_image" in obs:
            b.wrist_images.append(np.asarray(obs["wrist_image"][i], dtype=np.uint8))
        b.qpos.append(np.asarray(obs["joint_positions"][i], dtype=np.float32))
        b.qvel.append(np.asarray(obs["joint_velocities"][i], dtype=np.float32))
        b.grip.append(float(np.asarray(obs["gripper"][i]).reshape(-1)[0]))
        b.instruction = str(obs["instruction"][i])
        # info describes the state the observation was taken in (reset info for step 0).
        b.ee.append(_info_item(info, "ee_position", i))
        b.objs.append(_info_item(info, "object_positions", i))

    def _finish(self, b: _Builder) -> EpisodeRecord:
        t = len(b.actions)
        if t == 0:
            raise RuntimeError(f"episode with seed {b.seed} ended before its first step")

        def optional(xs: list, shape_tail: tuple) -> np.ndarray | None:
            if any(x is None for x in xs):
                return None
            return np.stack([np.asarray(x, dtype=np.float32).reshape(shape_tail) for x in xs])

        objs = None
        if all(x is not None for x in b.objs):
            objs = np.stack([np.asarray(x, dtype=np.float32).reshape(-1, 3) for x in b.objs])
        traj = Trajectory(
            episode_id=f"{self.policy_version or 'rl'}-s{b.seed}-{time.time_ns() % 10**12}",
            task=self.task,
            instruction=b.instruction,
            timestamps=np.arange(t, dtype=np.float64) * self.control_dt,
            images=np.stack(b.images),
            joint_positions=np.stack(b.qpos),
            joint_velocities=np.stack(b.qvel),
            gripper=np.asarray(b.grip, dtype=np.float32),
            actions=np.stack(b.actions).astype(np.float32),
            ee_positions=optional(b.ee, (3,)),
            object_positions=objs,
            contact_forces=optional(b.contact, ()),
            wrist_images=np.stack(b.wrist_images) if len(b.wrist_images) == t else None,
            policy_version=self.policy_version,
            seed=b.seed,
            success=b.success,
            extra={**self.extra, "control_dt_s": self.control_dt, "success_time_s": b.success_time},
        )
        return EpisodeRecord(
            trajectory=traj,
            features=np.stack(b.feats).astype(np.float32),
            samples=np.stack(b.samples).astype(np.float32),
            last_features=np.asarray(b.last_features, dtype=np.float32),
            terminated=b.terminated,
            seed=b.seed,
        )


def make_vector_env(env_fns: Sequence[EnvFn], mode: str = "async"):
    """A gymnasium vector env: one process per env ("async", when there are several) or in-process.

    Async envs pass observations through shared memory, which cannot hold a Text space: the
    "instruction" observation comes back as 'aaaa...'. Read instructions from the infos instead
    (`_with_instructions`). (Turning shared memory off is worse in gymnasium 1.4: its workers then
    never clear the next-step autoreset flag on reset, and the next episode starts from a random seed.)"""
    import gymnasium as gym

    if mode == "async" and len(env_fns) > 1:
        return gym.vector.AsyncVectorEnv(list(env_fns))
    return gym.vector.SyncVectorEnv(list(env_fns))


def _with_instructions(obs: dict, info: dict) -> dict:
    """The vector env's observations with each env's instruction taken from its info, when it has one
    (see `make_vector_env`: shared-memory observations turn it into 'aaaa...'). Without this the
    policy conditioned on a nonsense instruction: reach success 35% against 60% in-process, same seeds."""
    instr = info.get("instruction") if isinstance(info, dict) else None
    if instr is None or "instruction" not in obs:
        return obs
    return {**obs, "instruction": [str(x) for x in instr]}


def measure_raw_env_rate(env_fns: Sequence[EnvFn], steps: int, mode: str = "async", seed: int = 0) -> float:
    """Env steps per second of the bare vector env with random actions (the ceiling for rollouts)."""
    envs = make_vector_env(env_fns, mode)
    try:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
        t0 = time.perf_counter()
        for _ in range(steps):
            envs.step(envs.action_space.sample())
        dt = time.perf_counter() - t0
    finally:
        envs.close()
    return steps * len(env_fns) / dt


# ---------------------------------------------------------------------- Ray (optional extra)
class RayRolloutCollector:
    """The same collection split over Ray actors, each holding its own vector env and policy copy.

    `policy_fn` and `env_fn` must be picklable (module-level functions or functools.partial); each
    actor builds its policy with `policy_fn()` (returning an `RLPolicy`). Before each collection the
    learner's head weights are broadcast with `ray.put`, so actors act with the current policy.
    """

    def __init__(
        self,
        env_fn: EnvFn,
        policy_fn: Callable[[], RLPolicy],
        num_workers: int,
        envs_per_worker: int = 1,
        max_episode_steps: int = 0,
        control_dt: float = 0.1,
        policy_version: str = "",
        task: str = "",
        ray_address: str | None = None,
    ) -> None:
        try:
            import ray
        except ImportError as e:  # pragma: no cover - depends on the optional extra
            raise ImportError("Ray rollouts need the optional extra: pip install 'rlhf-arm[ray]'") from e
        if num_workers < 1 or envs_per_worker < 1:
            raise ValueError(f"num_workers and envs_per_worker must be >= 1, got {num_workers}, {envs_per_worker}")
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
        worker_cls = ray.remote(num_cpus=1)(_RayWorker)
        self.workers = [
            worker_cls.remote(env_fn, policy_fn, envs_per_worker, max_episode_steps, control_dt, policy_version, task, i)
            for i in range(num_workers)
        ]
        self.num_envs = num_workers * envs_per_worker
        self.noise_correlation = 0.0
        """As VectorRolloutCollector's; sent to the actors with every collection."""
        self.needs_head_state = True
        self.env_steps = 0
        self.step_time = 0.0

    def collect(self, seeds: Sequence[int], deterministic: bool = False, head_state: dict | None = None) -> list[EpisodeRecord]:
        ray = self.ray
        state_ref = ray.put({k: v.detach().cpu() for k, v in head_state.items()}) if head_state else None
        shards = [list(seeds[i :: len(self.workers)]) for i in range(len(self.workers))]
        rho = check_noise_correlation(self.noise_correlation)
        futures = [w.collect.remote(state_ref, s, deterministic, rho) for w, s in zip(self.workers, shards, strict=True) if s]
        results = ray.get(futures)
        by_seed: dict[int, list[EpisodeRecord]] = {}
        for records, env_steps, step_time in results:
            self.env_steps += env_steps
            self.step_time = max(self.step_time, step_time)
            for r in records:
                by_seed.setdefault(r.seed, []).append(r)
        return [by_seed[int(s)].pop(0) for s in seeds]  # keep the caller's order

    def close(self) -> None:
        for w in self.workers:
            self.ray.kill(w)
        self.workers = []


class _RayWorker:
    def __init__(self, env_fn, policy_fn, n_envs, max_episode_steps, control_dt, policy_version, task, index) -> None:
        torch.set_num_threads(1)
        self.collector = VectorRolloutCollector(
            [env_fn] * n_envs, policy_fn(), mode="sync", max_episode_steps=max_episode_steps,
            control_dt=control_dt, policy_version=policy_version, task=task, sample_seed=index,
        )

    def collect(self, head_state, seeds, deterministic, noise_correlation=0.0):
        self.collector.noise_correlation = noise_correlation
        if head_state is not None:
            self.collector.set_head_state(head_state)
        before, t_before = self.collector.env_steps, self.collector.step_time
        records = self.collector.collect(seeds, deterministic)
        return records, self.collector.env_steps - before, self.collector.step_time - t_before
