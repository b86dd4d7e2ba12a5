"""GAE against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf.rl.gae import compute_gae, leave_one_out_advantages


def test_gae_terminal_episode_by_hand():
    # r = [1, 0, 2], V = [0.5, 1.0, 0.0], terminal after step 2, gamma = 0.9, lambda = 0.8.
    # delta_2 = 2 + 0 - 0 = 2                       A_2 = 2
    # delta_1 = 0 + 0.9 * 0.0 - 1.0 = -1.0          A_1 = -1 + 0.72 * 2 = 0.44
    # delta_0 = 1 + 0.9 * 1.0 - 0.5 = 1.4           A_0 = 1.4 + 0.72 * 0.44 = 1.7168
    adv, ret = compute_gae(np.array([1.0, 0.0, 2.0]), np.array([0.5, 1.0, 0.0]), last_value=123.0,
                           terminated=True, gamma=0.9, lam=0.8)
    np.testing.assert_allclose(adv, [1.7168, 0.44, 2.0])
    np.testing.assert_allclose(ret, [2.2168, 1.44, 2.0])


def test_gae_truncated_episode_bootstraps_from_last_value():
    # One step, cut by the time limit: A = r + gamma * V(s_T) - V(s_0) = 1 + 0.5 * 4 - 1 = 2.
    adv, ret = compute_gae(np.array([1.0]), np.array([1.0]), last_value=4.0, terminated=False, gamma=0.5, lam=0.3)
    np.testing.assert_allclose(adv, [2.0])
    np.testing.assert_allclose(ret, [3.0])


def test_gae_lambda_one_gives_discounted_return_minus_value():
    r = np.array([1.0, 2.0, 3.0, 4.0])
    v = np.array([0.3, -0.2, 0.7, 0.1])
    gamma = 0.95
    mc = np.array([sum(gamma**k * r[t + k] for k in range(4 - t)) for t in range(4)])
    adv, ret = compute_gae(r, v, 0.0, True, gamma, 1.0)
    np.testing.assert_allclose(ret, mc)
    np.testing.assert_allclose(adv, mc - v)


def test_gae_lambda_zero_is_one_step_td():
    r = np.array([1.0, 2.0, 3.0])
    v = np.array([0.5, 0.25, 2.0])
    adv, _ = compute_gae(r, v, 1.0, False, 0.9, 0.0)
    np.testing.assert_allclose(adv, [1 + 0.9 * 0.25 - 0.5, 2 + 0.9 * 2.0 - 0.25, 3 + 0.9 * 1.0 - 2.0])


def test_gae_batched_columns_match_single_episodes():
    rng = np.random.default_rng(0)
    r, v = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    last, term = np.array([0.3, -1.0, 2.0]), np.array([True, False, False])
    adv, _ = compute_gae(r, v, last, term, 0.99, 0.95)
    for j in range(3):
        a1, _ = compute_gae(r[:, j], v[:, j], last[j], term[j], 0.99, 0.95)
        np.testing.assert_allclose(adv[:, j], a1)


def test_gae_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        compute_gae(np.zeros(3), np.zeros(4), 0.0, True, 0.9, 0.9)


def test_leave_one_out_advantages_by_hand():
    # group 7: returns 1, 2, 6 -> each minus the mean of the other two; group 3: 4 and 0 -> +4 and -4
    adv = leave_one_out_advantages(np.array([1.0, 4.0, 2.0, 0.0, 6.0]), np.array([7, 3, 7, 3, 7]))
    np.testing.assert_allclose(adv, [1.0 - 4.0, 4.0, 2.0 - 3.5, -4.0, 6.0 - 1.5])
    # a constant added to one group's returns (an easier start) leaves its advantages unchanged
    shifted = leave_one_out_advantages(np.array([101.0, 4.0, 102.0, 0.0, 106.0]), np.array([7, 3, 7, 3, 7]))
    np.testing.assert_allclose(shifted, adv)


def test_leave_one_out_rejects_a_group_of_one():
    with pytest.raises(ValueError, match="group 5 has 1 episode"):
        leave_one_out_advantages(np.array([1.0, 2.0, 3.0]), np.array([4, 4, 5]))
    with pytest.raises(ValueError, match=r"must both be \(N,\)"):
        leave_one_out_advantages(np.zeros(3), np.zeros(2))


def test_group_scale_divides_each_group_by_its_return_std():
    returns = np.array([1.0, 4.0, 2.0, 0.0, 6.0])
    groups = np.array([7, 3, 7, 3, 7])
    plain = leave_one_out_advantages(returns, groups)
    scaled = leave_one_out_advantages(returns, groups, scale=True)
    for gid in (7, 3):
        idx = groups == gid
        np.testing.assert_allclose(scaled[idx], plain[idx] / np.std(returns[idx]))
    # A group whose returns are ten times as spread gets the same scaled advantages: every start weighs alike.
    wide = returns.copy()
    wide[groups == 3] *= 10.0
    np.testing.assert_allclose(leave_one_out_advantages(wide, groups, scale=True)[groups == 3], scaled[groups == 3])
    # Near-ties are not blown up to full size: the divisor is floored at a fraction of the batch's std.
    ties = np.array([5.0, 5.0 + 1e-9, -5.0, 5.0])
    adv = leave_one_out_advantages(ties, np.array([1, 1, 2, 2]), scale=True, scale_floor=0.05)
    assert np.all(np.abs(adv[:2]) < 1e-6)


def test_group_scale_needs_the_group_advantage():
    from rlhf.rl.config import PPOConfig

    with pytest.raises(ValueError, match="group_scale needs advantage 'group'"):
        PPOConfig(group_scale=True)
    assert PPOConfig(episodes_per_iter=8, group_size=4, advantage="group", group_scale=True).group_scale
