"""DAgger: behavioural cloning that also learns to recover from its own mistakes.

Plain BC sees only the states the demonstrator visited; the trained policy drifts a little, lands
in states no demo covers, and its errors compound (the arm stops short, or closes the gripper beside
the cube). DAgger (Ross et al., 2011) rolls the current policy out in the sim, asks the scripted
expert what it would command in every state the policy visited, adds those (state, expert action)
pairs to the data and trains on. The sim's demonstrators work from the true scene state (inverse
kinematics to the object), so they can label any state, not just their own.

Each round executes the expert's action with probability `beta` (decaying over rounds) and the
policy's otherwise, so early rounds stay near useful states while later ones see the policy's own.

    rlhf bc dagger --demos d_reach --out run --rounds 2 ...
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rlhf.atomic import atomic_write_json
from rlhf.policy.bc import BCConfig, EvalFn, select_demos, train_bc
from rlhf.policy.config import PolicyConfig
from rlhf.policy.evaluate import PolicyActor, make_env
from rlhf.policy.vla import VLAPolicy
from rlhf.trajectory import Trajectory

DAGGER_SEED_OFFSET = 3_000_000
"""Seeds of DAgger rollouts start here: away from demo seeds and from the evaluation seeds."""


@dataclass
class DaggerConfig:
    """Rounds, budgets and the expert/policy mixing of DAgger."""

    rounds: int = 2
    """Rounds of rollouts + relabelling + training after the initial BC."""
    initial_steps: int = 12000
    """BC optimiser steps on the demonstrations before the first round."""
    steps_per_round: int = 4000
    """Optimiser steps after each round (training continues from the current weights)."""
    episodes_per_round: int = 150
    """Policy rollouts relabelled by the expert per round."""
    beta: float = 0.5
    """Probability of executing the expert's action (instead of the policy's) in the first round."""
    beta_decay: float = 0.5
    """beta is multiplied by this after every round."""
    expert_style: str = "expert"
    """Demonstrator style that labels the visited states (see sim.demonstrators)."""
    time_budget_s: float = 1800.0
    """Wall-clock budget of everything: initial BC, rollouts and every round's training, s."""
    seed: int = 0
    """Seeds rollouts and the mixing draws."""
    eval_each_round: bool = True
    """Run the (non-final) evaluation after the initial BC and after every round, so the summary
    shows what each round bought."""

    def __post_init__(self) -> None:
        for name in ("rounds", "episodes_per_round"):
            if getattr(self, name) < 0:
                raise ValueError(f"DaggerConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("initial_steps", "steps_per_round"):
            if getattr(self, name) < 1:
                raise ValueError(f"DaggerConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"DaggerConfig.beta must be in [0, 1], got {self.beta}")
        if not 0.0 <= self.beta_decay <= 1.0:
            raise ValueError(f"DaggerConfig.beta_decay must be in [0, 1], got {self.beta_decay}")
        if self.time_budget_s <= 0:
            raise ValueError(f"DaggerConfig.time_budget_s must be > 0, got {self.time_budget_s}")


class _RelabellingActor:
    """Acts with the expert (probability beta) or the policy; records the expert's action either way."""

    def __init__(self, policy: VLAPolicy, expert: Any, beta: float, rng: np.random.Generator) -> None:
        self.policy_actor = PolicyActor(policy, deterministic=True)
        self.expert = expert
        self.beta = beta
        self.rng = rng
        self.labels: list[np.ndarray] = []
        self.policy_steps = 0
        self.policy_version = f"dagger:{policy.version_tag()}"

    def reset(self, env: Any) -> None:
        self.policy_actor.reset(env)
        self.expert.reset(env)
        self.labels = []
        self.policy_steps = 0

    def __call__(self, obs: dict, info: dict) -> np.ndarray:
        # The expert is asked first and every step: its phase machine follows the real scene state.
        expert_action = np.asarray(self.expert(obs, info), dtype=np.float32)
        policy_action = self.policy_actor(obs, info)
        self.labels.append(expert_action)
        if self.rng.random() < self.beta:
            return expert_action
        self.policy_steps += 1
        return policy_action


def collect_relabelled(
    policy: VLAPolicy,
    task: str,
    seeds: Sequence[int],
    beta: float,
    sim_config: Any = None,
    expert_style: str = "expert",
    rng: np.random.Generator | None = None,
    progress: bool = True,
) -> tuple[list[Trajectory], dict[str, float]]:
    """Roll `policy` out on `seeds`; return the episodes with the expert's actions as their actions,
    and rollout statistics (success of the executed mixture, fraction of policy-chosen steps)."""
    from rlhf.rollout import run_episode
    from sim.demonstrators import make_demonstrator

    rng = rng if rng is not None else np.random.default_rng(0)
    env = make_env(task, sim_config, policy.config)
    was_training = policy.training
    policy.eval()
    out: list[Trajectory] = []
    successes, policy_steps, steps = [], 0, 0
    try:
        for seed in tqdm(seeds, desc=f"dagger rollouts (beta {beta:.2f})", unit="ep", disable=not progress, leave=False):
            actor = _RelabellingActor(policy, make_demonstrator(task, expert_style, seed=seed), beta, rng)
            traj = run_episode(env, actor, seed=seed, policy_version=actor.policy_version,
                               episode_id=f"dagger-{seed}")  # fmt: skip
            labels = np.stack(actor.labels[: len(traj)])
            extra = {**traj.extra, "relabelled_by": f"scripted:{expert_style}", "beta": beta}
            out.append(dataclasses.replace(traj, actions=labels, extra=extra))
            successes.append(bool(traj.success))
            policy_steps += actor.policy_steps
            steps += len(traj)
    finally:
        env.close()
        policy.train(was_training)
    stats = {
        "dagger/rollout_success_rate": float(np.mean(successes)) if successes else 0.0,
        "dagger/policy_step_fraction": policy_steps / max(steps, 1),
        "dagger/steps": float(steps),
    }
    return out, stats


def _rate(row: dict[str, Any]) -> str:
    return f"eval success {row['eval/success_rate']:.0%}" if "eval/success_rate" in row else ""


@dataclass
class DaggerResult:
    policy: VLAPolicy
    checkpoint: Path
    rounds: list[dict[str, Any]]
    final_metrics: dict[str, float]
    seconds: float


def train_dagger(
    demos: Sequence[Trajectory],
    out_dir: str | os.PathLike,
    task: str,
    config: DaggerConfig | None = None,
    bc_config: BCConfig | None = None,
    policy_config: PolicyConfig | None = None,
    eval_fn: EvalFn | None = None,
    sim_config: Any = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    preselected: bool = False,
) -> DaggerResult:
    """Initial BC on `demos`, then `config.rounds` DAgger rounds; everything within one time budget.

    The demos are filtered once (`bc_config.only_successful`, `keep_fraction`); expert-relabelled
    rollouts are kept whole (their labels are the expert's, whatever the rollout did). Each round's
    training writes under out_dir/round_<r>; the final policy is out_dir/policy, and
    out_dir/dagger_summary.json lists every round's figures. `preselected`: `demos` were already
    filtered that way (e.g. from their manifests, before reading any frame); don't filter again."""
    cfg = config or DaggerConfig()
    bc_cfg = bc_config or BCConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    def left() -> float:
        return cfg.time_budget_s - (time.perf_counter() - start)

    data = list(demos) if preselected else list(select_demos(demos, bc_cfg.only_successful, bc_cfg.keep_fraction))
    # Later rounds see the (already filtered) demos plus every relabelled rollout, unfiltered.
    round_cfg = dataclasses.replace(bc_cfg, only_successful=False, keep_fraction=1.0)
    rng = np.random.default_rng(cfg.seed)
    rounds: list[dict[str, Any]] = []

    def train(r: int, steps: int, init: VLAPolicy | None):
        budget = max(left(), 1.0)
        c = dataclasses.replace(round_cfg, steps=steps, time_budget_s=budget, eval_every=0,
                                warmup_steps=min(round_cfg.warmup_steps, steps // 5), seed=bc_cfg.seed + r)  # fmt: skip
        return train_bc(data, out / f"round_{r}", c, policy_config, eval_fn=None, progress=progress, init_policy=init)

    def round_eval(policy: VLAPolicy) -> dict[str, float]:
        if eval_fn is None or not cfg.eval_each_round:
            return {}
        return {k: v for k, v in eval_fn(policy, False).items() if k.startswith("eval/")}

    res = train(0, cfg.initial_steps, None)
    policy = res.policy
    rounds.append({"round": 0, "bc_steps": res.steps, "data_episodes": len(data),
                   "seconds": round(time.perf_counter() - start, 1), **round_eval(policy)})  # fmt: skip
    log(f"dagger: initial BC {res.steps} steps on {len(data)} demos ({rounds[-1]['seconds']} s) {_rate(rounds[-1])}")
    beta = cfg.beta
    for r in range(1, cfg.rounds + 1):
        if left() < 60:
            log(f"dagger: time budget spent before round {r}")
            break
        seeds = [DAGGER_SEED_OFFSET + 10_000 * cfg.seed + (r - 1) * cfg.episodes_per_round + i
                 for i in range(cfg.episodes_per_round)]  # fmt: skip
        new, stats = collect_relabelled(policy, task, seeds, beta, sim_config, cfg.expert_style, rng, progress)
        data.extend(new)
        res = train(r, cfg.steps_per_round, policy)
        policy = res.policy
        rounds.append({"round": r, "beta": beta, "new_episodes": len(new), "data_episodes": len(data),
                       "bc_steps": res.steps, "seconds": round(time.perf_counter() - start, 1), **stats,
                       **round_eval(policy)})  # fmt: skip
        log(f"dagger: round {r}: beta {beta:.2f}, rollouts succeeded {stats['dagger/rollout_success_rate']:.0%} "
            f"({stats['dagger/policy_step_fraction']:.0%} policy steps), {res.steps} steps, {rounds[-1]['seconds']} s "
            f"{_rate(rounds[-1])}")
        beta *= cfg.beta_decay
    train_seconds = time.perf_counter() - start
    checkpoint = policy.save(out / "policy")
    final = eval_fn(policy, True) if eval_fn is not None else {}
    summary = {
        "dagger": asdict(cfg), "bc": asdict(bc_cfg), "rounds": rounds, "final": final,
        "train_seconds": train_seconds, "total_seconds": time.perf_counter() - start, "checkpoint": str(checkpoint),
    }  # fmt: skip
    atomic_write_json(out / "dagger_summary.json", json.loads(json.dumps(summary, default=str)))
    return DaggerResult(policy, checkpoint, rounds, final, train_seconds)
