"""Mean/std normalisation of proprioception and actions; the stats travel with each checkpoint.

Stored as `normalization.json` (plain lists), never inside the state dict, so the numbers a policy
was trained with are readable and checked on load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlhf.trajectory import Trajectory

MIN_STD = 1e-3
"""Floor for a standard deviation, so constant dimensions (e.g. an unused gripper) stay finite."""


class NormalizerError(ValueError):
    """Normalisation stats are malformed; the message names the field."""


@dataclass
class Normalizer:
    """Per-dimension stats. state_*: (D_s,), action_*: (A,). action_low/high: demonstrated range.

    instruction_mean (E,) / instruction_scale: the training instructions' embeddings are centred
    and scaled to unit RMS norm. Sentence embeddings of "... the red ball" and "... the blue ball"
    differ by a small vector on top of a large shared one; centring makes that difference the
    signal the network sees. None (no instruction stats) leaves embeddings as they are.
    """

    state_mean: np.ndarray
    state_std: np.ndarray
    action_mean: np.ndarray
    action_std: np.ndarray
    action_low: np.ndarray
    action_high: np.ndarray
    instruction_mean: np.ndarray | None = None
    instruction_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.instruction_mean is not None:
            arr = np.asarray(self.instruction_mean, dtype=np.float32)
            if arr.ndim != 1 or not np.all(np.isfinite(arr)):
                raise NormalizerError(f"normalizer field instruction_mean must be a finite 1-D array, got {arr.shape}")
            self.instruction_mean = arr
        if not (np.isfinite(self.instruction_scale) and self.instruction_scale > 0):
            raise NormalizerError(f"normalizer field instruction_scale must be > 0, got {self.instruction_scale}")
        self.instruction_scale = float(self.instruction_scale)
        for name in ("state_mean", "state_std", "action_mean", "action_std", "action_low", "action_high"):
            arr = np.asarray(getattr(self, name), dtype=np.float32)
            if arr.ndim != 1 or not np.all(np.isfinite(arr)):
                raise NormalizerError(f"normalizer field {name} must be a finite 1-D array, got shape {arr.shape}")
            setattr(self, name, arr)
        if self.state_std.shape != self.state_mean.shape:
            raise NormalizerError(f"state_std shape {self.state_std.shape} != state_mean shape {self.state_mean.shape}")
        for name in ("action_std", "action_low", "action_high"):
            if getattr(self, name).shape != self.action_mean.shape:
                raise NormalizerError(
                    f"{name} shape {getattr(self, name).shape} != action_mean shape {self.action_mean.shape}"
                )
        if np.any(self.state_std <= 0) or np.any(self.action_std <= 0):
            raise NormalizerError("normalizer standard deviations must be > 0")
        self._torch_cache: dict[str, dict[str, torch.Tensor]] = {}

    # ------------------------------------------------------------------ build
    @classmethod
    def identity(cls, state_dim: int, action_dim: int) -> Normalizer:
        z, o = np.zeros, np.ones
        return cls(z(state_dim), o(state_dim), z(action_dim), o(action_dim), -o(action_dim), o(action_dim))

    @classmethod
    def from_trajectories(cls, trajectories: Sequence[Trajectory], encoder: Any = None) -> Normalizer:
        """Stats of the demos; with `encoder` (an InstructionEncoder) also of their instructions."""
        if not trajectories:
            raise NormalizerError("cannot compute normalisation stats from zero trajectories")
        states = np.concatenate([state_from_trajectory(t) for t in trajectories])
        actions = np.concatenate([t.actions for t in trajectories]).astype(np.float64)
        instruction_mean, instruction_scale = None, 1.0
        if encoder is not None:
            emb = encoder.encode(sorted({t.instruction for t in trajectories})).astype(np.float64)
            instruction_mean = emb.mean(0)
            rms = float(np.sqrt(np.mean(np.sum((emb - instruction_mean) ** 2, axis=1))))
            # One distinct instruction: nothing to tell apart, so do not blow up noise.
            instruction_scale = rms if rms > 1e-2 else 1.0
        return cls(
            instruction_mean=instruction_mean,
            instruction_scale=instruction_scale,
            state_mean=states.mean(0),
            state_std=np.maximum(states.std(0), MIN_STD),
            action_mean=actions.mean(0),
            action_std=np.maximum(actions.std(0), MIN_STD),
            action_low=actions.min(0),
            action_high=actions.max(0),
        )

    # ------------------------------------------------------------------ apply
    def _t(self, device: torch.device) -> dict[str, torch.Tensor]:
        key = str(device)
        if key not in self._torch_cache:
            self._torch_cache[key] = {
                k: torch.as_tensor(getattr(self, k), device=device)
                for k in ("state_mean", "state_std", "action_mean", "action_std")
            }
        return self._torch_cache[key]

    def normalize_state(self, state: torch.Tensor) -> torch.Tensor:
        t = self._t(state.device)
        return (state - t["state_mean"]) / t["state_std"]

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        t = self._t(action.device)
        return (action - t["action_mean"]) / t["action_std"]

    def unnormalize_action(self, action: torch.Tensor) -> torch.Tensor:
        t = self._t(action.device)
        return action * t["action_std"] + t["action_mean"]

    def action_scale(self, device: torch.device) -> torch.Tensor:
        return self._t(device)["action_std"]

    def normalize_instruction(self, emb: torch.Tensor) -> torch.Tensor:
        """(B, E) sentence embeddings -> centred and scaled (unchanged without instruction stats)."""
        if self.instruction_mean is None:
            return emb
        key = f"instr:{emb.device}"
        if key not in self._torch_cache:
            self._torch_cache[key] = {"mean": torch.as_tensor(self.instruction_mean, device=emb.device)}
        return (emb - self._torch_cache[key]["mean"]) / self.instruction_scale

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: getattr(self, k).astype(float).tolist() for k in (
            "state_mean", "state_std", "action_mean", "action_std", "action_low", "action_high")}  # fmt: skip
        if self.instruction_mean is not None:
            d["instruction_mean"] = self.instruction_mean.astype(float).tolist()
            d["instruction_scale"] = self.instruction_scale
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalizer:
        needed = ("state_mean", "state_std", "action_mean", "action_std", "action_low", "action_high")
        missing = [k for k in needed if k not in d]
        if missing:
            raise NormalizerError(f"normalization stats lack fields {missing}")
        extra: dict[str, Any] = {}
        if d.get("instruction_mean") is not None:
            extra["instruction_mean"] = np.asarray(d["instruction_mean"], dtype=np.float32)
            extra["instruction_scale"] = float(d.get("instruction_scale", 1.0))
        return cls(**{k: np.asarray(d[k], dtype=np.float32) for k in needed}, **extra)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Normalizer:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise NormalizerError(f"{path}: unreadable normalization stats ({e})") from e


def state_from_trajectory(traj: Trajectory) -> np.ndarray:
    """(T, 15) float32: joint positions, joint velocities, gripper opening."""
    return np.concatenate(
        [traj.joint_positions, traj.joint_velocities, traj.gripper.reshape(-1, 1)], axis=1
    ).astype(np.float32)


def state_from_obs(obs: dict[str, Any]) -> np.ndarray:
    """(15,) float32 from one raw env observation (keys joint_positions, joint_velocities, gripper)."""
    missing = [k for k in ("joint_positions", "joint_velocities", "gripper") if k not in obs]
    if missing:
        raise KeyError(f"observation lacks {missing}; has {sorted(obs)}")
    return np.concatenate(
        [
            np.asarray(obs["joint_positions"], dtype=np.float32).reshape(-1),
            np.asarray(obs["joint_velocities"], dtype=np.float32).reshape(-1),
            np.asarray(obs["gripper"], dtype=np.float32).reshape(-1),
        ]
    )
