"""Bradley-Terry loss: values checked by hand."""

import math

import pytest
import torch

from rlhf.reward.losses import bradley_terry_loss, preference_logprobs


def _t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


def test_two_scores_by_hand():
    # s_a = 1, s_b = 0, A preferred: -log sigmoid(1) = log(1 + e^-1)
    loss = bradley_terry_loss(_t(1.0), _t(0.0), _t(1.0))
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-12)
    # B preferred: -log sigmoid(-1) = log(1 + e)
    loss = bradley_terry_loss(_t(1.0), _t(0.0), _t(0.0))
    assert float(loss) == pytest.approx(math.log(1 + math.e), abs=1e-12)


def test_tie_is_half_of_each_side():
    loss = bradley_terry_loss(_t(2.0), _t(-1.0), _t(0.5))
    want = 0.5 * math.log(1 + math.exp(-3)) + 0.5 * math.log(1 + math.exp(3))
    assert float(loss) == pytest.approx(want, abs=1e-12)
    # A tie between equal scores costs exactly log 2, the minimum for a tie.
    assert float(bradley_terry_loss(_t(0.7), _t(0.7), _t(0.5))) == pytest.approx(math.log(2), abs=1e-12)


def test_label_noise_mixes_in_uniform():
    eps = 0.2
    d = 1.5
    p = (1 - eps) / (1 + math.exp(-d)) + eps / 2
    loss = bradley_terry_loss(_t(d), _t(0.0), _t(1.0), label_noise=eps)
    assert float(loss) == pytest.approx(-math.log(p), abs=1e-12)
    # Bounded: a confidently wrong label costs at most -log(eps / 2).
    big = bradley_terry_loss(_t(-1000.0), _t(0.0), _t(1.0), label_noise=eps)
    assert float(big) == pytest.approx(-math.log(eps / 2), abs=1e-9)
    la, lb = preference_logprobs(_t(0.3), _t(-0.4), eps)
    assert float(la.exp() + lb.exp()) == pytest.approx(1.0, abs=1e-12)


def test_weights_average_per_pair_losses():
    sa, sb, p = _t(1.0, 0.0), _t(0.0, 0.0), _t(1.0, 1.0)
    l1 = math.log(1 + math.exp(-1))
    l2 = math.log(2)
    loss = bradley_terry_loss(sa, sb, p, weights=_t(3.0, 1.0))
    assert float(loss) == pytest.approx((3 * l1 + l2) / 4, abs=1e-12)
    assert float(bradley_terry_loss(sa, sb, p, weights=_t(0.0, 1.0))) == pytest.approx(l2, abs=1e-12)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="must match"):
        bradley_terry_loss(_t(1.0, 2.0), _t(0.0), _t(1.0))
    with pytest.raises(ValueError, match="weights sum to zero"):
        bradley_terry_loss(_t(1.0), _t(0.0), _t(1.0), weights=_t(0.0))
    with pytest.raises(ValueError, match="label_noise"):
        bradley_terry_loss(_t(1.0), _t(0.0), _t(1.0), label_noise=1.0)
