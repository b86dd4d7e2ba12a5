"""Trajectory-level DPO on the preference store: the offline alternative to reward model + PPO.

Each preference triple names two recorded segments. A side's log-likelihood is the sum of its action
log-probs under the policy, log pi(seg) = sum_t log pi(a_t | s_t); DPO pushes
beta * [(log pi - log ref)(chosen) - (log pi - log ref)(rejected)] up. As in PPO only the action head
trains: backbone features of every step used are computed once up front (frozen), so each epoch is
head-only arithmetic. Ties (prob_a = 0.5) carry no direction and are skipped.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rlhf.device import resolve_device
from rlhf.prefs.triples import PreferenceTriple
from rlhf.rl.config import DPOConfig
from rlhf.rl.losses import dpo_loss
from rlhf.rl.policy_adapter import RLPolicy, freeze_backbone
from rlhf.trajectory import Trajectory


@dataclass
class _Side:
    features: torch.Tensor  # (T, F)
    actions: torch.Tensor  # (T, A) raw, as recorded

    def to(self, device: torch.device) -> _Side:
        return _Side(self.features.to(device), self.actions.to(device))


@dataclass
class DPOPair:
    chosen: _Side
    rejected: _Side
    weight: float
    """|2 * prob_a - 1|: a clear label weighs 1, a soft one less."""

    def to(self, device: torch.device) -> DPOPair:
        """The same pair with both sides' tensors on `device`."""
        return DPOPair(self.chosen.to(device), self.rejected.to(device), self.weight)


def build_pairs(
    policy: RLPolicy, triples: Sequence[PreferenceTriple], episodes: Mapping[str, Trajectory]
) -> list[DPOPair]:
    """Features of both sides of each decisive triple (ties skipped), on the policy's device. Raises
    KeyError naming a missing episode."""
    feats_cache: dict[tuple[str, int, int], torch.Tensor] = {}

    def side(eid: str, seg: tuple[int, int]) -> _Side:
        if eid not in episodes:
            raise KeyError(f"preference refers to episode {eid!r}, which is not among the {len(episodes)} loaded")
        traj = episodes[eid]
        start, stop = int(seg[0]), min(int(seg[1]), len(traj))
        if stop <= start:
            raise ValueError(f"episode {eid!r} has {len(traj)} steps; segment {seg} is empty")
        key = (eid, start, stop)
        if key not in feats_cache:
            with torch.no_grad():
                feats_cache[key] = policy.features(policy.batch_from_trajectory(traj, start, stop)).float()
        feats = feats_cache[key]
        return _Side(feats, torch.as_tensor(traj.actions[start:stop], dtype=torch.float32, device=feats.device))

    pairs = []
    for t in triples:
        if t.prob_a == 0.5:
            continue
        a, b = side(t.episode_a, t.segment_a), side(t.episode_b, t.segment_b)
        chosen, rejected = (a, b) if t.prob_a > 0.5 else (b, a)
        pairs.append(DPOPair(chosen, rejected, abs(2.0 * t.prob_a - 1.0)))
    return pairs


def sequence_logprob(policy: RLPolicy, side: _Side, head: nn.Module | None, normalize: bool) -> torch.Tensor:
    """Sum (or mean, with `normalize`) over steps of log pi(a_t | s_t): a scalar tensor."""
    lp = policy.head_distribution(side.features, head).log_prob(side.actions).sum(-1)
    return lp.mean() if normalize else lp.sum()


class DPOTrainer:
    """Head-only DPO against a frozen copy of the starting head (the BC reference), on `config.device`
    (the policy is moved there; pairs built elsewhere are moved as they are trained on)."""

    def __init__(self, policy: RLPolicy, config: DPOConfig, logger=None, progress: bool = True) -> None:
        self.policy = policy
        self.config = config
        self.logger = logger
        self.progress = progress
        self.device = resolve_device(config.device, "DPOConfig.device")
        policy.policy.to(self.device)
        freeze_backbone(policy)
        self.head = policy.policy.action_head
        self.reference_head = copy.deepcopy(self.head).eval()
        for p in self.reference_head.parameters():
            p.requires_grad_(False)
        self.optimizer = torch.optim.Adam([p for p in self.head.parameters() if p.requires_grad], lr=config.learning_rate)
        self.step_count = 0

    def _logps(self, pairs: Sequence[DPOPair], head: nn.Module | None) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.config.normalize_by_length
        chosen = torch.stack([sequence_logprob(self.policy, p.chosen, head, n) for p in pairs])
        rejected = torch.stack([sequence_logprob(self.policy, p.rejected, head, n) for p in pairs])
        return chosen, rejected

    def _on_device(self, pairs: Sequence[DPOPair]) -> list[DPOPair]:
        return [p.to(self.device) for p in pairs]  # tensors already there are not copied

    def evaluate(self, pairs: Sequence[DPOPair]) -> dict[str, float]:
        """DPO loss and implicit-reward margin / accuracy on `pairs`, without training."""
        pairs = self._on_device(pairs)
        with torch.no_grad():
            pc, pr = self._logps(pairs, None)
            rc, rr = self._logps(pairs, self.reference_head)
            loss, m = dpo_loss(pc, pr, rc, rr, self.config.beta, self.config.label_smoothing)
        return {"losses/dpo_loss": float(loss), **{f"dpo/{k}": float(v) for k, v in m.items()}}

    def train_step(self, pairs: Sequence[DPOPair]) -> dict[str, float]:
        c = self.config
        pairs = self._on_device(pairs)
        self.head.train()
        pc, pr = self._logps(pairs, None)
        with torch.no_grad():
            rc, rr = self._logps(pairs, self.reference_head)
        w = torch.tensor([p.weight for p in pairs], dtype=torch.float32, device=self.device)
        dpo, m = dpo_loss(pc, pr, rc, rr, c.beta, c.label_smoothing, w)
        loss = dpo
        if c.rpo_alpha > 0:
            # RPO: the chosen side's negative log-likelihood per step, so that DPO cannot widen its
            # margin by pushing both sides' likelihood down (moving the mean away from every
            # demonstrated action, which the margin alone rewards without bound).
            steps = torch.tensor([p.chosen.actions.shape[0] for p in pairs], dtype=torch.float32, device=self.device)
            nll = -(pc if c.normalize_by_length else pc / steps)
            nll_loss = (nll * w).sum() / w.sum().clamp_min(1e-8)
            loss = loss + c.rpo_alpha * nll_loss
            m["chosen_nll"] = nll_loss.detach()
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.head.parameters(), c.max_grad_norm)
        self.optimizer.step()
        self.step_count += 1
        # losses/dpo_loss is DPO's own term (comparable with and without RPO); dpo/chosen_nll the other.
        return {"losses/dpo_loss": float(dpo.detach()), **{f"dpo/{k}": float(v) for k, v in m.items()}}

    def train(self, pairs: Sequence[DPOPair]) -> list[dict[str, float]]:
        """`config.epochs` shuffled passes; returns per-epoch mean metrics (also logged)."""
        from tqdm.auto import tqdm

        if not pairs:
            raise ValueError("DPO needs at least one decisive preference pair (ties are skipped)")
        pairs = self._on_device(pairs)  # once, not per step
        c = self.config
        rng = np.random.default_rng(c.seed)
        out = []
        for epoch in tqdm(range(c.epochs), desc="dpo", disable=not self.progress):
            order = rng.permutation(len(pairs))
            rows = [self.train_step([pairs[i] for i in order[s : s + c.batch_size]])
                    for s in range(0, len(pairs), c.batch_size)]
            m = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
            out.append(m)
            if self.logger is not None:
                self.logger.log(epoch, m)
        return out
