"""The backbone: image tokens + instruction token + proprioception token, fused by a transformer.

With `PolicyConfig.wrist_camera` a second CNN of the same layout (its own weights: the views share
nothing) encodes the camera on the hand, and its tokens join the scene camera's.

Input tensors are already preprocessed by the policy (images resized to [0, 1], state normalised
and, with `ee_features`, followed by the grasp-point features, instruction as its frozen sentence
embedding). The output feature vector is the transformer's
read-out ("CLS") token; the action head and the PPO critic both read it.
"""

from __future__ import annotations

import torch
from torch import nn

from rlhf.policy.config import PolicyConfig
from rlhf.policy.kinematics import EE_FEATURES_DIM
from rlhf.policy.vision import ImageEncoder


class Backbone(nn.Module):
    """(images (B, 3, S, S), state (B, D_s), instruction_emb (B, E)[, wrist_images (B, 3, W, W)])
    -> features (B, d_model)."""

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        d = config.d_model

        def image_encoder(size: int) -> ImageEncoder:
            return ImageEncoder(
                size,
                config.cnn_channels,
                config.image_tokens_side,
                d,
                stem_stride=config.stem_stride,
                group_norm=config.cnn_group_norm,
                multiscale_keypoints=config.multiscale_keypoints,
            )

        self.image_encoder = image_encoder(config.image_size)
        self.wrist_encoder: ImageEncoder | None = None
        if config.wrist_camera:
            self.wrist_encoder = image_encoder(config.wrist_image_size)
            # Its own type embedding (a separate parameter, so checkpoints without a wrist camera keep
            # their (3, d) `type_emb`).
            self.wrist_type_emb = nn.Parameter(torch.randn(d) * 0.02)
        self.instruction_proj = nn.Sequential(nn.Linear(config.instruction_dim, d), nn.GELU(), nn.Linear(d, d))
        state_in = config.state_dim + (EE_FEATURES_DIM if config.ee_features else 0)
        self.state_proj = nn.Sequential(nn.Linear(state_in, d), nn.GELU(), nn.Linear(d, d))
        self.readout = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        # Type embeddings tell the transformer which token is which modality.
        self.type_emb = nn.Parameter(torch.randn(3, d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, config.n_heads, config.ff_dim, config.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.out_dim = d
        self.wrist_dropout = config.wrist_dropout

    def forward(
        self,
        images: torch.Tensor,
        state: torch.Tensor,
        instruction_emb: torch.Tensor,
        wrist_images: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b = images.shape[0]
        if (wrist_images is None) != (self.wrist_encoder is None):
            raise ValueError(
                "this backbone has a wrist camera encoder and needs wrist_images"
                if self.wrist_encoder is not None
                else "wrist_images given, but this backbone has no wrist camera encoder"
            )
        ins = self.instruction_proj(instruction_emb)  # (B, d)
        img = self.image_encoder(images, ins) + self.type_emb[0]  # (B, N_img, d), FiLM-conditioned
        parts = [self.readout.expand(b, -1, -1), ins.unsqueeze(1) + self.type_emb[1],
                 self.state_proj(state).unsqueeze(1) + self.type_emb[2], img]  # fmt: skip
        mask = None
        if self.wrist_encoder is not None:
            wrist = self.wrist_encoder(wrist_images, ins) + self.wrist_type_emb
            parts.append(wrist)
            if self.training and self.wrist_dropout > 0:
                # Hide the wrist tokens of a random subset of samples (True = ignored by attention).
                n_before = sum(p.shape[1] for p in parts[:-1])
                hidden = torch.rand(b, device=wrist.device) < self.wrist_dropout
                mask = torch.zeros(b, n_before + wrist.shape[1], dtype=torch.bool, device=wrist.device)
                mask[:, n_before:] = hidden.unsqueeze(1)
        tokens = torch.cat(parts, dim=1)
        return self.norm(self.transformer(tokens, src_key_padding_mask=mask)[:, 0])
