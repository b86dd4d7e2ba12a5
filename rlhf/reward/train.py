"""Bradley-Terry training of a reward ensemble on preference triples.

Reads top to bottom: 1. features and input stats, 2. per member: bootstrap, train with
early selection on out-of-bag pairs, 3. per member output normalisation, 4. the ensemble.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from rlhf.device import resolve_device
from rlhf.prefs.triples import PreferenceTriple
from rlhf.reward.config import RewardConfig
from rlhf.reward.dataset import PairDataset, SegmentRef
from rlhf.reward.ensemble import RewardEnsemble, RewardStats
from rlhf.reward.features import EpisodeFeatures, FeatureStats, features_for, segment_steps, with_num_objects
from rlhf.reward.losses import bradley_terry_loss, pair_cross_entropy
from rlhf.reward.metrics import LOSS, VAL_LOSS
from rlhf.reward.model import RewardNet
from rlhf.trajectory import Trajectory


@dataclass
class TrainResult:
    """The trained ensemble and, per member, a list of per-epoch metric dicts."""

    ensemble: RewardEnsemble
    history: list[list[dict[str, float]]] = field(default_factory=list)


def batch_to(batch: dict, device: torch.device) -> dict:
    """A `PairDataset.batch` with every tensor on `device` (the same dict when that is the CPU)."""
    if device.type == "cpu":
        return batch
    return {k: v.to(device) for k, v in batch.items()}  # the SegmentBatch moves its own tensors


def _device_of(net: RewardNet) -> torch.device:
    return next(net.parameters()).device


def pair_loss(net: RewardNet, batch: dict, config: RewardConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Aggregate BT loss (+ weighted per-axis BT losses) for one batch of pairs (moved to the net's device)."""
    batch = batch_to(batch, _device_of(net))
    seg = batch["segments"]
    r, axes = net(seg.images, seg.state, seg.actions, seg.mask)
    b = batch["prob_a"].shape[0]
    scores = r.sum(dim=1)
    loss = bradley_terry_loss(scores[:b], scores[b:], batch["prob_a"], config.label_noise, batch["weight"])
    metrics = {LOSS: float(loss.detach())}
    if config.axes and config.axis_loss_weight > 0:
        axis_scores = axes.sum(dim=1)  # (2B, A)
        for j, name in enumerate(config.axes):
            w = batch["weight"] * batch["axis_mask"][:, j]
            if w.sum() <= 0:
                continue
            axis_loss = bradley_terry_loss(
                axis_scores[:b, j], axis_scores[b:, j], batch["axis_target"][:, j], config.label_noise, w
            )
            loss = loss + config.axis_loss_weight * axis_loss
            metrics[f"losses/axis_{name}"] = float(axis_loss.detach())
    return loss, metrics


def _batches(data: PairDataset, idx: np.ndarray, size: int = 256):
    """(pair indices, batch) for `idx` in chunks of `size`, for evaluation passes."""
    for lo in range(0, len(idx), size):
        chunk = idx[lo : lo + size]
        yield chunk, data.batch(chunk)


@torch.no_grad()
def _eval_loss(net: RewardNet, data: PairDataset, idx: np.ndarray, config: RewardConfig) -> float:
    net.eval()
    total, n = 0.0, 0
    for chunk, batch in _batches(data, idx):
        loss, _ = pair_loss(net, batch, config)
        total += float(loss) * len(chunk)
        n += len(chunk)
    return total / max(n, 1)


@torch.no_grad()
def _pair_losses(net: RewardNet, data: PairDataset, idx: np.ndarray, config: RewardConfig) -> np.ndarray:
    """Per-pair Bradley-Terry loss of the aggregate reward on pairs `idx`, times the pair's weight."""
    net.eval()
    out = []
    device = _device_of(net)
    for _, batch in _batches(data, idx):
        batch = batch_to(batch, device)
        seg = batch["segments"]
        scores = net(seg.images, seg.state, seg.actions, seg.mask)[0].sum(dim=1)
        b = batch["prob_a"].shape[0]
        per_pair = pair_cross_entropy(scores[:b], scores[b:], batch["prob_a"], config.label_noise)
        out.append((per_pair * batch["weight"]).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def _clearly_better(baseline: np.ndarray, candidate: np.ndarray) -> bool:
    """True when `candidate`'s per-pair losses beat `baseline`'s by more than one standard error of
    the paired difference (the one-standard-error rule: keep the simpler model unless the data say
    otherwise)."""
    d = baseline - candidate
    if len(d) < 2:
        return bool(d.sum() > 0)
    return bool(d.mean() > d.std(ddof=1) / np.sqrt(len(d)))


@torch.no_grad()
def _summed_kinematics(net: RewardNet, data: PairDataset, idx: np.ndarray) -> tuple[torch.Tensor, ...]:
    """Per pair: kinematic features summed over segment A and over segment B, target P(A), weight."""
    a, b, p, w = [], [], [], []
    for _, batch in _batches(data, idx):
        seg = batch["segments"]
        summed = (seg.state[..., -net.n_kinematic :] * seg.mask.unsqueeze(-1)).sum(dim=1).double()
        n = batch["prob_a"].shape[0]
        a.append(summed[:n])
        b.append(summed[n:])
        p.append(batch["prob_a"].double())
        w.append(batch["weight"].double())
    return torch.cat(a), torch.cat(b), torch.cat(p), torch.cat(w)


def _fit_linear_bt(
    x: torch.Tensor, prob_a: torch.Tensor, weight: torch.Tensor, l2: float, label_noise: float
) -> torch.Tensor:
    """Coefficients c minimising the Bradley-Terry loss of scores x @ c (x: per-pair feature
    differences) plus l2 * |c|^2; convex, so L-BFGS runs to convergence."""
    coef = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([coef], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        score = x @ coef
        loss = bradley_terry_loss(score, torch.zeros_like(score), prob_a, label_noise, weight)
        loss = loss + l2 * (coef * coef).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return coef.detach()


def fit_kinematic_channel(
    net: RewardNet, data: PairDataset, train_idx: np.ndarray, val_idx: np.ndarray, config: RewardConfig
) -> dict[str, float]:
    """Fit the linear kinematic channel alone by Bradley-Terry (convex: L-BFGS to convergence), with
    the L2 penalty from `config.kinematic_l2` that does best on `val_idx`; then freeze it.

    Features are scaled by the std of the pairs' feature differences before the penalty applies, so
    one penalty grid suits any feature scale; columns that barely differ get weight 0. Returns the
    chosen penalty, its held-out loss and the number of columns used.
    """
    xa, xb, p, w = _summed_kinematics(net, data, train_idx)
    diff = xa - xb
    scale = diff.std(dim=0) if len(diff) > 1 else torch.ones(diff.shape[1], dtype=diff.dtype)
    # A column that hardly differs between the training pairs, or never varies over the training
    # steps (an approach speed no training episode reaches, a joint margin they never get close to),
    # carries no information. Fitted anyway, its weight is set by a handful of pairs: it reached
    # 10^5-10^6 on near-constant columns, and a wrong-signed weight on a rare joint-limit column gave
    # one unusual held-out segment +71 where gold gave -3. Such columns keep weight 0.
    informative = scale > 1e-3 * float(scale.max()) if len(scale) else scale.bool()
    informative &= torch.from_numpy(data.stats.varies()[-net.n_kinematic :])
    scale = torch.where(informative, scale, torch.full_like(scale, float("inf")))
    val = _summed_kinematics(net, data, val_idx) if len(val_idx) else None
    grid = config.kinematic_l2 if val is not None else (config.kinematic_l2[len(config.kinematic_l2) // 2],)
    best: tuple[float, float, torch.Tensor] | None = None
    for l2 in grid:
        coef = _fit_linear_bt(diff / scale, p, w, l2, config.label_noise)
        weight = (coef / scale).detach()
        if val is not None:
            score = (val[0] - val[1]) @ weight
            val_loss = float(bradley_terry_loss(score, torch.zeros_like(score), val[2], config.label_noise, val[3]))
        else:
            val_loss = float("nan")
        if best is None or val_loss < best[1]:
            best = (l2, val_loss, weight)
    assert best is not None and net.kinematic is not None
    with torch.no_grad():
        net.kinematic.weight.copy_(best[2].float().unsqueeze(0))
    net.kinematic.weight.requires_grad_(False)
    return {"kinematic/l2": best[0], "kinematic/val_loss": best[1], "kinematic/columns": float(informative.sum())}


def train_member(
    config: RewardConfig,
    data: PairDataset,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    seed: int,
    progress: bool = True,
    desc: str = "reward",
) -> tuple[RewardNet, list[dict[str, float]]]:
    """Train one RewardNet on pairs `train_idx` of `data`, on `config.device`; keep the epoch with the
    lowest loss on `val_idx` (the last epoch if `val_idx` is empty). The net is returned on the CPU."""
    device = resolve_device(config.device, "RewardConfig.device")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = RewardNet(config).to(device)  # built on the CPU first: the same initial weights on any device
    history: list[dict[str, float]] = []
    best_state, best_val = None, float("inf")
    linear_losses = None
    if net.kinematic is not None:
        # The linear channel first; the transformer then learns only what it leaves over. The linear
        # channel alone (epoch -1) stays the answer unless an epoch beats it clearly on the held-out
        # pairs: with few labels a small gain in held-out loss is mostly selection noise.
        row = {"epoch": -1.0, **fit_kinematic_channel(net, data, train_idx, val_idx, config)}
        if len(val_idx):
            row[VAL_LOSS] = best_val = _eval_loss(net, data, val_idx, config)
            best_state = copy.deepcopy(net.state_dict())
            linear_losses = _pair_losses(net, data, val_idx, config)
        history.append(row)
    params = [q for q in net.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, int(np.ceil(len(train_idx) / config.batch_size)))
    bar = tqdm(total=config.epochs * steps_per_epoch, desc=desc, disable=not progress, leave=False)
    for epoch in range(config.epochs):
        net.train()
        order = rng.permutation(train_idx)
        losses = []
        for lo in range(0, len(order), config.batch_size):
            mb_idx = order[lo : lo + config.batch_size]
            loss, _ = pair_loss(net, data.batch(mb_idx), config)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            opt.step()
            losses.append(float(loss.detach()))
            bar.update(1)
        row = {"epoch": float(epoch), LOSS: float(np.mean(losses))}
        if len(val_idx):
            row[VAL_LOSS] = _eval_loss(net, data, val_idx, config)
            # The per-pair pass is needed only when the epoch would otherwise become the best.
            if row[VAL_LOSS] < best_val and (
                linear_losses is None or _clearly_better(linear_losses, _pair_losses(net, data, val_idx, config))
            ):
                best_val = row[VAL_LOSS]
                best_state = copy.deepcopy(net.state_dict())
        bar.set_postfix(loss=f"{row[LOSS]:.3f}", val=f"{row.get(VAL_LOSS, float('nan')):.3f}")
        history.append(row)
    bar.close()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return net.cpu(), history


def tile_segments(features: Mapping[str, EpisodeFeatures], steps: Mapping[str, int]) -> list[SegmentRef]:
    """Consecutive non-overlapping segments covering each episode (for normalisation stats)."""
    refs = []
    for eid, f in features.items():
        k = steps[eid]
        refs += [(eid, (s, min(s + k, len(f)))) for s in range(0, len(f), k)]
    return refs


def fit_reward_stats(
    ensemble: RewardEnsemble, features: Mapping[str, EpisodeFeatures], steps: Mapping[str, int]
) -> list[RewardStats]:
    """Per-member mean/std of raw per-step rewards over the training episodes."""
    rewards, _ = ensemble.member_step_rewards(features, tile_segments(features, steps), normalize=False)
    flat = np.concatenate(rewards, axis=1)  # (M, total steps)
    return [RewardStats(float(r.mean()), float(max(r.std(), 1e-6))) for r in flat]


def train_reward_model(
    episodes: Mapping[str, Trajectory],
    triples: Sequence[PreferenceTriple],
    config: RewardConfig | None = None,
    annotator_weights: Mapping[str, float] | None = None,
    progress: bool = True,
    features: Mapping[str, EpisodeFeatures] | None = None,
) -> TrainResult:
    """Train a k-member ensemble on `triples` whose segments index into `episodes`.

    annotator_weights: optional annotator_id -> weight (e.g. from `annotator_weights_from_accuracy`);
    annotators not listed weigh 1. `features` may pass precomputed inputs (keyed like `episodes`).
    """
    config = config or RewardConfig()
    if not triples:
        raise ValueError("train_reward_model: no preference triples given")
    resolve_device(config.device, "RewardConfig.device")  # a missing GPU fails here, before any work
    # 1. Inputs of the episodes the triples use, and input normalisation stats over them.
    used = sorted({t.episode_a for t in triples} | {t.episode_b for t in triples})
    missing = [eid for eid in used if eid not in episodes]
    if missing:
        raise ValueError(f"train_reward_model: triples refer to unknown episodes {missing[:5]}")
    config = with_num_objects(config, [episodes[eid] for eid in used])
    if features is None:
        features = {eid: features_for(episodes[eid], config) for eid in used}
    else:
        features = {eid: features[eid] for eid in used}
    stats = FeatureStats.fit(features.values())
    data = PairDataset(features, triples, stats, config.axes, annotator_weights, config.max_steps)
    n = len(data)

    # 2. Members on bootstrap resamples; out-of-bag pairs pick each member's best epoch.
    rng = np.random.default_rng(config.seed)
    members, history = [], []
    for m in range(config.ensemble_size):
        if config.bootstrap and n > 1:
            train_idx = rng.integers(0, n, size=n)
            oob = np.setdiff1d(np.arange(n), train_idx)
            val_idx = oob if config.val_fraction > 0 else np.array([], int)
        else:
            perm = rng.permutation(n)
            n_val = int(round(config.val_fraction * n))
            val_idx, train_idx = perm[:n_val], perm[n_val:]
        net, hist = train_member(
            config,
            data,
            train_idx,
            val_idx,
            seed=config.seed * 1000 + m,
            progress=progress,
            desc=f"reward member {m + 1}/{config.ensemble_size}",
        )
        members.append(net)
        history.append(hist)

    # 3. Per-member output normalisation over the training episodes, then 4. the ensemble.
    ensemble = RewardEnsemble(config, members, stats)
    steps = {eid: min(config.max_steps, segment_steps(episodes[eid], config.segment_seconds)) for eid in used}
    ensemble.reward_stats = fit_reward_stats(ensemble, features, steps)
    return TrainResult(ensemble, history)


def annotator_weights_from_accuracy(accuracy: Mapping[str, float]) -> dict[str, float]:
    """Reliability weight per annotator from gold/calibration accuracy: w = max(0, 2 * acc - 1).

    An annotator at chance (50%) carries no information and gets 0; a perfect one gets 1.
    """
    out = {}
    for name, acc in accuracy.items():
        if not 0.0 <= acc <= 1.0:
            raise ValueError(f"annotator {name!r}: accuracy must be in [0, 1], got {acc}")
        out[name] = max(0.0, 2.0 * acc - 1.0)
    return out
