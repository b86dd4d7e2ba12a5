"""Ensemble scoring: shapes, window-by-window scoring, disagreement, and std out of distribution."""

import numpy as np
import pytest

from rlhf.prefs.teacher_model import TeacherConfig
from rlhf.reward.dataset import label_pairs, sample_segment_pairs
from rlhf.reward.ensemble import ScoreResult
from rlhf.reward.synthetic import synthetic_episode, synthetic_episodes, synthetic_gold_rewards, tiny_config
from rlhf.reward.train import train_reward_model

pytestmark = pytest.mark.slow  # trains a small ensemble once (~10 s)


@pytest.fixture(scope="module")
def trained():
    episodes = synthetic_episodes(30, seed=1)
    gold = {k: synthetic_gold_rewards(v) for k, v in episodes.items()}
    rng = np.random.default_rng(0)
    triples = label_pairs(sample_segment_pairs(episodes, 200, 2.0, rng), gold, TeacherConfig(), rng)
    cfg = tiny_config(ensemble_size=4, epochs=4)
    return train_reward_model(episodes, triples, cfg, progress=False).ensemble, episodes


def test_score_shapes_and_normalisation(trained):
    ens, episodes = trained
    traj = episodes["syn-0"]
    res = ens.score(traj)
    assert isinstance(res, ScoreResult)
    assert res.per_step_mean.shape == (len(traj),) and res.per_step_std.shape == (len(traj),)
    assert res.mean == pytest.approx(float(res.per_step_mean.sum()), rel=1e-4, abs=1e-4)
    assert res.conservative(2.0) == pytest.approx(res.mean - 2.0 * res.std)
    # Each member is normalised on the training episodes: per-step rewards are ~zero-mean, unit-std.
    steps = np.concatenate([ens.score(t).per_step_mean for t in episodes.values()])
    assert abs(steps.mean()) < 0.2
    seg = ens.score((traj, (5, 25)))
    assert seg.per_step_mean.shape == (20,)


def test_long_trajectory_is_scored_window_by_window(trained):
    ens, episodes = trained
    traj = episodes["syn-3"]  # 40 steps > max_steps = 32
    whole = ens.score(traj)
    first = ens.score((traj, (0, 32)))
    rest = ens.score((traj, (32, 40)))
    np.testing.assert_allclose(
        whole.per_step_mean, np.concatenate([first.per_step_mean, rest.per_step_mean]), atol=1e-5
    )


def test_batch_matches_single(trained):
    ens, episodes = trained
    items = [(episodes["syn-1"], (0, 20)), (episodes["syn-2"], (10, 30)), episodes["syn-4"]]
    batch = ens.score_batch(items)
    for item, res in zip(items, batch, strict=True):
        assert res.mean == pytest.approx(ens.score(item).mean, abs=1e-4)


def test_disagreement_and_bad_segment(trained):
    ens, episodes = trained
    pair = ((episodes["syn-1"], (0, 20)), (episodes["syn-2"], (0, 20)))
    d = ens.disagreement(pair)
    assert 0.0 <= d <= 0.5
    probs = ens.preference_probabilities([pair])
    assert probs.shape == (4, 1)
    assert d == pytest.approx(float(probs.std()), abs=1e-9)
    with pytest.raises(ValueError, match="outside"):
        ens.score((episodes["syn-1"], (30, 50)))


def test_std_larger_out_of_distribution(trained):
    ens, _ = trained
    rng = np.random.default_rng(7)
    in_dist = [synthetic_episode(f"id-{i}", rng) for i in range(20)]
    ood = []
    for i in range(20):
        t = synthetic_episode(f"ood-{i}", rng, scale=20.0)  # far faster than anything trained on
        t.images[:] = rng.integers(0, 256, size=t.images.shape, dtype=np.uint8)  # and unseen frames
        ood.append(t)
    std_in = np.mean([r.std for r in ens.score_batch([(t, (0, 20)) for t in in_dist])])
    std_ood = np.mean([r.std for r in ens.score_batch([(t, (0, 20)) for t in ood])])
    assert std_ood > 2.0 * std_in, (std_in, std_ood)


def test_disagreement_fn_for_active_sampling(trained):
    ens, episodes = trained
    loads = []

    def load(eid):
        loads.append(eid)
        return episodes[eid]

    cands = [
        {"episode_a": "syn-1", "episode_b": "syn-2", "segment_a": (0, 20), "segment_b": (5, 25)},
        {"episode_a": "syn-1", "episode_b": "syn-3", "segment_a": [10, 30], "segment_b": [0, 20]},
    ]
    d = ens.disagreement_fn(load)(cands)
    assert d.shape == (2,) and np.all(d >= 0)
    assert sorted(loads) == ["syn-1", "syn-2", "syn-3"]  # each episode loaded once
    assert d[0] == pytest.approx(
        ens.disagreement(((episodes["syn-1"], (0, 20)), (episodes["syn-2"], (5, 25))))
    )
