"""Prepare, on a machine with the sim, the small inputs `bench/gpu_check.py` needs on a GPU machine
that has neither the sim nor MiniLM (see that script's docstring for the two commands).

    python bench/gpu_check_prepare.py --out bench/out/gpu_data [--episodes 40] [--ppo-episodes 8]

Writes into --out (a git-ignored folder: pass it in the device run's `carry`):

    demos/                     `rlhf demos --task reach --style mixed --image-size 96` episodes + manifest
    policy/                    a VLAPolicy checkpoint, BC-trained briefly on those demos (CPU)
    ppo_records/NN.traj.npz    PPO rollout records of that policy, collected with the real
    ppo_records/NN.ppo.npz       VectorRolloutCollector in the sim (trajectory + features/samples)
    gold.npz                   per-step gold rewards (sim.metrics) of every demo and record, by episode id
    gold_metrics.json          gold episode metrics of every demo and record, by episode id
    instruction_embeddings.json  MiniLM embedding of every instruction above (the device has no MiniLM)
    gpu_data.json              what was prepared, with which arguments, and the folder's size
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from gpu_check import (
    DATA_MANIFEST,
    DEMOS_DIR,
    EMBEDDINGS_FILE,
    GOLD_FILE,
    GOLD_METRICS_FILE,
    POLICY_DIR,
    RECORDS_DIR,
    save_records,
)

MAX_MIB = 40.0


def folder_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/out/gpu_data", help="folder to (re)create")
    ap.add_argument("--episodes", type=int, default=40, help="reach demos (style mixed, 96 px)")
    ap.add_argument("--ppo-episodes", type=int, default=8, help="PPO rollout records")
    ap.add_argument("--bc-steps", type=int, default=200, help="BC steps of the policy that collects the records")
    ap.add_argument("--max-episode-steps", type=int, default=0, help="cut records after this many steps (0: env limit)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import gymnasium as gym

    import sim
    from rlhf.demos import generate_demos, load_demos
    from rlhf.policy.bc import BCConfig, train_bc
    from rlhf.policy.config import PolicyConfig
    from rlhf.policy.instruction_encoder import InstructionEncoder
    from rlhf.rl.policy_adapter import VLAAdapter
    from rlhf.rl.rollouts import VectorRolloutCollector
    from sim.metrics import gold_metrics, gold_step_rewards

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    sim_cfg = sim.SimConfig(task="reach", image_size=96)

    # 1. demos, as `rlhf demos --task reach --episodes N --style mixed --image-size 96 --workers 1` writes them
    generate_demos("reach", args.episodes, styles="mixed", out_dir=out / DEMOS_DIR, seed=0, workers=1,
                   config=sim_cfg, progress=False)  # fmt: skip
    demos = load_demos(out / DEMOS_DIR)
    print(f"prepare: {len(demos)} demos, {sum(len(t) for t in demos)} steps", flush=True)

    # 2. a briefly BC-trained policy (MiniLM embeds the instructions; the cache file keeps them)
    encoder = InstructionEncoder(cache_path=out / EMBEDDINGS_FILE)
    pcfg = PolicyConfig(image_size=96, extra={"task": "reach"})
    bc_cfg = BCConfig(steps=args.bc_steps, eval_every=0, device="cpu", num_threads=args.threads, seed=0)
    work = out / ".bc_work"
    res = train_bc(demos, work, bc_cfg, pcfg, instruction_encoder=encoder, progress=False)
    shutil.copytree(res.checkpoint, out / POLICY_DIR)
    shutil.rmtree(work)
    print(f"prepare: BC {res.steps} steps in {res.train_seconds:.0f} s", flush=True)

    # 3. PPO rollout records of that policy, from the real collector in the sim
    env_fn = functools.partial(gym.make, sim.ENV_ID, task="reach", config=sim_cfg)
    collector = VectorRolloutCollector([env_fn] * 2, VLAAdapter(res.policy.cpu()), mode="sync",
                                       max_episode_steps=args.max_episode_steps, policy_version="gpu-check",
                                       task="reach", sample_seed=0)  # fmt: skip
    try:
        records = collector.collect(list(range(args.ppo_episodes)))
    finally:
        collector.close()
    save_records(records, out / RECORDS_DIR)
    print(f"prepare: {len(records)} PPO records, {sum(len(r.trajectory) for r in records)} steps", flush=True)

    # 4. gold rewards and metrics (sim.metrics needs the sim package), and every instruction's embedding
    trajs = list(demos) + [r.trajectory for r in records]
    np.savez_compressed(out / GOLD_FILE, **{t.episode_id: np.asarray(gold_step_rewards(t), np.float64) for t in trajs})
    metrics = {t.episode_id: {k: float(v) for k, v in gold_metrics(t).items()} for t in trajs}
    (out / GOLD_METRICS_FILE).write_text(json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    encoder.encode(sorted({t.instruction for t in trajs}))
    encoder.save_cache(out / EMBEDDINGS_FILE)

    size = folder_mib(out)
    manifest = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "args": vars(args),
        "demos": len(demos),
        "demo_steps": int(sum(len(t) for t in demos)),
        "ppo_records": len(records),
        "ppo_steps": int(sum(len(r.trajectory) for r in records)),
        "instructions": sorted(encoder.cached()),
        "policy_config": res.policy.config.to_dict(),
        "torch": torch.__version__,
        "size_mib": round(size, 2),
        "prepare_seconds": round(time.perf_counter() - t0, 1),
    }
    (out / DATA_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"prepare: wrote {out} ({size:.1f} MiB, {manifest['prepare_seconds']} s)")
    if size > MAX_MIB:
        print(f"prepare: {out} is {size:.1f} MiB, over the {MAX_MIB} MiB meant for the device copy", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
