"""Alignment and segmentation helpers, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rlhf.episodes.segment import (
    command_in_effect,
    control_grid,
    latest_at_or_before,
    latest_before,
    median_rate_hz,
    split_by_gaps,
)


def test_latest_lookups():
    stamps = np.array([10, 20, 30])
    np.testing.assert_array_equal(latest_at_or_before(stamps, np.array([5, 10, 25, 30, 99])), [-1, 0, 1, 2, 2])
    np.testing.assert_array_equal(latest_before(stamps, np.array([5, 10, 25, 30, 99])), [-1, -1, 1, 1, 2])


def test_split_by_gaps():
    s = np.array([0, 1, 2, 10, 11, 30])
    assert split_by_gaps(s, 5) == [(0, 3), (3, 5), (5, 6)]
    assert split_by_gaps(s, 100) == [(0, 6)]
    assert split_by_gaps(np.array([], dtype=np.int64), 5) == []


def test_control_grid():
    np.testing.assert_array_equal(control_grid(100, 100 + 10**9, 4), 100 + np.arange(5) * 250_000_000)
    assert len(control_grid(0, 10, 1)) == 1
    with pytest.raises(ValueError, match="rate"):
        control_grid(0, 1, 0)


def test_command_in_effect():
    steps = np.array([0, 100, 200, 300])
    # commands: one at 0, none in [100, 200), two in [200, 300) (the later one wins), none after
    cmds = np.array([0, 210, 250])
    np.testing.assert_array_equal(command_in_effect(cmds, steps), [0, 0, 2, 2])
    np.testing.assert_array_equal(command_in_effect(np.array([150]), steps), [-1, 0, 0, 0])


def test_median_rate():
    assert median_rate_hz(np.arange(0, 10**9, 10**8)) == pytest.approx(10.0)
    assert median_rate_hz(np.array([5])) == 0.0
