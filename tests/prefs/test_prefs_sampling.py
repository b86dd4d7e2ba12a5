"""Pair sampling: uniform within task+instruction, active selection by disagreement, known answers."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.sampling import (
    SamplingConfig,
    known_answer,
    sample_active_pairs,
    sample_uniform_pairs,
    select_active,
    with_known_answers,
)
from rlhf.prefs.store import EpisodeRecord
from rlhf.prefs.triples import LABEL_A, LABEL_B, LABEL_EQUAL


def _eps(n, task, instr, prefix, steps=30):
    return [EpisodeRecord(f"{prefix}{i}", task, instr, f"/videos/{prefix}{i}", num_steps=steps, fps=10.0) for i in range(n)]


EPISODES = _eps(4, "reach", "reach the red cube", "r") + _eps(3, "push", "push the blue cube", "p") + _eps(
    1, "reach", "reach the green cube", "g"
)


def test_uniform_pairs_stay_within_instruction_and_are_uniform():
    by_id = {e.episode_id: e for e in EPISODES}
    rng = np.random.default_rng(0)
    counts: Counter = Counter()
    for _ in range(300):
        for spec in sample_uniform_pairs(EPISODES, 9, rng):  # all 6 + 3 possible pairs, each once
            a, b = by_id[spec["episode_a"]], by_id[spec["episode_b"]]
            assert (a.task, a.instruction) == (b.task, b.instruction)
            counts[frozenset((a.episode_id, b.episode_id))] += 1
    assert len(counts) == 9 and set(counts.values()) == {300}
    # Drawing one pair at a time: every one of the 9 pairs about equally often (expected 1/9 each).
    first: Counter = Counter()
    for _ in range(2700):
        (spec,) = sample_uniform_pairs(EPISODES, 1, rng)
        first[frozenset((spec["episode_a"], spec["episode_b"]))] += 1
    assert min(first.values()) > 220 and max(first.values()) < 380
    # The lone green-cube episode can never be paired; and we cannot draw more pairs than exist.
    assert all("g0" not in k for k in first)
    assert len(sample_uniform_pairs(EPISODES, 50, rng)) == 9


def test_segments_and_exclusions():
    rng = np.random.default_rng(1)
    specs = sample_uniform_pairs(EPISODES, 5, rng, SamplingConfig(segment_steps=10, same_start=True))
    for s in specs:
        assert s["segment_a"][1] - s["segment_a"][0] == 10 and s["segment_a"] == s["segment_b"]
        assert 0 <= s["segment_a"][0] <= 20
    done = {frozenset((s["episode_a"], s["episode_b"])) for s in specs}
    more = sample_uniform_pairs(EPISODES, 10, rng, exclude=done)
    assert len(more) == 4 and not done & {frozenset((s["episode_a"], s["episode_b"])) for s in more}
    with pytest.raises(ValueError, match="segment_steps"):
        SamplingConfig(segment_steps=0)


def test_select_active_keeps_most_contested():
    cands = [{"episode_a": f"a{i}", "episode_b": f"b{i}"} for i in range(6)]
    std = {"a0": 0.1, "a1": 0.9, "a2": 0.3, "a3": 0.9, "a4": 0.0, "a5": 0.5}
    kept = select_active(cands, lambda cs: [std[c["episode_a"]] for c in cs], keep=3)
    assert [k["episode_a"] for k in kept] == ["a1", "a3", "a5"]  # ties keep candidate order
    assert kept[0]["disagreement"] == 0.9
    with pytest.raises(ValueError, match="shape"):
        select_active(cands, lambda cs: [0.0], keep=2)
    with pytest.raises(ValueError, match="NaN"):
        select_active(cands, lambda cs: [float("nan")] * len(cs), keep=2)
    calls = []

    def disagreement(cs):
        calls.append(len(cs))
        return np.arange(len(cs), dtype=float)

    out = sample_active_pairs(EPISODES, 2, np.random.default_rng(2), disagreement, SamplingConfig(oversample=4))
    assert calls == [8] and len(out) == 2  # oversampled 4x, kept the 2 most contested


def test_known_answer_from_gold_scores():
    w = {a: 1.0 for a in PREFERENCE_AXES}
    ga = {"success": 1.0, "speed": -3.0, "smoothness": -0.1, "safety": -1.0, "naturalness": -0.2}
    gb = {"success": 1.0, "speed": -5.0, "smoothness": -0.5, "safety": -0.5, "naturalness": -0.2}
    label, axes = known_answer(ga, gb, w)
    assert axes == {"success": LABEL_EQUAL, "speed": LABEL_A, "smoothness": LABEL_A, "safety": LABEL_B,
                    "naturalness": LABEL_EQUAL}
    assert label == LABEL_A  # +1 +1 -1 over 5 answered axes
    label, _ = known_answer(ga, gb, {**w, "safety": 5.0})
    assert label == LABEL_B
    eps = {
        "x": EpisodeRecord("x", "t", "i", "/v/x", 10, 10.0, gold_axes=ga),
        "y": EpisodeRecord("y", "t", "i", "/v/y", 10, 10.0, gold_axes=gb),
        "z": EpisodeRecord("z", "t", "i", "/v/z", 10, 10.0),
    }
    specs = with_known_answers([{"episode_a": "x", "episode_b": "y"}, {"episode_a": "x", "episode_b": "z"}], eps, w, "gold")
    assert len(specs) == 1 and specs[0]["known_label"] == LABEL_A and specs[0]["kind"] == "gold"
