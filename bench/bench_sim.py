"""Sim throughput and expert success, measured side by side in one run.

Prints, for the pick_place scene:
- the raw PyBullet step rate of the env's own scene (stepSimulation in a loop) and what it means
  in control steps/s (physics rate / substeps);
- env control steps/s without rendering, and the ratio to that raw figure (the env's overhead);
- env control steps/s with rendering at several image sizes, for the renderer as shipped and with
  each optimisation switched off (full Panda meshes, no static-background cache);
- expert demonstrator success over N seeded episodes per task (rendering off: it does not touch
  physics).

Rates are given per wall-clock second and per CPU second of this process (`time.process_time`):
the CPU figure is the one-core rate, robust to other jobs sharing the machine.

    python bench/bench_sim.py                 # full run (100 expert episodes per task)
    python bench/bench_sim.py --episodes 10   # quicker
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pybullet as p

from sim.config import RandomizationConfig, SimConfig
from sim.demonstrators import make_demonstrator
from sim.env import PandaEnv


def _timed(fn, n: int) -> tuple[float, float]:
    """(per wall second, per CPU second) rates of calling fn() n times."""
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    w, c = time.perf_counter() - w0, time.process_time() - c0
    return n / w, n / max(c, 1e-9)


def env_rate(cfg: SimConfig, steps: int, seed: int = 0) -> tuple[float, float]:
    """Control steps/s of PandaEnv.step with seeded random actions (resets excluded)."""
    env = PandaEnv(cfg)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(env.action_space.low, env.action_space.high, (steps, 8)).astype(np.float32) * 0.3
    it = iter(actions)

    def one() -> None:
        _, _, term, trunc, _ = env.step(next(it))
        if term or trunc:
            env.reset(seed=seed)

    rates = _timed(one, steps)
    env.close()
    return rates


def raw_physics_rate(cfg: SimConfig, steps: int) -> tuple[float, float]:
    """stepSimulation calls/s on the env's own scene (same bodies, same contacts)."""
    env = PandaEnv(cfg)
    env.reset(seed=0)
    cid = env.client_id
    rates = _timed(lambda: p.stepSimulation(physicsClientId=cid), steps)
    env.close()
    return rates


def expert_success(task: str, episodes: int, randomize: bool = False) -> tuple[float, float, float, int]:
    """(success rate, mean episode steps, wall seconds, episodes with a collision) of the expert
    over seeds 0..episodes-1."""
    from rlhf.rollout import run_episode

    env = PandaEnv(SimConfig(task=task, render_images=False, randomization=RandomizationConfig(enabled=randomize)))
    t0 = time.perf_counter()
    wins, lengths, collided = 0, [], 0
    for seed in range(episodes):
        traj = run_episode(env, make_demonstrator(task, "expert", seed=seed), seed=seed)
        wins += bool(traj.success)
        lengths.append(len(traj))
        collided += traj.metrics["collision_count"] > 0
    env.close()
    return wins / episodes, float(np.mean(lengths)), time.perf_counter() - t0, collided


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="control steps per env-rate measurement")
    ap.add_argument("--episodes", type=int, default=100, help="expert episodes per task (0 skips)")
    ap.add_argument("--task", default="pick_place", help="scene for the throughput figures")
    ap.add_argument("--randomize", action="store_true", help="expert episodes with domain randomisation on")
    ap.add_argument("--skip-throughput", action="store_true", help="only the expert success figures")
    args = ap.parse_args()
    if not args.skip_throughput:
        throughput(args)
    if args.episodes > 0:
        label = "randomised" if args.randomize else "nominal"
        for task in ("reach", "push", "pick_place"):
            rate, mean_len, secs, collided = expert_success(task, args.episodes, args.randomize)
            print(f"expert success ({label}) {task:10s} {rate * 100:5.1f}% of {args.episodes} seeded episodes "
                  f"(mean {mean_len:.1f} steps, {collided} with a collision, {secs:.0f} s)")


def throughput(args: argparse.Namespace) -> None:

    base = SimConfig(task=args.task)
    print(f"scene: {args.task}, control {base.control_hz:g} Hz, physics {base.physics_hz} Hz "
          f"({base.substeps} substeps/control step); rates: wall /s | CPU /s")
    phys_w, phys_c = raw_physics_rate(base, args.steps * base.substeps)
    print(f"raw PyBullet stepSimulation          {phys_w:9.0f} | {phys_c:9.0f} physics steps/s"
          f"  = {phys_w / base.substeps:7.1f} | {phys_c / base.substeps:7.1f} control-step equivalents/s")
    nr_w, nr_c = env_rate(SimConfig(task=args.task, render_images=False), args.steps)
    print(f"env.step, no rendering               {nr_w:9.1f} | {nr_c:9.1f} steps/s   "
          f"env/raw ratio {nr_c / (phys_c / base.substeps):.2f} (CPU)  overhead "
          f"{1e3 / nr_c - 1e3 * base.substeps / phys_c:.2f} ms/step")
    variants = [
        ("shipped (low-poly arm + static bg cache)", {}),
        ("full Panda meshes + static bg cache", {"lowpoly_visuals": False}),
        ("low-poly arm, no bg cache", {"cache_static_background": False}),
        ("full Panda meshes, no bg cache (before)", {"lowpoly_visuals": False, "cache_static_background": False}),
        ("shipped + 64 px wrist camera", {"wrist_camera": True}),
    ]
    for size in (96, 128):
        for label, kw in variants:
            steps = args.steps if "full" not in label else max(60, args.steps // 5)
            w, c = env_rate(SimConfig(task=args.task, image_size=size, **kw), steps)
            print(f"env.step, render {size:3d}px  {label:42s} {w:7.1f} | {c:7.1f} steps/s"
                  f"   ({c / nr_c:.2f}x of no-render rate)")


if __name__ == "__main__":
    main()
