"""Reward-ensemble checkpoints: a folder with a state dict, config.json and stats.json.

Layout of `<dir>/`:
  model.pt     state dict of all members (`members.<i>.<param>`), loaded with weights_only=True
  config.json  RewardConfig fields, the format version and the number of members
  stats.json   input feature stats and each member's reward normalisation

The folder is written next to its destination under a temporary name and renamed into place, so a
reader sees the old checkpoint or the new one, never a half-written one.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from rlhf.atomic import atomic_write_bytes, atomic_write_json
from rlhf.reward.config import RewardConfig
from rlhf.reward.ensemble import RewardEnsemble, RewardStats
from rlhf.reward.features import FeatureStats, config_state_dim
from rlhf.reward.model import RewardNet

FORMAT_VERSION = 1
KIND = "rlhf.reward.ensemble"
MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
STATS_FILE = "stats.json"


class CheckpointError(ValueError):
    """A reward checkpoint is missing, incomplete or inconsistent; the message says which part."""


def save_checkpoint(ensemble: RewardEnsemble, path: str | os.PathLike) -> Path:
    """Write `ensemble` to folder `path` atomically (replacing an existing checkpoint there)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{path}: exists and is not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in ensemble.members.state_dict().items()}, buf)
        atomic_write_bytes(tmp / MODEL_FILE, buf.getvalue())
        atomic_write_json(
            tmp / CONFIG_FILE,
            {
                "kind": KIND,
                "format_version": FORMAT_VERSION,
                "members": len(ensemble),
                "config": ensemble.config.to_dict(),
            },
        )
        atomic_write_json(
            tmp / STATS_FILE,
            {
                "features": ensemble.feature_stats.to_dict(),
                "rewards": [{"mean": s.mean, "std": s.std} for s in ensemble.reward_stats],
            },
        )
        # Swap in: move the old folder aside first so there is always one complete checkpoint.
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path.parent}: missing {path.name}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def load_checkpoint(path: str | os.PathLike) -> RewardEnsemble:
    """Read a folder written by `save_checkpoint`; raise CheckpointError naming what is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint folder")
    meta = _read_json(path / CONFIG_FILE)
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{path / CONFIG_FILE}: kind is {meta.get('kind')!r}, expected {KIND!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path / CONFIG_FILE}: format_version {meta.get('format_version')!r} is not {FORMAT_VERSION}"
        )
    try:
        config = RewardConfig.from_dict(meta["config"])
        n_members = int(meta["members"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path / CONFIG_FILE}: bad config ({e})") from e
    if n_members < 1:
        raise CheckpointError(f"{path / CONFIG_FILE}: members must be >= 1, got {n_members}")

    stats = _read_json(path / STATS_FILE)
    try:
        feature_stats = FeatureStats.from_dict(stats["features"], config_state_dim(config))
        reward_stats = [RewardStats(float(s["mean"]), float(s["std"])) for s in stats["rewards"]]
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path / STATS_FILE}: bad stats ({e})") from e
    if len(reward_stats) != n_members:
        raise CheckpointError(
            f"{path / STATS_FILE}: {len(reward_stats)} reward stats for {n_members} members"
        )
    if any(not (s.std > 0) for s in reward_stats):
        raise CheckpointError(f"{path / STATS_FILE}: reward std must be > 0")

    model_path = path / MODEL_FILE
    if not model_path.is_file():
        raise CheckpointError(f"{path}: missing {MODEL_FILE}")
    try:
        state = torch.load(model_path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"{model_path}: unreadable state dict ({type(e).__name__}: {e})") from e
    members = [RewardNet(config) for _ in range(n_members)]
    ensemble = RewardEnsemble(config, members, feature_stats, reward_stats)
    want = set(ensemble.members.state_dict())
    got = set(state) if isinstance(state, dict) else set()
    if want != got:
        missing, extra = sorted(want - got), sorted(got - want)
        raise CheckpointError(
            f"{model_path}: state dict does not match the config (missing {missing[:3]}, unexpected {extra[:3]})"
        )
    try:
        ensemble.members.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{model_path}: tensor shapes do not match the config ({e})") from e
    return ensemble.eval()
