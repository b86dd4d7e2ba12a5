"""The acceptance experiment of phase 3, end to end on the sim (cached per stage in a work folder).

 1. demonstrations: scripted demonstrators of mixed style (fast/slow, smooth/jerky, careful/not)
 2. BC policy on them (the reference, and the baseline)
 3. preference data: two stochastic BC rollouts per initial state, windows labelled by the
    noise-free scripted teacher (gold per-step rewards: success, speed, smoothness, safety)
 4. reward-model ensemble on those labels
 5. PPO on the reward model (RLHF; with `rlhf_rounds`, rounds of new labels on the current policy's
    rollouts retrain it on the way), PPO on the gold reward (upper bound), DPO on the initial labels
 6. paired evaluation from the same held-out seeds, mean actions: win rate of each policy over BC
    by the noise-free gold ordering (gold return), success rate, mean squared jerk, and the fraction
    of the gold-PPO gain each method recovers.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ExperimentConfig:
    """Budgets of the acceptance experiment (defaults sized for a few CPU cores in ~15 minutes)."""

    task: str = "reach"
    """Sim task."""
    image_size: int = 64
    """Sim camera size."""
    num_envs: int = 2
    """Vectorised envs for rollouts."""
    demos: int = 60
    """Scripted demonstrations (mixed styles) for BC."""
    bc_steps: int = 1500
    """BC optimiser steps."""
    bc_checkpoint: str = ""
    """A trained BC policy checkpoint (e.g. from `rlhf bc dagger`) to refine instead of training one
    here from `demos`; the demos and BC stages are then skipped."""
    pref_states: int = 40
    """Initial states with two BC rollouts each for preference data."""
    windows_per_pair: int = 3
    """Labelled windows per rollout pair."""
    reward_epochs: int = 30
    """Reward-model epochs."""
    reward_use_images: int = 1
    """1: the reward model sees camera frames (RewardConfig.use_images); 0: proprio, actions, grasp point only."""
    reward_kinematic: int = 1
    """1: the reward model adds the scene features of `rlhf.reward.kinematics` and their linear
    channel (RewardConfig.kinematic); the sim records the object positions they need. On run F's
    128 labels, RLHF's jerk rose 2-16 % with it and 257 % without, and success fell 0-7.5 points
    against 15 (runs G-G3 and F in bench/results/rl.md)."""
    ppo_iterations: int = 20
    """PPO iterations for RLHF and for the gold upper bound."""
    episodes_per_iter: int = 16
    """PPO episodes per iteration."""
    kl_coef: float = 0.05
    """PPO KL coefficient (fixed). With BC's own std, 0.1 with lr 3e-4 let the per-episode KL reach
    10-58 nats and 0.3 / 1e-4 still lost success (bench/results/rl.md, run E); with the exploration
    std, 0.3 / 1e-4 kept it (run F). 0.05 over-optimised a reward model trained once (runs J, K) but
    not one retrained on rounds of labels from the current policy (`rlhf_rounds`; runs M, O)."""
    ppo_learning_rate: float = 1e-4
    """PPO head learning rate."""
    ppo_exploration_log_std: float = -2.0
    """PPOConfig.exploration_log_std (normalised units) for RLHF and gold PPO; nan keeps BC's std. With
    -3.0 instead, RLHF won 64 % of 100 paired seeds against 53 % with seed 0, and 40 % against 42 % with
    seed 1 (stop 22): no settled gain."""
    ppo_noise_correlation: float = 0.0
    """PPOConfig.exploration_noise_correlation for RLHF and gold PPO (and so for the loop's new pairs,
    which come from PPO's rollouts): 0 white noise, e.g. 0.9 AR(1) noise smooth in time. The initial
    preference pairs (BC with its own std) stay white. At exploration log std -3.0, 0.9 brought the
    rollouts' jerk nearer the mean action's (median over iterations 5.7-7.4 against 10.3-10.9 white)
    but RLHF won about as many seeds (58, 59, 55 % of 100 against 57, 61, 45 % white, seeds 0-2),
    lowered jerk less in two seeds of three, and the KL ended 2-6 times higher (the summed log-prob
    gradient of correlated noise has about (1 + rho) / (1 - rho) times the variance); at log std -2.0
    it cost a third of the rollouts' successes (bench/results/rl.md, stop 23)."""
    ppo_critic_warmup: int = 0
    """PPOConfig.critic_warmup_iterations: iterations in which only the critic learns (3 helped the
    GAE critic, run F; the group baseline below does not use the critic's values)."""
    ppo_group_size: int = 4
    """PPOConfig.group_size: episodes per initial state in a PPO iteration."""
    ppo_advantage: str = "group"
    """PPOConfig.advantage: 'gae' (critic) or 'group' (RLOO's leave-one-out baseline per seed)."""
    ppo_group_scale: int = 1
    """1: PPOConfig.group_scale (each seed group's advantages divided by its return std). With seed 0,
    gold PPO won 70 % of paired seeds with it against 52.5 % without (runs N and M); with seeds 1-3,
    55-72.5 % (bench/results/rl.md, stop 17): likely a gain, not a settled one. Stop 22 (jerk weight
    1e-2), same seed: 68 % of 100 seeds with it, 51 % without."""
    ppo_reward_std_coef: float = 0.0
    """RLHF's per-step reward is the ensemble's mean - k * std (pessimism where its members disagree)."""
    rlhf_rounds: int = 3
    """Iterative RLHF (`rlhf.rl.loop`) in the RLHF stage: PPO first runs its share of `ppo_iterations`
    on the initial reward model, then this many rounds of new pairs from the current policy ->
    teacher labels -> reward model retrained on every label so far -> PPO resumes. The iterations are
    split evenly, ppo_iterations // (rlhf_rounds + 1) per round; gold PPO runs the same total.
    0: the initial labels only."""
    rlhf_pairs_per_round: int = 32
    """Iterative RLHF: new same-start pairs (one window each) labelled per round."""
    dpo_epochs: int = 30
    """DPO epochs."""
    dpo_beta: float = 0.1
    """DPO beta."""
    dpo_rpo_alpha: float = 1.0
    """DPOConfig.rpo_alpha: weight of the chosen side's NLL per step (0: plain DPO). Plain DPO pushed
    the chosen side's likelihood down with the rejected one's (chosen reward -5.6 after 30 epochs) and
    collapsed: on seeds 0 and 1's 128 labels, 19 % and 36 % success against BC's 68 %. With 1.0: 53 %
    and 66 %, preferred over BC on 45 % and 49 % of 100 seeds (23 % and 30 % plain), and 53 % on seed
    2's labels; bench/results/rl.md, stop 23."""
    eval_seeds: int = 40
    """Held-out initial states for the paired evaluation."""
    seed: int = 0
    """Seeds everything."""

    def __post_init__(self) -> None:
        for name in ("image_size", "num_envs", "demos", "bc_steps", "pref_states", "windows_per_pair",
                     "reward_epochs", "ppo_iterations", "episodes_per_iter", "dpo_epochs", "eval_seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"ExperimentConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.ppo_group_size < 1 or self.episodes_per_iter % self.ppo_group_size:
            raise ValueError(f"ExperimentConfig.ppo_group_size ({self.ppo_group_size}) must divide "
                             f"episodes_per_iter ({self.episodes_per_iter})")
        if self.ppo_group_scale and self.ppo_advantage != "group":
            raise ValueError(f"ExperimentConfig.ppo_group_scale=1 needs ppo_advantage 'group', got "
                             f"{self.ppo_advantage!r} (set ppo_group_scale=0 for GAE)")
        if not 0.0 <= self.ppo_noise_correlation < 1.0:
            raise ValueError(f"ExperimentConfig.ppo_noise_correlation must be in [0, 1), got {self.ppo_noise_correlation}")
        if not self.ppo_reward_std_coef >= 0:
            raise ValueError(f"ExperimentConfig.ppo_reward_std_coef must be >= 0, got {self.ppo_reward_std_coef}")
        if self.rlhf_rounds < 0 or self.rlhf_pairs_per_round < 1:
            raise ValueError(f"ExperimentConfig.rlhf_rounds must be >= 0 and rlhf_pairs_per_round >= 1, "
                             f"got {self.rlhf_rounds} and {self.rlhf_pairs_per_round}")
        if self.ppo_iterations // (self.rlhf_rounds + 1) < 1:
            raise ValueError(f"ExperimentConfig.ppo_iterations ({self.ppo_iterations}) leaves no PPO iteration per "
                             f"round for rlhf_rounds={self.rlhf_rounds}")


@dataclass
class Timer:
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, t0: float) -> None:
        self.seconds[name] = round(time.perf_counter() - t0, 1)


def _env_fn(cfg: ExperimentConfig):
    import gymnasium as gym

    import sim

    return functools.partial(gym.make, sim.ENV_ID, task=cfg.task, config=sim.SimConfig(image_size=cfg.image_size, task=cfg.task))


def _demos(cfg: ExperimentConfig, work: Path):
    from rlhf.rollout import run_episode
    from rlhf.trajectory import Trajectory
    from sim.demonstrators import make_demonstrator

    folder = work / "demos"
    files = sorted(folder.glob("*.npz"))
    if len(files) >= cfg.demos:
        return [Trajectory.load(f) for f in files[: cfg.demos]]
    env = _env_fn(cfg)()
    out = []
    for i in range(cfg.demos):
        seed = 500_000 + i
        traj = run_episode(env, make_demonstrator(cfg.task, "mixed", seed), seed, episode_id=f"demo-{i:04d}")
        traj.save(folder / f"{traj.episode_id}.npz")
        out.append(traj)
    env.close()
    return out


def _bc(cfg: ExperimentConfig, work: Path, demos) -> Path:
    from rlhf.policy.bc import BCConfig, train_bc
    from rlhf.policy.config import PolicyConfig

    if cfg.bc_checkpoint:
        if not (Path(cfg.bc_checkpoint) / "config.json").exists():
            raise FileNotFoundError(f"ExperimentConfig.bc_checkpoint {cfg.bc_checkpoint}: no policy checkpoint there")
        return Path(cfg.bc_checkpoint)

    ckpt = work / "bc" / "policy"
    if (ckpt / "config.json").exists():
        return ckpt
    res = train_bc(demos, work / "bc", BCConfig(steps=cfg.bc_steps, eval_every=0, seed=cfg.seed, device="cpu",
                                                 warmup_steps=min(200, cfg.bc_steps // 5)),
                   PolicyConfig(image_size=cfg.image_size), progress=False)
    return res.checkpoint


def _load(ckpt: Path, head: Path | None = None):
    from rlhf.policy.vla import VLAPolicy
    from rlhf.rl.policy_adapter import VLAAdapter

    policy = VLAPolicy.load(ckpt)
    if head is not None:
        policy.load_head(head)
    return VLAAdapter(policy)


def _collector(cfg: ExperimentConfig, policy, version: str):
    from rlhf.rl.rollouts import VectorRolloutCollector

    return VectorRolloutCollector([_env_fn(cfg)] * cfg.num_envs, policy, mode="async" if cfg.num_envs > 1 else "sync",
                                  policy_version=version, task=cfg.task, sample_seed=cfg.seed)


def _preferences(cfg: ExperimentConfig, work: Path, bc_ckpt: Path):
    from rlhf.prefs.teacher_model import TeacherConfig
    from rlhf.reward.features import segment_steps
    from rlhf.reward.inputs import load_episode_dir, read_triples_file, write_triples_jsonl
    from rlhf.rl.loop import teacher_labels
    from sim.metrics import gold_step_rewards

    folder, tfile = work / "pref_episodes", work / "triples.jsonl"
    if tfile.exists():
        return load_episode_dir(folder, progress=False), read_triples_file(tfile)
    policy = _load(bc_ckpt)
    col = _collector(cfg, policy, "bc")
    seeds = [200_000 + i for i in range(cfg.pref_states) for _ in range(2)]
    trajs = [r.trajectory for r in col.collect(seeds)]
    col.close()
    episodes = {}
    for t in trajs:
        t.save(folder / f"{t.episode_id}.npz")
        episodes[t.episode_id] = t
    rng = np.random.default_rng(cfg.seed)
    pairs = []
    for a, b in zip(trajs[0::2], trajs[1::2], strict=True):
        n = min(len(a), len(b))
        k = min(segment_steps(a, 2.0), n)
        for _ in range(cfg.windows_per_pair):
            s = int(rng.integers(0, n - k + 1))
            pairs.append(((a.episode_id, (s, s + k)), (b.episode_id, (s, s + k))))
        pairs.append(((a.episode_id, (0, len(a))), (b.episode_id, (0, len(b)))))  # whole episodes too
    triples = teacher_labels(pairs, episodes, gold_step_rewards, TeacherConfig(), rng, prefix="accept")
    write_triples_jsonl(triples, tfile)
    return episodes, triples


def _reward_model(cfg: ExperimentConfig, work: Path, episodes, triples):
    from rlhf.reward.checkpoint import load_checkpoint, save_checkpoint

    path = work / "reward"
    if path.exists():
        return load_checkpoint(path)
    ensemble = _train_reward(cfg, episodes, triples)
    save_checkpoint(ensemble, path)
    return ensemble


def _train_reward(cfg: ExperimentConfig, episodes, triples):
    from rlhf.reward.config import RewardConfig
    from rlhf.reward.train import train_reward_model

    rcfg = RewardConfig(epochs=cfg.reward_epochs, seed=cfg.seed, use_images=bool(cfg.reward_use_images),
                        kinematic=bool(cfg.reward_kinematic))
    return train_reward_model(episodes, triples, rcfg, progress=False).ensemble


def _rlhf_rounds(cfg: ExperimentConfig, trainer, out: Path, episodes, triples, log) -> None:
    """PPO's first share of the iterations, then `cfg.rlhf_rounds` rounds of the iterative loop."""
    from rlhf.prefs.teacher_model import TeacherConfig
    from rlhf.reward.checkpoint import save_checkpoint
    from rlhf.reward.config import RewardConfig
    from rlhf.reward.features import segment_steps
    from rlhf.reward.inputs import write_triples_jsonl
    from rlhf.rl.config import LoopConfig
    from rlhf.rl.loop import RLHFLoop

    per_round = cfg.ppo_iterations // (cfg.rlhf_rounds + 1)
    trainer.train(cfg.ppo_iterations - cfg.rlhf_rounds * per_round)
    lcfg = LoopConfig(rounds=cfg.rlhf_rounds, pairs_per_round=cfg.rlhf_pairs_per_round,
                      ppo_iterations_per_round=per_round, reward_epochs=cfg.reward_epochs, seed=cfg.seed)
    # The same window length as the initial labels', at the episodes' own control rate.
    steps = segment_steps(next(iter(episodes.values())), RewardConfig().segment_seconds)
    loop = RLHFLoop(trainer, lcfg, lambda eps, trs: _train_reward(cfg, eps, trs), steps, teacher=TeacherConfig(),
                    episodes=episodes, triples=triples, reward_std_coef=cfg.ppo_reward_std_coef)
    for _ in range(cfg.rlhf_rounds):
        m = loop.run_round()
        log(f"rlhf round {int(m['rlhf/round'])}: {int(m['rlhf/new_labels'])} new labels "
            f"({int(m['rlhf/total_labels'])} in all), gold {m['rlhf/gold_return']:.2f}, "
            f"proxy {m['rlhf/proxy_return']:.2f}, KL {m['rlhf/kl']:.2f}")
    # What the rounds added, for inspection: every label and the last reward model.
    write_triples_jsonl(loop.triples, out / "triples.jsonl")
    save_checkpoint(trainer.reward_fn.model, out / "reward")


def _ppo(cfg: ExperimentConfig, work: Path, bc_ckpt: Path, reward_fn, name: str, rounds=None) -> Path:
    """PPO on `reward_fn`; `rounds(trainer, out)`, when given, runs the iterations instead (iterative RLHF)."""
    from rlhf.rl.config import PPOConfig
    from rlhf.rl.logging import MetricsLogger, plot_proxy_gold_kl
    from rlhf.rl.ppo import PPOTrainer

    out = work / name
    done = 0
    if (out / "head" / "head.pt").exists() and (out / "trainer_state.json").exists():
        done = int(json.loads((out / "trainer_state.json").read_text())["iteration"])
        if done >= cfg.ppo_iterations:
            return out / "head"
        if rounds is not None:
            done = 0  # the loop's labels and reward models are not checkpointed: the stage starts over
    policy = _load(bc_ckpt)
    col = _collector(cfg, policy, name)
    logger = MetricsLogger(out, tensorboard=False)
    pcfg = PPOConfig(iterations=cfg.ppo_iterations, episodes_per_iter=cfg.episodes_per_iter, kl_coef=cfg.kl_coef,
                     learning_rate=cfg.ppo_learning_rate, num_envs=cfg.num_envs, seed=cfg.seed, checkpoint_every=5,
                     exploration_log_std=None if math.isnan(cfg.ppo_exploration_log_std) else cfg.ppo_exploration_log_std,
                     exploration_noise_correlation=cfg.ppo_noise_correlation,
                     critic_warmup_iterations=cfg.ppo_critic_warmup, group_size=cfg.ppo_group_size,
                     advantage=cfg.ppo_advantage, group_scale=bool(cfg.ppo_group_scale))
    trainer = PPOTrainer(policy, col, reward_fn, pcfg, logger=logger, out_dir=out, progress=False)
    if rounds is not None:
        logger.keep_first(0)
        rounds(trainer, out)
    elif done:
        # An interrupted run, or one extended with more iterations: resume head, critic, KL and
        # normaliser state where it stopped (the metrics CSV keeps its rows).
        trainer.load(out)
        logger.keep_first(done)
        trainer.train(cfg.ppo_iterations - done)
    else:
        trainer.train(cfg.ppo_iterations)
    col.close()
    logger.close()
    plot_proxy_gold_kl(out / "metrics.csv", out / "proxy_gold_kl.png", title=name)
    return out / "head"


def _dpo(cfg: ExperimentConfig, work: Path, bc_ckpt: Path, episodes, triples) -> Path:
    from rlhf.rl.config import DPOConfig
    from rlhf.rl.dpo import DPOTrainer, build_pairs

    out = work / "dpo" / "head"
    if (out / "head.pt").exists():
        return out
    policy = _load(bc_ckpt)
    pairs = build_pairs(policy, triples, episodes)
    DPOTrainer(policy, DPOConfig(beta=cfg.dpo_beta, epochs=cfg.dpo_epochs, seed=cfg.seed,
                                   rpo_alpha=cfg.dpo_rpo_alpha), progress=False).train(pairs)
    policy.save_head(out)
    return out


def _evaluate(cfg: ExperimentConfig, bc_ckpt: Path, head: Path | None, name: str) -> list[Any]:
    policy = _load(bc_ckpt, head)
    col = _collector(cfg, policy, name)
    trajs = [r.trajectory for r in col.collect([900_000 + i for i in range(cfg.eval_seeds)], deterministic=True)]
    col.close()
    return trajs


def per_seed(evals: dict[str, list[Any]]) -> dict[str, Any]:
    """The evaluation seed by seed (gold return, success, jerk per policy), so that a subset of the
    seeds, or another comparison than `summarise`'s, can be read back without rolling out again."""
    from sim.metrics import gold_metrics, gold_step_rewards

    out: dict[str, Any] = {"seeds": [900_000 + i for i in range(len(next(iter(evals.values()), [])))]}
    for name, trajs in evals.items():
        m = [gold_metrics(t) for t in trajs]
        out[name] = {"gold_return": [float(gold_step_rewards(t).sum()) for t in trajs],
                     "success": [float(x["success"]) for x in m],
                     "mean_squared_jerk": [float(x["mean_squared_jerk"]) for x in m]}
    return out


def summarise(evals: dict[str, list[Any]]) -> dict[str, dict[str, float]]:
    """Per policy: gold return, success, jerk, and (vs BC, paired by seed) win rate by gold return."""
    return summarise_per_seed(per_seed(evals))


def summarise_per_seed(seeds: dict[str, Any]) -> dict[str, dict[str, float]]:
    """`summarise` from `per_seed`'s figures."""
    def figures(name):
        return (np.array(seeds[name][k]) for k in ("gold_return", "success", "mean_squared_jerk"))

    bc_gold, bc_succ, bc_jerk = figures("bc")
    out = {}
    for name in (k for k in seeds if k != "seeds"):
        gold, succ, jerk = figures(name)
        wins = np.mean(np.where(gold > bc_gold, 1.0, np.where(gold == bc_gold, 0.5, 0.0)))
        out[name] = {
            "gold_return": float(gold.mean()),
            "success_rate": float(succ.mean()),
            "mean_squared_jerk": float(jerk.mean()),
            "win_rate_vs_bc": float(wins),
            "jerk_change_vs_bc": float(jerk.mean() / max(bc_jerk.mean(), 1e-12) - 1.0),
            "success_change_points": float(100 * (succ.mean() - bc_succ.mean())),
        }
    if "ppo_gold" in out:
        gain = out["ppo_gold"]["gold_return"] - out["bc"]["gold_return"]
        for name in out:
            out[name]["fraction_of_gold_gain"] = (
                float((out[name]["gold_return"] - out["bc"]["gold_return"]) / gain) if abs(gain) > 1e-9 else float("nan")
            )
    return out


def run_acceptance(work_dir: str | Path, cfg: ExperimentConfig | None = None, log=print) -> dict[str, Any]:
    """Run (or resume) every stage; returns the summary and writes it to work_dir/summary.json."""
    import torch

    from rlhf.atomic import atomic_write_json
    from rlhf.rl.reward_shaping import EnsembleStepReward, GoldStepReward

    cfg = cfg or ExperimentConfig()
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)  # small networks: threads only contend with the env processes
    timer = Timer()
    t0 = time.perf_counter()
    demos = [] if cfg.bc_checkpoint else _demos(cfg, work)
    timer.add("demos", t0)
    log(f"demos: {len(demos)} ({timer.seconds['demos']} s)")
    t0 = time.perf_counter()
    bc = _bc(cfg, work, demos)
    timer.add("bc", t0)
    log(f"bc: {bc} ({timer.seconds['bc']} s)")
    t0 = time.perf_counter()
    episodes, triples = _preferences(cfg, work, bc)
    timer.add("preferences", t0)
    log(f"preferences: {len(triples)} labels on {len(episodes)} episodes ({timer.seconds['preferences']} s)")
    t0 = time.perf_counter()
    ensemble = _reward_model(cfg, work, episodes, triples)
    timer.add("reward_model", t0)
    log(f"reward model ({timer.seconds['reward_model']} s)")
    heads: dict[str, Path | None] = {"bc": None}
    rounds = functools.partial(_rlhf_rounds, cfg, episodes=episodes, triples=triples, log=log) if cfg.rlhf_rounds else None
    for name, fn in (("ppo_rlhf", lambda: EnsembleStepReward(ensemble, cfg.ppo_reward_std_coef)), ("ppo_gold", GoldStepReward)):
        t0 = time.perf_counter()
        heads[name] = _ppo(cfg, work, bc, fn(), name, rounds=rounds if name == "ppo_rlhf" else None)
        timer.add(name, t0)
        log(f"{name} ({timer.seconds[name]} s)")
    t0 = time.perf_counter()
    heads["dpo"] = _dpo(cfg, work, bc, episodes, triples)
    timer.add("dpo", t0)
    log(f"dpo ({timer.seconds['dpo']} s)")
    t0 = time.perf_counter()
    evals = {name: _evaluate(cfg, bc, head, name) for name, head in heads.items()}
    timer.add("evaluate", t0)
    seeds = per_seed(evals)
    summary = {"config": cfg.__dict__, "results": summarise_per_seed(seeds), "per_seed": seeds,
               "seconds": timer.seconds, "labels": len(triples)}
    loop_triples = work / "ppo_rlhf" / "triples.jsonl"
    if cfg.rlhf_rounds and loop_triples.exists():
        summary["labels_after_rlhf_rounds"] = sum(1 for line in loop_triples.read_text().splitlines() if line.strip())
    atomic_write_json(work / "summary.json", summary)
    return summary
