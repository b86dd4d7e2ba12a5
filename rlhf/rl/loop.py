"""Iterative RLHF: rounds of rollouts -> new pairs from the current policy -> labels -> reward-model
update -> PPO resumes (Christiano et al., 2017; Ouyang et al., 2022's iterated collection).

Each round, top to bottom:
  1. roll out the current policy twice from each of `pairs_per_round` initial states (same env seed),
     so both sides of a pair start alike and differ only by the policy's own variation
  2. cut one equal window from each side (the reward model's segment length)
  3. label them: the scripted B-Pref teacher on gold per-step rewards, or read back what annotators
     labelled in the preference store
  4. retrain the reward-model ensemble on every label so far; PPO's reward switches to the new one
  5. resume PPO (same head, critic, KL coefficient, normaliser) for `ppo_iterations_per_round`
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rlhf.prefs.teacher_model import TeacherConfig, label_pair
from rlhf.prefs.triples import PreferenceTriple
from rlhf.rl.config import LoopConfig
from rlhf.rl.ppo import PPOTrainer
from rlhf.rl.reward_shaping import EnsembleStepReward
from rlhf.trajectory import Trajectory

RewardTrainFn = Callable[[Mapping[str, Trajectory], Sequence[PreferenceTriple]], Any]
"""(episodes, triples) -> a reward model with `score(traj)`."""
StoreLabelFn = Callable[[Mapping[str, Trajectory]], list[PreferenceTriple]]
"""episodes known so far -> labelled triples read from the annotation store."""


def same_start_pairs(
    trajs: Sequence[Trajectory], segment_steps: int, rng: np.random.Generator
) -> list[tuple[tuple[str, tuple[int, int]], tuple[str, tuple[int, int]]]]:
    """Pair consecutive trajectories (2i, 2i + 1), which share an initial state, on one common window.

    The window has `segment_steps` steps (fewer if an episode is shorter) at a random start that fits both.
    """
    if len(trajs) % 2:
        raise ValueError(f"same_start_pairs needs an even number of trajectories, got {len(trajs)}")
    out = []
    for a, b in zip(trajs[0::2], trajs[1::2], strict=True):
        n = min(len(a), len(b))
        k = min(segment_steps, n)
        start = int(rng.integers(0, n - k + 1))
        out.append(((a.episode_id, (start, start + k)), (b.episode_id, (start, start + k))))
    return out


def teacher_labels(
    pairs: Sequence[tuple[tuple[str, tuple[int, int]], tuple[str, tuple[int, int]]]],
    episodes: Mapping[str, Trajectory],
    gold_fn: Callable[[Trajectory], np.ndarray],
    teacher: TeacherConfig,
    rng: np.random.Generator,
    prefix: str,
) -> list[PreferenceTriple]:
    """The scripted teacher's labels on gold per-step rewards; can't-tell answers are dropped."""
    out = []
    gold_cache: dict[str, np.ndarray] = {}
    for i, ((ea, sa), (eb, sb)) in enumerate(pairs):
        for eid in (ea, eb):
            if eid not in gold_cache:
                gold_cache[eid] = np.asarray(gold_fn(episodes[eid]), dtype=np.float64)
        label = label_pair(gold_cache[ea][sa[0] : sa[1]], gold_cache[eb][sb[0] : sb[1]], teacher, rng)
        if label is None:
            continue
        out.append(PreferenceTriple(
            pair_id=f"{prefix}-{i}", instruction=episodes[ea].instruction, episode_a=ea, episode_b=eb,
            segment_a=tuple(sa), segment_b=tuple(sb), prob_a=float(label), annotator_id=teacher.name,
            campaign_id=prefix.split("-")[0],
        ))
    return out


class RLHFLoop:
    """Drives the rounds; owns the growing episode and label sets."""

    def __init__(
        self,
        trainer: PPOTrainer,
        config: LoopConfig,
        train_reward: RewardTrainFn,
        segment_steps: int,
        teacher: TeacherConfig | None = None,
        store_labels: StoreLabelFn | None = None,
        episodes: Mapping[str, Trajectory] | None = None,
        triples: Sequence[PreferenceTriple] = (),
        reward_std_coef: float = 0.0,
        logger: Any = None,
        on_new_episodes: Callable[[list[Trajectory]], None] | None = None,
    ) -> None:
        if config.labeler == "store" and store_labels is None:
            raise ValueError("LoopConfig.labeler is 'store' but no store_labels function was given")
        self.trainer = trainer
        self.config = config
        self.train_reward = train_reward
        self.segment_steps = int(segment_steps)
        self.teacher = teacher or TeacherConfig()
        self.store_labels = store_labels
        self.episodes: dict[str, Trajectory] = dict(episodes or {})
        self.triples: list[PreferenceTriple] = list(triples)
        self.reward_std_coef = reward_std_coef
        self.logger = logger
        self.on_new_episodes = on_new_episodes
        self.rng = np.random.default_rng(config.seed)
        self.round = 0

    def run_round(self) -> dict[str, float]:
        c = self.config
        # 1. rollouts of the current policy, two per initial state
        base = 10_000_000 + (c.seed * 1000 + self.round) * c.pairs_per_round
        seeds = [base + i for i in range(c.pairs_per_round)]
        seeds = [s for s in seeds for _ in range(2)] if c.same_start_pairs else [base + i for i in range(2 * c.pairs_per_round)]
        records = self.trainer.collect(seeds)
        trajs = [r.trajectory for r in records]
        for t in trajs:
            t.policy_version = f"ppo:iter{self.trainer.iteration}"
            self.episodes[t.episode_id] = t
        if self.on_new_episodes is not None:
            self.on_new_episodes(trajs)
        # 2-3. pairs and labels
        if c.labeler == "teacher":
            pairs = same_start_pairs(trajs, self.segment_steps, self.rng)
            new = teacher_labels(pairs, self.episodes, self.trainer.gold_fn, self.teacher, self.rng,
                                 prefix=f"rlhf-round{self.round}")
            self.triples.extend(new)
        else:
            known = {t.pair_id for t in self.triples}
            new = [t for t in self.store_labels(self.episodes) if t.pair_id not in known]
            self.triples.extend(new)
        # 4. reward-model update on every label so far
        if c.reward_epochs > 0 and self.triples:
            model = self.train_reward(self.episodes, self.triples)
            self.trainer.reward_fn = EnsembleStepReward(model, self.reward_std_coef)
        # 5. PPO resumes
        hist = self.trainer.train(c.ppo_iterations_per_round)
        last = hist[-1]
        metrics = {
            "rlhf/round": float(self.round),
            "rlhf/new_labels": float(len(new)),
            "rlhf/total_labels": float(len(self.triples)),
            "rlhf/gold_return": last["gold/return"],
            "rlhf/proxy_return": last["objective/scores"],
            "rlhf/kl": last["objective/kl"],
        }
        if self.logger is not None:
            self.logger.log(self.round, metrics)
        self.round += 1
        return metrics

    def run(self) -> list[dict[str, float]]:
        return [self.run_round() for _ in range(self.config.rounds)]
