"""Cutting a recording into episodes and aligning streams of different rates to control steps.

Pure functions on sorted integer-nanosecond stamps; the bag reader feeds them.
"""

from __future__ import annotations

import numpy as np

NS = 1_000_000_000


def latest_at_or_before(stamps: np.ndarray, times: np.ndarray) -> np.ndarray:
    """For each of `times` (M,), the index of the last of `stamps` (N,, sorted) that is <= it; -1 if none."""
    return np.searchsorted(stamps, times, side="right") - 1


def latest_before(stamps: np.ndarray, times: np.ndarray) -> np.ndarray:
    """For each of `times` (M,), the index of the last of `stamps` (N,, sorted) strictly < it; -1 if none."""
    return np.searchsorted(stamps, times, side="left") - 1


def split_by_gaps(stamps: np.ndarray, gap_ns: int) -> list[tuple[int, int]]:
    """Index ranges [start, stop) of runs of `stamps` (sorted) with no step longer than `gap_ns`."""
    if len(stamps) == 0:
        return []
    cuts = np.flatnonzero(np.diff(stamps) > gap_ns) + 1
    bounds = np.concatenate([[0], cuts, [len(stamps)]])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def control_grid(start_ns: int, end_ns: int, rate_hz: float) -> np.ndarray:
    """Step stamps start, start + 1/rate, ... up to and including end (int64 ns, (T,))."""
    if rate_hz <= 0:
        raise ValueError(f"control rate must be > 0 Hz, got {rate_hz}")
    if end_ns < start_ns:
        return np.zeros(0, dtype=np.int64)
    n = int(np.floor((end_ns - start_ns) * rate_hz / NS + 1e-9)) + 1
    return start_ns + np.round(np.arange(n) * (NS / rate_hz)).astype(np.int64)


def command_in_effect(cmd_stamps: np.ndarray, step_stamps: np.ndarray) -> np.ndarray:
    """Index of the command that answers each step (-1 if none yet), `(T,)`.

    The action at step t is the last command issued before the next observation (t+1): a command
    sent while observing t, or, if none was sent in that interval, the one still being held. The
    last step's interval is taken as long as the median step.
    """
    if len(step_stamps) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(step_stamps) > 1:
        dt = int(np.median(np.diff(step_stamps)))
    else:
        dt = NS  # a single step: any command within a second answers it
    nxt = np.concatenate([step_stamps[1:], [step_stamps[-1] + max(dt, 1)]])
    return latest_before(cmd_stamps, nxt)


def median_rate_hz(stamps: np.ndarray) -> float:
    """Median message rate (Hz) of sorted stamps; 0 when fewer than two or all equal."""
    if len(stamps) < 2:
        return 0.0
    dt = float(np.median(np.diff(stamps)))
    return NS / dt if dt > 0 else 0.0
