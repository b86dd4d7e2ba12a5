"""PPO clip loss, value loss, closed-form Gaussian KL, DPO loss and the KL controllers, by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from rlhf.rl.kl_controller import AdaptiveKLController, FixedKLController, make_kl_controller
from rlhf.rl.losses import dpo_loss, gaussian_kl, kl_penalty, ppo_clip_loss, value_loss


def test_ppo_clip_loss_by_hand():
    # ratios 1.5, 0.5, 1.1 ; advantages +1, +1, -2 ; eps = 0.2
    # sample 0: max(-1*1.5, -1*1.2) = -1.2 (clipped, no gain beyond 1 + eps)
    # sample 1: max(-0.5, -0.8) = -0.5 (unclipped: the pessimistic side)
    # sample 2: max(2*1.1, 2*1.1) = 2.2
    new = torch.log(torch.tensor([1.5, 0.5, 1.1]))
    old = torch.zeros(3)
    adv = torch.tensor([1.0, 1.0, -2.0])
    loss, diag = ppo_clip_loss(new, old, adv, 0.2)
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 2.2) / 3)
    assert diag["clipfrac"].item() == pytest.approx(2 / 3)
    expected_kl = sum((r - 1) - math.log(r) for r in (1.5, 0.5, 1.1)) / 3
    assert diag["approx_kl"].item() == pytest.approx(expected_kl, rel=1e-5)


def test_ppo_clip_loss_gradient_vanishes_when_clipped():
    new = torch.log(torch.tensor([1.5])).requires_grad_(True)
    loss, _ = ppo_clip_loss(new, torch.zeros(1), torch.tensor([1.0]), 0.2)
    loss.backward()
    assert new.grad.item() == 0.0


def test_value_loss_unclipped_and_clipped():
    new, ret, old = torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([1.0])
    assert value_loss(new, ret).item() == pytest.approx(0.5 * 4.0)
    # clipped value = 1 + clamp(1, -0.2, 0.2) = 1.2 -> error 1.44 < 4, the max keeps 4
    assert value_loss(new, ret, old, 0.2).item() == pytest.approx(2.0)
    new2 = torch.tensor([0.5])  # moved toward the target: clipped 0.8 -> 0.64 > 0.25
    assert value_loss(new2, ret, old, 0.2).item() == pytest.approx(0.5 * 0.64)


def test_gaussian_kl_closed_form_by_hand():
    # 1-D: KL(N(1, 2^2) || N(0, 1)) = log(1/2) + (4 + 1) / 2 - 1/2 = 2 - log 2
    kl = gaussian_kl(torch.tensor([[1.0]]), torch.tensor([[2.0]]), torch.tensor([[0.0]]), torch.tensor([[1.0]]))
    assert kl.item() == pytest.approx(2.0 - math.log(2.0))
    # identical distributions: zero
    m, s = torch.randn(4, 8), torch.rand(4, 8) + 0.1
    assert torch.allclose(gaussian_kl(m, s, m, s), torch.zeros(4), atol=1e-6)


def test_kl_penalty_matches_torch_and_sums_action_dims():
    g = torch.Generator().manual_seed(0)
    p = Normal(torch.randn(5, 8, generator=g), torch.rand(5, 8, generator=g) + 0.2)
    q = Normal(torch.randn(5, 8, generator=g), torch.rand(5, 8, generator=g) + 0.2)
    ours = kl_penalty(p, q)
    assert ours.shape == (5,)
    torch.testing.assert_close(ours, kl_divergence(p, q).sum(-1))
    assert torch.all(ours > 0)


def test_dpo_loss_by_hand():
    # h = beta * ((-1 - -2) - (-3 - -2.5)) = 0.5 * (1 + 0.5) = 0.75 ; loss = log(1 + e^-0.75)
    loss, m = dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.5]), beta=0.5)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-0.75)))
    assert m["margin"].item() == pytest.approx(1.5)
    assert m["accuracy"].item() == 1.0
    # at the reference (policy == ref) the loss is log 2 whatever beta
    z = torch.tensor([-4.0, -1.0])
    loss0, _ = dpo_loss(z, z + 1, z, z + 1, beta=3.0)
    assert loss0.item() == pytest.approx(math.log(2.0))
    # label smoothing e: -(1-e) log s(h) - e log s(-h)
    ls, _ = dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.5]), 0.5, 0.1)
    expect = 0.9 * math.log1p(math.exp(-0.75)) + 0.1 * math.log1p(math.exp(0.75))
    assert ls.item() == pytest.approx(expect)


def test_fixed_and_adaptive_kl_controllers():
    assert FixedKLController(0.3).update(100.0, 1000) == 0.3
    ctl = AdaptiveKLController(0.1, target=1.0, horizon=1000)
    # KL 3x the target: error clipped to +0.2 -> coef * (1 + 0.2 * 500 / 1000) = 0.11
    assert ctl.update(3.0, 500) == pytest.approx(0.11)
    # KL at half the target: error -0.2 (clipped from -0.5) -> 0.11 * 0.9
    assert ctl.update(0.5, 500) == pytest.approx(0.099)
    assert isinstance(make_kl_controller("adaptive", 0.1, 1.0, 10), AdaptiveKLController)
    with pytest.raises(ValueError, match="fixed"):
        make_kl_controller("pid", 0.1, 1.0, 10)
