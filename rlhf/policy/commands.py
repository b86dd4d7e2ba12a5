"""`rlhf bc train`, `rlhf bc dagger` and `rlhf policy eval`. Registration is argparse only; torch loads in handlers."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    bc = subparsers.add_parser("bc", help="behavioural cloning")
    bc_sub = bc.add_subparsers(dest="bc_command", metavar="BC_COMMAND")
    train = bc_sub.add_parser("train", help="train a VLA policy on demonstrations")
    _add_bc_arguments(train)
    train.set_defaults(func=_bc_train)
    dagger = bc_sub.add_parser(
        "dagger", help="BC, then rounds of policy rollouts relabelled by the sim's scripted expert (DAgger)"
    )
    _add_bc_arguments(dagger)
    dagger.add_argument("--rounds", type=int, default=2, help="DAgger rounds after the initial BC")
    dagger.add_argument("--steps-per-round", type=int, default=4000, help="optimiser steps after each round")
    dagger.add_argument("--episodes-per-round", type=int, default=150, help="relabelled rollouts per round")
    dagger.add_argument("--beta", type=float, default=0.5,
                        help="probability of executing the expert's action in the first round")
    dagger.add_argument("--beta-decay", type=float, default=0.5, help="beta is multiplied by this each round")
    dagger.set_defaults(func=_bc_train)
    bc.set_defaults(func=lambda args: (bc.print_help(), 2)[1])

    pol = subparsers.add_parser("policy", help="inspect and evaluate policies")
    pol_sub = pol.add_subparsers(dest="policy_command", metavar="POLICY_COMMAND")
    ev = pol_sub.add_parser("eval", help="evaluate a policy checkpoint in the sim")
    ev.add_argument("--checkpoint", required=True, help="policy checkpoint folder")
    ev.add_argument("--head", default=None, help="head-only checkpoint to load on top")
    ev.add_argument("--task", required=True)
    ev.add_argument("--episodes", type=int, default=100)
    ev.add_argument("--seed-offset", type=int, default=None, help="first seed (default: the eval offset)")
    ev.add_argument("--stochastic", action="store_true", help="sample actions instead of the mean")
    ev.add_argument("--n-action-steps", type=int, default=None,
                    help="execute this many actions of each predicted chunk (default: the checkpoint's)")
    ev.add_argument("--temporal-ensemble", type=float, default=None,
                    help="ACT temporal ensembling: predict every step, average the last chunks' predictions "
                         "with weight exp(-k * age) (k > 0; 0 turns it off)")
    ev.add_argument("--sim-config-from", default=None, metavar="DEMO_DIR",
                    help="evaluate in the sim config a demo folder was recorded with")
    ev.add_argument("--current-sim", action="store_true",
                    help="evaluate in the sim's default config, not the one the policy's demos were recorded in")
    ev.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    ev.add_argument("--threads", type=int, default=None)
    ev.add_argument("--json", default=None, help="write the metrics to this JSON file")
    ev.add_argument("--no-progress", action="store_true")
    ev.set_defaults(func=_policy_eval)
    pol.set_defaults(func=lambda args: (pol.print_help(), 2)[1])


def _add_bc_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--demos", action="append", required=True, metavar="DIR",
                   help="demonstration folder (repeatable)")
    p.add_argument("--out", required=True, help="output folder (policy/, best/, metrics.jsonl, summary.json)")
    p.add_argument("--task", default=None, help="sim task for evaluation (default: the demos' task)")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--time-budget-min", type=float, default=None, help="wall-clock budget, minutes")
    p.add_argument("--eval-every", type=int, default=None, help="evaluate every N steps (0: end only)")
    p.add_argument("--eval-episodes", type=int, default=10, help="episodes per periodic evaluation (0: none)")
    p.add_argument("--final-eval-episodes", type=int, default=None,
                   help="episodes of the final evaluation (default: --eval-episodes)")
    p.add_argument("--include-failures", action="store_true", help="also imitate unsuccessful demos")
    p.add_argument("--max-demos", type=int, default=None, help="use at most this many demos")
    p.add_argument("--keep-fraction", type=float, default=1.0,
                   help="imitate only this best fraction of the demos by gold quality metrics")
    p.add_argument("--chunk-size", type=int, default=None, help="actions predicted per observation")
    p.add_argument("--image-size", type=int, default=None, help="policy input image size, pixels")
    p.add_argument("--no-velocities", action="store_true", help="hide joint velocities from the policy")
    p.add_argument("--no-gripper-reading", action="store_true",
                   help="hide the measured gripper opening from the policy (it judges the grasp from the camera)")
    p.add_argument("--ee-features", action="store_true",
                   help="give the policy the grasp point computed from its joint positions (forward kinematics)")
    p.add_argument("--wrist-camera", action="store_true",
                   help="also see the camera on the hand (demos recorded with `rlhf demos --wrist-camera`)")
    p.add_argument("--wrist-image-size", type=int, default=None, help="wrist camera input size, pixels")
    p.add_argument("--wrist-dropout", type=float, default=0.0,
                   help="training only: fraction of samples that see no wrist tokens (the scene camera must carry them)")
    p.add_argument("--multiscale-keypoints", action="store_true",
                   help="read spatial-softmax keypoints from every conv block's map, not only the last, coarse one")
    p.add_argument("--image-shift", type=int, default=None,
                   help="random-shift augmentation, pixels (0: off; a fixed camera needs little)")
    p.add_argument("--stem-stride", type=int, default=None, help="stride of the CNN's first layer")
    p.add_argument("--cnn-channels", type=str, default=None,
                   help="comma-separated output channels of the CNN's layers, e.g. 32,64,64")
    p.add_argument("--image-tokens-side", type=int, default=None,
                   help="the CNN's last map is pooled to side x side image tokens (its own side: no pooling)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def load_demo_folder(folder: str | Path, image_size: int | None = None, progress: bool = False) -> list:
    """Trajectories of a demo folder: its manifest's episodes (`rlhf demos`), else every *.npz in it.
    `image_size` resizes frames while reading (see `rlhf.demos.load_demos`)."""
    from rlhf.trajectory import Trajectory

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"demo folder {folder} does not exist")
    if (folder / "manifest.json").exists():  # a dataset written by `rlhf demos`
        from rlhf.demos import load_demos

        return load_demos(folder, image_size=image_size, progress=progress)
    return [Trajectory.load(p) for p in sorted(folder.rglob("*.npz"))]


def demo_sim_config(folders: list[str]) -> dict | None:
    """The SimConfig (as a dict, task removed) the demo folders were recorded with, from their
    manifests; None when no folder has one. Folders recorded with different configs (e.g. another
    camera) are an error naming the fields, because one policy cannot match both."""
    configs = []
    for folder in folders:
        path = Path(folder) / "manifest.json"
        if path.exists():
            cfg = dict(json.loads(path.read_text()).get("config") or {})
            cfg.pop("task", None)
            configs.append((folder, cfg))
    if not configs:
        return None
    first_folder, first = configs[0]
    for folder, cfg in configs[1:]:
        diff = sorted(k for k in set(first) | set(cfg) if first.get(k) != cfg.get(k))
        if diff:
            raise ValueError(f"demo folders {first_folder} and {folder} were recorded with different sim configs: {diff}")
    return first


def make_sim_config(task: str, sim_config: dict | None):
    """A SimConfig for `task`: the recorded one (camera etc. as in the demos) or the sim's defaults."""
    from sim.config import SimConfig

    if sim_config is None:
        return SimConfig(task=task)
    try:
        return SimConfig(**{**sim_config, "task": task})
    except TypeError as e:
        raise ValueError(f"the recorded sim config no longer fits this sim's SimConfig ({e})") from e


def _read_bc_demos(args: argparse.Namespace, image_size: int) -> tuple[list, int | None]:
    """The demos `rlhf bc train` learns from, and how many they were chosen from (None: not chosen yet).

    When every folder has a manifest, the demos are chosen from its success flags and gold metrics
    first and only the chosen episodes are read: the frames BC would drop (failures, the worst by
    quality) are never held. Otherwise every episode is read and `train_bc` chooses."""
    t_load = time.perf_counter()
    if all((Path(folder) / "manifest.json").is_file() for folder in args.demos):
        from rlhf.demos import demo_records, read_demo_records
        from rlhf.policy.bc import select_demos

        records = [r for folder in args.demos for r in demo_records(folder)][: args.max_demos]
        chosen = select_demos(records, not args.include_failures, args.keep_fraction) if records else []
        demos = read_demo_records(chosen, image_size=image_size, progress=not args.no_progress)
        print(f"bc: read the {len(demos)} demos BC imitates, of {len(records)}, in "
              f"{time.perf_counter() - t_load:.0f} s", file=sys.stderr)  # fmt: skip
        return demos, len(records)
    demos = []
    for folder in args.demos:
        demos.extend(load_demo_folder(folder, image_size=image_size, progress=not args.no_progress))
    print(f"bc: read {len(demos)} demos in {time.perf_counter() - t_load:.0f} s", file=sys.stderr)
    return demos[: args.max_demos], None


def _bc_train(args: argparse.Namespace) -> int:
    import torch

    from rlhf.policy.bc import BCConfig, resolve_device, train_bc
    from rlhf.policy.config import PolicyConfig
    from rlhf.policy.evaluate import evaluate_policy

    if args.threads:
        torch.set_num_threads(args.threads)
    # Frames are resized as they are read: the policy only ever sees its own input size.
    image_size = args.image_size or PolicyConfig.image_size
    try:
        demos, preselected_from = _read_bc_demos(args, image_size)
    except (FileNotFoundError, ValueError) as e:  # TrajectoryError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not demos:
        print(f"error: no demonstrations found in {args.demos}", file=sys.stderr)
        return 2
    tasks = sorted({t.task for t in demos})
    task = args.task or (tasks[0] if len(tasks) == 1 else None)
    if task is None:
        print(f"error: demos span tasks {tasks}; pass --task for evaluation", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in {
        "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "eval_every": args.eval_every,
        "image_shift": args.image_shift,
        "time_budget_s": None if args.time_budget_min is None else args.time_budget_min * 60.0,
    }.items() if v is not None}  # fmt: skip
    bc_cfg = BCConfig(
        **overrides, only_successful=not args.include_failures, keep_fraction=args.keep_fraction,
        seed=args.seed, device=args.device,
        num_threads=args.threads,
    )  # fmt: skip
    try:
        sim_config = demo_sim_config(args.demos)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.wrist_camera and sim_config is not None and not sim_config.get("wrist_camera", False):
        print(f"error: --wrist-camera, but the demos in {args.demos} were recorded without one "
              "(rlhf demos --wrist-camera)", file=sys.stderr)  # fmt: skip
        return 2
    try:
        channels = None if args.cnn_channels is None else tuple(int(c) for c in args.cnn_channels.split(","))
    except ValueError:
        print(f"error: --cnn-channels must be comma-separated integers, got {args.cnn_channels!r}", file=sys.stderr)
        return 2
    shape = {k: v for k, v in {
        "chunk_size": args.chunk_size, "image_size": args.image_size, "stem_stride": args.stem_stride,
        "cnn_channels": channels, "image_tokens_side": args.image_tokens_side,
        "wrist_image_size": args.wrist_image_size,
    }.items() if v}  # fmt: skip
    # The policy remembers the sim config of its demos, so evaluation sees the same camera.
    pcfg = PolicyConfig(**shape, use_joint_velocities=not args.no_velocities,
                        use_gripper_reading=not args.no_gripper_reading, ee_features=args.ee_features,
                        wrist_camera=args.wrist_camera, wrist_dropout=args.wrist_dropout, multiscale_keypoints=args.multiscale_keypoints, extra={"task": task, "sim_config": sim_config})  # fmt: skip
    final_episodes = args.final_eval_episodes if args.final_eval_episodes is not None else args.eval_episodes

    def eval_fn(policy, final: bool) -> dict[str, float]:
        n = final_episodes if final else args.eval_episodes
        if n <= 0:
            return {}
        return evaluate_policy(
            policy, task, episodes=n, sim_config=make_sim_config(task, sim_config), progress=not args.no_progress
        ).metrics()

    print(f"bc: {len(demos)} demos, task {task}, device {resolve_device(args.device)}")
    if args.bc_command == "dagger":
        from rlhf.policy.dagger import DaggerConfig, train_dagger

        try:
            dcfg = DaggerConfig(
                rounds=args.rounds, initial_steps=bc_cfg.steps, steps_per_round=args.steps_per_round,
                episodes_per_round=args.episodes_per_round, beta=args.beta, beta_decay=args.beta_decay,
                time_budget_s=bc_cfg.time_budget_s, seed=args.seed,
            )  # fmt: skip
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        dres = train_dagger(demos, args.out, task, dcfg, bc_cfg, pcfg, eval_fn=eval_fn,
                            sim_config=make_sim_config(task, sim_config), progress=not args.no_progress,
                            preselected=preselected_from is not None)  # fmt: skip
        print(json.dumps({"rounds": len(dres.rounds) - 1, "train_seconds": round(dres.seconds, 1),
                          "checkpoint": str(dres.checkpoint), **dres.final_metrics}, indent=2))  # fmt: skip
        return 0
    result = train_bc(demos, args.out, bc_cfg, pcfg, eval_fn=eval_fn, progress=not args.no_progress,
                      preselected_from=preselected_from)
    print(json.dumps({"steps": result.steps, "train_seconds": round(result.train_seconds, 1),
                      "checkpoint": str(result.checkpoint), **result.final_metrics}, indent=2))  # fmt: skip
    return 0


def _policy_eval(args: argparse.Namespace) -> int:
    import torch

    from rlhf.atomic import atomic_write_json
    from rlhf.policy.bc import resolve_device
    from rlhf.policy.checkpoint import CheckpointError
    from rlhf.policy.evaluate import EVAL_SEED_OFFSET, evaluate_policy
    from rlhf.policy.vla import VLAPolicy

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        overrides = {k: v for k, v in {
            "n_action_steps": args.n_action_steps, "temporal_ensemble": args.temporal_ensemble,
        }.items() if v is not None}  # fmt: skip
        policy = VLAPolicy.load(args.checkpoint, device=resolve_device(args.device), **overrides)
        if args.head:
            policy.load_head(args.head)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    seed_offset = EVAL_SEED_OFFSET if args.seed_offset is None else args.seed_offset
    recorded = None if args.current_sim else policy.config.extra.get("sim_config")
    try:
        if args.sim_config_from:
            recorded = demo_sim_config([args.sim_config_from])
        sim_config = make_sim_config(args.task, recorded)
    except ValueError as e:
        print(f"error: {e}; pass --current-sim to use the sim's defaults", file=sys.stderr)
        return 2
    result = evaluate_policy(
        policy, args.task, episodes=args.episodes, seed_offset=seed_offset, sim_config=sim_config,
        deterministic=not args.stochastic, progress=not args.no_progress,
    )  # fmt: skip
    metrics = result.metrics()
    if args.json:
        atomic_write_json(args.json, {"task": args.task, "checkpoint": str(args.checkpoint),
                                      "seed_offset": seed_offset, **metrics})  # fmt: skip
    print(json.dumps(metrics, indent=2))
    return 0
