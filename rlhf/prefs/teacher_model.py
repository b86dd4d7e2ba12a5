"""The scripted teacher's noise model (B-Pref: Lee et al., 2021), as pure functions.

A teacher compares two segments by their gold returns. Given per-step gold rewards r_a (T_a,) and
r_b (T_b,):

1. Myopia: R = sum_t gamma^(T-1-t) r_t  (gamma = 1 is the plain sum; gamma < 1 weighs the end more).
2. Skip: if max(R_a, R_b) < skip_threshold the teacher answers "can't tell" (None).
3. Equal: if |R_a - R_b| < equal_threshold the label is a tie (0.5).
4. Rationality: P(A preferred) = sigmoid(beta * (R_a - R_b)); beta = inf is a perfect teacher,
   finite beta samples the label from that probability.
5. Mistakes: with probability `mistake_rate` the sampled label is flipped.

The HTTP-posting teacher in `rlhf.prefs` and the reward-model experiments both use `label_pair`,
so a configuration means the same thing everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TeacherConfig:
    """B-Pref noise parameters. The defaults are the noise-free "oracle" teacher."""

    beta: float = math.inf
    """Bradley-Terry rationality, 1/(gold-return units). inf: always picks the higher return."""
    gamma: float = 1.0
    """Myopia discount in (0, 1]; 1 weighs all steps equally."""
    mistake_rate: float = 0.0
    """Probability in [0, 0.5] of flipping the label after it was chosen."""
    skip_threshold: float = -math.inf
    """Answer "can't tell" when neither segment's return reaches this value."""
    equal_threshold: float = 0.0
    """Return difference (gold units) below which the answer is a tie."""

    def __post_init__(self) -> None:
        if not (self.beta > 0):
            raise ValueError(f"TeacherConfig.beta must be > 0 (inf for a perfect teacher), got {self.beta}")
        if not (0.0 < self.gamma <= 1.0):
            raise ValueError(f"TeacherConfig.gamma must be in (0, 1], got {self.gamma}")
        if not (0.0 <= self.mistake_rate <= 0.5):
            raise ValueError(f"TeacherConfig.mistake_rate must be in [0, 0.5], got {self.mistake_rate}")
        if self.equal_threshold < 0:
            raise ValueError(f"TeacherConfig.equal_threshold must be >= 0, got {self.equal_threshold}")

    @property
    def name(self) -> str:
        """A stable annotator id for this configuration, e.g. 'teacher:b10-g1-m0.1-e0-s-inf'."""
        return (
            f"teacher:b{self.beta:g}-g{self.gamma:g}-m{self.mistake_rate:g}"
            f"-e{self.equal_threshold:g}-s{self.skip_threshold:g}"
        )


def myopic_return(rewards: np.ndarray, gamma: float) -> float:
    """sum_t gamma^(T-1-t) r_t for rewards of shape (T,)."""
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"rewards must be 1-D, got shape {r.shape}")
    weights = gamma ** np.arange(len(r) - 1, -1, -1, dtype=np.float64)
    return float(np.dot(weights, r))


def preference_probability(return_a: float, return_b: float, beta: float) -> float:
    """Bradley-Terry P(A preferred) = sigmoid(beta * (R_a - R_b)); a step function for beta = inf."""
    diff = return_a - return_b
    if math.isinf(beta):
        return 1.0 if diff > 0 else 0.0 if diff < 0 else 0.5
    z = beta * diff
    # Numerically stable sigmoid.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def label_pair(
    rewards_a: np.ndarray, rewards_b: np.ndarray, config: TeacherConfig, rng: np.random.Generator
) -> float | None:
    """The teacher's label for a pair of segments: 1.0 (A), 0.0 (B), 0.5 (tie) or None (can't tell)."""
    ra = myopic_return(rewards_a, config.gamma)
    rb = myopic_return(rewards_b, config.gamma)
    if max(ra, rb) < config.skip_threshold:
        return None
    if abs(ra - rb) < config.equal_threshold:
        return 0.5
    p = preference_probability(ra, rb, config.beta)
    if p == 0.5 and math.isinf(config.beta):
        return 0.5
    label = 1.0 if rng.random() < p else 0.0
    if config.mistake_rate > 0 and rng.random() < config.mistake_rate:
        label = 1.0 - label
    return label
