"""`rlhf demos`: generate scripted demonstration datasets (registration only; work in rlhf.demos)."""

from __future__ import annotations

import argparse

TASK_CHOICES = ("reach", "push", "pick_place")
STYLE_HELP = ("expert, slow, jerky, hesitant, fast_approach, noisy, slip (pick_place: the first grasp loses the cube, "
              "then a regrasp), disturbed (the hand is pushed off its path near objects and corrects; BC skips "
              "the pushed steps), recovery (slip and disturbed) or mixed; comma-separated to cycle")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demos", help="generate scripted demonstrations of a sim task")
    p.add_argument("--task", required=True, choices=TASK_CHOICES)
    p.add_argument("--episodes", type=int, default=200, help="number of episodes")
    p.add_argument("--style", default="expert", help=STYLE_HELP)
    p.add_argument("--out", required=True, help="output folder (episode_*.npz + manifest.json)")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--seed", type=int, default=0, help="seed of episode 0 (episode i uses seed + i)")
    p.add_argument("--image-size", type=int, default=None, help="camera image size (default: SimConfig's)")
    p.add_argument("--randomize", action="store_true", help="turn domain randomisation on")
    p.add_argument("--wrist-camera", action="store_true",
                   help="also record the camera on the hand (Trajectory.wrist_images; policies with wrist_camera need it)")
    p.add_argument("--wrist-image-size", type=int, default=None, help="wrist camera image size (default: SimConfig's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rlhf.demos import generate_demos, load_manifest
    from sim.config import RandomizationConfig, SimConfig

    kw = {"task": args.task, "randomization": RandomizationConfig(enabled=args.randomize)}
    if args.image_size is not None:
        kw["image_size"] = args.image_size
    if args.wrist_camera:
        kw["wrist_camera"] = True
    if args.wrist_image_size is not None:
        kw["wrist_image_size"] = args.wrist_image_size
    styles = [s.strip() for s in args.style.split(",") if s.strip()]
    manifest = generate_demos(
        args.task, args.episodes, styles, args.out, seed=args.seed, workers=args.workers, config=SimConfig(**kw)
    )
    rows = load_manifest(manifest.parent)["episodes"]
    wins = sum(r["success"] for r in rows)
    print(f"wrote {len(rows)} episodes to {manifest.parent} ({wins} successful); manifest {manifest}")
    return 0
