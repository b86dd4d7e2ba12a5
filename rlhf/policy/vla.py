"""`VLAPolicy`: the vision-language-action policy (backbone + separable Gaussian action head).

Contract (STYLE.md, LeRobot's PreTrainedPolicy):

| call                          | input                                   | output                                  |
|-------------------------------|-----------------------------------------|-----------------------------------------|
| `select_action(obs)`          | one raw env obs: "image" (H, W, 3) uint8, "joint_positions" (7,), "joint_velocities" (7,), "gripper" (1,), "instruction" str (+ "wrist_image" with a wrist camera) | (8,) float32 action, raw units |
| `reset()`                     |                                         | clears the action-chunk queue           |
| `forward(batch)`              | batch dict (rlhf.constants keys)        | (loss scalar, metrics dict of floats)   |
| `features(batch)`             | batch dict                              | (B, d_model) backbone features          |
| `distribution(batch)`         | batch dict                              | torch Normal over the current action, (B, 8), raw units |
| `head_distribution(features)` | (B, d_model) features (e.g. cached)     | the same Normal, from features           |
| `log_prob(batch, actions)`    | batch dict, actions (B, 8) raw          | (B,) summed over action dims            |

Batch keys: OBS_IMAGE (B, 3, H, W) float in [0, 1] (or (B, H, W, 3) uint8; resized if H, W differ
from config.image_size), OBS_STATE (B, 15) raw proprioception, OBS_INSTRUCTION list[str] *or*
OBS_INSTRUCTION_EMB (B, 384), OBS_WRIST_IMAGE like OBS_IMAGE (with `config.wrist_camera` only),
ACTION (B, 8) or (B, chunk, 8) raw, ACTION_IS_PAD (B, chunk) bool.

The Gaussian: mean from the head, standard deviation exp(log_std) in normalised units times the
action std of the normaliser. log_std is state-independent by default (one learned vector;
`state_dependent_std=True` predicts it). BC fits the mean by MSE over the whole chunk and the
log-std by the Gaussian NLL of the current action with the mean detached, so a BC checkpoint starts
PPO with a std equal to its own residual error. `distribution` covers only the current action:
with n_action_steps = 1 (default) the executed action is exactly the one PPO scores; the rest of the
chunk is an auxiliary target that makes the features look ahead.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from rlhf.constants import (
    ACTION,
    ACTION_IS_PAD,
    NUM_ARM_JOINTS,
    OBS_IMAGE,
    OBS_INSTRUCTION,
    OBS_INSTRUCTION_EMB,
    OBS_STATE,
    OBS_WRIST_IMAGE,
)
from rlhf.policy import checkpoint as ckpt
from rlhf.policy.action_head import GaussianActionHead
from rlhf.policy.backbone import Backbone
from rlhf.policy.config import PolicyConfig
from rlhf.policy.instruction_encoder import InstructionEncoder, InstructionEncoderError
from rlhf.policy.kinematics import ee_features
from rlhf.policy.normalizer import Normalizer, NormalizerError, state_from_obs
from rlhf.policy.vision import frames_to_tensor, resize_frames

CheckpointError = ckpt.CheckpointError


class VLAPolicy(nn.Module):
    """Backbone (`self.backbone`) + action head (`self.action_head`); see the module docstring."""

    def __init__(
        self,
        config: PolicyConfig | None = None,
        normalizer: Normalizer | None = None,
        instruction_encoder: InstructionEncoder | None = None,
    ) -> None:
        super().__init__()
        self.config = config or PolicyConfig()
        c = self.config
        self.backbone = Backbone(c)
        self.action_head = GaussianActionHead(c, self.backbone.out_dim)
        self.normalizer = normalizer or Normalizer.identity(c.state_dim, c.action_dim)
        self._check_normalizer(self.normalizer)
        # Frozen, outside the module tree: never in parameters(), state_dict() or the checkpoint.
        self.instruction_encoder = instruction_encoder or InstructionEncoder(
            dim=c.instruction_dim, package=c.instruction_encoder
        )
        self._queue: deque[np.ndarray] = deque()
        self._chunks: deque[np.ndarray] = deque(maxlen=self.config.chunk_size)
        self._emb_tensors: dict[tuple[str, str], torch.Tensor] = {}

    def _check_normalizer(self, n: Normalizer) -> None:
        c = self.config
        if n.state_mean.shape != (c.state_dim,) or n.action_mean.shape != (c.action_dim,):
            raise NormalizerError(
                f"normalizer has state dim {n.state_mean.shape[0]} / action dim {n.action_mean.shape[0]}, "
                f"config wants {c.state_dim} / {c.action_dim}"
            )
        if n.instruction_mean is not None and n.instruction_mean.shape != (c.instruction_dim,):
            raise NormalizerError(
                f"normalizer instruction_mean has shape {n.instruction_mean.shape}, config wants ({c.instruction_dim},)"
            )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ inputs
    def _images(self, images: Any, size: int | None = None, key: str = OBS_IMAGE) -> torch.Tensor:
        """Any accepted image layout -> (B, 3, S, S) float on the policy's device (S = `size`, default
        config.image_size)."""
        s, dev = size or self.config.image_size, self.device
        if isinstance(images, np.ndarray):
            images = frames_to_tensor(resize_frames(images, s))
        elif images.dtype == torch.uint8:
            if images.ndim == 4 and images.shape[-1] == 3 and images.shape[1] != 3:
                images = images.permute(0, 3, 1, 2)
            images = images.float() / 255.0
        images = images.to(dev, non_blocking=True)
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"{key} must be (B, 3, H, W), got {tuple(images.shape)}")
        if images.shape[-2:] != (s, s):
            images = F.interpolate(images, size=(s, s), mode="area")
        return images

    def instruction_embedding(self, instruction: str) -> torch.Tensor:
        """(E,) frozen sentence embedding on the policy's device, cached per instruction and device."""
        key = (instruction, str(self.device))
        t = self._emb_tensors.get(key)
        if t is None:
            t = torch.from_numpy(self.instruction_encoder.encode(instruction)).to(self.device)
            self._emb_tensors[key] = t
        return t

    _embedding = instruction_embedding  # older name, kept for callers that used it

    def _instruction_embeddings(self, batch: Mapping[str, Any], b: int) -> torch.Tensor:
        if OBS_INSTRUCTION_EMB in batch:
            emb = torch.as_tensor(batch[OBS_INSTRUCTION_EMB], dtype=torch.float32).to(self.device)
        elif OBS_INSTRUCTION in batch:
            texts = batch[OBS_INSTRUCTION]
            texts = [texts] * b if isinstance(texts, str) else list(texts)
            if len(texts) != b:
                raise ValueError(f"{OBS_INSTRUCTION} has {len(texts)} entries for a batch of {b}")
            emb = torch.stack([self.instruction_embedding(t) for t in texts])
        else:
            raise KeyError(f"batch needs {OBS_INSTRUCTION!r} or {OBS_INSTRUCTION_EMB!r}; has {sorted(batch)}")
        if emb.shape != (b, self.config.instruction_dim):
            raise ValueError(f"instruction embeddings have shape {tuple(emb.shape)}, expected ({b}, {self.config.instruction_dim})")
        return emb

    def prepare(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
        """batch -> (images (B, 3, S, S), normalised state (B, D_s [+ 5 grasp-point features]),
        normalised instruction embeddings (B, E)[, wrist images (B, 3, W, W) with a wrist camera])."""
        keys = (OBS_IMAGE, OBS_STATE) + ((OBS_WRIST_IMAGE,) if self.config.wrist_camera else ())
        for key in keys:
            if key not in batch:
                raise KeyError(f"batch lacks {key!r}; has {sorted(batch)}")
        images = self._images(batch[OBS_IMAGE])
        state = torch.as_tensor(batch[OBS_STATE], dtype=torch.float32).to(self.device)
        b = images.shape[0]
        if state.shape != (b, self.config.state_dim):
            raise ValueError(f"{OBS_STATE} has shape {tuple(state.shape)}, expected ({b}, {self.config.state_dim})")
        emb = self.normalizer.normalize_instruction(self._instruction_embeddings(batch, b))
        ee = ee_features(state[:, :NUM_ARM_JOINTS]) if self.config.ee_features else None
        state = self.normalizer.normalize_state(state)
        if not self.config.use_joint_velocities:
            state = torch.cat([state[:, :NUM_ARM_JOINTS], torch.zeros_like(state[:, NUM_ARM_JOINTS:-1]),
                               state[:, -1:]], dim=1)  # fmt: skip
        if not self.config.use_gripper_reading:
            state = torch.cat([state[:, :-1], torch.zeros_like(state[:, -1:])], dim=1)
        if ee is not None:
            state = torch.cat([state, ee], dim=1)
        if not self.config.wrist_camera:
            return images, state, emb
        wrist = self._images(batch[OBS_WRIST_IMAGE], self.config.wrist_image_size, OBS_WRIST_IMAGE)
        if wrist.shape[0] != b:
            raise ValueError(f"{OBS_WRIST_IMAGE} has {wrist.shape[0]} frames for a batch of {b}")
        return images, state, emb, wrist

    # ------------------------------------------------------------------ network
    def features(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """(B, d_model) backbone output."""
        return self.backbone(*self.prepare(batch))

    def head_outputs(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (B, chunk, A), log_std (B, A)), normalised units."""
        return self.action_head(self.features(batch))

    def _raw_normal(self, mean_norm: torch.Tensor, log_std: torch.Tensor) -> Normal:
        loc = self.normalizer.unnormalize_action(mean_norm)
        scale = log_std.exp() * self.normalizer.action_scale(loc.device)
        return Normal(loc, scale)

    def head_distribution(self, features: torch.Tensor, head: nn.Module | None = None) -> Normal:
        """Gaussian over the current action from backbone features (B, F), raw units: loc/scale (B, A).

        `head` defaults to `self.action_head`; PPO/DPO pass a trainable copy and cached features.
        """
        mean, log_std = (head if head is not None else self.action_head)(features)
        return self._raw_normal(mean[:, 0], log_std)

    def distribution(self, batch: Mapping[str, Any]) -> Normal:
        """Diagonal Gaussian over the current action, raw units: loc/scale (B, A)."""
        return self.head_distribution(self.features(batch))

    def log_prob(self, batch: Mapping[str, Any], actions: torch.Tensor) -> torch.Tensor:
        """(B,) log-density of raw actions (B, A), summed over action dimensions."""
        dist = self.distribution(batch)
        return dist.log_prob(torch.as_tensor(actions, dtype=torch.float32).to(dist.loc.device)).sum(-1)

    def forward(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """BC loss: MSE of the mean over the (unpadded) chunk + NLL of the std on the current action."""
        return self.loss_from_features(batch, self.features(batch))

    def loss_from_features(
        self, batch: Mapping[str, Any], features: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """`forward` on precomputed backbone features (B, F), so a trainer can reuse them (aux losses)."""
        if ACTION not in batch:
            raise KeyError(f"batch lacks {ACTION!r}; has {sorted(batch)}")
        mean, log_std = self.action_head(features)
        target = torch.as_tensor(batch[ACTION], dtype=torch.float32).to(mean.device)
        if target.ndim == 2:
            target = target.unsqueeze(1)
        steps = target.shape[1]
        if steps > self.config.chunk_size or target.shape[-1] != self.config.action_dim:
            raise ValueError(
                f"{ACTION} has shape {tuple(target.shape)}, expected (B, <= {self.config.chunk_size}, {self.config.action_dim})"
            )
        target = self.normalizer.normalize_action(target)
        mean = mean[:, :steps]
        valid = torch.ones(target.shape[:2], dtype=torch.bool, device=mean.device)
        if ACTION_IS_PAD in batch:
            valid = ~torch.as_tensor(batch[ACTION_IS_PAD], dtype=torch.bool).to(mean.device)[:, :steps]
        w = valid.unsqueeze(-1).float()
        mse = ((mean - target) ** 2 * w).sum() / (w.sum() * target.shape[-1]).clamp_min(1.0)
        nll = -Normal(mean[:, 0].detach(), log_std.exp()).log_prob(target[:, 0]).sum(-1).mean()
        loss = mse + 0.1 * nll
        metrics = {
            "losses/bc_loss": float(loss.detach()),
            "losses/action_mse": float(mse.detach()),
            "losses/action_nll": float(nll.detach()),
            "policy/log_std_mean": float(log_std.detach().mean()),
        }
        return loss, metrics

    # ------------------------------------------------------------------ acting
    def reset(self) -> None:
        """Forget queued actions and ensembled chunks (call at each episode start)."""
        self._queue.clear()
        self._chunks.clear()

    def obs_to_batch(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """One raw env observation -> a batch of one (image resized here, once)."""
        if "image" not in obs or "instruction" not in obs:
            raise KeyError(f"observation needs 'image' and 'instruction'; has {sorted(obs)}")
        if self.config.wrist_camera and "wrist_image" not in obs:
            raise KeyError(
                f"this policy uses a wrist camera: the observation needs 'wrist_image' (SimConfig.wrist_camera); "
                f"has {sorted(obs)}"
            )
        image = frames_to_tensor(resize_frames(np.asarray(obs["image"]), self.config.image_size))
        batch = {
            OBS_IMAGE: image,
            OBS_STATE: torch.from_numpy(state_from_obs(obs)).unsqueeze(0),
            OBS_INSTRUCTION_EMB: self.instruction_embedding(str(obs["instruction"])).unsqueeze(0),
        }
        if self.config.wrist_camera:
            size = self.config.wrist_image_size
            batch[OBS_WRIST_IMAGE] = frames_to_tensor(resize_frames(np.asarray(obs["wrist_image"]), size))
        return batch

    @torch.inference_mode()
    def predict_chunk(self, obs: Mapping[str, Any], deterministic: bool | None = None) -> np.ndarray:
        """(chunk_size, A) raw actions for one observation (mean, or one Gaussian sample per step)."""
        deterministic = self.config.deterministic if deterministic is None else deterministic
        was_training = self.training
        if was_training:
            self.eval()
        try:
            mean, log_std = self.head_outputs(self.obs_to_batch(obs))
        finally:
            if was_training:
                self.train()
        if not deterministic:
            mean = mean + torch.randn_like(mean) * log_std.exp().unsqueeze(1)
        chunk = self.normalizer.unnormalize_action(mean[0]).cpu().numpy()
        return self.clip_action(chunk)

    def clip_action(self, action: np.ndarray) -> np.ndarray:
        """Clip to the demonstrated range per dimension and the gripper command to [-1, 1]."""
        n = self.normalizer
        out = np.clip(action, n.action_low, n.action_high).astype(np.float32)
        out[..., -1] = np.clip(out[..., -1], -1.0, 1.0)
        return out

    def select_action(self, obs: Mapping[str, Any], deterministic: bool | None = None) -> np.ndarray:
        """(A,) action for one raw observation; predicts a new chunk when the queue runs dry (or, with
        `temporal_ensemble`, at every step, and averages the chunks' predictions for this step)."""
        if self.config.temporal_ensemble > 0:
            return self._ensembled_action(obs, deterministic)
        if not self._queue:
            chunk = self.predict_chunk(obs, deterministic)
            self._queue.extend(chunk[: self.config.n_action_steps])
        return self._queue.popleft()

    def _ensembled_action(self, obs: Mapping[str, Any], deterministic: bool | None) -> np.ndarray:
        # _chunks holds the last chunk_size chunks, newest last; chunk k (age a = len - 1 - k) predicted
        # this step as its row a. Weights decay with age: newer frames are the better evidence.
        self._chunks.append(self.predict_chunk(obs, deterministic))
        preds = np.stack([c[len(self._chunks) - 1 - k] for k, c in enumerate(self._chunks)])
        ages = np.arange(len(self._chunks) - 1, -1, -1, dtype=np.float64)
        w = np.exp(-self.config.temporal_ensemble * ages)
        return self.clip_action((preds * (w / w.sum())[:, None]).sum(0))

    # ------------------------------------------------------------------ freezing
    def freeze_backbone(self) -> VLAPolicy:
        """Stop gradients into the backbone (PPO / DPO train the head alone)."""
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        return self

    def unfreeze_backbone(self) -> VLAPolicy:
        for p in self.backbone.parameters():
            p.requires_grad_(True)
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def version_tag(self) -> str:
        """Short digest of all weights, e.g. for Trajectory.policy_version = f"bc:{tag}"."""
        return ckpt.state_dict_sha256(self.state_dict())[:8]

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: str | os.PathLike) -> Path:
        """Write a full checkpoint folder atomically (see rlhf.policy.checkpoint)."""
        weights = ckpt.state_dict_bytes(self.state_dict())
        header = {
            "format_version": ckpt.FORMAT_VERSION,
            "kind": ckpt.POLICY_KIND,
            "policy": self.config.to_dict(),
            "weights_file": "model.pt",
            "weights_sha256": ckpt.sha256_bytes(weights),
        }
        embeddings = {k: v.tolist() for k, v in sorted(self.instruction_encoder.cached().items())}
        return ckpt.write_folder_atomic(
            path,
            {
                "config.json": ckpt.json_bytes(header),
                "model.pt": weights,
                "normalization.json": ckpt.json_bytes(self.normalizer.to_dict()),
                "instruction_embeddings.json": ckpt.json_bytes(embeddings),
            },
        )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        instruction_encoder: InstructionEncoder | None = None,
        expected_config: PolicyConfig | None = None,
        device: str | torch.device = "cpu",
        **overrides: Any,
    ) -> VLAPolicy:
        """Read a checkpoint folder. `overrides` may change non-structural fields (e.g. deterministic).

        Raises CheckpointError naming the missing file, the config field, or the key and shape that
        do not match (and, with `expected_config`, any structural field that differs from it).
        """
        path = Path(path)
        if not path.is_dir():
            raise CheckpointError(f"{path}: not a checkpoint folder")
        header = ckpt.read_json(path / "config.json", "policy config")
        ckpt.check_header(header, ckpt.POLICY_KIND, path / "config.json")
        bad = sorted(set(overrides) - set(PolicyConfig.NON_STRUCTURAL))
        if bad:
            raise CheckpointError(f"{path}: cannot override structural config fields {bad}")
        try:
            config = PolicyConfig.from_dict({**header.get("policy", {}), **overrides})
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path / 'config.json'}: invalid policy config ({e})") from e
        if expected_config is not None:
            diff = expected_config.structural_diff(config)
            if diff:
                raise CheckpointError(f"{path}: config does not match the expected one: {'; '.join(diff)}")
        try:
            normalizer = Normalizer.from_dict(ckpt.read_json(path / "normalization.json", "normalization stats"))
        except NormalizerError as e:
            raise CheckpointError(f"{path / 'normalization.json'}: {e}") from e
        if instruction_encoder is None:
            instruction_encoder = InstructionEncoder(dim=config.instruction_dim, package=config.instruction_encoder)
        emb_file = path / "instruction_embeddings.json"
        if emb_file.exists():
            try:
                instruction_encoder.update(
                    {k: np.asarray(v, np.float32) for k, v in ckpt.read_json(emb_file, "instruction embeddings").items()}
                )
            except InstructionEncoderError as e:
                raise CheckpointError(f"{emb_file}: {e}") from e
        try:
            policy = cls(config, normalizer, instruction_encoder)
        except NormalizerError as e:
            raise CheckpointError(f"{path / 'normalization.json'}: {e}") from e
        sd = ckpt.read_state_dict(path / header.get("weights_file", "model.pt"), header.get("weights_sha256"))
        ckpt.load_into(policy, sd, str(path / header.get("weights_file", "model.pt")))
        return policy.to(device)

    def save_head(self, path: str | os.PathLike) -> Path:
        """Write the action head alone (head.pt + head_config.json with SHA-256s), atomically."""
        weights = ckpt.state_dict_bytes(self.action_head.state_dict())
        header = {
            "format_version": ckpt.FORMAT_VERSION,
            "kind": ckpt.HEAD_KIND,
            "policy": self.config.to_dict(),
            "weights_file": "head.pt",
            "weights_sha256": ckpt.sha256_bytes(weights),
            "backbone_sha256": ckpt.state_dict_sha256(self.backbone.state_dict()),
        }
        return ckpt.write_folder_atomic(path, {"head_config.json": ckpt.json_bytes(header), "head.pt": weights})

    def load_head(self, path: str | os.PathLike, check_backbone: bool = True) -> VLAPolicy:
        """Replace the action head's weights from a head-only checkpoint.

        Checks the kind, the structural config, the weights' SHA-256, every key and shape, and (unless
        check_backbone=False) that the head was trained on this very backbone.
        """
        path = Path(path)
        if not path.is_dir():
            raise CheckpointError(f"{path}: not a head checkpoint folder")
        header = ckpt.read_json(path / "head_config.json", "head config")
        ckpt.check_header(header, ckpt.HEAD_KIND, path / "head_config.json")
        try:
            config = PolicyConfig.from_dict(header.get("policy", {}))
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{path / 'head_config.json'}: invalid policy config ({e})") from e
        diff = self.config.structural_diff(config)
        if diff:
            raise CheckpointError(f"{path}: head config does not match this policy: {'; '.join(diff)}")
        if check_backbone:
            mine = ckpt.state_dict_sha256(self.backbone.state_dict())
            if header.get("backbone_sha256") != mine:
                raise CheckpointError(
                    f"{path}: backbone_sha256 {str(header.get('backbone_sha256'))[:12]}… does not match this "
                    f"policy's backbone {mine[:12]}… (pass check_backbone=False to load anyway)"
                )
        sd = ckpt.read_state_dict(path / header.get("weights_file", "head.pt"), header.get("weights_sha256"))
        ckpt.load_into(self.action_head, sd, str(path / header.get("weights_file", "head.pt")))
        self.reset()
        return self
