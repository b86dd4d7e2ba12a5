"""Metrics on hand-made numbers."""

import math

import numpy as np
import pytest

from rlhf.reward.metrics import (
    ACCURACY,
    ECE,
    GOLD_PEARSON,
    MARGIN,
    expected_calibration_error,
    gold_correlation,
    gold_ordering,
    pair_metrics,
    preference_accuracy,
    preference_margin,
)


def test_accuracy_ignores_ties_and_counts_score_ties_half():
    sa = np.array([2.0, 0.0, 1.0, 5.0, 3.0])
    sb = np.array([1.0, 1.0, 1.0, 0.0, 3.0])
    p = np.array([1.0, 1.0, 0.0, 0.5, 1.0])
    # pair 0 right, pair 1 wrong, pair 2 score tie (half), pair 3 a label tie (ignored), pair 4 half
    assert preference_accuracy(sa, sb, p) == pytest.approx((1 + 0 + 0.5 + 0.5) / 4)
    assert math.isnan(preference_accuracy(sa[:1], sb[:1], np.array([0.5])))


def test_margin_is_preferred_minus_rejected():
    assert preference_margin(
        np.array([3.0, 1.0]), np.array([1.0, 4.0]), np.array([1.0, 0.0])
    ) == pytest.approx(2.5)
    assert preference_margin(np.array([3.0]), np.array([1.0]), np.array([0.0])) == pytest.approx(-2.0)


def test_ece_zero_when_calibrated_and_large_when_overconfident():
    # 10 pairs predicted at 0.8 for A; 8 of them really are A: perfectly calibrated.
    p = np.full(10, 0.8)
    labels = np.array([1.0] * 8 + [0.0] * 2)
    assert expected_calibration_error(p, labels) == pytest.approx(0.0, abs=1e-12)
    # Predicted 0.99 but only half right: ECE = 0.49.
    assert expected_calibration_error(np.full(10, 0.99), np.array([1.0, 0.0] * 5)) == pytest.approx(0.49)


def test_gold_correlation_and_ordering():
    pear, spear = gold_correlation(np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 20.0, 30.0, 100.0]))
    assert spear == pytest.approx(1.0)
    assert 0.8 < pear < 1.0
    assert all(math.isnan(x) for x in gold_correlation(np.ones(3), np.arange(3.0)))
    assert gold_ordering(np.array([1.0, 0.0, 2.0]), np.array([0.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.5]


def test_pair_metrics_names():
    m = pair_metrics(
        np.array([1.0, 0.0]),
        np.array([0.0, 1.0]),
        np.array([1.0, 1.0]),
        np.array([1.0, 0.0]),
        np.array([0.0, 1.0]),
    )
    assert m[ACCURACY] == 0.5 and m[MARGIN] == 0.0
    assert set(m) >= {ACCURACY, MARGIN, ECE, GOLD_PEARSON}
