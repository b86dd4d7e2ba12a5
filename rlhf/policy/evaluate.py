"""Evaluate a policy in the sim: seeded episodes, success rate and gold-metric means.

Evaluation seeds start at `EVAL_SEED_OFFSET` so they never coincide with demonstration seeds
(datasets are made from small seeds), and a given (seed_offset, episodes) names the same episodes
for every policy: numbers are comparable across runs.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from rlhf.policy.vla import VLAPolicy

EVAL_SEED_OFFSET = 1_000_000


class PolicyActor:
    """Adapts `VLAPolicy` to the rollout actor protocol: `reset(env)`, `__call__(obs, info)`."""

    def __init__(self, policy: VLAPolicy, deterministic: bool | None = None) -> None:
        self.policy = policy
        self.deterministic = deterministic
        self.policy_version = f"bc:{policy.version_tag()}"

    def reset(self, env: Any = None) -> None:
        self.policy.reset()

    def __call__(self, obs: dict, info: dict | None = None) -> np.ndarray:
        return self.policy.select_action(obs, self.deterministic)


@dataclass
class EvalResult:
    task: str
    episodes: int
    success_rate: float
    gold: dict[str, float]
    seconds: float
    successes: list[bool] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """Namespaced metrics: eval/success_rate, eval/episodes, eval/seconds, gold/<name> (means)."""
        out = {"eval/success_rate": self.success_rate, "eval/episodes": float(self.episodes),
               "eval/seconds": self.seconds}  # fmt: skip
        out.update({f"gold/{k}": v for k, v in self.gold.items()})
        return out


def make_env(task: str, sim_config: Any = None, policy_config: Any = None):
    """A sim env for `task` (the sim package is imported here: it pulls in PyBullet). With a
    `policy_config` that uses a wrist camera, the env renders one whatever `sim_config` says."""
    import gymnasium

    import sim
    from sim.config import SimConfig

    cfg = sim_config if sim_config is not None else SimConfig(task=task)
    if policy_config is not None and getattr(policy_config, "wrist_camera", False) and not cfg.wrist_camera:
        cfg = dataclasses.replace(cfg, wrist_camera=True)
    return gymnasium.make(sim.ENV_ID, task=task, config=cfg)


def evaluate_policy(
    policy: VLAPolicy,
    task: str,
    episodes: int = 100,
    seed_offset: int = EVAL_SEED_OFFSET,
    sim_config: Any = None,
    env: Any = None,
    deterministic: bool | None = None,
    progress: bool = True,
) -> EvalResult:
    """Run `episodes` seeded episodes (seeds seed_offset + i) and summarise them."""
    from rlhf.rollout import run_episode

    if episodes <= 0:
        raise ValueError(f"episodes must be > 0, got {episodes}")
    own_env = env is None
    env = env if env is not None else make_env(task, sim_config, policy.config)
    was_training = policy.training
    policy.eval()
    actor = PolicyActor(policy, deterministic)
    start = time.perf_counter()
    successes: list[bool] = []
    gold: dict[str, list[float]] = {}
    try:
        for i in tqdm(range(episodes), desc=f"eval {task}", unit="ep", disable=not progress, leave=False):
            traj = run_episode(env, actor, seed=seed_offset + i, policy_version=actor.policy_version)
            successes.append(bool(traj.success))
            for k, v in traj.metrics.items():
                if v is not None and np.isfinite(v):
                    gold.setdefault(k, []).append(float(v))
    finally:
        if own_env:
            env.close()
        policy.train(was_training)
    return EvalResult(
        task=task,
        episodes=episodes,
        success_rate=float(np.mean(successes)),
        gold={k: float(np.mean(v)) for k, v in sorted(gold.items())},
        seconds=time.perf_counter() - start,
        successes=successes,
    )
