"""The over-optimisation monitor and the reward shaping, on hand-made series."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf.rl.overoptimization import MonitorConfig, OverOptimizationMonitor
from rlhf.rl.reward_shaping import EnsembleStepReward, RunningNormalizer, shape_rewards


def feed(mon, proxy, gold, kl):
    return [mon.update(p, g, k) for p, g, k in zip(proxy, gold, kl, strict=True)]


def test_monitor_flags_proxy_up_gold_down():
    mon = OverOptimizationMonitor()
    proxy = [0, 1, 2, 3, 4, 5, 6, 7, 8]
    gold = [0, 1, 2, 2.2, 2.0, 1.5, 1.0, 0.5, 0.0]
    out = feed(mon, proxy, gold, [0.5] * 9)
    assert out[-1]["overopt/proxy_up_gold_down"] == 1.0 and out[-1]["overopt/kl_blowup"] == 0.0
    assert mon.flagged_at is not None and mon.flagged_at >= 5
    assert out[-1]["overopt/gold_drop_from_peak"] == pytest.approx(2.1 - 0.25)


def test_monitor_quiet_when_gold_tracks_proxy_or_is_noise():
    mon = OverOptimizationMonitor()
    feed(mon, range(10), [0.5 * i for i in range(10)], [0.5] * 10)
    assert not mon.flagged
    rng = np.random.default_rng(0)
    noisy = OverOptimizationMonitor()
    feed(noisy, rng.normal(size=12), -5 + 0.1 * rng.normal(size=12), [0.5] * 12)
    assert not noisy.flagged


def test_monitor_flags_kl_blowup():
    mon = OverOptimizationMonitor(MonitorConfig(kl_limit=50.0))
    early = feed(OverOptimizationMonitor(), [1] * 6, [1] * 6, [0.0, 1, 2, 4, 8, 16])
    assert early[-1]["overopt/kl_blowup"] == 0.0  # the first window's rise from 0 is no alarm
    out = feed(mon, [1] * 12, [1] * 12, [0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 1, 2, 4, 8, 16, 40])
    assert out[-1]["overopt/kl_blowup"] == 1.0  # 40 / max(kl 6 iterations ago, floor 1) > 10
    assert "KL" in mon.reasons()[0]
    capped = OverOptimizationMonitor(MonitorConfig(kl_limit=5.0))
    assert capped.update(1, 1, 6.0)["overopt/kl_blowup"] == 1.0
    with pytest.raises(ValueError, match="MonitorConfig.window"):
        MonitorConfig(window=2)


def test_shape_rewards_folds_kl_and_normalises_scale():
    norm = RunningNormalizer("scale")
    scores = [np.array([1.0, -1.0]), np.array([3.0, -3.0, 0.0])]
    kls = [np.array([0.1, 0.2]), np.array([0.0, 0.0, 0.5])]
    rewards, m = shape_rewards(scores, kls, kl_coef=2.0, normalizer=norm)
    std = np.concatenate(scores).std()
    np.testing.assert_allclose(rewards[0], np.array([1.0, -1.0]) / std - 2.0 * np.array([0.1, 0.2]), rtol=1e-6)
    assert m["objective/kl"] == pytest.approx((0.3 + 0.5) / 2)
    assert m["objective/scores"] == pytest.approx(0.0)
    assert m["objective/non_score_reward"] == pytest.approx(-2.0 * 0.4)
    with pytest.raises(ValueError, match="episode 1"):
        shape_rewards(scores, [kls[0], np.zeros(2)], 1.0, norm)


def test_running_normalizer_matches_batch_statistics():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=1000)
    norm = RunningNormalizer("standard")
    for chunk in np.split(x, 10):
        norm.update(chunk)
    assert norm.mean == pytest.approx(x.mean()) and norm.var == pytest.approx(x.var())


def test_ensemble_step_reward_uses_mean_minus_k_std():
    class FakeEnsemble:
        def score(self, traj):
            return 1.0, 0.1, np.array([1.0, 2.0]), np.array([0.5, 1.0])

    class T:
        def __len__(self):
            return 2

    np.testing.assert_allclose(EnsembleStepReward(FakeEnsemble(), std_coef=2.0)(T()), [0.0, 0.0])
    with pytest.raises(ValueError, match="std_coef"):
        EnsembleStepReward(FakeEnsemble(), -1.0)
