"""Configs of phase 3: PPO on the action head, trajectory-level DPO and the iterative RLHF loop.

One dataclass per component; every field says what it means; `__post_init__` rejects a bad value
by naming it. The CLI builds these from its flags, so a default is written once, here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rlhf.device import DEVICE_CHOICES


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


@dataclass
class PPOConfig:
    """PPO with GAE, a separate critic and a per-step KL penalty to the frozen BC reference."""

    iterations: int = 20
    """PPO iterations (one rollout batch + `update_epochs` passes over it each)."""
    episodes_per_iter: int = 8
    """Complete episodes collected per iteration."""
    group_size: int = 1
    """Episodes per initial state in an iteration: episodes_per_iter / group_size distinct env seeds,
    each rolled out group_size times with different action noise. Must divide episodes_per_iter."""
    advantage: str = "gae"
    """'gae': GAE on the critic's values, per step. 'group': RLOO's per-episode advantage (return
    minus the leave-one-out mean of its group's returns, undiscounted, given to every step); needs
    group_size >= 2. The critic still trains (its explained variance is logged) but is not used."""
    group_scale: bool = False
    """With advantage 'group': divide each group's advantages by its return std (GRPO), so that starts
    where every episode succeeded, whose returns differ only by time and motion quality, weigh as
    much as starts where success flipped."""
    num_envs: int = 0
    """Vectorised sim envs; 0 means one per CPU core."""
    vector_mode: str = "async"
    """'async' (one process per env, all cores) or 'sync' (in-process; tests, debugging)."""
    max_episode_steps: int = 0
    """Cut episodes after this many control steps; 0 keeps the env's own time limit."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda: 0 is one-step TD, 1 is Monte Carlo."""
    learning_rate: float = 3e-4
    """Adam learning rate of the action head."""
    critic_learning_rate: float = 1e-3
    """Adam learning rate of the critic."""
    update_epochs: int = 4
    """Passes over each rollout batch."""
    minibatch_size: int = 256
    """Steps per minibatch."""
    clip_coef: float = 0.2
    """PPO ratio clip epsilon."""
    clip_value: bool = True
    """Clip the value update around the rollout's values (CleanRL's clip_vloss)."""
    ent_coef: float = 0.0
    """Entropy bonus weight."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip per optimiser step."""
    target_kl: float = 0.0
    """Stop an iteration's epochs early once approx_kl (old vs new policy) exceeds this; 0 disables."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    kl_coef: float = 0.05
    """Initial coefficient of the per-step KL(policy || reference) folded into the reward."""
    kl_estimator: str = "sample"
    """Per-step KL charged in the reward: 'sample' (TRL's log pi(a|s) - log ref(a|s) of the action
    taken) or 'closed_form' (the Gaussians' exact KL at s). Both have the same expectation; the
    closed form is always what `objective/kl` reports and the adaptive controller tracks."""
    kl_mode: str = "fixed"
    """'fixed' or 'adaptive' (Ziegler et al. proportional controller toward `kl_target`)."""
    kl_target: float = 1.0
    """Adaptive mode: target KL per episode (nats, summed over steps)."""
    kl_horizon: int = 10_000
    """Adaptive mode: env steps over which the coefficient may change by about e^0.2."""
    reward_std_coef: float = 0.0
    """k in the reward mean - k * std over the reward-model ensemble (pessimism); 0 uses the mean."""
    reward_norm: str = "scale"
    """Per-step reward normalisation: 'scale' (divide by running std), 'standard' (also subtract the
    running mean) or 'none'. 'scale' keeps the sign, so episode length incentives are unchanged."""
    seed: int = 0
    """Seed of torch, the action sampling and the first episode seed."""
    device: str = "cpu"
    """"cpu", "cuda" or "auto": where the policy (moved there by the trainer) runs its rollouts' forward
    passes and where the head and critic train."""
    critic_hidden: int = 128
    """Width of the critic's two hidden layers."""
    checkpoint_every: int = 5
    """Save the head and critic every this many iterations (and at the end); 0: only at the end."""
    exploration_log_std: float | None = None
    """Set the head's log std (normalised action units, every action dimension) before PPO starts,
    for the trained head and the KL reference alike; None keeps what BC learned. BC fits the std to
    its demonstrations' residuals, which suits neither exploring nor the KL: on reach it learned
    log std -0.4..-0.6 for the joints (noise that dominates the gold return through jerk) and -5,
    the floor, for the gripper its demonstrations never move, where any drift of the mean through
    the shared layers costs tens of nats of KL per episode."""
    exploration_noise_correlation: float = 0.0
    """rho in [0, 1) of the rollouts' action noise along each episode: 0 is white noise; above 0 the
    noise is AR(1), unit-variance at every step but smoother in time, so its jerk stops swamping the
    policy's own (`rlhf.rl.exploration`). The collector must support it (both built-in ones do)."""
    critic_warmup_iterations: int = 0
    """First iterations in which only the critic learns (the head is frozen): a fresh critic's
    advantages are noise, and a policy update on noise moves a good BC policy away from what works."""

    def __post_init__(self) -> None:
        for name in ("iterations", "episodes_per_iter", "update_epochs", "minibatch_size", "critic_hidden",
                     "kl_horizon"):
            _check(getattr(self, name) >= 1, f"PPOConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_envs", "max_episode_steps", "checkpoint_every", "critic_warmup_iterations"):
            _check(getattr(self, name) >= 0, f"PPOConfig.{name} must be >= 0, got {getattr(self, name)}")
        _check(self.group_size >= 1 and self.episodes_per_iter % self.group_size == 0,
               f"PPOConfig.group_size must be >= 1 and divide episodes_per_iter ({self.episodes_per_iter}), got {self.group_size}")
        _check(self.advantage in ("gae", "group"), f"PPOConfig.advantage must be 'gae' or 'group', got {self.advantage!r}")
        _check(self.advantage != "group" or self.group_size >= 2,
               f"PPOConfig.advantage 'group' needs group_size >= 2, got {self.group_size}")
        _check(not self.group_scale or self.advantage == "group",
               f"PPOConfig.group_scale needs advantage 'group', got {self.advantage!r}")
        _check(self.vector_mode in ("async", "sync"), f"PPOConfig.vector_mode must be 'async' or 'sync', got {self.vector_mode!r}")
        _check(0.0 < self.gamma <= 1.0, f"PPOConfig.gamma must be in (0, 1], got {self.gamma}")
        _check(0.0 <= self.gae_lambda <= 1.0, f"PPOConfig.gae_lambda must be in [0, 1], got {self.gae_lambda}")
        for name in ("learning_rate", "critic_learning_rate", "clip_coef", "max_grad_norm", "kl_target"):
            v = getattr(self, name)
            _check(math.isfinite(v) and v > 0, f"PPOConfig.{name} must be > 0, got {v}")
        for name in ("ent_coef", "target_kl", "kl_coef", "reward_std_coef"):
            v = getattr(self, name)
            _check(math.isfinite(v) and v >= 0, f"PPOConfig.{name} must be >= 0, got {v}")
        _check(self.exploration_log_std is None or math.isfinite(self.exploration_log_std),
               f"PPOConfig.exploration_log_std must be finite or None, got {self.exploration_log_std}")
        _check(math.isfinite(self.exploration_noise_correlation) and 0.0 <= self.exploration_noise_correlation < 1.0,
               f"PPOConfig.exploration_noise_correlation must be in [0, 1), got {self.exploration_noise_correlation}")
        _check(self.device in DEVICE_CHOICES, f"PPOConfig.device must be one of {DEVICE_CHOICES}, got {self.device!r}")
        _check(self.kl_mode in ("fixed", "adaptive"), f"PPOConfig.kl_mode must be 'fixed' or 'adaptive', got {self.kl_mode!r}")
        _check(self.kl_estimator in ("sample", "closed_form"),
               f"PPOConfig.kl_estimator must be 'sample' or 'closed_form', got {self.kl_estimator!r}")
        _check(self.kl_mode != "adaptive" or self.kl_coef > 0, "PPOConfig.kl_coef must be > 0 when kl_mode is 'adaptive'")
        _check(self.reward_norm in ("scale", "standard", "none"),
               f"PPOConfig.reward_norm must be 'scale', 'standard' or 'none', got {self.reward_norm!r}")


@dataclass
class DPOConfig:
    """Trajectory-level DPO on preference triples: the offline alternative to reward model + PPO."""

    beta: float = 0.1
    """DPO temperature: larger keeps the policy closer to the reference."""
    epochs: int = 20
    """Passes over the preference pairs."""
    batch_size: int = 16
    """Pairs per optimiser step."""
    learning_rate: float = 1e-4
    """Adam learning rate of the action head."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip per optimiser step."""
    normalize_by_length: bool = False
    """Divide each side's summed log-prob by its segment length (pairs of unequal length)."""
    label_smoothing: float = 0.0
    """Conservative DPO: assume this fraction of labels is flipped (0 is plain DPO)."""
    rpo_alpha: float = 0.0
    """Weight of the chosen side's negative log-likelihood per step added to the DPO loss (RPO, Pang et
    al. 2024; TRL's `rpo_alpha`). The DPO margin alone also grows when both sides' likelihood falls, so
    the head's mean can drift away from every demonstrated action; this term anchors it to the chosen
    ones. 0 is plain DPO."""
    seed: int = 0
    """Seed of the pair shuffling."""
    device: str = "cpu"
    """"cpu", "cuda" or "auto": where the trainer moves the policy and trains the head."""

    def __post_init__(self) -> None:
        _check(math.isfinite(self.beta) and self.beta > 0, f"DPOConfig.beta must be > 0, got {self.beta}")
        for name in ("epochs", "batch_size"):
            _check(getattr(self, name) >= 1, f"DPOConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_rate", "max_grad_norm"):
            v = getattr(self, name)
            _check(math.isfinite(v) and v > 0, f"DPOConfig.{name} must be > 0, got {v}")
        _check(math.isfinite(self.rpo_alpha) and self.rpo_alpha >= 0, f"DPOConfig.rpo_alpha must be >= 0, got {self.rpo_alpha}")
        _check(self.device in DEVICE_CHOICES, f"DPOConfig.device must be one of {DEVICE_CHOICES}, got {self.device!r}")
        _check(0.0 <= self.label_smoothing < 0.5, f"DPOConfig.label_smoothing must be in [0, 0.5), got {self.label_smoothing}")


@dataclass
class LoopConfig:
    """Iterative RLHF: rounds of rollouts -> new pairs -> labels -> reward-model update -> PPO."""

    rounds: int = 3
    """Rounds of the loop."""
    pairs_per_round: int = 32
    """New preference pairs drawn from the current policy each round."""
    ppo_iterations_per_round: int = 5
    """PPO iterations run after each reward-model update."""
    reward_epochs: int = 5
    """Reward-model training epochs per round (on all labels so far)."""
    labeler: str = "teacher"
    """'teacher' (scripted B-Pref teacher on gold rewards) or 'store' (labels from the annotation store)."""
    same_start_pairs: bool = True
    """Draw both sides of a pair from the same initial state (same env seed), as in the acceptance test."""
    seed: int = 0
    """Seed of pair sampling and the teacher's noise."""

    def __post_init__(self) -> None:
        for name in ("rounds", "pairs_per_round", "ppo_iterations_per_round"):
            _check(getattr(self, name) >= 1, f"LoopConfig.{name} must be >= 1, got {getattr(self, name)}")
        _check(self.reward_epochs >= 0, f"LoopConfig.reward_epochs must be >= 0, got {self.reward_epochs}")
        _check(self.labeler in ("teacher", "store"), f"LoopConfig.labeler must be 'teacher' or 'store', got {self.labeler!r}")
