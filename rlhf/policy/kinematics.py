"""Forward kinematics of the Franka Panda in torch: the grasp point the policy is told about.

A single fixed camera shows where the cube is, but where the fingers are relative to it must then
be computed from seven joint angles, a chain of rotations the network would otherwise have to learn
from data. `PolicyConfig.ee_features` has the policy compute the grasp point itself, exactly, from
the joint positions it already receives: no new observation, sensor or message, the same on the sim
and on a real arm. Measured on pick-and-place (bench/results/policy.md, stop 18): it lifted a
privileged-state MLP from 42 % to 74 %, but not the pixel policy, so it is off by default.

The chain is the Panda's published modified Denavit-Hartenberg table (Craig's convention), then the
flange (0.107 m), the hand's -45 degree mount and the grasp point 0.105 m beyond the flange (the
sim's `panda_grasptarget`, between the fingertips). `tests/policy/test_policy_kinematics.py` checks
it against PyBullet's link state to 1e-6 m.
"""

from __future__ import annotations

import math

import torch

# (a, d, alpha) per joint, metres and radians; theta is the joint angle.
PANDA_DH: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.333, 0.0),
    (0.0, 0.0, -math.pi / 2),
    (0.0, 0.316, math.pi / 2),
    (0.0825, 0.0, math.pi / 2),
    (-0.0825, 0.384, -math.pi / 2),
    (0.0, 0.0, math.pi / 2),
    (0.088, 0.0, math.pi / 2),
)
FLANGE_D = 0.107
GRASP_POINT_D = 0.105  # beyond the flange, along the hand's z axis
HAND_YAW = -math.pi / 4  # the hand is mounted rotated about the flange's z axis

# Grasp-point features are centred and scaled to O(1) over the table workspace (x 0.2-0.7 m,
# y +-0.35 m, z 0-0.4 m) with fixed constants, so old normalisation stats stay valid.
EE_CENTRE = (0.45, 0.0, 0.2)
EE_SCALE = 0.25
EE_FEATURES_DIM = 5
"""Grasp point x, y, z (centred, scaled) and the hand's yaw as cos, sin."""


def _link_transforms(theta: torch.Tensor) -> torch.Tensor:
    """Angles (B, 8) (seven joints, then the fixed tool) -> (B, 8, 4, 4) modified-DH transforms.

    Built in one batch of tensor ops: per-joint small ops cost more than the arithmetic at B = 1.
    """
    a, d, alpha = (
        torch.tensor(col, dtype=theta.dtype, device=theta.device)
        for col in zip(*PANDA_DH, (0.0, FLANGE_D + GRASP_POINT_D, 0.0), strict=True)
    )
    ct, st = torch.cos(theta), torch.sin(theta)
    ca, sa = torch.cos(alpha).expand_as(theta), torch.sin(alpha).expand_as(theta)
    zero, one = torch.zeros_like(theta), torch.ones_like(theta)
    a, d = a.expand_as(theta), d.expand_as(theta)
    rows = torch.stack(
        [ct, -st, zero, a,
         st * ca, ct * ca, -sa, -d * sa,
         st * sa, ct * sa, ca, d * ca,
         zero, zero, zero, one], dim=-1,
    )  # fmt: skip
    return rows.view(*theta.shape, 4, 4)


def grasp_point_pose(q: torch.Tensor) -> torch.Tensor:
    """Joint positions (B, 7) rad -> (B, 4, 4) pose of the grasp point in the robot base frame."""
    if q.ndim != 2 or q.shape[1] != len(PANDA_DH):
        raise ValueError(f"joint positions must be (B, {len(PANDA_DH)}), got {tuple(q.shape)}")
    q = q.to(torch.float64)  # the chain multiplies eight transforms; float32 loses ~1e-6 m each
    theta = torch.cat([q, torch.full_like(q[:, :1], HAND_YAW)], dim=1)
    links = _link_transforms(theta)
    pose = links[:, 0]
    for j in range(1, links.shape[1]):
        pose = pose @ links[:, j]
    return pose


def ee_features(q: torch.Tensor) -> torch.Tensor:
    """Joint positions (B, 7) -> (B, EE_FEATURES_DIM) float32: scaled grasp point, cos/sin of hand yaw."""
    pose = grasp_point_pose(q)
    centre = torch.tensor(EE_CENTRE, dtype=pose.dtype, device=pose.device)
    pos = (pose[:, :3, 3] - centre) / EE_SCALE
    # Yaw of the hand's x axis in the table plane: the fingers' direction when the hand points down.
    yaw = torch.atan2(pose[:, 1, 0], pose[:, 0, 0])
    return torch.cat([pos, torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]], dim=1).to(torch.float32)
