"""Checkpoint round trip and the errors that name what is wrong."""

import json

import numpy as np
import pytest
import torch

from rlhf.reward.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rlhf.reward.ensemble import RewardEnsemble, RewardStats
from rlhf.reward.features import FeatureStats, state_dim
from rlhf.reward.model import RewardNet
from rlhf.reward.synthetic import synthetic_episodes, tiny_config


def _ensemble(**overrides):
    torch.manual_seed(0)
    cfg = tiny_config(axes=("speed",), **overrides)
    stats = FeatureStats.identity(state_dim(cfg.use_ee))
    stats.state_mean[:] = 0.25
    return RewardEnsemble(
        cfg, [RewardNet(cfg), RewardNet(cfg)], stats, [RewardStats(0.1, 2.0), RewardStats(-0.3, 0.5)]
    )


def test_round_trip_scores_identically(tmp_path):
    ens = _ensemble()
    traj = synthetic_episodes(1)["syn-0"]
    path = save_checkpoint(ens, tmp_path / "ckpt")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.pt", "stats.json"]
    back = load_checkpoint(path)
    assert back.config == ens.config
    assert [s.mean for s in back.reward_stats] == [0.1, -0.3]
    np.testing.assert_array_equal(back.feature_stats.state_mean, ens.feature_stats.state_mean)
    a, b = ens.eval().score(traj), back.score(traj)
    np.testing.assert_allclose(a.per_step_mean, b.per_step_mean, atol=1e-6)
    assert a.axes.keys() == b.axes.keys() == {"speed"}


def test_overwrite_is_atomic_and_leaves_no_temp(tmp_path):
    save_checkpoint(_ensemble(), tmp_path / "ckpt")
    save_checkpoint(_ensemble(ensemble_size=3), tmp_path / "ckpt")
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    assert load_checkpoint(tmp_path / "ckpt").config.ensemble_size == 3


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        load_checkpoint(tmp_path / "nope")
    path = save_checkpoint(_ensemble(), tmp_path / "ckpt")

    (path / "stats.json").rename(path / "stats.bak")
    with pytest.raises(CheckpointError, match="missing stats.json"):
        load_checkpoint(path)
    (path / "stats.bak").rename(path / "stats.json")

    meta = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format_version"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps({**meta, "config": {**meta["config"], "d_model": 48}}))
    with pytest.raises(CheckpointError, match="tensor shapes"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps({**meta, "config": {**meta["config"], "axes": []}}))
    with pytest.raises(CheckpointError, match="tensor shapes|does not match"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps({**meta, "members": 3}))
    with pytest.raises(CheckpointError, match="3 members"):
        load_checkpoint(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps(meta))

    (path / "model.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable state dict"):
        load_checkpoint(path)


def test_pickled_objects_are_refused(tmp_path):
    path = save_checkpoint(_ensemble(), tmp_path / "ckpt")
    torch.save({"payload": object()}, path / "model.pt")  # not a plain state dict
    with pytest.raises(CheckpointError, match="unreadable state dict"):
        load_checkpoint(path)
