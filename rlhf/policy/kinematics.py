"""The grasp point the policy can be told about, from the joint positions it already receives.

A single fixed camera shows where the cube is, but where the fingers are relative to it must then
be computed from seven joint angles, a chain of rotations the network would otherwise have to learn
from data. `PolicyConfig.ee_features` has the policy compute the grasp point itself, exactly: no new
observation, sensor or message, the same on the sim and on a real arm. Measured on pick-and-place
(bench/results/policy.md, stops 18 and 20): it lifted a privileged-state MLP from 42 % to 74 %, but
not the pixel policy (75 of 200 episodes with and without it), so it is off by default.

The kinematics are the safety filter's (`rlhf.safety_config.ArmModel`): the Panda URDF's chain to
`panda_grasptarget`, between the fingertips. `tests/policy/test_policy_kinematics.py` checks them
against PyBullet's link state in the sim.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from rlhf.constants import NUM_ARM_JOINTS
from rlhf.safety_config import ArmModel, SafetyConfig, default_urdf

# Grasp-point features are centred and scaled to O(1) over the table workspace (x 0.2-0.7 m,
# y +-0.35 m, z 0-0.4 m) with fixed constants, so old normalisation stats stay valid.
EE_CENTRE = (0.45, 0.0, 0.2)
EE_SCALE = 0.25
EE_FEATURES_DIM = 5
"""Grasp point x, y, z (centred, scaled) and the hand's yaw as cos, sin."""


@lru_cache(maxsize=1)
def panda_model() -> ArmModel:
    """The Panda's URDF chain to the grasp point, read once."""
    cfg = SafetyConfig()
    return ArmModel(default_urdf(), cfg.joint_names, cfg.ee_link)


def grasp_point_pose(q: torch.Tensor) -> torch.Tensor:
    """Joint positions (B, 7) rad -> (B, 4, 4) float64 pose of the grasp point in the robot base frame."""
    if q.ndim != 2 or q.shape[1] != NUM_ARM_JOINTS:
        raise ValueError(f"joint positions must be (B, {NUM_ARM_JOINTS}), got {tuple(q.shape)}")
    poses = panda_model().ee_poses(q.detach().cpu().double().numpy())
    return torch.from_numpy(poses).to(q.device)


def ee_features(q: torch.Tensor) -> torch.Tensor:
    """Joint positions (B, 7) -> (B, EE_FEATURES_DIM) float32: scaled grasp point, cos/sin of hand yaw."""
    pose = grasp_point_pose(q)
    centre = torch.tensor(EE_CENTRE, dtype=pose.dtype, device=pose.device)
    pos = (pose[:, :3, 3] - centre) / EE_SCALE
    # Yaw of the hand's x axis in the table plane: the fingers' direction when the hand points down.
    yaw = torch.atan2(pose[:, 1, 0], pose[:, 0, 0])
    return torch.cat([pos, torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]], dim=1).to(torch.float32)
