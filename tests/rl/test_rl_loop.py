"""The iterative RLHF loop on stand-ins, and tiny-budget smoke runs of the CLI on the real sim and policy."""

from __future__ import annotations

import numpy as np
import pytest
from rl_standins import TinyRLPolicy, gold_metrics, gold_step_rewards, make_toy_env

from rlhf.rl.config import LoopConfig, PPOConfig
from rlhf.rl.loop import RLHFLoop, same_start_pairs
from rlhf.rl.ppo import PPOTrainer
from rlhf.rl.reward_shaping import EnsembleStepReward
from rlhf.rl.rollouts import VectorRolloutCollector


class GoldAsModel:
    """Stand-in reward model: scores with the gold reward, remembers how many labels it was fit on."""

    def __init__(self, n_labels: int) -> None:
        self.n_labels = n_labels

    def score(self, traj):
        r = gold_step_rewards(traj)
        return float(r.sum()), 0.0, r, np.zeros_like(r)


def test_loop_rounds_add_same_start_labels_update_reward_and_resume_ppo():
    policy = TinyRLPolicy(seed=0, bc_steps=100)
    collector = VectorRolloutCollector([make_toy_env] * 2, policy, mode="sync", task="toy")
    trainer = PPOTrainer(policy, collector, gold_step_rewards, PPOConfig(episodes_per_iter=4, minibatch_size=30),
                         gold_fn=gold_step_rewards, gold_metrics_fn=gold_metrics, progress=False)
    fits = []

    def train_reward(episodes, triples):
        assert all(t.episode_a in episodes and t.episode_b in episodes for t in triples)
        fits.append(len(triples))
        return GoldAsModel(len(triples))

    loop = RLHFLoop(trainer, LoopConfig(rounds=2, pairs_per_round=4, ppo_iterations_per_round=2), train_reward,
                    segment_steps=6)
    out = loop.run()
    assert [m["rlhf/round"] for m in out] == [0.0, 1.0]
    assert fits[0] > 0 and fits[1] > fits[0]  # every label so far, growing each round
    assert trainer.iteration == 4
    assert isinstance(trainer.reward_fn, EnsembleStepReward) and trainer.reward_fn.model.n_labels == fits[1]
    for t in loop.triples:
        a, b = loop.episodes[t.episode_a], loop.episodes[t.episode_b]
        assert a.seed == b.seed and t.segment_a == t.segment_b and t.segment_a[1] - t.segment_a[0] == 6


def test_same_start_pairs_share_a_window():
    class T:
        def __init__(self, eid, n):
            self.episode_id, self.n = eid, n

        def __len__(self):
            return self.n

    pairs = same_start_pairs([T("a", 10), T("b", 7), T("c", 3), T("d", 5)], 5, np.random.default_rng(0))
    (ea, sa), (eb, sb) = pairs[0]
    assert (ea, eb) == ("a", "b") and sa == sb and sa[1] <= 7 and sa[1] - sa[0] == 5
    assert pairs[1][0][1] == (0, 3)


def test_experiment_summary_pairs_by_seed_and_reports_fraction_of_gold_gain(monkeypatch):
    import sim.metrics
    from rlhf.rl.experiment import per_seed, summarise

    class Tr:
        def __init__(self, gold, success, jerk):
            self.gold, self.success, self.jerk = gold, success, jerk

    monkeypatch.setattr(sim.metrics, "gold_step_rewards", lambda t: np.array([t.gold]))
    monkeypatch.setattr(sim.metrics, "gold_metrics", lambda t: {"success": t.success, "mean_squared_jerk": t.jerk})
    evals = {
        "bc": [Tr(0.0, 1.0, 4.0), Tr(1.0, 0.0, 4.0)],
        "ppo_gold": [Tr(2.0, 1.0, 1.0), Tr(3.0, 1.0, 1.0)],
        "ppo_rlhf": [Tr(1.0, 1.0, 2.0), Tr(1.0, 0.0, 2.0)],  # one win, one tie -> 0.75
    }
    s = summarise(evals)
    assert s["ppo_rlhf"]["win_rate_vs_bc"] == 0.75 and s["ppo_gold"]["win_rate_vs_bc"] == 1.0
    assert s["ppo_rlhf"]["fraction_of_gold_gain"] == 0.25  # (1 - 0.5) / (2.5 - 0.5)
    assert s["ppo_rlhf"]["jerk_change_vs_bc"] == -0.5 and s["ppo_gold"]["success_change_points"] == 50.0
    seeds = per_seed(evals)
    assert seeds["seeds"] == [900_000, 900_001]
    assert seeds["ppo_rlhf"] == {"gold_return": [1.0, 1.0], "success": [1.0, 0.0], "mean_squared_jerk": [2.0, 2.0]}
    assert seeds["bc"]["gold_return"] == [0.0, 1.0]


def test_acceptance_experiment_config_checks_the_rounds_split():
    from rlhf.rl.experiment import ExperimentConfig

    cfg = ExperimentConfig(ppo_iterations=40, rlhf_rounds=3)
    assert cfg.ppo_iterations // (cfg.rlhf_rounds + 1) == 10
    with pytest.raises(ValueError, match="rlhf_rounds"):
        ExperimentConfig(rlhf_rounds=-1)
    with pytest.raises(ValueError, match="rlhf_pairs_per_round"):
        ExperimentConfig(rlhf_pairs_per_round=0)
    with pytest.raises(ValueError, match=r"ppo_iterations \(2\) leaves no PPO iteration"):
        ExperimentConfig(ppo_iterations=2, rlhf_rounds=2)
    with pytest.raises(ValueError, match=r"ppo_group_size \(5\) must divide episodes_per_iter \(16\)"):
        ExperimentConfig(ppo_group_size=5)
    with pytest.raises(ValueError, match="set ppo_group_scale=0 for GAE"):
        ExperimentConfig(ppo_advantage="gae")
    assert ExperimentConfig(ppo_advantage="gae", ppo_group_scale=0, ppo_group_size=1).ppo_advantage == "gae"
    with pytest.raises(ValueError, match="ppo_reward_std_coef"):
        ExperimentConfig(ppo_reward_std_coef=-1.0)
