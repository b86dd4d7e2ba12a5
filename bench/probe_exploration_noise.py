"""What PPO's exploration noise does to the rollouts it scores: white against AR(1) noise.

Rolls a BC policy out with the head's log std set as PPO sets it (`exploration_log_std`), once per
noise correlation, on the same seeds (the acceptance experiment's PPO seeds), and once with the mean
action. Prints per setting: success, the gold return, and the mean squared jerk, mean and median
over episodes. The question it answers: how much of the rollouts' jerk (what labels and returns
carry) is the noise's rather than the policy's, and what a correlated noise costs in success.

    python bench/probe_exploration_noise.py --policy dg96/policy --image-size 96 --log-std -2 --rho 0 0.9 --episodes 24
"""

from __future__ import annotations

import argparse
import functools

import gymnasium as gym
import numpy as np
import torch

import sim
from rlhf.policy.vla import VLAPolicy
from rlhf.rl.policy_adapter import VLAAdapter
from rlhf.rl.ppo import set_log_std
from rlhf.rl.rollouts import VectorRolloutCollector
from sim.metrics import gold_metrics, gold_step_rewards


def summarise(name: str, records) -> str:
    trajs = [r.trajectory for r in records]
    jerk = np.array([gold_metrics(t)["mean_squared_jerk"] for t in trajs])
    gold = np.array([float(np.sum(gold_step_rewards(t))) for t in trajs])
    succ = np.mean([bool(t.success) for t in trajs])
    return (f"{name:>14}  success {succ:5.1%}  gold {gold.mean():7.2f}  jerk mean {jerk.mean():8.2f}  "
            f"median {np.median(jerk):7.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True, help="policy checkpoint folder")
    ap.add_argument("--task", default="reach")
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--log-std", type=float, default=-2.0, help="exploration log std (normalised units)")
    ap.add_argument("--rho", type=float, nargs="+", default=[0.0, 0.9], help="noise correlations to compare")
    ap.add_argument("--episodes", type=int, default=24)
    ap.add_argument("--envs", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    policy = VLAAdapter(VLAPolicy.load(args.policy).eval())
    set_log_std(policy.policy.action_head, args.log_std)
    cfg = sim.SimConfig(image_size=args.image_size, task=args.task)
    env_fn = functools.partial(gym.make, sim.ENV_ID, task=args.task, config=cfg)
    seeds = list(range(args.episodes))
    lines = []
    col = VectorRolloutCollector([env_fn] * args.envs, policy, mode="async" if args.envs > 1 else "sync", task=args.task)
    try:
        lines.append(summarise("mean action", col.collect(seeds, deterministic=True)))
        for rho in args.rho:
            col.noise_correlation = rho
            col.generator.manual_seed(0)
            lines.append(summarise(f"rho {rho:g}", col.collect(seeds)))
    finally:
        col.close()
    print(f"log std {args.log_std:g}, {args.episodes} seeds")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
