"""Small stand-ins for the RL tests: a toy arm env with the sim's observation layout, and a tiny
Gaussian policy with `backbone` / `action_head` submodules implementing `rlhf.rl.policy_adapter.RLPolicy`.

The toy arm: 7 joints start at a seed-dependent random position; an action moves them by its first
7 entries (clipped to +-0.1 rad); the gold goal is all joints at 0. Episodes last 15 steps.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Normal

from rlhf.trajectory import Trajectory

MAX_DELTA = 0.1
EP_LEN = 15


class ToyArmEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, ep_len: int = EP_LEN) -> None:
        self.ep_len = ep_len
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (4, 4, 3), np.uint8),
            "joint_positions": spaces.Box(-10, 10, (7,), np.float32),
            "joint_velocities": spaces.Box(-10, 10, (7,), np.float32),
            "gripper": spaces.Box(0, 0.08, (1,), np.float32),
            "instruction": spaces.Text(64),
        })
        low = np.array([-MAX_DELTA] * 7 + [-1.0], np.float32)
        self.action_space = spaces.Box(low, -low, dtype=np.float32)
        self.q = np.zeros(7, np.float32)
        self.qd = np.zeros(7, np.float32)
        self.t = 0

    def _obs(self):
        img = np.full((4, 4, 3), int(np.clip(128 + 50 * self.q[0], 0, 255)), np.uint8)
        return {"image": img, "joint_positions": self.q.copy(), "joint_velocities": self.qd.copy(),
                "gripper": np.array([0.04], np.float32), "instruction": "reach home"}

    def _info(self):
        return {"success": bool(np.linalg.norm(self.q) < 0.1), "ee_position": self.q[:3].astype(np.float64),
                "object_positions": np.zeros((1, 3)), "contact_force": 0.0}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.q = self.np_random.uniform(-0.5, 0.5, 7).astype(np.float32)
        self.qd = np.zeros(7, np.float32)
        self.t = 0
        return self._obs(), self._info()

    def step(self, action):
        a = np.clip(np.asarray(action, np.float32), self.action_space.low, self.action_space.high)
        self.qd = a[:7] * 10.0
        self.q = self.q + a[:7]
        self.t += 1
        return self._obs(), 0.0, False, self.t >= self.ep_len, self._info()


def gold_step_rewards(traj: Trajectory) -> np.ndarray:
    """Gold: minus the distance of all joints from home, per step (after the action)."""
    q_next = traj.joint_positions + np.clip(traj.actions[:, :7], -MAX_DELTA, MAX_DELTA)
    return -np.linalg.norm(q_next, axis=1)


def hackable_step_rewards(traj: Trajectory) -> np.ndarray:
    """A proxy with a loophole: ignores joint 0's error and pays for joint 0 going positive."""
    q_next = traj.joint_positions + np.clip(traj.actions[:, :7], -MAX_DELTA, MAX_DELTA)
    return -np.linalg.norm(q_next[:, 1:], axis=1) + 3.0 * q_next[:, 0]


def gold_metrics(traj: Trajectory) -> dict[str, float]:
    q_next = traj.joint_positions[-1] + np.clip(traj.actions[-1, :7], -MAX_DELTA, MAX_DELTA)
    acc = np.diff(traj.actions[:, :7], axis=0)
    return {"success": float(np.linalg.norm(q_next) < 0.1), "final_distance": float(np.linalg.norm(q_next)),
            "jerk": float(np.mean(np.abs(acc))) if len(acc) else 0.0}


class TinyPolicy(nn.Module):
    """backbone: joint positions (7) -> features (16); action_head: features -> (mean (8), log_std (8))."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.backbone = nn.Sequential(nn.Linear(7, 16), nn.Tanh())
        self.action_head = TinyHead()


class TinyHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mean = nn.Linear(16, 8)
        self.log_std = nn.Parameter(torch.full((8,), -3.0))

    def forward(self, f):
        return self.mean(f), self.log_std.expand(f.shape[0], -1)


class TinyRLPolicy:
    """The `RLPolicy` protocol over TinyPolicy (raw units = head units)."""

    def __init__(self, seed: int = 0, bc_steps: int = 300) -> None:
        self.policy = TinyPolicy(seed)
        self.feature_dim = 16
        if bc_steps:
            self._behaviour_clone(bc_steps, seed)

    def _behaviour_clone(self, steps: int, seed: int) -> None:
        """Fit the mean to the 'go home' controller (the BC reference of the tests)."""
        g = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(self.policy.parameters(), lr=1e-2)
        for _ in range(steps):
            q = torch.rand(256, 7, generator=g) * 1.6 - 0.8
            target = torch.cat([torch.clamp(-q, -MAX_DELTA, MAX_DELTA), torch.zeros(256, 1)], 1)
            mean, _ = self.policy.action_head(self.policy.backbone(q))
            loss = ((mean - target) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.policy.zero_grad(set_to_none=True)

    def batch_from_obs(self, obs):
        return {"q": torch.as_tensor(np.asarray(obs["joint_positions"]), dtype=torch.float32)}

    def batch_from_trajectory(self, traj, start, stop):
        return {"q": torch.as_tensor(traj.joint_positions[start:stop], dtype=torch.float32)}

    def features(self, batch):
        return self.policy.backbone(batch["q"])

    def head_distribution(self, features, head=None):
        head = self.policy.action_head if head is None else head
        mean, log_std = head(features)
        return Normal(mean, log_std.exp())

    def to_env_action(self, samples):
        return np.asarray(samples, np.float32)

    def save_head(self, path):
        import pathlib

        p = pathlib.Path(path)
        p.mkdir(parents=True, exist_ok=True)
        torch.save(self.policy.action_head.state_dict(), p / "head.pt")
        return p

    def load_head(self, path):
        import pathlib

        self.policy.action_head.load_state_dict(torch.load(pathlib.Path(path) / "head.pt", weights_only=True))
        return self


def make_toy_env() -> ToyArmEnv:
    return ToyArmEnv()


def make_tiny_policy() -> TinyRLPolicy:
    return TinyRLPolicy(seed=0, bc_steps=50)
