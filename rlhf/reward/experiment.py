"""The acceptance experiment: does a reward model trained on noisy teacher labels beat its labels?

    python -m rlhf.reward.experiment --out runs/reward_experiment

1. Scripted pick-and-place demonstrations in many styles (so gold returns vary), 32x32 frames.
2. Episodes split into training and held-out sets; random equal-length segment pairs from each.
3. beta of the Bradley-Terry teacher chosen so that its expected agreement with the noise-free gold
   ordering is 80% on the training pairs; the sampled labels' agreement is measured and reported.
4. For each label budget, a reward ensemble is trained on that many teacher labels and evaluated on
   held-out pairs (from held-out episodes) against the noise-free gold ordering. With `--active N`
   the labels after the first budget are chosen N at a time: the ensemble trained so far scores a
   pool of unlabelled training pairs and the teacher labels the pairs its members disagree on most.
5. Results as JSON and the agreement-vs-labels curve as PNG.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_STYLES = (
    "mixed", "expert", "mixed", "slow", "mixed", "jerky", "mixed", "hesitant", "mixed", "fast_approach",
    "mixed", "noisy",
)  # fmt: skip


def make_episodes(out_dir: Path, task: str, n: int, image_size: int, seed: int, styles=DEFAULT_STYLES):
    """Generate (or reuse, when a complete dataset with the same arguments is there) and load demos."""
    from rlhf.demos import MANIFEST, generate_demos, load_demos
    from sim.config import SimConfig

    manifest = out_dir / MANIFEST
    reuse = False
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        reuse = (
            m.get("complete")
            and m.get("episodes_requested") == n
            and m.get("seed") == seed
            and m.get("config", {}).get("image_size") == image_size
            and m.get("task") == task
        )
    if not reuse:
        generate_demos(
            task,
            n,
            styles=list(styles),
            out_dir=out_dir,
            seed=seed,
            config=SimConfig(task=task, image_size=image_size),
        )
    return {t.episode_id: t for t in load_demos(out_dir)}


def calibrate_beta(return_diffs: np.ndarray, target: float = 0.8) -> float:
    """beta such that mean sigmoid(beta |dR|) over non-tie pairs equals `target` (bisection in log beta)."""
    d = np.abs(np.asarray(return_diffs, dtype=np.float64))
    d = d[d > 0]
    if len(d) == 0 or not 0.5 < target < 1.0:
        raise ValueError("calibrate_beta needs non-tie pairs and a target in (0.5, 1)")

    def agree(beta: float) -> float:
        return float(np.mean(1.0 / (1.0 + np.exp(-beta * d))))

    lo, hi = 1e-6, 1e6
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if agree(mid) < target:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def label_agreement(triples, gold) -> float:
    """Fraction of labels (non-tie by gold, non-tie label) that agree with the gold ordering."""
    from rlhf.reward.metrics import gold_segment_returns

    ga = gold_segment_returns(gold, [(t.episode_a, t.segment_a) for t in triples])
    gb = gold_segment_returns(gold, [(t.episode_b, t.segment_b) for t in triples])
    p = np.array([t.prob_a for t in triples])
    keep = (ga != gb) & (p != 0.5)
    return float(np.mean((p[keep] > 0.5) == (ga[keep] > gb[keep])))


def evaluate(ensemble, episodes, gold, pairs) -> dict[str, float]:
    """Metrics of `ensemble` on segment pairs against the noise-free gold ordering."""
    from rlhf.reward.metrics import gold_ordering, gold_segment_returns, pair_metrics

    ra = ensemble.score_batch([(episodes[e], s) for (e, s), _ in pairs])
    rb = ensemble.score_batch([(episodes[e], s) for _, (e, s) in pairs])
    ga = gold_segment_returns(gold, [a for a, _ in pairs])
    gb = gold_segment_returns(gold, [b for _, b in pairs])
    out = pair_metrics(
        np.array([r.mean for r in ra]), np.array([r.mean for r in rb]), gold_ordering(ga, gb), ga, gb
    )
    out["reward/mean_std"] = float(np.mean([r.std for r in ra + rb]))
    return out


def regress_gold(features, gold, segments, config, steps: int, seed: int):
    """The capacity check: the same network trained to regress the per-step gold reward of `segments`
    (MSE, no comparisons). Returns a one-member ensemble; compare its held-out agreement with the
    Bradley-Terry model's trained on pairs of the same segments."""
    import torch

    from rlhf.reward.dataset import collate_segments
    from rlhf.reward.ensemble import RewardEnsemble
    from rlhf.reward.features import FeatureStats
    from rlhf.reward.model import RewardNet

    used = sorted({eid for eid, _ in segments})
    stats = FeatureStats.fit([features[e] for e in used])
    scale = float(np.concatenate([gold[e] for e in used]).std()) or 1.0
    torch.manual_seed(seed)
    net = RewardNet(config)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng = np.random.default_rng(seed)
    net.train()
    for _ in range(steps):
        refs = [segments[i] for i in rng.integers(0, len(segments), config.batch_size)]
        seg = collate_segments(features, refs, stats)
        target = torch.zeros(seg.mask.shape)
        for i, (eid, (a, b)) in enumerate(refs):
            target[i, : b - a] = torch.from_numpy(gold[eid][a:b] / scale)
        pred, _ = net(seg.images, seg.state, seg.actions, seg.mask)
        loss = ((pred - target) ** 2 * seg.mask).sum() / seg.mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return RewardEnsemble(config, [net.eval()], stats)


def epochs_for(n_labels: int, budget: int, lo: int = 8, hi: int = 60) -> int:
    """Epochs so that small label sets still get enough optimiser steps: budget / n, in [lo, hi]."""
    return int(np.clip(round(budget / n_labels), lo, hi))


def run(args: argparse.Namespace) -> dict:
    import torch

    from rlhf.prefs.teacher_model import TeacherConfig
    from rlhf.reward.config import RewardConfig
    from rlhf.reward.curve import plot_agreement_curve
    from rlhf.reward.dataset import label_pairs, sample_segment_pairs
    from rlhf.reward.features import features_for, with_num_objects
    from rlhf.reward.metrics import ACCURACY, gold_segment_returns
    from rlhf.reward.train import train_reward_model
    from sim.metrics import gold_step_rewards

    if args.active and args.ensemble < 2:
        raise SystemExit("--active needs --ensemble >= 2: disagreement is the spread across members")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    # 1. Episodes and their gold per-step rewards.
    episodes = make_episodes(out / "demos", args.task, args.episodes, args.image_size, args.seed)
    gold = {eid: np.asarray(gold_step_rewards(t), dtype=np.float64) for eid, t in episodes.items()}
    print(
        f"[1] {len(episodes)} episodes, {sum(len(t) for t in episodes.values())} steps ({time.time() - t0:.0f} s)"
    )

    # 2. Split by episode; pairs of equal-length segments.
    rng = np.random.default_rng(args.seed)
    ids = sorted(episodes)
    rng.shuffle(ids)
    n_test = int(round(args.test_fraction * len(ids)))
    test_ids, train_ids = ids[:n_test], ids[n_test:]
    max_labels = max(args.labels)
    train_pairs = sample_segment_pairs(episodes, max_labels, args.segment_seconds, rng, train_ids)
    test_pairs = sample_segment_pairs(episodes, args.test_pairs, args.segment_seconds, rng, test_ids)
    ga = gold_segment_returns(gold, [a for a, _ in train_pairs])
    gb = gold_segment_returns(gold, [b for _, b in train_pairs])

    # 3. The teacher: beta for ~80% expected agreement, then the labels' measured agreement.
    beta = args.beta or calibrate_beta(ga - gb, args.teacher_agreement)
    teacher = TeacherConfig(beta=beta)
    triples = label_pairs(train_pairs, gold, teacher, rng, prefix="train")
    teacher_all = label_agreement(triples, gold)
    test_triples = label_pairs(test_pairs, gold, teacher, np.random.default_rng(args.seed + 1), prefix="test")
    teacher_test = label_agreement(test_triples, gold)
    returns = np.concatenate([ga, gb])
    print(
        f"[3] beta = {beta:.4g} (gold segment returns: mean {returns.mean():.3f}, std {returns.std():.3f}); "
        f"teacher agreement with gold: train labels {teacher_all:.3f}, held-out pairs {teacher_test:.3f}"
    )

    # 4. Train on growing label budgets; evaluate on held-out pairs against the gold ordering.
    overrides = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    base = RewardConfig(
        segment_seconds=args.segment_seconds,
        image_size=args.image_size,
        use_images=not args.no_images,
        use_ee=not args.no_ee,
        kinematic=args.kinematic,
        ensemble_size=args.ensemble,
        seed=args.seed,
        **overrides,
    )
    base = with_num_objects(base, episodes.values())
    feats = {eid: features_for(t, base) for eid, t in episodes.items()}
    points = []
    budgets = sorted(args.labels)
    active = triples[: budgets[0]]
    pool_rng = np.random.default_rng(args.seed + 2)

    def fit(labelled):
        c = dataclasses.replace(base, epochs=epochs_for(len(labelled), args.pair_epochs, args.min_epochs, args.max_epochs))
        return c, train_reward_model(episodes, labelled, c, progress=not args.no_progress, features=feats)

    for n in budgets:
        t1 = time.time()
        if args.active:
            while len(active) < n:  # grow by the pairs the current ensemble disagrees on most
                _, current = fit(active)
                k = min(args.active, n - len(active))
                pool = sample_segment_pairs(episodes, k * args.active_pool, args.segment_seconds, pool_rng, train_ids)
                dis = current.ensemble.disagreements([((episodes[a], sa), (episodes[b], sb)) for (a, sa), (b, sb) in pool])
                picked = [pool[i] for i in np.argsort(-dis, kind="stable")[:k]]
                active = active + label_pairs(picked, gold, teacher, pool_rng, prefix=f"active{len(active)}")
            subset = active
        else:
            subset = triples[:n]
        cfg, result = fit(subset)
        metrics = evaluate(result.ensemble, episodes, gold, test_pairs)
        row = {
            "labels": n,
            "epochs": cfg.epochs,
            "train_s": time.time() - t1,
            "label_agreement": label_agreement(subset, gold),
            **metrics,
        }
        if args.regress_gold:
            segs = [(t.episode_a, tuple(t.segment_a)) for t in subset] + [(t.episode_b, tuple(t.segment_b)) for t in subset]
            dense = regress_gold(feats, gold, segs, cfg, args.regress_gold, args.seed)
            row["gold_regression_accuracy"] = evaluate(dense, episodes, gold, test_pairs)[ACCURACY]
        points.append(row)
        print(
            f"[4] {n:5d} labels: held-out agreement {row[ACCURACY]:.3f} (labels {row['label_agreement']:.3f}), "
            f"ECE {row['reward/ece']:.3f}, gold spearman {row['reward/gold_spearman']:.3f}, "
            f"{row['train_s']:.0f} s"
            + (f"; same segments, gold regressed: {row['gold_regression_accuracy']:.3f}" if args.regress_gold else "")
        )
        if args.save_checkpoint and n == args.save_checkpoint:
            from rlhf.reward.checkpoint import save_checkpoint

            save_checkpoint(result.ensemble, out / f"checkpoint_{n}")

    # 5. Results and the curve.
    summary = {
        "task": args.task,
        "episodes": len(episodes),
        "train_episodes": len(train_ids),
        "test_episodes": len(test_ids),
        "test_pairs": len(test_pairs),
        "segment_seconds": args.segment_seconds,
        "beta": beta,
        "teacher_agreement_train": teacher_all,
        "teacher_agreement_test": teacher_test,
        "config": dataclasses.asdict(cfg) | {"epochs": "see points"},
        "points": points,
        "wall_s": time.time() - t0,
        "args": vars(args),
    }
    from rlhf.atomic import atomic_write_json

    atomic_write_json(out / "results.json", summary)
    plot_agreement_curve(
        [p["labels"] for p in points],
        [p[ACCURACY] for p in points],
        out / "agreement_curve.png",
        teacher_agreement=teacher_test,
        target=0.9,
        title=f"{args.task}: held-out agreement vs labels (teacher beta={beta:.3g})",
    )
    print(
        f"[5] wrote {out / 'results.json'} and {out / 'agreement_curve.png'} ({summary['wall_s']:.0f} s total)"
    )
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/reward_experiment")
    p.add_argument("--task", default="pick_place")
    p.add_argument("--episodes", type=int, default=300)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--segment-seconds", type=float, default=2.0)
    p.add_argument("--test-fraction", type=float, default=0.25)
    p.add_argument("--test-pairs", type=int, default=2000)
    p.add_argument("--labels", type=int, nargs="+", default=[100, 250, 500, 1000, 2000])
    p.add_argument("--teacher-agreement", type=float, default=0.8, help="target agreement used to pick beta")
    p.add_argument("--beta", type=float, help="fix beta instead of calibrating it")
    p.add_argument("--ensemble", type=int, default=3)
    p.add_argument(
        "--pair-epochs", type=int, default=6000, help="epochs = this / labels, clipped to [min, max]"
    )
    p.add_argument("--min-epochs", type=int, default=8)
    p.add_argument("--max-epochs", type=int, default=60)
    p.add_argument("--no-images", action="store_true", help="proprio + actions only")
    p.add_argument("--no-ee", action="store_true", help="leave the grasp point position/velocity out")
    p.add_argument(
        "--kinematic", action="store_true",
        help="add the scene features of rlhf.reward.kinematics and their linear reward channel",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    p.add_argument(
        "--save-checkpoint", type=int, default=1000, help="save the ensemble trained on this many labels"
    )
    p.add_argument(
        "--active", type=int, default=0, metavar="N",
        help="after the first budget, pick labels N at a time by ensemble disagreement (0: all random)",
    )
    p.add_argument("--active-pool", type=int, default=10, help="candidate pairs scored per picked pair")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--set", action="append", metavar="FIELD=JSON", help="extra RewardConfig field, e.g. dropout=0.2"
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--regress-gold", type=int, default=0, metavar="STEPS",
        help="capacity check: also train the same network for STEPS minibatches to regress the per-step gold "
        "reward of the labelled segments, and report its held-out agreement",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
