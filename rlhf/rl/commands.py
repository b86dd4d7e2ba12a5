"""`rlhf ppo train`, `rlhf dpo train`, `rlhf rlhf loop`. Registration is argparse only; torch,
pybullet and the policy are imported inside the handlers so `rlhf --help` stays instant."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from rlhf.device import DeviceUnavailableError


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", required=True, help="BC policy checkpoint folder (the reference)")
    p.add_argument("--task", default="reach", help="sim task: reach, push or pick_place")
    p.add_argument("--out", required=True, help="run folder: head checkpoint, critic, metrics.csv, tb/, plot")
    p.add_argument("--image-size", type=int, default=64, help="sim camera size (SimConfig.image_size)")
    p.add_argument("--iterations", type=int, help="PPOConfig.iterations")
    p.add_argument("--episodes-per-iter", type=int, help="PPOConfig.episodes_per_iter")
    p.add_argument("--num-envs", type=int, help="PPOConfig.num_envs (0: one per core)")
    p.add_argument("--vector-mode", choices=("async", "sync"), help="PPOConfig.vector_mode")
    p.add_argument("--max-episode-steps", type=int, help="PPOConfig.max_episode_steps")
    p.add_argument("--kl-coef", type=float, help="PPOConfig.kl_coef")
    p.add_argument("--kl-mode", choices=("fixed", "adaptive"), help="PPOConfig.kl_mode")
    p.add_argument("--kl-target", type=float, help="PPOConfig.kl_target")
    p.add_argument("--reward-std-coef", type=float, help="PPOConfig.reward_std_coef (mean - k * std)")
    p.add_argument("--learning-rate", type=float, help="PPOConfig.learning_rate")
    p.add_argument("--exploration-noise-correlation", type=float,
                   help="PPOConfig.exploration_noise_correlation: AR(1) rho of the action noise in time (0: white)")
    p.add_argument("--exploration-log-std", type=float,
                   help="PPOConfig.exploration_log_std: the head's log std (normalised units) for PPO; default BC's")
    p.add_argument("--critic-warmup-iterations", type=int, help="PPOConfig.critic_warmup_iterations")
    p.add_argument("--group-size", type=int, help="PPOConfig.group_size: episodes per initial state per iteration")
    p.add_argument("--advantage", choices=("gae", "group"),
                   help="PPOConfig.advantage: 'gae' (critic) or 'group' (RLOO leave-one-out baseline per seed)")
    p.add_argument("--group-scale", action="store_true", default=None,
                   help="PPOConfig.group_scale: divide each seed group's advantages by its return std (GRPO)")
    p.add_argument("--seed", type=int, help="PPOConfig.seed")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"),
                   help="PPOConfig.device: where the policy runs and the head and critic train (rollouts too)")
    p.add_argument("--no-tensorboard", action="store_true", help="CSV only")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ppo", help="PPO fine-tuning of the action head against a reward model")
    sub = p.add_subparsers(dest="ppo_command", metavar="ACTION")
    t = sub.add_parser("train", help="PPO with a KL penalty to the BC policy; backbone frozen")
    _add_common(t)
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--reward", help="reward-model checkpoint folder (the proxy reward)")
    src.add_argument("--gold-reward", action="store_true", help="train on the sim's gold reward (upper bound)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.set_defaults(func=_ppo_train)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    d = subparsers.add_parser("dpo", help="trajectory-level DPO on preference triples (offline)")
    dsub = d.add_subparsers(dest="dpo_command", metavar="ACTION")
    dt = dsub.add_parser("train", help="DPO of the action head against the BC policy")
    dt.add_argument("--policy", required=True, help="BC policy checkpoint folder (the reference)")
    dt.add_argument("--episodes", required=True, help="folder of trajectory .npz files")
    dt.add_argument("--triples", required=True, help="preference triples (.jsonl or .parquet export)")
    dt.add_argument("--out", required=True, help="run folder: head/ checkpoint and metrics.csv")
    dt.add_argument("--beta", type=float, help="DPOConfig.beta")
    dt.add_argument("--epochs", type=int, help="DPOConfig.epochs")
    dt.add_argument("--batch-size", type=int, help="DPOConfig.batch_size")
    dt.add_argument("--learning-rate", type=float, help="DPOConfig.learning_rate")
    dt.add_argument("--rpo-alpha", type=float, help="DPOConfig.rpo_alpha: weight of the chosen side's NLL (RPO)")
    dt.add_argument("--device", choices=("cpu", "cuda", "auto"), help="DPOConfig.device")
    dt.add_argument("--no-progress", action="store_true")
    dt.set_defaults(func=_dpo_train)
    d.set_defaults(func=lambda args: (d.print_help(), 2)[1])

    r = subparsers.add_parser("rlhf", help="the iterative RLHF loop")
    rsub = r.add_subparsers(dest="rlhf_command", metavar="ACTION")
    lp = rsub.add_parser("loop", help="rounds of rollouts -> teacher labels -> reward update -> PPO")
    _add_common(lp)
    lp.add_argument("--reward", help="initial reward-model checkpoint (default: start from the gold-free loop)")
    lp.add_argument("--rounds", type=int, help="LoopConfig.rounds")
    lp.add_argument("--pairs-per-round", type=int, help="LoopConfig.pairs_per_round")
    lp.add_argument("--ppo-iterations-per-round", type=int, help="LoopConfig.ppo_iterations_per_round")
    lp.add_argument("--reward-epochs", type=int, help="RewardConfig.epochs of each reward update")
    lp.add_argument("--reward-kinematic", action="store_true",
                    help="RewardConfig.kinematic: scene features (object positions, recorded in sim) and their "
                         "linear reward channel; see rlhf.reward.kinematics")
    lp.add_argument("--teacher-beta", type=float, default=float("inf"), help="TeacherConfig.beta (inf: noise-free)")
    lp.add_argument("--teacher-mistake-rate", type=float, default=0.0, help="TeacherConfig.mistake_rate")
    lp.add_argument("--labeler", choices=("teacher", "store"), help="LoopConfig.labeler")
    lp.add_argument("--store", help="preference store database (with --labeler store)")
    lp.add_argument("--campaign", help="campaign whose labels to read (with --labeler store)")
    lp.add_argument("--episodes", help="folder of earlier trajectory .npz files the store's labels refer to")
    lp.set_defaults(func=_rlhf_loop)
    r.set_defaults(func=lambda args: (r.print_help(), 2)[1])


def _fail(cmd: str, msg: str) -> int:
    print(f"rlhf {cmd}: {msg}", file=sys.stderr)
    return 2


def _overrides(args: argparse.Namespace, cls) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}


def _build_trainer(args: argparse.Namespace, reward_fn):
    import functools
    import os

    import gymnasium as gym

    import sim
    from rlhf.device import resolve_device
    from rlhf.policy.vla import VLAPolicy
    from rlhf.rl.config import PPOConfig
    from rlhf.rl.logging import MetricsLogger
    from rlhf.rl.policy_adapter import VLAAdapter
    from rlhf.rl.ppo import PPOTrainer
    from rlhf.rl.rollouts import VectorRolloutCollector

    cfg = PPOConfig(**_overrides(args, PPOConfig))
    resolve_device(cfg.device, "--device")  # before any env process starts
    policy = VLAAdapter(VLAPolicy.load(args.policy))
    # A policy that sees the camera on the hand needs the env to render it.
    sim_cfg = sim.SimConfig(image_size=args.image_size, task=args.task,
                            wrist_camera=bool(policy.policy.config.wrist_camera))  # fmt: skip
    env_fn = functools.partial(gym.make, sim.ENV_ID, task=args.task, config=sim_cfg)
    n_envs = cfg.num_envs or os.cpu_count() or 1
    collector = VectorRolloutCollector(
        [env_fn] * n_envs, policy, mode=cfg.vector_mode, max_episode_steps=cfg.max_episode_steps,
        policy_version="ppo", task=args.task, sample_seed=cfg.seed,
    )
    logger = MetricsLogger(args.out, tensorboard=not args.no_tensorboard)
    trainer = PPOTrainer(policy, collector, reward_fn, cfg, logger=logger, out_dir=args.out,
                         progress=not args.no_progress)
    return trainer, collector, logger


def _finish(trainer, collector, logger, out) -> None:
    from pathlib import Path

    from rlhf.rl.logging import plot_proxy_gold_kl

    collector.close()
    logger.close()
    if trainer.history:
        plot_proxy_gold_kl(Path(out) / "metrics.csv", Path(out) / "proxy_gold_kl.png")
    if trainer.monitor.flagged:
        print(f"over-optimisation flagged at iteration {trainer.monitor.flagged_at}: {trainer.monitor.reasons()}")


def _ppo_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rlhf.rl.reward_shaping import EnsembleStepReward, GoldStepReward

    try:
        if args.gold_reward:
            reward_fn = GoldStepReward()
        else:
            from rlhf.reward.checkpoint import load_checkpoint

            reward_fn = EnsembleStepReward(load_checkpoint(args.reward), args.reward_std_coef or 0.0)
        trainer, collector, logger = _build_trainer(args, reward_fn)
    except (ValueError, FileNotFoundError, KeyError, DeviceUnavailableError) as e:
        return _fail("ppo train", str(e))
    if args.resume:
        if not (Path(args.out) / "trainer_state.json").exists():
            return _fail("ppo train", f"--resume: {args.out} holds no trainer_state.json")
        trainer.load(args.out)
    try:
        trainer.train(max(0, trainer.config.iterations - trainer.iteration))
    finally:
        _finish(trainer, collector, logger, args.out)
    last = trainer.history[-1] if trainer.history else {}
    print(f"ppo: {trainer.iteration} iterations; proxy {last.get('objective/scores', float('nan')):.3f}, "
          f"gold {last.get('gold/return', float('nan')):.3f}, KL {last.get('objective/kl', float('nan')):.3f}; "
          f"head at {Path(args.out) / 'head'}")
    return 0


def _dpo_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rlhf.device import resolve_device
    from rlhf.policy.vla import VLAPolicy
    from rlhf.reward.inputs import load_episode_dir, read_triples_file
    from rlhf.rl.config import DPOConfig
    from rlhf.rl.dpo import DPOTrainer, build_pairs
    from rlhf.rl.logging import MetricsLogger
    from rlhf.rl.policy_adapter import VLAAdapter

    try:
        cfg = DPOConfig(**_overrides(args, DPOConfig))
        resolve_device(cfg.device, "--device")
        policy = VLAAdapter(VLAPolicy.load(args.policy))
        episodes = load_episode_dir(args.episodes)
        triples = read_triples_file(args.triples)
        pairs = build_pairs(policy, triples, episodes)
    except (ValueError, FileNotFoundError, KeyError, DeviceUnavailableError) as e:
        return _fail("dpo train", str(e))
    if not pairs:
        return _fail("dpo train", "no decisive preference pairs (all ties?)")
    logger = MetricsLogger(args.out, tensorboard=False)
    trainer = DPOTrainer(policy, cfg, logger=logger, progress=not args.no_progress)
    before = trainer.evaluate(pairs)
    hist = trainer.train(pairs)
    logger.close()
    policy.save_head(Path(args.out) / "head")
    print(f"dpo: {len(pairs)} pairs, loss {before['losses/dpo_loss']:.4f} -> {hist[-1]['losses/dpo_loss']:.4f}, "
          f"accuracy {hist[-1]['dpo/accuracy']:.2f}; head at {Path(args.out) / 'head'}")
    return 0


def _rlhf_loop(args: argparse.Namespace) -> int:
    import functools
    from pathlib import Path

    from rlhf.prefs.teacher_model import TeacherConfig
    from rlhf.reward.config import RewardConfig
    from rlhf.reward.train import train_reward_model
    from rlhf.rl.config import LoopConfig
    from rlhf.rl.loop import RLHFLoop
    from rlhf.rl.reward_shaping import EnsembleStepReward, GoldStepReward

    if args.labeler == "store" and not (args.store and args.campaign):
        return _fail("rlhf loop", "--labeler store needs --store and --campaign")
    try:
        loop_cfg = LoopConfig(**_overrides(args, LoopConfig))
        reward_cfg = RewardConfig(**({"epochs": args.reward_epochs} if args.reward_epochs else {}),
                                  kinematic=args.reward_kinematic, device=args.device or "cpu")
        teacher = TeacherConfig(beta=args.teacher_beta, mistake_rate=args.teacher_mistake_rate)
        if args.reward:
            from rlhf.reward.checkpoint import load_checkpoint

            reward_fn = EnsembleStepReward(load_checkpoint(args.reward), args.reward_std_coef or 0.0)
        else:
            # No reward model yet: the first round's rollouts and labels train one before any PPO step
            # uses it; until then PPO's reward is a placeholder that is never optimised.
            reward_fn = GoldStepReward()
        trainer, collector, logger = _build_trainer(args, reward_fn)
    except (ValueError, FileNotFoundError, KeyError, DeviceUnavailableError) as e:
        return _fail("rlhf loop", str(e))

    store_labels = None
    if loop_cfg.labeler == "store":
        from rlhf.prefs.store import PreferenceStore

        def store_labels(episodes):
            with PreferenceStore(args.store) as store:
                triples = store.triples(args.campaign)
            return [t for t in triples if t.episode_a in episodes and t.episode_b in episodes]

    initial = {}
    if args.episodes:
        from rlhf.reward.inputs import load_episode_dir

        initial = load_episode_dir(args.episodes, progress=not args.no_progress)
    episodes_out = Path(args.out) / "episodes"

    def save_new(trajs):
        # New rollouts land as files, so the episode store / annotation page can pick them up.
        for t in trajs:
            t.save(episodes_out / f"{t.episode_id}.npz")

    def train_reward(episodes, triples):
        return train_reward_model(episodes, triples, reward_cfg, progress=not args.no_progress).ensemble

    steps = max(2, int(round(reward_cfg.segment_seconds * 10)))
    loop = RLHFLoop(trainer, loop_cfg, functools.partial(train_reward), steps, teacher=teacher,
                    store_labels=store_labels, episodes=initial, reward_std_coef=args.reward_std_coef or 0.0,
                    on_new_episodes=save_new)
    try:
        for m in loop.run():
            print(f"round {int(m['rlhf/round'])}: {int(m['rlhf/new_labels'])} new labels "
                  f"({int(m['rlhf/total_labels'])} total), gold {m['rlhf/gold_return']:.3f}, "
                  f"proxy {m['rlhf/proxy_return']:.3f}, KL {m['rlhf/kl']:.3f}")
    finally:
        _finish(trainer, collector, logger, args.out)
    return 0
