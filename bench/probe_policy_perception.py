"""How well does a BC policy's backbone localise the task objects on episodes it never saw?

`rlhf bc train` fits an auxiliary head that reads the object positions relative to the grasp point
from the backbone's features, and saves it beside the policy (`aux_head.pt`). This script runs the
frozen policy and that head over a demo folder (use seeds the policy was not trained on, e.g. the
evaluation seeds 1,000,000+) and prints the error per object and axis, in cm: on all steps, and on
the steps where the grasp point is within 10 cm of the object, where a grasp is won or lost. Compare
the figures with the privileged probe's tolerance (bench/probe_privileged_bc.py: 1 cm of lateral
error costs nothing, 1 cm of height error is fatal).

    rlhf demos --task pick_place --episodes 40 --style mixed --seed 1000000 --out held_pp
    python bench/probe_policy_perception.py --run pp96 --demos held_pp

Runs trained before the head was saved (or to ask what the frozen features hold at all) can fit a
fresh head on the frozen backbone instead: `--fit-on train_demos` (a linear-probe style check; only
the head trains, on features computed once).

Prints one RESULT line per object.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from rlhf.demos import load_demos
from rlhf.policy.bc import AUX_HEAD_FILE, AUX_SCALE_M, load_aux_head, make_aux_head, save_aux_head
from rlhf.policy.dataset import AUX_OBJECT_OFFSETS, BCDataset
from rlhf.policy.vla import VLAPolicy

NEAR_M = 0.10


def features_and_targets(policy: VLAPolicy, demos: list, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen backbone's features of every step, and the true object offsets (m)."""
    data = BCDataset(demos, policy.config.image_size, policy.config.chunk_size, policy.instruction_encoder)
    if data.aux_targets is None:
        raise SystemExit("error: these demos lack ee_positions or object_positions, so there is nothing to compare")
    feats, targets = [], []
    with torch.no_grad():
        for start in tqdm(range(0, len(data), batch_size), desc="features", unit="batch"):
            batch = data.batch(torch.arange(start, min(start + batch_size, len(data))))
            feats.append(policy.features(batch))
            targets.append(batch[AUX_OBJECT_OFFSETS])
    return torch.cat(feats), torch.cat(targets)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="an `rlhf bc train --out` folder (policy/ and aux_head.pt)")
    ap.add_argument("--checkpoint", default="policy", help="checkpoint folder inside --run")
    ap.add_argument("--demos", required=True, help="demo folder with ee_positions and object_positions")
    ap.add_argument("--episodes", type=int, default=None, help="only the first N episodes of --demos")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fit-on", default=None, help="fit a fresh head on the frozen features of this demo folder")
    ap.add_argument("--fit-episodes", type=int, default=300, help="episodes of --fit-on to use")
    ap.add_argument("--fit-steps", type=int, default=3000)
    ap.add_argument("--save-head", default=None, help="save the fitted head here (for probe_privileged_bc.py --perception-run)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    run = Path(args.run)
    policy = VLAPolicy.load(run / args.checkpoint).eval()
    if args.fit_on:
        fit_demos = load_demos(args.fit_on, image_size=policy.config.image_size, limit=args.fit_episodes)
        fit_x, fit_y = features_and_targets(policy, fit_demos, args.batch_size)
        head = make_aux_head(fit_x.shape[1], fit_y.shape[1])
        opt = torch.optim.Adam(head.parameters(), 1e-3)
        for _ in tqdm(range(args.fit_steps), desc="fit head", unit="step"):
            idx = torch.randint(0, len(fit_x), (256,))
            loss = torch.nn.functional.mse_loss(head(fit_x[idx]), fit_y[idx] / AUX_SCALE_M)
            opt.zero_grad()
            loss.backward()
            opt.step()
        head.eval()
        if args.save_head:
            save_aux_head(head, Path(args.save_head))
    else:
        head = load_aux_head(run / AUX_HEAD_FILE)
    demos = load_demos(args.demos, image_size=policy.config.image_size, limit=args.episodes)
    feats, true = features_and_targets(policy, demos, args.batch_size)
    with torch.no_grad():
        pred = head(feats) * AUX_SCALE_M
    k = true.shape[1] // 3
    pred = pred.numpy().reshape(-1, k, 3)
    true = true.numpy().reshape(-1, k, 3)
    err_cm = (pred - true) * 100.0
    for obj in range(k):
        near = np.linalg.norm(true[:, obj], axis=1) < NEAR_M
        rms = np.sqrt((err_cm[:, obj] ** 2).mean(0))
        rms_near = np.sqrt((err_cm[near, obj] ** 2).mean(0)) if near.any() else np.full(3, np.nan)
        print(
            f"RESULT object={obj} frames={len(err_cm)} rms_cm_xyz={[round(float(v), 2) for v in rms]} "
            f"near_frames={int(near.sum())} near_rms_cm_xyz={[round(float(v), 2) for v in rms_near]}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
