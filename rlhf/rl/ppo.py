"""PPO on the action head with a KL penalty to the frozen BC reference (CleanRL's loop, TRL's reward).

One iteration, top to bottom:
  1. collect complete episodes with the current policy (vectorised envs or Ray actors)
  2. old log-probs, reference KL (closed form) and values from the cached backbone features
  3. proxy per-step rewards from the reward model; gold metrics beside them (never trained on)
  4. normalise the proxy and fold in -kl_coef * KL per step (TRL)
  5. GAE per episode -> advantages and returns
  6. `update_epochs` passes of clipped-surrogate minibatch updates to the head; value regression
     for the critic (separate optimiser); the backbone is frozen and never sees a gradient
  7. adapt the KL coefficient; feed the over-optimisation monitor; log
"""

from __future__ import annotations

import copy
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rlhf.atomic import atomic_write_bytes, atomic_write_json
from rlhf.device import resolve_device
from rlhf.rl.config import PPOConfig
from rlhf.rl.critic import Critic
from rlhf.rl.gae import compute_gae, leave_one_out_advantages
from rlhf.rl.kl_controller import make_kl_controller
from rlhf.rl.losses import kl_penalty, ppo_clip_loss, value_loss
from rlhf.rl.overoptimization import OverOptimizationMonitor
from rlhf.rl.policy_adapter import RLPolicy, freeze_backbone
from rlhf.rl.reward_shaping import RunningNormalizer, StepRewardFn, shape_rewards
from rlhf.rl.rollouts import EpisodeRecord
from rlhf.trajectory import Trajectory

GoldFn = Callable[[Trajectory], np.ndarray]
GoldMetricsFn = Callable[[Trajectory], dict[str, float]]


def set_log_std(head: nn.Module, value: float) -> None:
    """Give a Gaussian head the log std `value` in every dimension (state-independent afterwards)."""
    with torch.no_grad():
        if isinstance(getattr(head, "log_std", None), nn.Parameter):
            head.log_std.fill_(value)
        elif isinstance(getattr(head, "log_std_layer", None), nn.Linear):
            head.log_std_layer.weight.zero_()
            head.log_std_layer.bias.fill_(value)
        else:
            raise TypeError(f"{type(head).__name__} has neither a log_std parameter nor a log_std_layer to set")


def _default_gold() -> tuple[GoldFn, GoldMetricsFn]:
    from sim.metrics import gold_metrics, gold_step_rewards

    return gold_step_rewards, gold_metrics


class PPOTrainer:
    """PPO learner. `collector` has `collect(seeds, deterministic, head_state) -> list[EpisodeRecord]`."""

    def __init__(
        self,
        policy: RLPolicy,
        collector: Any,
        reward_fn: StepRewardFn,
        config: PPOConfig,
        gold_fn: GoldFn | None = None,
        gold_metrics_fn: GoldMetricsFn | None = None,
        logger: Any = None,
        monitor: OverOptimizationMonitor | None = None,
        out_dir: str | os.PathLike | None = None,
        progress: bool = True,
    ) -> None:
        self.policy = policy
        self.collector = collector
        self.reward_fn = reward_fn
        self.config = c = config
        if gold_fn is None or gold_metrics_fn is None:
            dg, dm = _default_gold()
            gold_fn = gold_fn or dg
            gold_metrics_fn = gold_metrics_fn or dm
        self.gold_fn = gold_fn
        self.gold_metrics_fn = gold_metrics_fn
        self.logger = logger
        self.monitor = monitor or OverOptimizationMonitor()
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.progress = progress
        self.device = resolve_device(c.device, "PPOConfig.device")
        torch.manual_seed(c.seed)
        # The rollouts' forward passes and the update run where the policy is: move it there.
        policy.policy.to(self.device)

        # Only the action head trains: the backbone is frozen, and the reference is a frozen copy
        # of the head as it was at the start (the BC policy).
        freeze_backbone(policy)
        self.head: nn.Module = policy.policy.action_head
        if c.exploration_log_std is not None:
            set_log_std(self.head, c.exploration_log_std)
        if hasattr(collector, "noise_correlation"):
            collector.noise_correlation = c.exploration_noise_correlation
        elif c.exploration_noise_correlation:
            raise ValueError(f"PPOConfig.exploration_noise_correlation={c.exploration_noise_correlation} but the "
                             f"collector {type(collector).__name__} has no noise_correlation to set")
        self.reference_head = copy.deepcopy(self.head).eval()
        for p in self.reference_head.parameters():
            p.requires_grad_(False)
        self.critic = Critic(policy.feature_dim, c.critic_hidden).to(self.device)
        self.head_optimizer = torch.optim.Adam(
            [p for p in self.head.parameters() if p.requires_grad], lr=c.learning_rate, eps=1e-5
        )
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=c.critic_learning_rate, eps=1e-5)
        self.kl_ctl = make_kl_controller(c.kl_mode, c.kl_coef, c.kl_target, c.kl_horizon)
        self.normalizer = RunningNormalizer(c.reward_norm)
        self.iteration = 0
        self.global_step = 0
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ one iteration
    def seeds_for(self, iteration: int) -> list[int]:
        """Env seeds of one iteration: each distinct seed `group_size` times, a group's copies adjacent."""
        g = self.config.group_size
        n = self.config.episodes_per_iter // g
        return [self.config.seed * 1_000_000 + iteration * n + i for i in range(n) for _ in range(g)]

    def collect(self, seeds: list[int], deterministic: bool = False) -> list[EpisodeRecord]:
        head_state = self.head.state_dict() if getattr(self.collector, "needs_head_state", False) else None
        return self.collector.collect(seeds, deterministic=deterministic, head_state=head_state)

    def step(self) -> dict[str, float]:
        """Run one PPO iteration; returns its metrics (also logged)."""
        c = self.config
        t_start = time.perf_counter()

        # 1. rollouts
        records = self.collect(self.seeds_for(self.iteration))
        t_rollout = time.perf_counter() - t_start
        lengths = [len(r.trajectory) for r in records]
        n_steps = int(sum(lengths))

        # 2. old log-probs, KL to the reference, values (one batched pass over cached features)
        b_features = torch.from_numpy(np.concatenate([r.features for r in records])).to(self.device)
        b_samples = torch.from_numpy(np.concatenate([r.samples for r in records])).to(self.device)
        last_features = torch.from_numpy(np.stack([r.last_features for r in records])).to(self.device)
        with torch.no_grad():
            dist = self.policy.head_distribution(b_features)
            ref = self.policy.head_distribution(b_features, self.reference_head)
            b_logprobs = dist.log_prob(b_samples).sum(-1)
            b_ref_logprobs = ref.log_prob(b_samples).sum(-1)
            b_kl = kl_penalty(dist, ref)  # closed form: the exact per-step KL, logged and controlled
            # What the reward is charged: the closed form, or (TRL's k1) the sampled log-ratio, whose
            # expectation is the same KL but which depends on the action taken, so the policy
            # gradient pulls each action toward the reference (a closed-form KL at s_t does not
            # depend on a_t and only steers away from states where the policies differ).
            b_kl_charge = b_kl if c.kl_estimator == "closed_form" else b_logprobs - b_ref_logprobs
            b_values = self.critic(b_features)
            last_values = self.critic(last_features).cpu().numpy()
            entropy_now = dist.entropy().sum(-1).mean()
        splits = np.cumsum(lengths)[:-1]
        kls = np.split(b_kl.cpu().numpy().astype(np.float64), splits)
        kl_charges = np.split(b_kl_charge.cpu().numpy().astype(np.float64), splits)
        values = np.split(b_values.cpu().numpy().astype(np.float64), splits)

        # 3. proxy rewards and gold metrics
        scores = [np.asarray(self.reward_fn(r.trajectory), dtype=np.float64) for r in records]
        gold = {"gold/return": float(np.mean([np.sum(self.gold_fn(r.trajectory)) for r in records]))}
        per_ep = [self.gold_metrics_fn(r.trajectory) for r in records]
        for key in per_ep[0] if per_ep else []:
            vals = [float(m[key]) for m in per_ep if key in m and np.isfinite(float(m[key]))]
            if vals:
                gold[f"gold/{key}"] = float(np.mean(vals))

        # 4. normalise, fold the KL in
        kl_coef = self.kl_ctl.value
        rewards, objective = shape_rewards(scores, kl_charges, kl_coef, self.normalizer)
        objective["objective/kl"] = float(np.mean([k.sum() for k in kls]))  # closed form, per episode
        objective["objective/kl_sampled"] = float(np.mean([k.sum() for k in kl_charges]))

        # 5. GAE per episode (the critic's target either way); with 'group', RLOO's advantages
        advs, rets = [], []
        for r, rew, val, lv in zip(records, rewards, values, last_values, strict=True):
            a, ret = compute_gae(rew, val, float(lv), r.terminated, c.gamma, c.gae_lambda)
            advs.append(a)
            rets.append(ret)
        if c.advantage == "group":
            episode_adv = leave_one_out_advantages(np.array([rew.sum() for rew in rewards]),
                                                   np.array([r.seed for r in records]), scale=c.group_scale)
            advs = [np.full(len(rew), a) for rew, a in zip(rewards, episode_adv, strict=True)]
        b_advantages = torch.as_tensor(np.concatenate(advs), dtype=torch.float32, device=self.device)
        b_returns = torch.as_tensor(np.concatenate(rets), dtype=torch.float32, device=self.device)

        # 6. optimise the head and the critic
        losses = self._update(b_features, b_samples, b_logprobs, b_advantages, b_returns, b_values)

        # 7. KL controller, monitor, metrics
        self.kl_ctl.update(objective["objective/kl"], n_steps)
        self.global_step += n_steps
        elapsed = time.perf_counter() - t_start
        metrics: dict[str, float] = {
            **objective,
            **losses,
            **gold,
            "objective/entropy": float(entropy_now),
            "charts/kl_coef": float(kl_coef),
            "charts/SPS": n_steps / elapsed,
            "charts/rollout_SPS": n_steps / max(t_rollout, 1e-9),
            "charts/episode_length": float(np.mean(lengths)),
            "charts/success_rate": float(np.mean([bool(r.trajectory.success) for r in records])),
            "charts/global_step": float(self.global_step),
        }
        metrics.update(self.monitor.update(objective["objective/scores"], gold["gold/return"], objective["objective/kl"]))
        if self.logger is not None:
            self.logger.log(self.iteration, metrics)
        self.history.append(metrics)
        self.iteration += 1
        return metrics

    def _update(self, b_features, b_samples, b_logprobs, b_advantages, b_returns, b_values) -> dict[str, float]:
        c = self.config
        n = b_features.shape[0]
        mb = min(c.minibatch_size, n)
        self.head.train()
        stats: dict[str, list[float]] = {k: [] for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac")}
        gen = torch.Generator().manual_seed(c.seed * 7919 + self.iteration)
        stop = False
        warming_up = self.iteration < c.critic_warmup_iterations
        for _epoch in range(c.update_epochs):
            b_inds = torch.randperm(n, generator=gen)
            for start in range(0, n, mb):
                mb_inds = b_inds[start : start + mb]
                mb_features = b_features[mb_inds]
                new_dist = self.policy.head_distribution(mb_features)
                new_logprob = new_dist.log_prob(b_samples[mb_inds]).sum(-1)
                entropy = new_dist.entropy().sum(-1).mean()
                mb_adv = b_advantages[mb_inds]
                if c.norm_adv and mb_adv.numel() > 1:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss, diag = ppo_clip_loss(new_logprob, b_logprobs[mb_inds], mb_adv, c.clip_coef)
                new_values = self.critic(mb_features)
                v_loss = value_loss(
                    new_values, b_returns[mb_inds], b_values[mb_inds] if c.clip_value else None, c.clip_coef
                )
                # Head and critic have disjoint parameters, so one backward serves both optimisers.
                loss = v_loss if warming_up else pg_loss - c.ent_coef * entropy + v_loss
                self.head_optimizer.zero_grad()
                self.critic_optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.critic.parameters(), c.max_grad_norm)
                self.critic_optimizer.step()
                if not warming_up:
                    nn.utils.clip_grad_norm_(self.head.parameters(), c.max_grad_norm)
                    self.head_optimizer.step()
                stats["policy_loss"].append(float(pg_loss.detach()))
                stats["value_loss"].append(float(v_loss.detach()))
                stats["entropy"].append(float(entropy.detach()))
                stats["approx_kl"].append(float(diag["approx_kl"]))
                stats["clipfrac"].append(float(diag["clipfrac"]))
            if not warming_up and c.target_kl > 0 and stats["approx_kl"][-1] > c.target_kl:
                stop = True
                break
        var_y = float(b_returns.var()) if n > 1 else 0.0
        with torch.no_grad():
            explained = 1.0 - float((b_returns - self.critic(b_features)).var()) / var_y if var_y > 0 else float("nan")
        out = {f"losses/{k}": float(np.mean(v)) for k, v in stats.items()}
        out["losses/explained_variance"] = explained
        out["losses/early_stop"] = float(stop)
        out["losses/critic_warmup"] = float(warming_up)
        return out

    # ------------------------------------------------------------------ loop
    def train(self, iterations: int | None = None, stop_on_overopt: bool = False) -> list[dict[str, float]]:
        """Run `iterations` (default: config.iterations) PPO iterations with a progress bar."""
        from tqdm.auto import tqdm

        total = self.config.iterations if iterations is None else iterations
        bar = tqdm(range(total), desc="ppo", disable=not self.progress)
        out = []
        for _ in bar:
            m = self.step()
            out.append(m)
            bar.set_postfix(proxy=f"{m['objective/scores']:.3g}", gold=f"{m['gold/return']:.3g}", kl=f"{m['objective/kl']:.3g}")
            ce = self.config.checkpoint_every
            if self.out_dir is not None and ce and self.iteration % ce == 0:
                self.save(self.out_dir)
            if stop_on_overopt and self.monitor.flagged:
                break
        if self.out_dir is not None:
            self.save(self.out_dir)
        return out

    # ------------------------------------------------------------------ checkpoints
    def save(self, out_dir: str | os.PathLike) -> Path:
        """head/ (head-only policy checkpoint), critic.pt, reference_head.pt, trainer_state.json; atomic files."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.policy.save_head(out / "head")
        for name, module in (("critic.pt", self.critic), ("reference_head.pt", self.reference_head)):
            buf = io.BytesIO()
            torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, buf)
            atomic_write_bytes(out / name, buf.getvalue())
        atomic_write_json(
            out / "trainer_state.json",
            {
                "iteration": self.iteration,
                "global_step": self.global_step,
                "kl_coef": self.kl_ctl.value,
                "normalizer": self.normalizer.state_dict(),
                "monitor": self.monitor.state_dict(),
                "config": json.loads(json.dumps(self.config.__dict__)),
            },
        )
        return out

    def load(self, out_dir: str | os.PathLike) -> None:
        """Resume from `save`: head weights, critic, reference head, KL coefficient, normaliser, monitor."""
        out = Path(out_dir)
        state_file = out / "trainer_state.json"
        if not state_file.exists():
            raise FileNotFoundError(f"{out}: no trainer_state.json (not a PPO run folder)")
        self.policy.load_head(out / "head")
        self.critic.load_state_dict(torch.load(out / "critic.pt", weights_only=True))
        self.reference_head.load_state_dict(torch.load(out / "reference_head.pt", weights_only=True))
        state = json.loads(state_file.read_text())
        self.iteration = int(state["iteration"])
        self.global_step = int(state["global_step"])
        self.kl_ctl.value = float(state["kl_coef"])
        self.normalizer.load_state_dict(state["normalizer"])
        self.monitor.load_state_dict(state["monitor"])
