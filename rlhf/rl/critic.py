"""The separate critic: V(s) from the frozen backbone's features.

The backbone is frozen during PPO, so its features are computed once per rollout step and both the
action head and the critic train on those cached features; the critic never moves the backbone.
"""

from __future__ import annotations

import torch
from torch import nn


class Critic(nn.Module):
    """MLP value function: features (B, F) -> values (B,)."""

    def __init__(self, feature_dim: int, hidden: int = 128) -> None:
        super().__init__()
        if feature_dim < 1 or hidden < 1:
            raise ValueError(f"Critic needs feature_dim >= 1 and hidden >= 1, got {feature_dim}, {hidden}")
        self.feature_dim = feature_dim
        self.hidden = hidden
        self.net = nn.Sequential(
            nn.Linear(feature_dim, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, 1),
        )
        # Small last layer so early values start near zero (CleanRL's layer_init std=1 for value).
        nn.init.orthogonal_(self.net[-1].weight, gain=1.0)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)
