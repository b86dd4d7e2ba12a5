"""How far can behavioural cloning get on these demos if perception were perfect?

Trains an MLP on the *true* scene state (grasp point, object positions, optionally the cube's yaw)
instead of pixels, then rolls it out in the sim without rendering. Its success rate is a ceiling
for the pixel policy trained on the same demos: a gap below it is perception; a low ceiling is
control (the demos, the action space, compounding error). Minutes on one core.

    python bench/probe_privileged_bc.py --demos d_pp_2k --task pick_place --yaw
    python bench/probe_privileged_bc.py --demos d_pp_2k --task pick_place --yaw --noise-xy 0.01
    python bench/probe_privileged_bc.py --demos d_pp_2k --task pick_place --yaw --joints-only

Prints one RESULT line with the settings and the success count.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import gymnasium
import numpy as np
import torch
from tqdm import tqdm

import sim
from rlhf.demos import load_demos
from rlhf.policy.bc import select_demos
from rlhf.policy.evaluate import EVAL_SEED_OFFSET as EVAL_SEED  # the seeds of rlhf policy eval
from sim.config import SimConfig

OPEN = 1.0  # gripper command: +1 open, -1 closed


@dataclass
class ProbeConfig:
    yaw: bool = False
    """Give the net the cube's yaw as sin/cos(4 yaw) (the cube looks the same every 90 degrees)."""
    joints_only: bool = False
    """Drop the grasp point and the object-minus-grasp-point offsets: the net must learn the arm's
    forward kinematics from the joint angles, as a pixel policy without `ee_features` must."""
    noise_xy: float = 0.0
    """Std (m) of a per-episode constant error added to every object's x, y at evaluation: a
    perception error of that size."""
    noise_z: float = 0.0
    """The same for z."""
    last_gripper_command: bool = False
    """Also give the gripper command of the previous step (the arm's controller knows what it was
    last told): a phase signal, since the gripper reading lags the command."""
    velocities: bool = False
    """Also give the joint velocities, as the pixel policy's proprioception does by default."""


def features(cfg: ProbeConfig, q, qd, gripper, ee, objects, yaw: float, last_command: float) -> np.ndarray:
    parts = [q, np.atleast_1d(gripper)]
    if cfg.velocities:
        parts.append(qd)
    if cfg.last_gripper_command:
        parts.append([last_command])
    if cfg.joints_only:
        parts.append(objects.reshape(-1))
    else:
        parts += [ee, (objects - ee).reshape(-1), objects.reshape(-1)]
    if cfg.yaw:
        parts.append([np.sin(4 * yaw), np.cos(4 * yaw)])
    return np.concatenate(parts).astype(np.float32)


def pixel_perception(run: str, head_path: str | None):
    """(obs -> (K, 3) object offsets from the grasp point, m, read from the camera; the run's sim config)."""
    from pathlib import Path

    from rlhf.policy.bc import AUX_HEAD_FILE, load_aux_head, perceived_offsets
    from rlhf.policy.vla import VLAPolicy

    policy = VLAPolicy.load(Path(run) / "policy").eval()
    head = load_aux_head(head_path or Path(run) / AUX_HEAD_FILE)
    return (lambda obs: perceived_offsets(policy, head, obs)), policy.config.extra["sim_config"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demos", required=True, action="append", help="demo folder (repeatable)")
    ap.add_argument("--task", required=True)
    ap.add_argument("--keep-fraction", type=float, default=0.8)
    ap.add_argument("--steps", type=int, default=15000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--yaw", action="store_true")
    ap.add_argument("--joints-only", action="store_true")
    ap.add_argument("--noise-xy", type=float, default=0.0)
    ap.add_argument("--noise-z", type=float, default=0.0)
    ap.add_argument("--last-gripper-command", action="store_true")
    ap.add_argument("--velocities", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--perception-run", default=None,
                    help="at evaluation, read the objects' offsets from the grasp point off this pixel policy's "
                         "backbone (an `rlhf bc train --out` folder) instead of the sim: is its perception enough?")
    ap.add_argument("--perception-axes", default="xyz", choices=("xyz", "xy", "z"),
                    help="which axes come from --perception-run (the others stay the sim's)")
    ap.add_argument("--perception-head", default=None,
                    help="the offset head to use with --perception-run (default: its aux_head.pt)")
    args = ap.parse_args()
    cfg = ProbeConfig(args.yaw, args.joints_only, args.noise_xy, args.noise_z, args.last_gripper_command, args.velocities)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    perceive, perceived_axes = None, {"xyz": [0, 1, 2], "xy": [0, 1], "z": [2]}[args.perception_axes]
    if args.perception_run:
        perceive, sim_config = pixel_perception(args.perception_run, args.perception_head)
        env_config = SimConfig(**{**sim_config, "task": args.task})
    else:
        env_config = SimConfig(task=args.task, render_images=False)
    env = gymnasium.make(sim.ENV_ID, task=args.task, config=env_config).unwrapped

    def initial_yaw(seed: int | None) -> float:
        if seed is None:
            raise SystemExit("error: --yaw needs demos that record their seed")
        env.reset(seed=seed)
        return float(env.object_yaws()[0])

    demos = select_demos([t for d in args.demos for t in load_demos(d, image_size=8)], True, args.keep_fraction)
    xs, ys = [], []
    for t in tqdm(demos, desc="features", unit="ep"):
        # The cube keeps its initial yaw until it is grasped, when the grasp fixes it to the hand.
        yaw = initial_yaw(t.seed) if cfg.yaw else 0.0
        for i in range(len(t)):
            last = float(t.actions[i - 1, -1]) if i > 0 else OPEN  # the env starts with the gripper open
            xs.append(features(cfg, t.joint_positions[i], t.joint_velocities[i], t.gripper[i], t.ee_positions[i], t.object_positions[i], yaw, last))
        ys.append(t.actions.astype(np.float32))
    x, y = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.concatenate(ys))
    x_mean, x_std = x.mean(0), x.std(0) + 1e-6
    y_mean, y_std = y.mean(0), y.std(0) + 1e-6
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 256), torch.nn.GELU(), torch.nn.Linear(256, 256), torch.nn.GELU(),
        torch.nn.Linear(256, y.shape[1]),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    t0 = time.perf_counter()
    for _ in tqdm(range(args.steps), desc="train", unit="step"):
        idx = torch.randint(0, len(x), (args.batch_size,))
        loss = ((net((x[idx] - x_mean) / x_std) - (y[idx] - y_mean) / y_std) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    train_s = time.perf_counter() - t0

    successes, perception_sq = 0, []
    for k in tqdm(range(args.episodes), desc="eval", unit="ep"):
        seed = EVAL_SEED + k
        obs, info = env.reset(seed=seed)
        yaw = float(env.object_yaws()[0])
        rng = np.random.default_rng(seed)
        n_obj = env.object_positions().shape[0]
        bias = rng.normal(0.0, 1.0, (n_obj, 3)) * np.array([cfg.noise_xy, cfg.noise_xy, cfg.noise_z])
        done, last = False, OPEN
        while not done:
            ee = env.ee_pose()[0]
            objects = env.object_positions() + bias
            if perceive is not None:
                true_objects, objects = objects, objects.copy()
                objects[:, perceived_axes] = (ee + perceive(obs))[:, perceived_axes]
                perception_sq.append((objects - true_objects) ** 2)
            f = features(cfg, obs["joint_positions"], obs["joint_velocities"], obs["gripper"], ee, objects, yaw, last)
            with torch.no_grad():
                action = (net((torch.from_numpy(f) - x_mean) / x_std) * y_std + y_mean).numpy()
            last = float(np.clip(action[-1], -1.0, 1.0))
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes += bool(info.get("success"))
    print(
        f"RESULT task={args.task} demos_used={len(demos)} frames={len(x)} steps={args.steps} batch={args.batch_size} "
        f"final_loss={float(loss.detach()):.3f} train_s={train_s:.0f} {cfg} success {successes}/{args.episodes}"
    )
    if perception_sq:
        rms_cm = np.sqrt(np.mean(perception_sq, axis=0)) * 100.0  # (K, 3)
        print(f"PERCEPTION rms error in these rollouts, cm, per object (x, y, z): {np.round(rms_cm, 2).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
