"""The policy's grasp-point features: forward kinematics against PyBullet, and how the policy uses them."""

from __future__ import annotations

import gymnasium
import numpy as np
import pybullet as pb
import pytest
import torch

import sim
from rlhf.constants import OBS_STATE
from rlhf.policy.config import PolicyConfig
from rlhf.policy.kinematics import EE_CENTRE, EE_SCALE, ee_features, grasp_point_pose
from sim import panda
from sim.config import SimConfig
from tests.policy.test_policy_checkpoint import load
from tests.policy.test_policy_checkpoint import make_policy as make_normalised_policy
from tests.policy.test_policy_model import make_batch, make_policy


def test_grasp_point_matches_pybullet_link_state():
    env = gymnasium.make(sim.ENV_ID, task="reach", config=SimConfig(task="reach", render_images=False)).unwrapped
    try:
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        for _ in range(20):
            q = rng.uniform(panda.JOINT_LOWER, panda.JOINT_UPPER)
            for j, qj in zip(panda.ARM_JOINTS, q, strict=True):
                pb.resetJointState(env.robot, j, float(qj), physicsClientId=env.client_id)
            pos, quat = env.ee_pose()
            pose = grasp_point_pose(torch.tensor(q[None])).numpy()[0]
            rot = np.array(pb.getMatrixFromQuaternion(quat)).reshape(3, 3)
            np.testing.assert_allclose(pose[:3, 3], pos, atol=1e-6)
            np.testing.assert_allclose(pose[:3, :3], rot, atol=1e-6)
            feats = ee_features(torch.tensor(q[None], dtype=torch.float32)).numpy()[0]
            np.testing.assert_allclose(feats[:3] * EE_SCALE + np.array(EE_CENTRE), pos, atol=1e-5)
            yaw = np.arctan2(rot[1, 0], rot[0, 0])
            np.testing.assert_allclose(feats[3:], [np.cos(yaw), np.sin(yaw)], atol=1e-5)
    finally:
        env.close()


def test_ee_features_reject_a_wrong_width():
    with pytest.raises(ValueError, match=r"\(B, 7\)"):
        grasp_point_pose(torch.zeros(2, 6))


def test_joint_positions_reach_the_network_through_the_grasp_point():
    # With velocities and the gripper hidden, and the state projection's joint-position columns
    # zeroed, a joint angle can only change the features through the grasp-point inputs.
    policy = make_policy(use_joint_velocities=False, use_gripper_reading=False, ee_features=True)
    with torch.no_grad():
        policy.backbone.state_proj[0].weight[:, :15] = 0.0
    batch = make_batch()
    other = dict(batch)
    other[OBS_STATE] = batch[OBS_STATE].clone()
    other[OBS_STATE][:, 1] += 0.5
    assert not torch.equal(policy.features(batch), policy.features(other))
    blind = make_policy(use_joint_velocities=False, use_gripper_reading=False, ee_features=False)
    with torch.no_grad():
        blind.backbone.state_proj[0].weight[:, :15] = 0.0
    assert torch.equal(blind.features(batch), blind.features(other))


def test_grasp_point_features_are_off_by_default_and_for_older_checkpoints():
    assert PolicyConfig().ee_features is False
    older = {k: v for k, v in PolicyConfig().to_dict().items() if k != "ee_features"}
    assert PolicyConfig.from_dict(older).ee_features is False


def test_checkpoint_with_grasp_point_features_round_trips(tmp_path):
    policy = make_normalised_policy(ee_features=True)
    loaded = load(policy.save(tmp_path / "ckpt"))
    assert loaded.config.ee_features is True
    batch = make_batch()
    assert torch.equal(policy.features(batch), loaded.features(batch))
