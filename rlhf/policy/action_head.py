"""The action head: backbone features -> a diagonal Gaussian over an action chunk.

Everything here is in *normalised* action units (the policy maps to and from raw units with the
checkpoint's normaliser). The mean covers `chunk_size` future actions; the standard deviation is
either one learned vector (state-independent, the default, as in CleanRL's continuous PPO) or
predicted from the features (`state_dependent_std`), and is shared by all steps of the chunk.
"""

from __future__ import annotations

import torch
from torch import nn

from rlhf.policy.config import PolicyConfig


class GaussianActionHead(nn.Module):
    """features (B, F) -> (mean (B, chunk_size, A), log_std (B, A)), normalised units."""

    def __init__(self, config: PolicyConfig, in_dim: int) -> None:
        super().__init__()
        self.chunk_size = config.chunk_size
        self.action_dim = config.action_dim
        self.log_std_min = config.log_std_min
        self.log_std_max = config.log_std_max
        h = config.head_hidden
        self.mlp = nn.Sequential(nn.Linear(in_dim, h), nn.GELU(), nn.Linear(h, h), nn.GELU())
        self.mean = nn.Linear(h, config.chunk_size * config.action_dim)
        self.state_dependent_std = config.state_dependent_std
        if config.state_dependent_std:
            self.log_std_layer = nn.Linear(h, config.action_dim)
            nn.init.zeros_(self.log_std_layer.weight)
            nn.init.constant_(self.log_std_layer.bias, config.log_std_init)
        else:
            self.log_std = nn.Parameter(torch.full((config.action_dim,), float(config.log_std_init)))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.mlp(features)
        mean = self.mean(z).view(-1, self.chunk_size, self.action_dim)
        if self.state_dependent_std:
            log_std = self.log_std_layer(z)
        else:
            log_std = self.log_std.expand(features.shape[0], -1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)
