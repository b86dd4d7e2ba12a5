"""The end-to-end RLHF demo (`rlhf demo`, `make demo`): every phase, at a small scale, on this machine.

 1. scripted demonstrations of mixed quality (sim)
 2. behavioural cloning -> the base VLA policy
 3. rollouts of the BC policy recorded through the real ROS graph (sim_node -> policy_node ->
    safety_node -> recorder_node) into the episode store (MCAP bag + video + index)
 4. the annotation server on loopback; the scripted teacher posts its labels through its HTTP API
 5. the reward-model ensemble on those labels
 6. iterative RLHF: rounds of PPO rollouts -> new pairs in the store -> teacher labels over HTTP ->
    reward-model update -> PPO resumes (action head only, KL to the BC policy)
 7. paired evaluation of BC and RLHF from the same seeds on the noise-free gold ordering
 8. a self-contained HTML report and a one-screen summary

The core stays ROS-free: step 3 runs `rlhf_nodes.record_rollouts` as a separate process.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rlhf.atomic import atomic_write_json


@dataclass
class DemoConfig:
    """Budgets of the demo. The defaults fit ~25 minutes on 2 CPU cores; tests use far smaller ones."""

    task: str = "reach"
    """Sim task (graph-recorded episodes get their gold metrics from a seeded replay; see `ground_truth`)."""
    image_size: int = 64
    """Camera size for sim, policy and recordings, pixels."""
    demos: int = 40
    """Scripted demonstrations (mixed styles) for BC."""
    bc_steps: int = 1500
    """BC optimiser steps."""
    bc_checkpoint: str = ""
    """A trained policy checkpoint (e.g. from `rlhf bc dagger`) to refine instead of the small BC
    trained here; stages 1-2 are then skipped. Use the camera size it was trained on (`image_size`)."""
    graph_states: int = 6
    """Initial states recorded through the ROS graph, two stochastic BC rollouts each."""
    rounds: int = 2
    """Iterative RLHF rounds (rollouts -> labels -> reward model -> PPO)."""
    pairs_per_round: int = 12
    """New same-start rollout pairs labelled per round."""
    ppo_iterations_per_round: int = 6
    """PPO iterations per round."""
    episodes_per_iter: int = 8
    """PPO episodes per iteration."""
    kl_coef: float = 0.05
    """KL penalty coefficient (fixed) to the BC policy."""
    exploration_log_std: float = -2.0
    """PPO's log std of the action head (normalised units), set for the policy and the KL reference
    (PPOConfig.exploration_log_std): BC's own std is too wide for the joints and ~0 for the gripper."""
    critic_warmup_iterations: int = 2
    """First PPO iterations that train only the critic (PPOConfig.critic_warmup_iterations)."""
    reward_epochs: int = 15
    """Reward-model epochs per (re)training."""
    reward_use_images: bool = False
    """Feed camera frames to the reward model (slower on CPU; proprioception and end-effector suffice for reach)."""
    reward_kinematic: bool = True
    """Give the reward model the scene features of `rlhf.reward.kinematics` and their linear channel
    (RewardConfig.kinematic). Every episode here comes from the sim, so it has the object positions
    they need (graph recordings get them from their seeded replay). With them the reward model agrees
    with gold on 0.93-0.95 of held-out pairs at 1,000 labels, against 0.79 without
    (bench/results/reward.md)."""
    teacher_beta: float = float("inf")
    """Scripted teacher's Bradley-Terry rationality (inf: noise-free)."""
    teacher_mistake_rate: float = 0.0
    """Scripted teacher's label-flip probability."""
    eval_seeds: int = 20
    """Held-out initial states for the paired BC-vs-RLHF evaluation."""
    num_envs: int = 2
    """Vectorised sim envs for PPO rollouts and evaluation."""
    seed: int = 0
    """Seeds every stage."""
    graph: bool = True
    """Record the first rollouts through the ROS graph (False: straight from the sim, no ROS needed)."""
    torch_threads: int = 1
    """torch CPU threads of this process. 1: the sim workers use the other cores, and on a busy 2-core
    machine two OpenMP threads made BC steps ~20x slower than one."""

    def __post_init__(self) -> None:
        for name in ("demos", "bc_steps", "graph_states", "rounds", "pairs_per_round", "ppo_iterations_per_round",
                     "episodes_per_iter", "reward_epochs", "eval_seeds", "num_envs", "image_size", "torch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"DemoConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.rounds < 1:
            raise ValueError("DemoConfig.rounds must be >= 1")
        if self.kl_coef < 0:
            raise ValueError(f"DemoConfig.kl_coef must be >= 0, got {self.kl_coef}")
        if self.critic_warmup_iterations < 0:
            raise ValueError(f"DemoConfig.critic_warmup_iterations must be >= 0, got {self.critic_warmup_iterations}")
        if not math.isfinite(self.exploration_log_std):
            raise ValueError(f"DemoConfig.exploration_log_std must be finite, got {self.exploration_log_std}")


@dataclass
class DemoResult:
    out_dir: Path
    report: Path
    summary: dict[str, Any]
    stage_seconds: dict[str, float] = field(default_factory=dict)


class _Stages:
    """Times each stage and prints a one-line header for it."""

    def __init__(self, log) -> None:
        self.log = log
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.log(f"== {name}")
        t0 = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - t0, 1)
        self.log(f"   {name}: {self.seconds[name]:.1f} s")


# --------------------------------------------------------------------------- sim helpers
def _sim_config(cfg: DemoConfig):
    import sim

    return sim.SimConfig(image_size=cfg.image_size, task=cfg.task)


def _env_fn(cfg: DemoConfig):
    import functools

    import gymnasium as gym

    import sim

    return functools.partial(gym.make, sim.ENV_ID, task=cfg.task, config=_sim_config(cfg))


class _ReplayActor:
    """Plays back the joint targets the arm was actually sent.

    A recorded action is `target - measured q` (what a ros2_control arm is told, relative to where it
    was), while the sim env's action moves its *commanded* position. sim_node turns each absolute
    target into `target - commanded` (see its docstring); so does this replay, so the replayed arm
    is told what the recorded arm was told even where the two lag their commands differently.
    """

    def __init__(self, traj) -> None:
        self.targets = np.asarray(traj.joint_positions, np.float64) + np.asarray(traj.actions[:, :7], np.float64)
        self.gripper = np.asarray(traj.actions[:, 7], np.float64)
        self.t = 0
        self.base = None

    def reset(self, env) -> None:
        self.t = 0
        self.base = env.unwrapped

    def __call__(self, obs, info) -> np.ndarray:
        k = min(self.t, len(self.targets) - 1)
        self.t += 1
        delta = self.targets[k] - self.base.commanded_joint_positions
        return np.append(delta, self.gripper[k]).astype(np.float32)


def ground_truth(traj, seed: int, env) -> dict[str, float]:
    """Attach the sim's ground truth to a graph-recorded episode by replaying its commands from its seed.

    A bag holds what a real arm's topics carry: joint states, images, commands. Gold metrics also need
    object positions and contact forces, which only the simulator knows; the sim is deterministic, so
    resetting it with the episode's seed and replaying the recorded actions reproduces them. Returns the
    replay's fidelity (largest joint-position difference, rad) so the report can show it.
    """
    from rlhf.rollout import run_episode

    replay = run_episode(env, _ReplayActor(traj), seed, max_steps=len(traj))
    n = len(replay)
    idx = np.minimum(np.arange(len(traj)), n - 1)  # the replay may stop early on success
    traj.object_positions = replay.object_positions[idx]
    traj.contact_forces = np.where(np.arange(len(traj)) < n, replay.contact_forces[idx], 0.0).astype(np.float32)
    if traj.ee_positions is None:
        traj.ee_positions = replay.ee_positions[idx]
    traj.extra = {**replay.extra, **traj.extra}
    traj.seed = seed
    err = float(np.abs(replay.joint_positions[idx] - traj.joint_positions).max())
    traj.validate()
    return {"replay_max_joint_error_rad": err, "replay_steps": n, "recorded_steps": len(traj)}


# --------------------------------------------------------------------------- annotation server
class _Annotation:
    """Pairs go into the preference store; the scripted teacher labels them through the server's API."""

    def __init__(self, out: Path, episode_store, cfg: DemoConfig, log) -> None:
        import secrets

        import httpx

        from rlhf.annotate.background import BackgroundServer
        from rlhf.annotate.server import create_app
        from rlhf.prefs.store import PreferenceStore
        from rlhf.prefs.teacher import ScriptedTeacher
        from rlhf.prefs.teacher_model import TeacherConfig

        self.cfg = cfg
        self.log = log
        self.episode_store = episode_store
        self.store = PreferenceStore(out / "prefs.sqlite", seed=cfg.seed)
        token = secrets.token_urlsafe(16)
        self.server = BackgroundServer(create_app(self.store, admin_token=token)).start()
        self.admin = httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        self.teacher_cfg = TeacherConfig(beta=cfg.teacher_beta, mistake_rate=cfg.teacher_mistake_rate)
        teacher_token = ScriptedTeacher.register(self.admin, self.teacher_cfg)
        self.teacher_client = httpx.Client(
            base_url=self.server.url, headers={"Authorization": f"Bearer {teacher_token}"}, timeout=30
        )
        self.gold: dict[str, np.ndarray] = {}
        self.axes: dict[str, dict[str, float]] = {}
        self.registered: set[str] = set()
        self.campaigns: list[str] = []
        self.reports: list[dict[str, Any]] = []

    def register(self, trajs) -> None:
        """Index episodes (their videos are already in the episode store) and keep their gold numbers."""
        from rlhf.annotate.episode_source import record_from_trajectory
        from sim.metrics import gold_axis_scores, gold_step_rewards

        rows = []
        for t in trajs:
            if t.episode_id in self.registered:
                continue
            self.gold[t.episode_id] = gold_step_rewards(t)
            self.axes[t.episode_id] = gold_axis_scores(t)
            video = self.episode_store.root / self.episode_store.get(t.episode_id).video_path
            wrist = self.episode_store.wrist_video_path(t.episode_id)  # None without a wrist camera
            rows.append(record_from_trajectory(t, video, gold_axes=self.axes[t.episode_id], wrist_video_path=wrist))
            self.registered.add(t.episode_id)
        if rows:
            self.store.add_episodes(rows)

    def label_pairs(self, name: str, pairs) -> None:
        """A campaign of `pairs` ((id_a, seg_a), (id_b, seg_b)), labelled by the teacher over HTTP."""
        from rlhf.prefs.campaign import CampaignConfig
        from rlhf.prefs.teacher import ScriptedTeacher, TeacherRunConfig

        cfg = CampaignConfig(name, name=f"demo {name}", calibration_size=0, gold_rate=0.0, repeat_rate=0.0)
        self.store.create_campaign(cfg)
        self.store.add_pairs(name, [
            {"episode_a": a, "episode_b": b, "segment_a": list(sa), "segment_b": list(sb), "kind": "work"}
            for (a, sa), (b, sb) in pairs
        ])
        teacher = ScriptedTeacher(self.teacher_cfg, self.teacher_client, self.gold, self.axes)
        rep = teacher.run(TeacherRunConfig(campaign_id=name, seed=self.cfg.seed + len(self.campaigns)), progress=True)
        self.campaigns.append(name)
        self.reports.append({"campaign": name, "pairs": len(pairs), "labels": rep.labels, "cant_tell": rep.cant_tell})
        self.log(f"   teacher labelled {rep.labels} of {len(pairs)} pairs in campaign {name} via {self.server.url}")

    def triples(self):
        out = []
        for c in self.campaigns:
            out.extend(self.store.triples(c))
        return out

    def close(self) -> None:
        self.admin.close()
        self.teacher_client.close()
        self.server.close()
        self.store.close()


def _gold_agreement(model, pairs, episodes, gold) -> float:
    """Fraction of non-tie pairs whose order the reward model's segment returns get right (noise-free gold)."""
    right = total = 0
    for (a, sa), (b, sb) in pairs:
        ga, gb = gold[a][sa[0]:sa[1]].sum(), gold[b][sb[0]:sb[1]].sum()
        if ga == gb:
            continue
        ra = model.score(episodes[a].slice(*sa)).mean
        rb = model.score(episodes[b].slice(*sb)).mean
        right += (ra > rb) == (ga > gb)
        total += 1
    return right / total if total else float("nan")


# --------------------------------------------------------------------------- the stages
def _demos_and_bc(cfg: DemoConfig, out: Path, stage, facts: dict[str, Any]) -> Path:
    """Stages 1-2: scripted mixed-quality demonstrations, then BC on them; returns the checkpoint."""
    from rlhf.policy.bc import BCConfig, train_bc
    from rlhf.policy.config import PolicyConfig
    from rlhf.rollout import run_episode
    from sim.demonstrators import make_demonstrator

    with stage("1. scripted demonstrations"):
        env = _env_fn(cfg)()
        demos = [
            run_episode(env, make_demonstrator(cfg.task, "mixed", 500_000 + i), 500_000 + i, episode_id=f"demo-{i:04d}")
            for i in range(cfg.demos)
        ]
        for d in demos:
            d.save(out / "demos" / f"{d.episode_id}.npz")
        env.close()
        facts["demos"] = {"count": len(demos), "success_rate": float(np.mean([bool(d.success) for d in demos]))}

    with stage("2. behavioural cloning"):
        bc = train_bc(demos, out / "bc", BCConfig(steps=cfg.bc_steps, eval_every=0, seed=cfg.seed, device="cpu",
                                                   warmup_steps=min(200, cfg.bc_steps // 5)), PolicyConfig(image_size=cfg.image_size))
        facts["bc"] = {"steps": bc.steps, "train_seconds": bc.train_seconds}
    return bc.checkpoint


def _record_through_graph(cfg: DemoConfig, out: Path, bc_ckpt: Path, seeds: list[int], log) -> dict:
    """Run `rlhf_nodes.record_rollouts` as its own process (the core never imports rclpy)."""
    exe = shutil.which("record_rollouts")
    if exe is None:
        from importlib.util import find_spec

        if find_spec("rlhf_nodes") is None:
            raise RuntimeError("the ROS graph is not available (source ros2_ws/install/local_setup.bash, "
                               "or run with DemoConfig.graph=False)")
        exe_cmd = [sys.executable, "-m", "rlhf_nodes.record_rollouts"]
    else:
        exe_cmd = [exe]
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    report = out / "graph" / "report.json"
    cmd = exe_cmd + [
        "--policy", str(bc_ckpt), "--policy-version", "bc", "--store", str(out / "episodes"), "--task", cfg.task,
        "--seeds", ",".join(map(str, seeds)), "--image-size", str(cfg.image_size), "--stochastic",
        "--log-dir", str(out / "graph" / "logs"), "--report", str(report),
    ]
    log(f"   recording {len(seeds)} episodes through sim_node -> policy_node -> safety_node -> recorder_node")
    proc = subprocess.run(cmd, env=env, text=True, capture_output=True)
    for line in proc.stdout.splitlines():
        log(f"   {line}")
    if not report.exists():
        raise RuntimeError(f"recording through the ROS graph failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    rep = json.loads(report.read_text())
    # One episode that could not be stored must not lose the others: report it and go on with the rest.
    for err in rep.get("errors", []):
        log(f"   warning: {err}")
    if not rep.get("episodes"):
        raise RuntimeError(f"no episode was recorded through the ROS graph (exit {proc.returncode}): "
                           f"{rep.get('errors')} {proc.stderr[-2000:]}")
    return rep


def run_demo(out_dir: str | os.PathLike, cfg: DemoConfig | None = None, log=print) -> DemoResult:
    """Run every stage into `out_dir` (which must be empty or absent) and write `report.html`."""
    import torch

    from rlhf.episodes.store import EpisodeStore
    from rlhf.policy.vla import VLAPolicy
    from rlhf.reward.config import RewardConfig
    from rlhf.reward.train import train_reward_model
    from rlhf.rl.config import LoopConfig, PPOConfig
    from rlhf.rl.logging import MetricsLogger, plot_proxy_gold_kl
    from rlhf.rl.loop import RLHFLoop, same_start_pairs
    from rlhf.rl.policy_adapter import VLAAdapter
    from rlhf.rl.ppo import PPOTrainer
    from rlhf.rl.reward_shaping import EnsembleStepReward
    from rlhf.rl.rollouts import VectorRolloutCollector

    cfg = cfg or DemoConfig()
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: the demo writes a fresh folder (remove it or pass another --out)")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "demo_config.json", asdict(cfg))
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.torch_threads)
    stage = _Stages(log)
    rng = np.random.default_rng(cfg.seed)
    facts: dict[str, Any] = {"config": asdict(cfg)}

    if cfg.bc_checkpoint:
        from rlhf.policy.checkpoint import CheckpointError

        try:
            VLAPolicy.load(cfg.bc_checkpoint)  # fail now, with the checkpoint's own message
        except (CheckpointError, FileNotFoundError) as e:
            raise RuntimeError(f"bc_checkpoint {cfg.bc_checkpoint}: {e}") from e
        log(f"== 1-2. refining the trained policy {cfg.bc_checkpoint} (no demonstrations, no BC here)")
        bc_ckpt = Path(cfg.bc_checkpoint)
        facts["bc"] = {"checkpoint": str(bc_ckpt)}
    else:
        bc_ckpt = _demos_and_bc(cfg, out, stage, facts)
    env = _env_fn(cfg)()  # for the seeded replays that give graph recordings their gold metrics

    episode_store = EpisodeStore(out / "episodes")
    annotation = _Annotation(out, episode_store, cfg, log)
    try:
        seg_steps = max(2, int(round(RewardConfig().segment_seconds * _sim_config(cfg).control_hz)))
        with stage("3. BC rollouts recorded through the ROS graph"):
            seeds = [100_000 + i for i in range(cfg.graph_states) for _ in range(2)]
            graph_trajs = []
            if cfg.graph:
                rep = _record_through_graph(cfg, out, bc_ckpt, seeds, log)
                fidelity = []
                for row in rep["episodes"]:
                    t = episode_store.load(row["episode_id"])
                    fidelity.append(ground_truth(t, row["seed"], env))
                    graph_trajs.append(t)
                facts["graph"] = {"episodes": rep["episodes"], "replay": fidelity, "exit_codes": rep.get("exit_codes"),
                                  "errors": rep.get("errors", [])}
            else:
                col = VectorRolloutCollector([_env_fn(cfg)] * cfg.num_envs, VLAAdapter(VLAPolicy.load(bc_ckpt)),
                                             mode="async" if cfg.num_envs > 1 else "sync", policy_version="bc",
                                             task=cfg.task, sample_seed=cfg.seed)
                graph_trajs = [r.trajectory for r in col.collect(seeds)]
                col.close()
                for t in graph_trajs:
                    episode_store.add(t)
            # A recording shorter than one preference segment cannot be compared or scored: drop it
            # (named in the facts) instead of failing the reward stage on it.
            short = [t for t in graph_trajs if len(t) < seg_steps]
            if short:
                log(f"dropping {len(short)} recording(s) shorter than a {seg_steps}-step segment: "
                    + ", ".join(f"{t.episode_id} ({len(t)} steps)" for t in short))
            if cfg.graph:
                facts["graph"]["too_short"] = [{"episode_id": t.episode_id, "steps": len(t)} for t in short]
            graph_trajs = [t for t in graph_trajs if len(t) >= seg_steps]
            # Keep only complete same-seed pairs (a failed recording must not shift the pairing).
            by_seed: dict[int, list] = {}
            for t in graph_trajs:
                by_seed.setdefault(int(t.seed), []).append(t)
            graph_trajs = [t for ts in by_seed.values() if len(ts) >= 2 for t in ts[:2]]
            if len(graph_trajs) < 2:
                raise RuntimeError("fewer than one complete pair of episodes was recorded")

        with stage("4. scripted-teacher preferences through the annotation server"):
            annotation.register(graph_trajs)
            episodes = {t.episode_id: t for t in graph_trajs}
            pairs0 = same_start_pairs(graph_trajs, seg_steps, rng)
            annotation.label_pairs("round0", pairs0)

        rcfg = RewardConfig(epochs=cfg.reward_epochs, seed=cfg.seed, use_images=cfg.reward_use_images,
                            kinematic=cfg.reward_kinematic)
        agreement: list[dict[str, float]] = []

        def train_reward(eps, triples):
            return train_reward_model(eps, triples, rcfg, progress=False).ensemble

        with stage("5. reward model"):
            model = train_reward(episodes, annotation.triples())

        with stage("6. iterative RLHF (PPO on the action head)"):
            policy = VLAAdapter(VLAPolicy.load(bc_ckpt))
            collector = VectorRolloutCollector(
                [_env_fn(cfg)] * cfg.num_envs, policy, mode="async" if cfg.num_envs > 1 else "sync",
                policy_version="ppo", task=cfg.task, sample_seed=cfg.seed,
            )
            logger = MetricsLogger(out / "ppo", tensorboard=True)
            pcfg = PPOConfig(iterations=cfg.rounds * cfg.ppo_iterations_per_round, episodes_per_iter=cfg.episodes_per_iter,
                             kl_coef=cfg.kl_coef, num_envs=cfg.num_envs, seed=cfg.seed, checkpoint_every=0,
                             exploration_log_std=cfg.exploration_log_std,
                             critic_warmup_iterations=cfg.critic_warmup_iterations)
            trainer = PPOTrainer(policy, collector, EnsembleStepReward(model), pcfg, logger=logger,
                                 out_dir=out / "ppo", progress=True)
            pending: dict[str, Any] = {}

            def on_new_episodes(trajs):
                for t in trajs:
                    episode_store.add(t)
                annotation.register(trajs)
                pending["trajs"] = trajs

            def store_labels(eps):
                # The round's rollouts come in same-seed pairs; before training on them, measure how well the
                # current reward model orders them (a held-out check), then have the teacher label them.
                trajs = pending.pop("trajs")
                pairs = same_start_pairs(trajs, seg_steps, rng)
                agreement.append({"labels_before": float(len(annotation.triples())),
                                  "heldout_gold_agreement": _gold_agreement(trainer.reward_fn.model, pairs, eps,
                                                                            annotation.gold)})
                annotation.label_pairs(f"round{len(annotation.campaigns)}", pairs)
                return annotation.triples()

            loop = RLHFLoop(
                trainer,
                LoopConfig(rounds=cfg.rounds, pairs_per_round=cfg.pairs_per_round,
                           ppo_iterations_per_round=cfg.ppo_iterations_per_round, reward_epochs=cfg.reward_epochs,
                           labeler="store", seed=cfg.seed),
                train_reward, seg_steps, store_labels=store_labels, episodes=episodes,
                triples=annotation.triples(), logger=None, on_new_episodes=on_new_episodes,
            )
            rounds = loop.run()
            collector.close()
            logger.close()
            plot_proxy_gold_kl(out / "ppo" / "metrics.csv", out / "ppo" / "proxy_gold_kl.png", title="RLHF (PPO)")
            head_dir = out / "rlhf_head"
            policy.policy.save_head(head_dir)
            facts["rounds"] = rounds
            facts["agreement"] = agreement
            facts["overoptimisation"] = {"flagged": bool(trainer.monitor.flagged), "reasons": trainer.monitor.reasons()}

        with stage("7. paired evaluation: BC vs RLHF"):
            eval_seeds = [900_000 + i for i in range(cfg.eval_seeds)]
            evals = {}
            for name, head in (("bc", None), ("rlhf", head_dir)):
                pol = VLAPolicy.load(bc_ckpt)
                if head is not None:
                    pol.load_head(head)
                col = VectorRolloutCollector([_env_fn(cfg)] * cfg.num_envs, VLAAdapter(pol),
                                             mode="async" if cfg.num_envs > 1 else "sync", policy_version=name,
                                             task=cfg.task, sample_seed=cfg.seed)
                evals[name] = [r.trajectory for r in col.collect(eval_seeds, deterministic=True)]
                col.close()
            summary = summarise_eval(evals)
            facts["eval"] = summary
            from rlhf.episodes.video import make_pair_video

            make_pair_video(evals["bc"][0], evals["rlhf"][0], out / "bc_vs_rlhf.mp4", labels=("BC", "RLHF"))
        env.close()
        facts["annotation"] = annotation.reports
    finally:
        annotation.close()

    facts["stage_seconds"] = stage.seconds
    atomic_write_json(out / "summary.json", facts)
    from rlhf.demo_report import write_demo_report

    report = write_demo_report(out, facts)
    return DemoResult(out, report, facts, stage.seconds)


def summarise_eval(evals: dict[str, list]) -> dict[str, dict[str, float]]:
    """Per policy: gold return, success, time, jerk, safety; and vs BC (paired by seed) the gold win rate."""
    from sim.metrics import gold_metrics, gold_step_rewards

    def figures(trajs):
        m = [gold_metrics(t) for t in trajs]
        return {
            "gold": np.array([gold_step_rewards(t).sum() for t in trajs]),
            "success": np.array([x["success"] for x in m], dtype=float),
            "time": np.array([x["time_to_success_s"] for x in m], dtype=float),
            "jerk": np.array([x["mean_squared_jerk"] for x in m]),
            "speed": np.array([x["peak_ee_speed_near_objects_mps"] for x in m]),
            "collisions": np.array([x["collision_count"] for x in m], dtype=float),
        }

    base = figures(evals["bc"])
    out = {}
    for name, trajs in evals.items():
        f = figures(trajs)
        wins = np.where(f["gold"] > base["gold"], 1.0, np.where(f["gold"] == base["gold"], 0.5, 0.0))
        succ_time = f["time"][f["success"] > 0]  # failures carry the time limit, not a time to success
        out[name] = {
            "episodes": len(trajs),
            "gold_return": float(f["gold"].mean()),
            "success_rate": float(f["success"].mean()),
            "time_to_success_s": float(succ_time.mean()) if len(succ_time) else float("nan"),
            "mean_squared_jerk": float(f["jerk"].mean()),
            "peak_speed_near_objects_mps": float(f["speed"].mean()),
            "collisions_per_episode": float(f["collisions"].mean()),
            "preferred_over_bc": float(wins.mean()),
        }
    return out
