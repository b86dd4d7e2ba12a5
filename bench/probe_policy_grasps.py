"""How a pick-and-place policy's grasps go: where it closes the gripper, and whether it retries.

Rolls the policy out on the evaluation seeds (1,000,000 + i, mean actions) and prints one line per
episode: success, how many times the gripper command went from open to closed, and, at the first
close, the cube's true offset from the grasp point beside the offset the policy's backbone perceives
(read by the auxiliary head `rlhf bc train` saves as `aux_head.pt`; see probe_policy_perception.py).
A policy that closes where it believes the cube is shows a perceived offset near zero; the true one
says how far off that belief was.

    python bench/probe_policy_grasps.py --run pp5k --episodes 30

Ends with a RESULT line: successes, episodes with 2+ closes, successes among them, and the median
absolute true and perceived-minus-true offsets at the first close, for successes and failures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium
import numpy as np
import torch
from tqdm import tqdm

import sim
from rlhf.policy.bc import AUX_HEAD_FILE, load_aux_head, perceived_offsets
from rlhf.policy.evaluate import EVAL_SEED_OFFSET as EVAL_SEED
from rlhf.policy.vla import VLAPolicy
from sim.config import SimConfig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="an `rlhf bc train --out` folder (policy/, aux_head.pt)")
    ap.add_argument("--episodes", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = Path(args.run)
    policy = VLAPolicy.load(run / "policy").eval()
    head = load_aux_head(run / AUX_HEAD_FILE) if (run / AUX_HEAD_FILE).is_file() else None
    cfg = SimConfig(**{**policy.config.extra["sim_config"], "task": "pick_place"})
    env = gymnasium.make(sim.ENV_ID, task="pick_place", config=cfg).unwrapped
    rows = []
    for k in tqdm(range(args.episodes), desc="episodes", unit="ep"):
        obs, info = env.reset(seed=EVAL_SEED + k)
        policy.reset()
        done, closes, was_open, first = False, 0, True, None
        while not done:
            action = policy.select_action(obs)
            if was_open and action[-1] < 0:
                closes += 1
                if first is None:
                    true = env.object_positions()[0] - env.ee_pose()[0]
                    perceived = np.full(3, np.nan) if head is None else perceived_offsets(policy, head, obs)[0]
                    first = (true * 100.0, perceived * 100.0)
            was_open = action[-1] >= 0
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        ok = bool(info.get("success"))
        rows.append((ok, closes, first))
        at = "never closed" if first is None else f"true offset {np.round(first[0], 1)} cm, perceived {np.round(first[1], 1)} cm"
        tqdm.write(f"seed {EVAL_SEED + k}: success {ok}, closes {closes}, at the first close: {at}")
    ok = np.array([r[0] for r in rows])
    closes = np.array([r[1] for r in rows])
    parts = [f"success {ok.sum()}/{len(rows)}", f"2+ closes {(closes >= 2).sum()}", f"successes after 2+ closes {(ok & (closes >= 2)).sum()}",
             f"mean closes {closes.mean():.1f}"]  # fmt: skip
    for label, want in (("successes", True), ("failures", False)):
        firsts = [r[2] for r in rows if r[0] == want and r[2] is not None]
        if firsts:
            t = np.array([f[0] for f in firsts])
            e = np.array([f[1] - f[0] for f in firsts])
            parts.append(f"{label}: median |true| xyz {np.round(np.median(np.abs(t), 0), 2).tolist()} cm, "
                         f"median |perceived - true| xyz {np.round(np.median(np.abs(e), 0), 2).tolist()} cm")  # fmt: skip
    print("RESULT " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
