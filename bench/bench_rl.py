"""PPO env-steps/s beside the raw vectorised env step rate of the same envs, as a ratio.

    python bench/bench_rl.py [--task reach] [--num-envs 2] [--iterations 2] [--episodes-per-iter 4]

Raw rate: the bare AsyncVectorEnv stepping random actions. PPO rate: charts/SPS of full PPO
iterations (rollouts with the VLA backbone + head on every step, reward, GAE, updates) on the same
envs, with the gold reward (no reward model in the loop) and an untrained small VLA policy.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="reach")
    ap.add_argument("--num-envs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--episodes-per-iter", type=int, default=4)
    ap.add_argument("--max-episode-steps", type=int, default=40)
    ap.add_argument("--raw-steps", type=int, default=100)
    ap.add_argument("--acceptance", metavar="WORK_DIR",
                    help="instead: run the phase-3 acceptance experiment (cached per stage in WORK_DIR)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override an ExperimentConfig field (repeatable)")
    args = ap.parse_args()
    if args.acceptance:
        return acceptance(args)

    import gymnasium as gym
    import torch

    import sim
    from rlhf.policy.vla import VLAPolicy
    from rlhf.rl.config import PPOConfig
    from rlhf.rl.policy_adapter import VLAAdapter
    from rlhf.rl.ppo import PPOTrainer
    from rlhf.rl.reward_shaping import GoldStepReward
    from rlhf.rl.rollouts import VectorRolloutCollector, measure_raw_env_rate

    torch.set_num_threads(1)
    cfg = sim.SimConfig(image_size=args.image_size, task=args.task)
    env_fn = functools.partial(gym.make, sim.ENV_ID, task=args.task, config=cfg)
    fns = [env_fn] * args.num_envs
    raw = measure_raw_env_rate(fns, args.raw_steps, mode="async")

    policy = VLAAdapter(VLAPolicy())
    collector = VectorRolloutCollector(fns, policy, mode="async", max_episode_steps=args.max_episode_steps,
                                       task=args.task)
    ppo_cfg = PPOConfig(iterations=args.iterations, episodes_per_iter=args.episodes_per_iter,
                        max_episode_steps=args.max_episode_steps, num_envs=args.num_envs)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = PPOTrainer(policy, collector, GoldStepReward(), ppo_cfg, out_dir=None, progress=False)
        trainer.step()  # warm-up: instruction embedding, first env resets
        t0 = time.perf_counter()
        hist = [trainer.step() for _ in range(args.iterations)]
        wall = time.perf_counter() - t0
        del tmp
    collector.close()
    steps = sum(m["charts/episode_length"] * args.episodes_per_iter for m in hist)
    ppo_sps = steps / wall
    print(f"task={args.task} envs={args.num_envs} image={args.image_size} cores={os.cpu_count()}")
    print(f"raw vectorised env steps/s : {raw:8.1f}")
    print(f"PPO env-steps/s (charts/SPS): {ppo_sps:8.1f}  (rollout only: "
          f"{sum(m['charts/rollout_SPS'] for m in hist) / len(hist):.1f})")
    print(f"ratio PPO / raw            : {ppo_sps / raw:8.3f}")
    return 0


def acceptance(args: argparse.Namespace) -> int:
    import json
    from dataclasses import fields

    from rlhf.rl.experiment import ExperimentConfig, run_acceptance

    types = {f.name: f.type for f in fields(ExperimentConfig)}
    kw = {}
    for item in args.set:
        k, _, v = item.partition("=")
        if k not in types:
            print(f"unknown ExperimentConfig field {k!r}", file=sys.stderr)
            return 2
        kw[k] = v if types[k] == "str" else (float(v) if types[k] == "float" else int(v))
    summary = run_acceptance(args.acceptance, ExperimentConfig(**kw))
    print(json.dumps(summary, indent=2))
    res = summary["results"]
    print(f"{'policy':10s} {'gold':>8s} {'success':>8s} {'jerk':>10s} {'win vs BC':>10s} {'frac gain':>10s}")
    for name, r in res.items():
        print(f"{name:10s} {r['gold_return']:8.3f} {r['success_rate']:8.2f} {r['mean_squared_jerk']:10.3g} "
              f"{r['win_rate_vs_bc']:10.2f} {r.get('fraction_of_gold_gain', float('nan')):10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
