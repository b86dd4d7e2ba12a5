"""Bradley-Terry preference loss as a small pure function."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def preference_logprobs(
    score_a: torch.Tensor, score_b: torch.Tensor, label_noise: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """log P(A preferred) and log P(B preferred) under Bradley-Terry with epsilon-uniform noise.

    P(A) = (1 - eps) * sigmoid(s_a - s_b) + eps / 2. The eps term says "some labels are coin flips",
    so one confidently wrong label cannot push the scores apart without bound. Shapes: (B,) each.
    """
    if not 0.0 <= label_noise < 1.0:
        raise ValueError(f"label_noise must be in [0, 1), got {label_noise}")
    d = score_a - score_b
    log_pa = F.logsigmoid(d)
    log_pb = F.logsigmoid(-d)
    if label_noise > 0:
        # log((1-eps) p + eps/2) computed in log space so it stays finite for large |d|.
        keep = math.log1p(-label_noise)
        flip = math.log(label_noise / 2)
        log_pa = torch.logaddexp(log_pa + keep, torch.full_like(log_pa, flip))
        log_pb = torch.logaddexp(log_pb + keep, torch.full_like(log_pb, flip))
    return log_pa, log_pb


def pair_cross_entropy(
    score_a: torch.Tensor, score_b: torch.Tensor, prob_a: torch.Tensor, label_noise: float = 0.0
) -> torch.Tensor:
    """(B,) cross-entropy of each pair between target P(A) and the Bradley-Terry prediction."""
    log_pa, log_pb = preference_logprobs(score_a, score_b, label_noise)
    return -(prob_a * log_pa + (1.0 - prob_a) * log_pb)


def bradley_terry_loss(
    score_a: torch.Tensor,
    score_b: torch.Tensor,
    prob_a: torch.Tensor,
    label_noise: float = 0.0,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted mean cross-entropy between target P(A) and the Bradley-Terry prediction.

    score_a, score_b: (B,) segment scores (sums of per-step rewards). prob_a: (B,) targets in [0, 1]
    (1 = A preferred, 0 = B, 0.5 = tie). weights: (B,) non-negative per-pair weights (e.g. annotator
    reliability) or None for equal weights. Returns a scalar.
    """
    if score_a.shape != score_b.shape or score_a.shape != prob_a.shape:
        raise ValueError(
            f"score_a {tuple(score_a.shape)}, score_b {tuple(score_b.shape)} and prob_a {tuple(prob_a.shape)} must match"
        )
    per_pair = pair_cross_entropy(score_a, score_b, prob_a, label_noise)
    if weights is None:
        return per_pair.mean()
    if weights.shape != per_pair.shape:
        raise ValueError(f"weights shape {tuple(weights.shape)} must match {tuple(per_pair.shape)}")
    total = weights.sum()
    if total <= 0:
        raise ValueError("weights sum to zero: no pair carries any weight")
    return (weights * per_pair).sum() / total
