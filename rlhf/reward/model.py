"""The reward network: per-frame CNN + proprio/action features -> temporal transformer -> per-step reward.

Inputs for N segments of L steps (S = image size):

| key      | shape            | dtype   | content                                              |
|----------|------------------|---------|------------------------------------------------------|
| images   | (N, L, 3, S, S)  | uint8   | frames (scaled to [0, 1] inside the network)         |
| state    | (N, L, D)        | float32 | proprioception (D = features.state_dim), normalised  |
| actions  | (N, L, 8)        | float32 | actions, already normalised with FeatureStats        |
| mask     | (N, L)           | bool    | True on real steps, False on right padding           |

Outputs: per-step reward (N, L) (0 on padding) and, with axis heads, per-axis rewards (N, L, A).
A segment's score is the sum of its per-step rewards, so PPO gets a dense reward.

With `RewardConfig.kinematic` the last columns of `state` are the scene features of
`rlhf.reward.kinematics`, and the per-step reward is a linear function of them (`kinematic`) plus
what the transformer adds (`residual`); the transformer head starts at zero, so a freshly built net
is the linear channel alone.
"""

from __future__ import annotations

import torch
from torch import nn

from rlhf.constants import ACTION_DIM
from rlhf.reward.config import RewardConfig
from rlhf.reward.features import config_state_dim
from rlhf.reward.kinematics import kinematic_dim


class FrameEncoder(nn.Module):
    """Small stride-2 CNN applied to every frame independently: (M, 3, S, S) -> (M, d_model)."""

    def __init__(self, channels: tuple[int, ...], d_model: int, keypoints: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i, c in enumerate(channels):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(c_in, c, k, stride=2, padding=k // 2), nn.GELU()]
            c_in = c
        self.conv = nn.Sequential(*layers)
        self.keypoints = keypoints
        if keypoints:
            # Spatial softmax: each keypoint map becomes its expected (x, y) image position, so the
            # positions of the cube, the pad and the gripper come out as numbers.
            self.kp = nn.Conv2d(c_in, keypoints, 1)
            self.proj = nn.Linear(2 * keypoints + c_in, d_model)
        else:
            # A 2x2 adaptive pool keeps coarse "where" info (global pooling alone would discard it).
            self.pool = nn.AdaptiveAvgPool2d(2)
            self.proj = nn.Linear(c_in * 4, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        if not self.keypoints:
            return self.proj(self.pool(h).flatten(1))
        m, _, hh, ww = h.shape
        attn = torch.softmax(self.kp(h).flatten(2), dim=-1)  # (M, K, H*W)
        ys = torch.linspace(-1.0, 1.0, hh, device=x.device).repeat_interleave(ww)
        xs = torch.linspace(-1.0, 1.0, ww, device=x.device).repeat(hh)
        coords = torch.stack([attn @ xs, attn @ ys], dim=-1).flatten(1)  # (M, 2K)
        return self.proj(torch.cat([coords, h.mean(dim=(2, 3))], dim=1))


class RewardNet(nn.Module):
    """One ensemble member. See the module docstring for input and output shapes."""

    def __init__(self, config: RewardConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.frame_encoder = (
            FrameEncoder(config.cnn_channels, d, config.keypoints) if config.use_images else None
        )
        self.proprio = nn.Sequential(
            nn.Linear(config_state_dim(config) + ACTION_DIM, d), nn.GELU(), nn.Linear(d, d)
        )
        self.pos = nn.Parameter(torch.zeros(config.max_steps, d))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d,
            config.n_heads,
            dim_feedforward=2 * d,
            dropout=config.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.temporal = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        n_out = 1 + len(config.axes)
        self.head = nn.Sequential(
            nn.Linear(d, config.head_hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.head_hidden, n_out),
        )
        self.kinematic: nn.Linear | None = None
        if config.kinematic:
            if config.num_objects < 1:
                raise ValueError("RewardConfig.kinematic needs num_objects >= 1 to build the network")
            self.n_kinematic = kinematic_dim(config.num_objects)
            self.kinematic = nn.Linear(self.n_kinematic, 1, bias=False)
            nn.init.zeros_(self.kinematic.weight)
            # The residual starts at zero so that training it can only move away from the linear
            # fit as far as the held-out pairs allow (the best-epoch selection starts from it).
            nn.init.zeros_(self.head[-1].weight)
            nn.init.zeros_(self.head[-1].bias)

    def _attention_mask(self, length: int, device: torch.device) -> torch.Tensor | None:
        """(L, L) additive mask: -inf where step t may not attend to step s (causality, window)."""
        w = self.config.attention_window
        if not self.config.causal and w == 0:
            return None
        t = torch.arange(length, device=device)
        lag = t[:, None] - t[None, :]  # t - s
        allowed = torch.ones(length, length, dtype=torch.bool, device=device)
        if self.config.causal:
            allowed &= lag >= 0
        if w > 0:
            allowed &= lag.abs() < w
        zeros = torch.zeros(length, length, device=device)
        return zeros.masked_fill(~allowed, float("-inf"))

    def forward(
        self, images: torch.Tensor, state: torch.Tensor, actions: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-step rewards (N, L) and per-axis rewards (N, L, A) (A may be 0)."""
        n, length = state.shape[:2]
        if length > self.config.max_steps:
            raise ValueError(
                f"segment of {length} steps exceeds RewardConfig.max_steps={self.config.max_steps}"
            )
        x = self.proprio(torch.cat([state, actions], dim=-1))
        if self.frame_encoder is not None:
            frames = images.reshape(n * length, *images.shape[2:]).float() / 255.0
            x = x + self.frame_encoder(frames).reshape(n, length, -1)
        x = x + self.pos[:length]
        attn_mask = self._attention_mask(length, x.device)
        if not self.config.causal and not bool(mask.all()):
            # Right padding without causality: hide padded keys from every query, except that a
            # padded step still sees itself (a row with no allowed key would be NaN, and NaN values
            # leak into real rows through the next layer's attention even at weight 0).
            base = attn_mask if attn_mask is not None else torch.zeros(length, length, device=x.device)
            eye = torch.eye(length, dtype=torch.bool, device=x.device)
            hidden = (~mask)[:, None, :] & ~eye  # (N, L, L)
            attn_mask = base.unsqueeze(0).masked_fill(hidden, float("-inf"))
            attn_mask = attn_mask.repeat_interleave(self.config.n_heads, dim=0)
        # With causal attention and right padding, real steps never attend to padding: no key mask.
        # No final LayerNorm: it would squash inputs far outside the training range back to familiar
        # magnitudes. Without it such inputs give large, member-specific outputs, which is what lets
        # the ensemble's std flag out-of-distribution segments.
        h = self.temporal(x, mask=attn_mask)
        out = self.head(h)
        if self.kinematic is not None:
            linear = self.kinematic(state[..., -self.n_kinematic :])
            out = torch.cat([out[..., :1] + linear, out[..., 1:]], dim=-1)
        out = torch.where(mask.unsqueeze(-1), out, torch.zeros((), dtype=h.dtype, device=h.device))
        return out[..., 0], out[..., 1:]
