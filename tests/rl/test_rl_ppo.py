"""PPO on stand-ins: only the head (and critic) learn; a high KL coefficient keeps the policy near
the reference; with no KL and a hackable reward the over-optimisation monitor flags it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rl_standins import (
    TinyRLPolicy,
    gold_metrics,
    gold_step_rewards,
    hackable_step_rewards,
    make_toy_env,
)

from rlhf.rl.config import PPOConfig
from rlhf.rl.logging import MetricsLogger, plot_proxy_gold_kl, read_metrics_csv
from rlhf.rl.ppo import PPOTrainer
from rlhf.rl.rollouts import VectorRolloutCollector


def make_trainer(kl_coef: float, reward=hackable_step_rewards, logger=None, out_dir=None, **kw) -> PPOTrainer:
    policy = TinyRLPolicy(seed=0, bc_steps=300)
    collector = VectorRolloutCollector([make_toy_env] * 4, policy, mode="sync", task="toy")
    cfg = PPOConfig(iterations=14, episodes_per_iter=8, minibatch_size=60, learning_rate=3e-3,
                    kl_coef=kl_coef, **kw)
    return PPOTrainer(policy, collector, reward, cfg, gold_fn=gold_step_rewards, gold_metrics_fn=gold_metrics,
                      logger=logger, out_dir=out_dir, progress=False)


def test_rollouts_are_complete_episodes_in_seed_order():
    policy = TinyRLPolicy(seed=0, bc_steps=0)
    col = VectorRolloutCollector([make_toy_env] * 3, policy, mode="sync", task="toy")
    recs = col.collect([5, 6, 7, 8], deterministic=True)
    assert [r.seed for r in recs] == [5, 6, 7, 8]
    for r in recs:
        assert len(r.trajectory) == 15 and r.features.shape == (15, 16) and r.samples.shape == (15, 8)
        assert r.last_features.shape == (16,) and not r.terminated
        assert r.trajectory.ee_positions.shape == (15, 3) and r.trajectory.object_positions.shape == (15, 1, 3)
    # same seed, deterministic policy -> the same episode (paired rollouts start alike). Up to float
    # rounding: the network runs on another batch here, and with other processes busy the BLAS picks
    # another thread split (seen: 1e-7 rad apart), which no episode pairing cares about.
    again = col.collect([6], deterministic=True)[0]
    np.testing.assert_allclose(again.trajectory.joint_positions, recs[1].trajectory.joint_positions, atol=1e-5)
    col.close()


def test_update_changes_only_head_and_critic():
    tr = make_trainer(0.1)
    backbone = {k: v.clone() for k, v in tr.policy.policy.backbone.state_dict().items()}
    head = {k: v.clone() for k, v in tr.head.state_dict().items()}
    ref = {k: v.clone() for k, v in tr.reference_head.state_dict().items()}
    critic = {k: v.clone() for k, v in tr.critic.state_dict().items()}
    m = tr.step()
    for k, v in tr.policy.policy.backbone.state_dict().items():
        assert torch.equal(v, backbone[k]), f"backbone param {k} changed"
    for k, v in tr.reference_head.state_dict().items():
        assert torch.equal(v, ref[k]), f"reference head param {k} changed"
    assert any(not torch.equal(v, head[k]) for k, v in tr.head.state_dict().items()), "head did not change"
    assert any(not torch.equal(v, critic[k]) for k, v in tr.critic.state_dict().items()), "critic did not change"
    assert all(p.grad is None for p in tr.policy.policy.backbone.parameters())
    for key in ("objective/kl", "objective/rlhf_reward", "objective/scores", "losses/approx_kl",
                "losses/policy_loss", "losses/value_loss", "charts/SPS", "gold/return", "gold/jerk"):
        assert key in m and np.isfinite(m[key]), key


def test_critic_warmup_trains_only_the_critic_first():
    tr = make_trainer(0.1, critic_warmup_iterations=1)
    head = {k: v.clone() for k, v in tr.head.state_dict().items()}
    critic = {k: v.clone() for k, v in tr.critic.state_dict().items()}
    m = tr.step()
    assert m["losses/critic_warmup"] == 1.0
    for k, v in tr.head.state_dict().items():
        assert torch.equal(v, head[k]), f"head param {k} changed during the critic warm-up"
    assert any(not torch.equal(v, critic[k]) for k, v in tr.critic.state_dict().items()), "critic did not change"
    m = tr.step()
    assert m["losses/critic_warmup"] == 0.0
    assert any(not torch.equal(v, head[k]) for k, v in tr.head.state_dict().items()), "head did not change after it"


@pytest.mark.slow
def test_high_kl_coef_stays_near_reference_and_zero_kl_overoptimises_hackable_reward():
    free = make_trainer(0.0)
    tied = make_trainer(20.0)
    free_hist = [free.step() for _ in range(14)]
    tied_hist = [tied.step() for _ in range(14)]
    steps = free_hist[-1]["charts/episode_length"]
    free_kl = np.mean([m["objective/kl"] for m in free_hist[-3:]])
    tied_kl = np.mean([m["objective/kl"] for m in tied_hist[-3:]])
    # KL per episode of 15 steps: the tied policy stays within ~0.2 nats per step of the reference.
    assert tied_kl / steps < 0.2, tied_kl
    assert tied_kl < free_kl / 5, (tied_kl, free_kl)
    # Without a KL leash the hackable proxy goes up while gold goes down, and the monitor says so.
    assert free_hist[-1]["objective/scores"] > free_hist[0]["objective/scores"] + 5
    assert free_hist[-1]["gold/return"] < free_hist[0]["gold/return"] - 1
    assert free.monitor.flagged and "proxy reward rising while gold falls" in free.monitor.reasons()
    assert not tied.monitor.flagged, tied.monitor.reasons()


def test_gold_reward_improves_gold(tmp_path):
    # PPO on the gold reward itself (the upper bound of the acceptance experiment) from a random head.
    tr = make_trainer(0.0, reward=gold_step_rewards, out_dir=tmp_path / "run", logger=MetricsLogger(tmp_path, tensorboard=False))
    tr.policy.policy.action_head.mean.weight.data.mul_(0.0)
    first = tr.step()["gold/return"]
    hist = [tr.step() for _ in range(12)]
    assert np.mean([m["gold/return"] for m in hist[-3:]]) > first + 0.5
    rows = read_metrics_csv(tmp_path / "metrics.csv")
    assert len(rows) == 13 and rows[-1]["step"] == 12
    png = plot_proxy_gold_kl(tmp_path / "metrics.csv", tmp_path / "plot.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_save_and_resume_round_trip(tmp_path):
    tr = make_trainer(0.5, kl_mode="adaptive", kl_target=0.5)
    tr.step()
    tr.step()
    tr.save(tmp_path)
    fresh = make_trainer(0.5, kl_mode="adaptive", kl_target=0.5)
    fresh.load(tmp_path)
    assert fresh.iteration == 2 and fresh.kl_ctl.value == pytest.approx(tr.kl_ctl.value)
    assert fresh.kl_ctl.value != 0.5  # the adaptive coefficient moved and was kept
    for k, v in tr.head.state_dict().items():
        assert torch.equal(v, fresh.head.state_dict()[k])
    for k, v in tr.critic.state_dict().items():
        assert torch.equal(v, fresh.critic.state_dict()[k])
    with pytest.raises(FileNotFoundError, match="trainer_state"):
        fresh.load(tmp_path / "nope")


@pytest.mark.parametrize("group_scale", [False, True])
def test_group_advantage_rolls_each_seed_out_group_size_times_and_improves_gold(group_scale):
    # RLOO: 2 seeds x 4 noisy episodes per iteration; every step of an episode gets its return minus
    # the mean of its group's other returns, so the policy learns from the gold reward without a critic.
    # group_scale (GRPO) also divides each group's advantages by its return std.
    tr = make_trainer(0.0, reward=gold_step_rewards, group_size=4, advantage="group", group_scale=group_scale)
    seeds = tr.seeds_for(3)
    assert seeds == [6, 6, 6, 6, 7, 7, 7, 7]
    tr.policy.policy.action_head.mean.weight.data.mul_(0.0)
    recs = tr.collect(seeds)
    # same start, different action noise: the four copies of a seed are different episodes
    assert not np.array_equal(recs[0].samples, recs[1].samples)
    np.testing.assert_array_equal(recs[0].trajectory.joint_positions[0], recs[1].trajectory.joint_positions[0])
    first = tr.step()["gold/return"]
    hist = [tr.step() for _ in range(12)]
    assert np.mean([m["gold/return"] for m in hist[-3:]]) > first + 0.5


def test_config_rejects_bad_values_by_name():
    with pytest.raises(ValueError, match="PPOConfig.gamma"):
        PPOConfig(gamma=1.5)
    with pytest.raises(ValueError, match="PPOConfig.kl_mode"):
        PPOConfig(kl_mode="pid")
    with pytest.raises(ValueError, match="PPOConfig.clip_coef"):
        PPOConfig(clip_coef=0.0)
    with pytest.raises(ValueError, match="PPOConfig.group_size"):
        PPOConfig(episodes_per_iter=8, group_size=3)
    with pytest.raises(ValueError, match="PPOConfig.advantage 'group' needs group_size >= 2"):
        PPOConfig(advantage="group")
    with pytest.raises(ValueError, match="PPOConfig.device"):
        PPOConfig(device="gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a machine without a GPU gives")
def test_cuda_without_a_gpu_is_a_clear_error_before_any_rollout():
    policy = TinyRLPolicy(seed=0, bc_steps=0)
    col = VectorRolloutCollector([make_toy_env], policy, mode="sync", task="toy")
    with pytest.raises(RuntimeError, match=r"PPOConfig.device is 'cuda'"):
        PPOTrainer(policy, col, hackable_step_rewards, PPOConfig(device="cuda"), gold_fn=gold_step_rewards,
                   gold_metrics_fn=gold_metrics, progress=False)
    col.close()


def test_a_resumed_log_drops_the_rows_after_its_checkpoint(tmp_path):
    log = MetricsLogger(tmp_path, tensorboard=False)
    for i in range(7):  # a run checkpointed at iteration 5 and interrupted after 7
        log.log(i, {"gold/return": float(i)})
    again = MetricsLogger(tmp_path, tensorboard=False)
    assert len(again.rows) == 7
    again.keep_first(5)
    again.log(5, {"gold/return": 50.0})
    rows = read_metrics_csv(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4, 5] and rows[-1]["gold/return"] == 50.0
