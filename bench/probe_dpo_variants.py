"""DPO variants on one acceptance run's initial labels, each evaluated as the acceptance experiment does.

Reads the preference episodes and triples an acceptance run wrote (`bench_rl.py --acceptance WORK`
writes them in its first minute), trains one DPO head per variant from the BC checkpoint, rolls BC
and every head out on the experiment's evaluation seeds (900,000 + i, mean actions), and prints,
for the protocol's first 40 seeds and for all of them: gold return, success, mean squared jerk, and
the share of seeds on which the variant beats BC by gold return. Also the last epoch's DPO metrics,
where `dpo/chosen_reward` below 0 means the chosen side's likelihood fell (likelihood displacement).

    python bench/probe_dpo_variants.py --work acc_r09_ls3_s0 --bc dg96/policy --out dpo_probe \\
        --variant plain: --variant rpo1:rpo_alpha=1.0 --variant beta1:beta=1.0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from rlhf.reward.inputs import load_episode_dir, read_triples_file
from rlhf.rl.config import DPOConfig
from rlhf.rl.dpo import DPOTrainer, build_pairs
from rlhf.rl.experiment import ExperimentConfig, _evaluate, _load, per_seed, summarise_per_seed


def parse_variant(text: str) -> tuple[str, dict[str, float]]:
    """'name:key=value,key=value' -> (name, {key: value}); values are numbers (DPOConfig fields)."""
    name, _, rest = text.partition(":")
    if not name:
        raise argparse.ArgumentTypeError(f"variant {text!r}: give it a name, as in 'rpo1:rpo_alpha=1.0'")
    kw = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        kw[key] = int(value) if key in ("epochs", "batch_size") else float(value)
    return name, kw


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True, help="an acceptance run folder (pref_episodes/, triples.jsonl)")
    ap.add_argument("--bc", required=True, help="the BC policy checkpoint the run refined")
    ap.add_argument("--out", required=True, help="folder for the heads and per_seed.json")
    ap.add_argument("--variant", action="append", type=parse_variant, required=True,
                    help="name:field=value,... over the experiment's DPO defaults (beta 0.1, 30 epochs)")
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--eval-seeds", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    work, out, bc = Path(args.work), Path(args.out), Path(args.bc)
    out.mkdir(parents=True, exist_ok=True)
    cfg = ExperimentConfig(bc_checkpoint=str(bc), image_size=args.image_size, eval_seeds=args.eval_seeds)
    episodes = load_episode_dir(work / "pref_episodes", progress=False)
    triples = read_triples_file(work / "triples.jsonl")
    evals = {"bc": _evaluate(cfg, bc, None, "bc")}
    for name, kw in args.variant:
        policy = _load(bc)
        pairs = build_pairs(policy, triples, episodes)
        dcfg = DPOConfig(**{"beta": cfg.dpo_beta, "epochs": cfg.dpo_epochs, "seed": cfg.seed, **kw})
        t0 = time.perf_counter()
        last = DPOTrainer(policy, dcfg, progress=False).train(pairs)[-1]
        policy.save_head(out / name)
        print(f"{name}: {kw or 'plain DPO'}, {len(pairs)} pairs, {time.perf_counter() - t0:.1f} s; last epoch "
              + ", ".join(f"{k} {v:.3f}" for k, v in last.items()))
        evals[name] = _evaluate(cfg, bc, out / name, name)
    seeds = per_seed(evals)
    (out / "per_seed.json").write_text(json.dumps(seeds))
    for n in sorted({min(40, args.eval_seeds), args.eval_seeds}):
        sub = {k: (v[:n] if k == "seeds" else {m: xs[:n] for m, xs in v.items()}) for k, v in seeds.items()}
        print(f"first {n} seeds: gold / success / mean squared jerk (vs BC) / preferred over BC")
        for name, m in summarise_per_seed(sub).items():
            print(f"  {name:>12}  {m['gold_return']:8.2f}  {m['success_rate']:6.1%}  {m['mean_squared_jerk']:7.2f} "
                  f"({m['jerk_change_vs_bc']:+.0%})  {m['win_rate_vs_bc']:6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
