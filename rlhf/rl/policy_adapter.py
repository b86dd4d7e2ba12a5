"""What PPO and DPO need from a policy, and its implementation for `VLAPolicy`.

PPO trains the action head alone on features the frozen backbone computed once per rollout step, so
the learner needs a few calls beyond the policy contract (batched observations, the head's Gaussian
from cached features, a head other than the live one for the reference). `RLPolicy` names them;
`VLAAdapter` implements them over `rlhf.policy.VLAPolicy`. Test stand-ins implement the same protocol.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.distributions import Normal

from rlhf.constants import OBS_IMAGE, OBS_INSTRUCTION, OBS_INSTRUCTION_EMB, OBS_STATE, OBS_WRIST_IMAGE
from rlhf.trajectory import Trajectory


class RLPolicy(Protocol):
    """The calls PPO / DPO make. N = envs or steps, F = feature width, A = action width."""

    policy: nn.Module
    """The wrapped policy, with `backbone` and `action_head` submodules."""
    feature_dim: int
    """F."""

    def batch_from_obs(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """Vectorised env observation (leading dim N per key; "instruction" a sequence of N str) -> batch."""
        ...

    def batch_from_trajectory(self, traj: Trajectory, start: int, stop: int) -> dict[str, Any]:
        """Steps [start, stop) of a recorded trajectory -> batch of stop - start observations."""
        ...

    def features(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """(N, F) backbone features."""
        ...

    def head_distribution(self, features: torch.Tensor, head: nn.Module | None = None) -> Normal:
        """The Gaussian over the current action in raw units, (N, A), from `head` (default: the live one)."""
        ...

    def to_env_action(self, samples: np.ndarray) -> np.ndarray:
        """(N, A) raw samples -> the actions sent to the env (clipped to the policy's safe range)."""
        ...

    def save_head(self, path: str | os.PathLike) -> Any: ...

    def load_head(self, path: str | os.PathLike) -> Any: ...


class VLAAdapter:
    """`RLPolicy` over a `rlhf.policy.VLAPolicy`."""

    def __init__(self, policy: Any) -> None:
        for name in ("backbone", "action_head", "normalizer", "features"):
            if not hasattr(policy, name):
                raise TypeError(f"VLAAdapter needs a VLAPolicy-like object; {type(policy).__name__} has no {name!r}")
        self.policy = policy
        self.feature_dim = int(policy.backbone.out_dim)

    def batch_from_obs(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        from rlhf.policy.normalizer import state_from_obs

        images = np.asarray(obs["image"])
        n = images.shape[0]
        state = np.stack([
            state_from_obs({k: obs[k][i] for k in ("joint_positions", "joint_velocities", "gripper")})
            for i in range(n)
        ])
        instructions = obs["instruction"]
        instructions = [instructions] * n if isinstance(instructions, str) else [str(s) for s in instructions]
        batch = {OBS_IMAGE: images, OBS_STATE: state, OBS_INSTRUCTION: instructions}
        if "wrist_image" in obs:
            batch[OBS_WRIST_IMAGE] = np.asarray(obs["wrist_image"])
        return batch

    def batch_from_trajectory(self, traj: Trajectory, start: int, stop: int) -> dict[str, Any]:
        from rlhf.policy.normalizer import state_from_trajectory

        emb = self.policy._embedding(traj.instruction).unsqueeze(0).expand(stop - start, -1)
        batch = {
            OBS_IMAGE: traj.images[start:stop],
            OBS_STATE: state_from_trajectory(traj)[start:stop],
            OBS_INSTRUCTION_EMB: emb,
        }
        if traj.wrist_images is not None:
            batch[OBS_WRIST_IMAGE] = traj.wrist_images[start:stop]
        return batch

    def features(self, batch: Mapping[str, Any]) -> torch.Tensor:
        return self.policy.features(batch)

    def head_distribution(self, features: torch.Tensor, head: nn.Module | None = None) -> Normal:
        head = self.policy.action_head if head is None else head
        mean, log_std = head(features)
        norm = self.policy.normalizer
        loc = norm.unnormalize_action(mean[:, 0])
        return Normal(loc, log_std.exp() * norm.action_scale(loc.device))

    def to_env_action(self, samples: np.ndarray) -> np.ndarray:
        return self.policy.clip_action(np.asarray(samples, dtype=np.float32))

    def save_head(self, path: str | os.PathLike) -> Any:
        return self.policy.save_head(path)

    def load_head(self, path: str | os.PathLike) -> Any:
        return self.policy.load_head(path)


def as_rl_policy(policy: Any) -> RLPolicy:
    """An `RLPolicy`: the object itself if it already is one, else a `VLAAdapter` around it."""
    if hasattr(policy, "head_distribution") and hasattr(policy, "batch_from_obs"):
        return policy
    return VLAAdapter(policy)


def freeze_backbone(rl_policy: RLPolicy) -> None:
    """No gradients into the backbone, and eval mode so its features are deterministic."""
    p = rl_policy.policy
    if hasattr(p, "freeze_backbone"):
        p.freeze_backbone()
    for param in p.backbone.parameters():
        param.requires_grad_(False)
    p.backbone.eval()
