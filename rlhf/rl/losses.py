"""The losses of phase 3 as small pure functions, each checkable by hand.

Shapes: B = batch (steps or pairs), A = action dimensions (8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ppo_clip_loss(
    new_logprob: torch.Tensor, old_logprob: torch.Tensor, advantages: torch.Tensor, clip_coef: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate objective, as a loss to minimise.

    Args: new_logprob, old_logprob, advantages: (B,). Returns the loss (scalar) and diagnostics:
    `approx_kl` (the k3 estimator (r - 1) - log r of KL(old || new), Schulman 2020) and `clipfrac`.
    loss = mean(max(-A * r, -A * clip(r, 1 - eps, 1 + eps))), r = exp(new - old).
    """
    log_ratio = new_logprob - old_logprob
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef)
    loss = torch.max(unclipped, clipped).mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean()
    return loss, {"approx_kl": approx_kl, "clipfrac": clipfrac}


def value_loss(
    new_values: torch.Tensor, returns: torch.Tensor, old_values: torch.Tensor | None = None, clip_coef: float = 0.2
) -> torch.Tensor:
    """0.5 * squared error to the GAE returns; with `old_values`, the pessimistic clipped form.

    Args: (B,) tensors. Clipping keeps each value within clip_coef of the rollout's value and takes
    the larger of the clipped and unclipped errors.
    """
    err = (new_values - returns) ** 2
    if old_values is None:
        return 0.5 * err.mean()
    clipped = old_values + torch.clamp(new_values - old_values, -clip_coef, clip_coef)
    err_clipped = (clipped - returns) ** 2
    return 0.5 * torch.max(err, err_clipped).mean()


def gaussian_kl(
    mean_p: torch.Tensor, std_p: torch.Tensor, mean_q: torch.Tensor, std_q: torch.Tensor
) -> torch.Tensor:
    """Closed-form KL(p || q) of diagonal Gaussians, summed over the last (action) dimension.

    Args: (..., A) means and standard deviations. Returns (...,).
    KL = sum_i log(s_q / s_p) + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2.
    """
    var_p, var_q = std_p**2, std_q**2
    kl = torch.log(std_q / std_p) + (var_p + (mean_p - mean_q) ** 2) / (2.0 * var_q) - 0.5
    return kl.sum(-1)


def kl_penalty(policy: torch.distributions.Normal, reference: torch.distributions.Normal) -> torch.Tensor:
    """Per-step KL(policy || reference) of two diagonal-Gaussian action distributions: (B, A) -> (B,)."""
    return gaussian_kl(policy.mean, policy.stddev, reference.mean, reference.stddev)


def dpo_loss(
    policy_chosen_logp: torch.Tensor,
    policy_rejected_logp: torch.Tensor,
    ref_chosen_logp: torch.Tensor,
    ref_rejected_logp: torch.Tensor,
    beta: float,
    label_smoothing: float = 0.0,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DPO (Rafailov et al., 2023) on summed action log-probs of whole trajectories or segments.

    Args: (B,) log-probs; `weights` (B,) optional per-pair weights (e.g. 1 for a clear label).
    h = beta * ((pi_c - ref_c) - (pi_r - ref_r));  loss = -(1-e) log sigmoid(h) - e log sigmoid(-h).
    Returns the loss and `margin` (mean h / beta), `accuracy` (fraction with h > 0),
    `chosen_reward`/`rejected_reward` (beta * log-ratio, means).
    """
    chosen = beta * (policy_chosen_logp - ref_chosen_logp)
    rejected = beta * (policy_rejected_logp - ref_rejected_logp)
    h = chosen - rejected
    losses = -(1.0 - label_smoothing) * F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)
    if weights is not None:
        loss = (losses * weights).sum() / weights.sum().clamp_min(1e-8)
    else:
        loss = losses.mean()
    with torch.no_grad():
        metrics = {
            "margin": (h / beta).mean(),
            "accuracy": (h > 0).float().mean(),
            "chosen_reward": chosen.mean(),
            "rejected_reward": rejected.mean(),
        }
    return loss, metrics
