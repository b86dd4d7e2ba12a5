"""Reward-model scoring throughput on CPU: segments/s, batched and one at a time, side by side.

    python bench/bench_reward.py [--segments 256] [--ensemble 3] [--threads 1]

Uses the default RewardConfig (32x32 frames, small CNN, 2-layer temporal transformer) with
untrained weights (throughput does not depend on the values) on synthetic 2 s segments at 10 Hz.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from rlhf.reward.config import RewardConfig
from rlhf.reward.ensemble import RewardEnsemble
from rlhf.reward.features import FeatureStats, state_dim
from rlhf.reward.model import RewardNet
from rlhf.reward.synthetic import synthetic_episodes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segments", type=int, default=256)
    ap.add_argument("--ensemble", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cfg = RewardConfig(ensemble_size=args.ensemble)
    steps = int(round(cfg.segment_seconds * 10))
    torch.manual_seed(0)
    members = [RewardNet(cfg) for _ in range(cfg.ensemble_size)]
    ens = RewardEnsemble(cfg, members, FeatureStats.identity(state_dim(cfg.use_ee))).eval()
    episodes = synthetic_episodes(32, seed=0, steps=60, image_size=cfg.image_size)
    rng = np.random.default_rng(0)
    ids = sorted(episodes)
    items = []
    for _ in range(args.segments):
        t = episodes[ids[rng.integers(len(ids))]]
        s = int(rng.integers(0, len(t) - steps + 1))
        items.append((t, (s, s + steps)))
    ens.score_batch(items[:8])  # warm-up

    def best_rate(fn) -> float:
        rates = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            n = fn()
            rates.append(n / (time.perf_counter() - t0))
        return max(rates)

    def batch() -> int:
        ens.score_batch(items)
        return len(items)

    def single() -> int:
        n = min(len(items), 64)
        for it in items[:n]:
            ens.score(it)
        return n

    r_batch = best_rate(batch)
    r_single = best_rate(single)
    print(
        f"reward scoring on CPU ({platform.processor() or platform.machine()}, torch threads={args.threads})"
    )
    print(
        f"config: k={cfg.ensemble_size}, {cfg.image_size}x{cfg.image_size} frames, {steps}-step segments, "
        f"d_model={cfg.d_model}, layers={cfg.n_layers}"
    )
    print(
        f"batch  (score_batch of {len(items)}): {r_batch:8.1f} segments/s  ({r_batch * steps:9.0f} steps/s)"
    )
    print(f"single (score one at a time):      {r_single:8.1f} segments/s  ({r_single * steps:9.0f} steps/s)")
    print(f"batch / single: {r_batch / r_single:.1f}x")


if __name__ == "__main__":
    main()
