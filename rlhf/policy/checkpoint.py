"""Checkpoint folders: written atomically, read back with every mismatch named.

A full policy checkpoint is a folder:

    config.json                  {"format_version", "kind": "rlhf.vla_policy", "policy": PolicyConfig, "weights_sha256"}
    model.pt                     state dict (tensors only; read with torch.load(weights_only=True))
    normalization.json           Normalizer stats
    instruction_embeddings.json  cached sentence embeddings of the instructions seen in training

A head-only checkpoint (what PPO ships) is a folder:

    head_config.json  {"format_version", "kind": "rlhf.action_head", "policy": PolicyConfig,
                       "weights_sha256", "backbone_sha256"}
    head.pt           the action head's state dict

Folders are built under a temporary name beside the target and renamed into place, so a reader sees
the old checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

FORMAT_VERSION = 1
POLICY_KIND = "rlhf.vla_policy"
HEAD_KIND = "rlhf.action_head"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not fit the network; the message names what."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def state_dict_bytes(state_dict: Mapping[str, torch.Tensor]) -> bytes:
    """Serialise tensors only (contiguous CPU copies), the format `torch.load(weights_only=True)` reads."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}, buf)
    return buf.getvalue()


def state_dict_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Digest of the tensors' names, dtypes, shapes and bytes (independent of pickle framing)."""
    h = hashlib.sha256()
    for k in sorted(state_dict):
        v = state_dict[k].detach().cpu().contiguous()
        h.update(f"{k}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.numpy().tobytes() if v.dtype != torch.bfloat16 else v.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def write_folder_atomic(path: str | os.PathLike, files: Mapping[str, bytes]) -> Path:
    """Write `files` (name -> bytes) as the folder `path`, replacing any old folder atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        if path.exists():
            # A folder cannot be renamed over a non-empty one: move the old aside first.
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            old.rmdir()
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")


def read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path.parent}: missing {path.name} ({what})")
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable {what} ({e})") from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: {what} must be a JSON object")
    return obj


def read_state_dict(path: Path, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Load tensors with weights_only=True; check the file's SHA-256 when one is recorded."""
    if not path.is_file():
        raise CheckpointError(f"{path.parent}: missing weights file {path.name}")
    data = path.read_bytes()
    if expected_sha256 is not None and sha256_bytes(data) != expected_sha256:
        raise CheckpointError(
            f"{path}: weights_sha256 mismatch (file {sha256_bytes(data)[:12]}…, recorded {expected_sha256[:12]}…)"
        )
    try:
        sd = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or non-tensor pickles
        raise CheckpointError(f"{path}: unreadable weights ({type(e).__name__}: {e})") from e
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path}: expected a dict of tensors")
    return sd


def check_header(header: dict[str, Any], kind: str, where: Path) -> None:
    if header.get("kind") != kind:
        raise CheckpointError(f"{where}: kind is {header.get('kind')!r}, expected {kind!r}")
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: format_version {header.get('format_version')!r}, expected {FORMAT_VERSION}"
        )


def load_into(module: nn.Module, state_dict: Mapping[str, torch.Tensor], where: str) -> None:
    """Copy `state_dict` into `module`, raising CheckpointError naming missing/unexpected keys and shapes."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{where}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    for k, v in state_dict.items():
        if own[k].shape != v.shape:
            raise CheckpointError(
                f"{where}: key {k!r} has shape {tuple(v.shape)} in the checkpoint, model expects {tuple(own[k].shape)}"
            )
        if own[k].dtype != v.dtype:
            raise CheckpointError(f"{where}: key {k!r} has dtype {v.dtype}, model expects {own[k].dtype}")
    module.load_state_dict(dict(state_dict), strict=True)
