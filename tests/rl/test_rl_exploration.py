"""Exploration noise correlated in time: unit variance at every step, smoother in time than white
noise by the factor the module claims, white noise unchanged bit for bit, and PPO's rollouts use it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rl_standins import TinyRLPolicy, gold_metrics, gold_step_rewards, hackable_step_rewards, make_toy_env

from rlhf.rl.config import PPOConfig
from rlhf.rl.exploration import CorrelatedNoise
from rlhf.rl.ppo import PPOTrainer
from rlhf.rl.rollouts import VectorRolloutCollector


def _paths(rho: float, envs: int = 4000, steps: int = 40, seed: int = 0) -> np.ndarray:
    noise = CorrelatedNoise(envs, 2, rho, torch.Generator().manual_seed(seed))
    return torch.stack([noise.sample() for _ in range(steps)]).numpy()  # (T, N, A)


def test_white_noise_is_plain_randn_bit_for_bit():
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    noise = CorrelatedNoise(5, 8, 0.0, gen_a)
    for _ in range(4):
        assert torch.equal(noise.sample(), torch.randn((5, 8), generator=gen_b))


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_ar1_noise_has_unit_variance_and_the_claimed_smoothness(rho):
    x = _paths(rho)
    # N(0, 1) at the first step and the last one (the process starts in its stationary law).
    for t in (0, -1):
        assert abs(x[t].std() - 1.0) < 0.03, (rho, t, x[t].std())
        assert abs(x[t].mean()) < 0.03
    lag1 = float(np.mean(x[1:] * x[:-1]))
    assert abs(lag1 - rho) < 0.03, (rho, lag1)
    # The second difference (what the jerk of a position-delta action sees): 2 (1 - rho) (3 - rho).
    d2 = x[2:] - 2 * x[1:-1] + x[:-2]
    expected = 2 * (1 - rho) * (3 - rho)
    assert abs(d2.var() / expected - 1.0) < 0.05, (rho, d2.var(), expected)


def test_reset_starts_every_env_afresh():
    noise = CorrelatedNoise(3000, 1, 0.95, torch.Generator().manual_seed(1))
    first = noise.sample().clone()
    noise.reset()
    after = noise.sample()
    # Without the reset the next sample would be 0.95 * first + small: correlation about 0.95.
    assert abs(float(torch.corrcoef(torch.stack([first[:, 0], after[:, 0]]))[0, 1])) < 0.08


@pytest.mark.parametrize("rho", [-0.1, 1.0, float("nan")])
def test_bad_correlation_is_refused_naming_it(rho):
    with pytest.raises(ValueError, match="correlation"):
        CorrelatedNoise(1, 1, rho)
    with pytest.raises(ValueError, match="exploration_noise_correlation"):
        PPOConfig(exploration_noise_correlation=rho)
    with pytest.raises(ValueError, match="correlation"):
        VectorRolloutCollector([make_toy_env], TinyRLPolicy(seed=0, bc_steps=0), mode="sync", noise_correlation=rho)


def _noise_lag1(records, policy) -> float:
    """Lag-1 autocorrelation of the recorded standardised noise (sample - mean) / std within episodes."""
    pairs = []
    for r in records:
        with torch.no_grad():
            dist = policy.head_distribution(torch.from_numpy(r.features))
        z = ((torch.from_numpy(r.samples) - dist.mean) / dist.stddev).numpy()
        pairs.append((z[1:] * z[:-1]).mean() / (z * z).mean())
    return float(np.mean(pairs))


def test_ppo_rollouts_use_the_configured_noise():
    """PPOTrainer hands its config's rho to the collector; the recorded actions' noise is then
    correlated step to step, and white (as before) at 0."""
    lag = {}
    for rho in (0.0, 0.9):
        policy = TinyRLPolicy(seed=0, bc_steps=0)
        col = VectorRolloutCollector([make_toy_env] * 4, policy, mode="sync", task="toy")
        cfg = PPOConfig(iterations=1, episodes_per_iter=8, exploration_noise_correlation=rho, exploration_log_std=-1.0)
        tr = PPOTrainer(policy, col, hackable_step_rewards, cfg, gold_fn=gold_step_rewards,
                        gold_metrics_fn=gold_metrics, progress=False)
        assert col.noise_correlation == rho
        lag[rho] = _noise_lag1(tr.collect(tr.seeds_for(0)), policy)
        col.close()
    assert abs(lag[0.0]) < 0.2, lag
    assert lag[0.9] > 0.6, lag


def test_a_collector_without_the_knob_is_refused_when_rho_is_set():
    class Plain:
        def collect(self, seeds, deterministic=False, head_state=None):
            return []

    cfg = PPOConfig(exploration_noise_correlation=0.5)
    with pytest.raises(ValueError, match="no noise_correlation"):
        PPOTrainer(TinyRLPolicy(seed=0, bc_steps=0), Plain(), hackable_step_rewards, cfg, gold_fn=gold_step_rewards,
                   gold_metrics_fn=gold_metrics, progress=False)
