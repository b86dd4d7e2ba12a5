"""Helpers for the node tests: tiny checkpoints, node processes, and a probe node to talk to them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from sim.tasks import PALETTE

REPO = Path(__file__).resolve().parents[2]
INSTALL_BIN = REPO / "ros2_ws" / "install" / "rlhf_nodes" / "lib" / "rlhf_nodes"
TINY_POLICY = dict(
    image_size=32, cnn_channels=(8, 16, 16), stem_stride=2, image_tokens_side=2, d_model=32, n_heads=2,
    ff_dim=64, head_hidden=32, chunk_size=4,
)  # fmt: skip


def every_instruction() -> list[str]:
    """All instructions the sim's tasks can produce (two or more distinct colours)."""
    names = list(PALETTE)
    out = [f"move the gripper to the {a} ball" for a in names]
    for a in names:
        for b in names:
            if a != b:
                out += [f"push the {a} cube onto the {b} circle", f"pick up the {a} cube and place it on the {b} pad"]
    return out


def make_policy(seed: int = 0, action_std: float = 0.05, wrist_camera: bool = False):
    """A tiny VLAPolicy whose instruction embeddings are cached (no sentence model is ever loaded).

    `wrist_camera`: one that also needs the hand camera's frame (32 px, like the scene camera's)."""
    import torch

    from rlhf.policy.config import PolicyConfig
    from rlhf.policy.instruction_encoder import InstructionEncoder, hashed_embed_fn
    from rlhf.policy.normalizer import Normalizer
    from rlhf.policy.vla import VLAPolicy

    torch.manual_seed(seed)
    enc = InstructionEncoder(hashed_embed_fn())
    enc.encode(every_instruction())
    wrist = {"wrist_camera": True, "wrist_image_size": TINY_POLICY["image_size"]} if wrist_camera else {}
    cfg = PolicyConfig(**TINY_POLICY, **wrist)
    a = cfg.action_dim
    norm = Normalizer(
        np.zeros(cfg.state_dim), np.ones(cfg.state_dim), np.zeros(a), np.full(a, action_std),
        np.array([-0.15] * 7 + [-1.0]), np.array([0.15] * 7 + [1.0]),
    )
    return VLAPolicy(cfg, norm, enc)


def constant_head(policy, action: np.ndarray):
    """Set the head so the policy's mean action is `action` (8,) whatever it sees (raw units)."""
    import torch

    head = policy.action_head
    n = policy.normalizer
    target = (np.asarray(action, np.float64) - n.action_mean) / n.action_std
    with torch.no_grad():
        head.mean.weight.zero_()
        head.mean.bias.copy_(torch.as_tensor(np.tile(target, policy.config.chunk_size), dtype=torch.float32))
    return policy


def make_reward_checkpoint(path: Path) -> Path:
    import torch

    from rlhf.reward.checkpoint import save_checkpoint
    from rlhf.reward.ensemble import RewardEnsemble, RewardStats
    from rlhf.reward.features import FeatureStats, state_dim
    from rlhf.reward.model import RewardNet
    from rlhf.reward.synthetic import tiny_config

    torch.manual_seed(0)
    cfg = tiny_config()
    stats = FeatureStats.identity(state_dim(cfg.use_ee))
    ens = RewardEnsemble(cfg, [RewardNet(cfg), RewardNet(cfg)], stats, [RewardStats(), RewardStats()])
    return save_checkpoint(ens, path)


def start_node(name: str, env: dict, log_dir: Path, params: dict | None = None, args: list[str] | None = None):
    """Start an installed node as its own process, with parameters given on the command line."""
    cmd = [str(INSTALL_BIN / name), "--ros-args"]
    for k, v in (params or {}).items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, (list, tuple)):
            v = "[" + ",".join(str(x) for x in v) + "]"
        cmd += ["-p", f"{k}:={v}"]
    cmd += args or []
    log = open(log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed by stop_nodes
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc._log = log  # type: ignore[attr-defined]
    return proc


def stop_nodes(procs, timeout: float = 20.0) -> dict[str, int]:
    """SIGTERM every process (nodes flush on it), wait, dump and kill stragglers; returns exit codes."""
    from rlhf_nodes.processes import stop_processes

    codes = stop_processes([(Path(p.args[0]).name, p) for p in procs], timeout)
    for p in procs:
        p._log.close()
        name = Path(p.args[0]).name
        if codes[name] != 0:
            # pytest shows a failing test's stdout: the node's last words, not just its exit code
            tail = Path(p._log.name).read_text(errors="replace")[-6000:]
            print(f"--- {name} exited {codes[name]}; last lines of {p._log.name}:\n{tail}")
    return codes


def python() -> str:
    return sys.executable
