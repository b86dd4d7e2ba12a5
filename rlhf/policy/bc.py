"""Behavioural cloning: fit `VLAPolicy` to demonstrations, with periodic evaluation in the sim.

Reads top to bottom:
 1. keep the demonstrations worth imitating (mixed-quality sets: failures are dropped by default,
    and `keep_fraction` < 1 keeps only the best demos by gold quality metrics),
 2. normalisation stats from those demos, a policy, an in-memory dataset,
 3. the loop: sample -> forward (loss) -> clip -> step -> schedule, with a progress bar,
 4. every `eval_every` steps (and at the end): evaluate in the sim, keep the best checkpoint,
 5. write the final checkpoint, metrics.jsonl and summary.json.

Metric names: `losses/bc_loss`, `losses/action_mse`, `losses/action_nll`, `losses/aux_object_mse`, `charts/SPS`,
`charts/learning_rate`, `eval/success_rate`, `gold/<metric>` (gold metric means of eval episodes).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from rlhf.atomic import atomic_write_bytes, atomic_write_json
from rlhf.device import DEVICE_CHOICES, resolve_device
from rlhf.policy.checkpoint import CheckpointError, read_state_dict, state_dict_bytes
from rlhf.policy.config import PolicyConfig
from rlhf.policy.dataset import AUX_OBJECT_OFFSETS, BCDataset
from rlhf.policy.instruction_encoder import InstructionEncoder
from rlhf.policy.normalizer import Normalizer
from rlhf.policy.prefetch import BatchPrefetcher
from rlhf.policy.vla import VLAPolicy
from rlhf.trajectory import Trajectory

AUX_SCALE_M = 0.1
"""Auxiliary object offsets are divided by this (m) so the regression target is O(1)."""

EvalFn = Callable[[VLAPolicy, bool], dict[str, float]]
"""eval_fn(policy, final) evaluates a policy (e.g. in the sim; `final` marks the evaluation after
training, which may use more episodes) and returns metrics such as eval/success_rate and gold/*."""


@dataclass
class BCConfig:
    """Behavioural-cloning hyper-parameters."""

    steps: int = 6000
    """Optimiser steps (training also stops at `time_budget_s`)."""
    batch_size: int = 64
    """Samples per optimiser step."""
    lr: float = 1e-3
    """Peak AdamW learning rate (linear warm-up, cosine decay to lr * min_lr_ratio)."""
    min_lr_ratio: float = 0.05
    """Final learning rate as a fraction of `lr`."""
    warmup_steps: int = 200
    """Linear warm-up steps."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    image_shift: int = 0
    """Random-shift augmentation, pixels (0 = off). Off by default: the camera is fixed, so where an
    object appears in the frame *is* where it is; shifting frames by 4 px (about 5 cm at the reach
    balls) cut reach success from 14% to 2-3% in side-by-side runs (bench/results/policy.md)."""
    time_budget_s: float = 1800.0
    """Wall-clock budget of the whole training run (periodic evaluations included), s."""
    eval_every: int = 2000
    """Evaluate in the sim every this many steps (0 = only at the end)."""
    log_every: int = 50
    """Write a metrics line every this many steps."""
    only_successful: bool = True
    """Drop demonstrations whose `success` is False (those with unknown success are kept)."""
    aux_weight: float = 1.0
    """Weight of the auxiliary loss: predict the task objects' positions relative to the grasp point
    (recorded in sim demos) from the backbone features. Teaches the backbone *where* the named
    objects are. The head is not part of the policy: it is saved beside it as `aux_head.pt`, where
    `bench/probe_policy_perception.py` reads it to measure how well the backbone localises objects on
    held-out episodes. 0 turns it off."""
    keep_fraction: float = 1.0
    """Of the remaining demos, imitate only this best fraction by gold quality (see `quality_scores`)."""
    seed: int = 0
    """Seeds parameter init, minibatch sampling and augmentation."""
    device: str = "auto"
    """"cpu", "cuda" or "auto" (cuda when available)."""
    num_threads: int | None = None
    """torch CPU threads (None leaves torch's default)."""
    prefetch_batches: int = -1
    """Batches built ahead in a background thread (`rlhf.policy.prefetch`); the run is the same either
    way. -1: 2 when training on a GPU, 0 (built in the loop) on the CPU, where the thread would only
    take a core from the training's own threads."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"BCConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_every", "image_shift"):
            if getattr(self, name) < 0:
                raise ValueError(f"BCConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.log_every <= 0:
            raise ValueError(f"BCConfig.log_every must be > 0, got {self.log_every}")
        if not self.lr > 0:
            raise ValueError(f"BCConfig.lr must be > 0, got {self.lr}")
        if self.aux_weight < 0:
            raise ValueError(f"BCConfig.aux_weight must be >= 0, got {self.aux_weight}")
        if not 0 < self.keep_fraction <= 1:
            raise ValueError(f"BCConfig.keep_fraction must be in (0, 1], got {self.keep_fraction}")
        if not 0 < self.min_lr_ratio <= 1:
            raise ValueError(f"BCConfig.min_lr_ratio must be in (0, 1], got {self.min_lr_ratio}")
        if self.weight_decay < 0 or self.grad_clip <= 0:
            raise ValueError(
                f"BCConfig.weight_decay must be >= 0 and grad_clip > 0, got {self.weight_decay}, {self.grad_clip}"
            )
        if not self.time_budget_s > 0:
            raise ValueError(f"BCConfig.time_budget_s must be > 0, got {self.time_budget_s}")
        if self.device not in DEVICE_CHOICES:
            raise ValueError(f"BCConfig.device must be one of {DEVICE_CHOICES}, got {self.device!r}")
        if self.prefetch_batches < -1:
            raise ValueError(f"BCConfig.prefetch_batches must be >= -1, got {self.prefetch_batches}")
        if self.num_threads is not None and self.num_threads <= 0:
            raise ValueError(f"BCConfig.num_threads must be > 0 or None, got {self.num_threads}")


AUX_HEAD_FILE = "aux_head.pt"


def make_aux_head(features_dim: int, targets_dim: int) -> torch.nn.Module:
    """Backbone features -> object offsets from the grasp point / AUX_SCALE_M."""
    return torch.nn.Sequential(torch.nn.Linear(features_dim, 128), torch.nn.GELU(), torch.nn.Linear(128, targets_dim))


def save_aux_head(head: torch.nn.Module, path: Path) -> None:
    atomic_write_bytes(path, state_dict_bytes(head.state_dict()))


def load_aux_head(path: str | os.PathLike) -> torch.nn.Module:
    """The auxiliary head `train_bc` saved; a clear error for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no auxiliary head at {path} (train_bc writes one when aux_weight > 0)")
    try:
        sd = read_state_dict(path)
        # The widths follow from the weights: (hidden, features) and (targets, hidden).
        head = make_aux_head(sd["0.weight"].shape[1], sd["2.weight"].shape[0])
        head.load_state_dict(sd)
    except (CheckpointError, KeyError, IndexError, RuntimeError) as exc:
        raise ValueError(f"{path} is not an auxiliary head saved by train_bc: {exc}") from exc
    return head.eval()


def perceived_offsets(policy: VLAPolicy, head: torch.nn.Module, obs: dict[str, Any]) -> np.ndarray:
    """(K, 3) object offsets from the grasp point, m, that `head` reads off the policy's features for
    one raw observation: what the backbone believes about where the objects are."""
    with torch.no_grad():
        return (head(policy.features(policy.obs_to_batch(obs)))[0] * AUX_SCALE_M).cpu().numpy().reshape(-1, 3)


def lr_at(step: int, cfg: BCConfig) -> float:
    """Linear warm-up then cosine decay from lr to lr * min_lr_ratio over cfg.steps."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


# Gold metrics where lower is better; a demo's quality is minus the mean of their z-scores.
QUALITY_METRICS: tuple[str, ...] = (
    "episode_length_s", "idle_fraction", "mean_squared_jerk", "joint_roughness_rad", "collision_count",
)  # fmt: skip


def quality_scores(trajectories: Sequence[Trajectory]) -> np.ndarray:
    """(N,) higher = better: -mean z-score over QUALITY_METRICS (a missing metric scores the mean, 0)."""
    z = np.zeros((len(trajectories), len(QUALITY_METRICS)))
    for j, name in enumerate(QUALITY_METRICS):
        vals = np.array([float(t.metrics.get(name, np.nan)) for t in trajectories])
        ok = np.isfinite(vals)
        if ok.sum() < 2:
            continue
        std = vals[ok].std()
        if std > 0:
            z[ok, j] = (vals[ok] - vals[ok].mean()) / std
    return -z.mean(axis=1)


def select_demos(
    trajectories: Sequence[Trajectory], only_successful: bool, keep_fraction: float = 1.0
) -> list[Trajectory]:
    """The demonstrations BC imitates: all but known failures (unless asked), then the best
    `keep_fraction` of those by `quality_scores` (filtered BC on mixed-quality data), in input order."""
    kept = [t for t in trajectories if not (only_successful and t.success is False)]
    if not kept:
        raise ValueError(
            f"no demonstrations left to imitate ({len(trajectories)} given, only_successful={only_successful})"
        )
    if keep_fraction < 1.0:
        n = max(1, int(round(keep_fraction * len(kept))))
        best = set(np.argsort(-quality_scores(kept), kind="stable")[:n].tolist())
        kept = [t for i, t in enumerate(kept) if i in best]
    return kept


class MetricsLog:
    """Append-only JSON-lines metrics file: one {"step": ..., name: value} object per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, step: int, metrics: dict[str, float]) -> None:
        self._f.write(json.dumps({"step": step, **{k: float(v) for k, v in metrics.items()}}) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


@dataclass
class BCResult:
    policy: VLAPolicy
    checkpoint: Path
    best_checkpoint: Path | None
    steps: int
    train_seconds: float
    final_metrics: dict[str, float]
    history: list[dict[str, Any]]


def train_bc(
    trajectories: Sequence[Trajectory],
    out_dir: str | os.PathLike,
    config: BCConfig | None = None,
    policy_config: PolicyConfig | None = None,
    eval_fn: EvalFn | None = None,
    instruction_encoder: InstructionEncoder | None = None,
    progress: bool = True,
    init_policy: VLAPolicy | None = None,
    preselected_from: int | None = None,
) -> BCResult:
    """Train a policy on `trajectories`; write checkpoints and metrics under `out_dir`.

    `preselected_from`: the trajectories were already chosen by `select_demos` with this config's
    `only_successful` and `keep_fraction`, from this many demos (from their manifests, before any
    frame was read: `rlhf bc train` does this to hold only the frames it imitates); they are not
    filtered again. `init_policy` continues training that policy (its config and normalisation stats are kept;
    `policy_config` is ignored), as DAgger does after each round of aggregated data."""
    cfg = config or BCConfig()
    pcfg = init_policy.config if init_policy is not None else (policy_config or PolicyConfig())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)

    # 1-2. demos, stats, policy, data.
    if preselected_from is None:
        demos = select_demos(trajectories, cfg.only_successful, cfg.keep_fraction)
    else:
        demos = list(trajectories)
    if init_policy is not None:
        encoder = init_policy.instruction_encoder
        policy = init_policy.to(device)
    else:
        encoder = instruction_encoder or InstructionEncoder(dim=pcfg.instruction_dim, package=pcfg.instruction_encoder)
        policy = VLAPolicy(pcfg, Normalizer.from_trajectories(demos, encoder), encoder).to(device)
    data = BCDataset(demos, pcfg.image_size, pcfg.chunk_size, encoder,
                     wrist_image_size=pcfg.wrist_image_size if pcfg.wrist_camera else None)  # fmt: skip
    atomic_write_json(
        out / "bc_config.json",
        {
            "bc": asdict(cfg),
            "policy": pcfg.to_dict(),
            "demos_total": len(trajectories) if preselected_from is None else preselected_from,
            "demos_used": len(demos),
            "steps_in_data": len(data),
            "instructions": len(data.instructions),
            "device": str(device),
        },
    )
    aux_head = None
    if cfg.aux_weight > 0 and data.aux_targets is not None:
        d, k3 = policy.backbone.out_dim, data.aux_targets.shape[1]
        aux_head = make_aux_head(d, k3).to(device)
    params = policy.trainable_parameters() + (list(aux_head.parameters()) if aux_head is not None else [])
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    log = MetricsLog(out / "metrics.jsonl")
    history: list[dict[str, Any]] = []
    best_rate, best_path = -1.0, None
    final_metrics: dict[str, float] = {}

    def evaluate(step: int, final: bool) -> dict[str, float]:
        nonlocal best_rate, best_path
        if eval_fn is None:
            return {}
        metrics = eval_fn(policy, final)
        if not metrics:
            return {}
        log.write(step, metrics)
        history.append({"step": step, **metrics})
        rate = metrics.get("eval/success_rate", -1.0)
        if rate > best_rate:
            best_rate = rate
            best_path = policy.save(out / "best")
        return metrics

    # 3. the loop.
    def make_batch() -> dict[str, Any]:
        return data.sample(cfg.batch_size, gen, cfg.image_shift)

    depth = cfg.prefetch_batches if cfg.prefetch_batches >= 0 else (2 if device.type == "cuda" else 0)
    prefetcher = BatchPrefetcher(make_batch, depth, pin_memory=device.type == "cuda") if depth else None
    policy.train()
    bar = tqdm(total=cfg.steps, desc="bc", unit="step", disable=not progress, dynamic_ncols=True)
    step, t_log, window = 0, time.perf_counter(), []
    try:
        while step < cfg.steps and time.perf_counter() - start < cfg.time_budget_s:
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = prefetcher.next() if prefetcher is not None else make_batch()
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            features = policy.features(batch)
            loss, metrics = policy.loss_from_features(batch, features)
            if aux_head is not None:
                # Offsets are tenths of metres: /AUX_SCALE_M makes them O(1).
                aux = torch.nn.functional.mse_loss(aux_head(features), batch[AUX_OBJECT_OFFSETS] / AUX_SCALE_M)
                loss = loss + cfg.aux_weight * aux
                metrics["losses/aux_object_mse"] = float(aux.detach())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            step += 1
            window.append(metrics)
            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.perf_counter()
                avg = {k: sum(m[k] for m in window) / len(window) for k in window[0]}
                avg.update({"charts/SPS": len(window) / max(now - t_log, 1e-9), "charts/learning_rate": lr,
                            "losses/grad_norm": float(grad_norm)})  # fmt: skip
                log.write(step, avg)
                history.append({"step": step, **avg})
                bar.set_postfix(loss=f"{avg['losses/bc_loss']:.4f}", mse=f"{avg['losses/action_mse']:.4f}")
                window, t_log = [], now
            bar.update(1)
            # 4. periodic evaluation.
            if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                m = evaluate(step, final=False)
                if m:
                    bar.write(f"step {step}: " + ", ".join(f"{k}={v:.3f}" for k, v in m.items()))
                policy.train()
        bar.close()
        train_seconds = time.perf_counter() - start
        # 5. final checkpoint and evaluation.
        final_path = policy.save(out / "policy")
        if aux_head is not None:
            save_aux_head(aux_head, out / AUX_HEAD_FILE)
        final_metrics = evaluate(step, final=True)
    finally:
        if prefetcher is not None:
            prefetcher.close()
        bar.close()
        log.close()
    summary = {
        "steps": step,
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - start,
        "final": final_metrics,
        "best_success_rate": best_rate if eval_fn is not None else None,
        "checkpoint": str(final_path),
        "best_checkpoint": str(best_path) if best_path else None,
    }
    atomic_write_json(out / "summary.json", summary)
    return BCResult(policy, final_path, best_path, step, train_seconds, final_metrics, history)
