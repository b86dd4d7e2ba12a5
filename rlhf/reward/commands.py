"""`rlhf reward train|eval|score`. Registration is argparse only; torch is imported in the handlers."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("reward", help="train, evaluate and apply the trajectory reward model")
    sub = p.add_subparsers(dest="reward_command", metavar="ACTION")

    t = sub.add_parser("train", help="train a reward ensemble on preference triples")
    t.add_argument("--episodes", required=True, help="folder of trajectory .npz files")
    t.add_argument("--triples", required=True, help="preference triples (.jsonl or .parquet export)")
    t.add_argument("--out", required=True, help="checkpoint folder to write")
    t.add_argument("--config", help="JSON file of RewardConfig fields")
    t.add_argument("--epochs", type=int, help="override RewardConfig.epochs")
    t.add_argument("--ensemble-size", type=int, help="override RewardConfig.ensemble_size")
    t.add_argument("--segment-seconds", type=float, help="override RewardConfig.segment_seconds")
    t.add_argument("--seed", type=int, help="override RewardConfig.seed")
    t.add_argument("--device", choices=("cpu", "cuda", "auto"),
                   help="override RewardConfig.device: where training runs (auto: cuda when there is one)")
    t.add_argument(
        "--kinematic", action="store_true",
        help="RewardConfig.kinematic: add scene features (grasp point vs. object positions) and their linear "
        "channel; every episode must record object_positions and contact_forces (sim episodes do)",
    )
    t.add_argument(
        "--annotator-accuracy", help="JSON file {annotator_id: gold accuracy} -> reliability weights"
    )
    t.add_argument("--no-progress", action="store_true", help="hide progress bars")
    t.set_defaults(func=_train)

    e = sub.add_parser("eval", help="held-out accuracy, margin, ECE (and gold correlation) of a checkpoint")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--episodes", required=True)
    e.add_argument("--triples", required=True)
    e.add_argument("--gold-sim", action="store_true", help="add correlation with sim.metrics gold returns")
    e.add_argument("--json", help="also write the metrics to this JSON file")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=_eval)

    s = sub.add_parser("score", help="score episodes: ensemble mean, std and conservative return")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--episodes", required=True)
    s.add_argument("--episode", action="append", help="episode id to score (repeatable; default all)")
    s.add_argument("--k", type=float, default=1.0, help="conservative score = mean - k * std")
    s.add_argument("--json", help="also write scores (with per-step rewards) to this JSON file")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=_score)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _fail(msg: str) -> int:
    print(f"rlhf reward: {msg}", file=sys.stderr)
    return 2


def _train(args: argparse.Namespace) -> int:
    from rlhf.device import DeviceUnavailableError
    from rlhf.reward.checkpoint import save_checkpoint
    from rlhf.reward.config import RewardConfig
    from rlhf.reward.inputs import load_episode_dir, read_triples_file
    from rlhf.reward.train import annotator_weights_from_accuracy, train_reward_model

    try:
        cfg_dict = {}
        if args.config:
            with open(args.config) as f:
                cfg_dict = json.load(f)
        overrides = {
            "epochs": args.epochs,
            "ensemble_size": args.ensemble_size,
            "segment_seconds": args.segment_seconds,
            "seed": args.seed,
            "device": args.device,
        }
        cfg_dict.update({k: v for k, v in overrides.items() if v is not None})
        if args.kinematic:
            cfg_dict["kinematic"] = True
        config = RewardConfig.from_dict(cfg_dict)
        weights = None
        if args.annotator_accuracy:
            with open(args.annotator_accuracy) as f:
                weights = annotator_weights_from_accuracy(json.load(f))
        episodes = load_episode_dir(args.episodes, progress=not args.no_progress)
        triples = read_triples_file(args.triples)
        result = train_reward_model(episodes, triples, config, weights, progress=not args.no_progress)
    except (OSError, ValueError, DeviceUnavailableError) as e:
        return _fail(str(e))
    save_checkpoint(result.ensemble, args.out)
    last = [h[-1] for h in result.history]
    summary = {k: round(sum(r[k] for r in last) / len(last), 4) for k in last[0] if k != "epoch"}
    print(json.dumps({"checkpoint": str(args.out), "pairs": len(triples), "members": len(last), **summary}))
    return 0


def _eval(args: argparse.Namespace) -> int:
    import numpy as np

    from rlhf.reward.checkpoint import CheckpointError, load_checkpoint
    from rlhf.reward.inputs import load_episode_dir, read_triples_file
    from rlhf.reward.metrics import gold_segment_returns, pair_metrics

    try:
        ensemble = load_checkpoint(args.checkpoint)
        episodes = load_episode_dir(args.episodes, progress=not args.no_progress)
        triples = read_triples_file(args.triples)
        missing = sorted(({t.episode_a for t in triples} | {t.episode_b for t in triples}) - set(episodes))
        if missing:
            return _fail(f"triples refer to episodes not in {args.episodes}: {missing[:5]}")
        pairs = [
            ((episodes[t.episode_a], t.segment_a), (episodes[t.episode_b], t.segment_b)) for t in triples
        ]
        res_a = ensemble.score_batch([a for a, _ in pairs])
        res_b = ensemble.score_batch([b for _, b in pairs])
    except (OSError, ValueError, CheckpointError) as e:
        return _fail(str(e))
    gold_a = gold_b = None
    if args.gold_sim:
        from sim.metrics import gold_step_rewards

        gold = {eid: np.asarray(gold_step_rewards(tr)) for eid, tr in episodes.items()}
        gold_a = gold_segment_returns(gold, [(t.episode_a, t.segment_a) for t in triples])
        gold_b = gold_segment_returns(gold, [(t.episode_b, t.segment_b) for t in triples])
    metrics = pair_metrics(
        np.array([r.mean for r in res_a]),
        np.array([r.mean for r in res_b]),
        np.array([t.prob_a for t in triples]),
        gold_a,
        gold_b,
    )
    print(json.dumps({k: round(v, 4) for k, v in metrics.items()}))
    if args.json:
        from rlhf.atomic import atomic_write_json

        atomic_write_json(args.json, metrics)
    return 0


def _score(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from rlhf.reward.checkpoint import CheckpointError, load_checkpoint
    from rlhf.reward.inputs import load_episode_dir

    try:
        ensemble = load_checkpoint(args.checkpoint)
        episodes = load_episode_dir(args.episodes, progress=not args.no_progress)
    except (OSError, ValueError, CheckpointError) as e:
        return _fail(str(e))
    ids = args.episode or sorted(episodes)
    unknown = [i for i in ids if i not in episodes]
    if unknown:
        return _fail(f"unknown episode id(s) {unknown}")
    rows = []
    for eid in tqdm(ids, desc="scoring", disable=args.no_progress, leave=False):
        r = ensemble.score(episodes[eid])
        rows.append(
            {
                "episode_id": eid,
                "mean": r.mean,
                "std": r.std,
                "conservative": r.conservative(args.k),
                "per_step_mean": [float(x) for x in r.per_step_mean],
                "per_step_std": [float(x) for x in r.per_step_std],
                "axes": r.axes,
            }
        )
        print(
            f"{eid}\tmean={r.mean:.3f}\tstd={r.std:.3f}\tconservative(k={args.k:g})={r.conservative(args.k):.3f}"
        )
    if args.json:
        from rlhf.atomic import atomic_write_json

        atomic_write_json(args.json, {"k": args.k, "scores": rows})
    return 0
