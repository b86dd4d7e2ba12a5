"""`PolicyConfig.scene_memory`: the policy also reads its episode's first frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlhf.constants import ACTION, OBS_IMAGE, OBS_SCENE_IMAGE, OBS_STATE
from rlhf.policy.config import PolicyConfig
from rlhf.policy.dataset import BCDataset
from rlhf.policy.instruction_encoder import InstructionEncoder, hashed_embed_fn
from rlhf.policy.synthetic import synthetic_trajectories
from rlhf.policy.vla import VLAPolicy
from rlhf.rl.policy_adapter import VLAAdapter

TINY = dict(
    image_size=32, cnn_channels=(8, 16, 16), stem_stride=2, image_tokens_side=2, d_model=32, n_heads=2,
    ff_dim=64, head_hidden=32,
)  # fmt: skip


def make_policy(**kw) -> VLAPolicy:
    torch.manual_seed(0)
    return VLAPolicy(PolicyConfig(**{**TINY, **kw}), instruction_encoder=InstructionEncoder(hashed_embed_fn()))


def make_obs(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
        "joint_positions": rng.standard_normal(7).astype(np.float32),
        "joint_velocities": np.zeros(7, np.float32),
        "gripper": np.array([0.04], np.float32),
        "instruction": "put the red cube on the green pad",
    }


def test_scene_memory_is_off_by_default_and_for_older_checkpoints():
    assert PolicyConfig().scene_memory is False
    older = {k: v for k, v in PolicyConfig().to_dict().items() if k != "scene_memory"}
    assert PolicyConfig.from_dict(older).scene_memory is False
    assert not hasattr(make_policy().backbone, "scene_proj")


def test_features_read_the_scene_frame_and_a_missing_one_is_named():
    policy = make_policy(scene_memory=True).eval()
    batch = policy.obs_to_batch(make_obs(0))
    other = dict(batch, **{OBS_SCENE_IMAGE: torch.rand(1, 3, 32, 32)})
    assert not torch.allclose(policy.features(batch), policy.features(other))
    # The current frame still matters.
    moved = dict(batch, **{OBS_IMAGE: torch.rand(1, 3, 32, 32)})
    assert not torch.allclose(policy.features(batch), policy.features(moved))
    del batch[OBS_SCENE_IMAGE]
    with pytest.raises(KeyError, match="first frame"):
        policy.features(batch)


def test_select_action_keeps_the_first_frame_until_reset():
    policy = make_policy(scene_memory=True)
    first, later = make_obs(0), make_obs(1)
    b0 = policy.obs_to_batch(first)
    b1 = policy.obs_to_batch(later)
    assert torch.equal(b1[OBS_SCENE_IMAGE], b0[OBS_IMAGE])  # still the episode's first frame
    assert not torch.equal(b1[OBS_IMAGE], b0[OBS_IMAGE])
    policy.reset()
    b2 = policy.obs_to_batch(later)
    assert torch.equal(b2[OBS_SCENE_IMAGE], b2[OBS_IMAGE])  # a new episode starts from its own frame
    # A policy without the option never adds the key.
    assert OBS_SCENE_IMAGE not in make_policy().obs_to_batch(first)


def test_the_first_frame_is_read_without_gradients_into_the_cnn():
    policy = make_policy(scene_memory=True)
    batch = policy.obs_to_batch(make_obs(0))
    current = batch[OBS_IMAGE].clone().requires_grad_(True)
    scene = torch.rand(1, 3, 32, 32, requires_grad=True)
    loss, _ = policy(dict(batch, **{OBS_IMAGE: current, OBS_SCENE_IMAGE: scene, ACTION: torch.ones(1, 4, 8)}))
    loss.backward()
    assert current.grad is not None and current.grad.abs().sum() > 0
    assert scene.grad is None  # the CNN learns through the current frame only
    assert policy.backbone.scene_proj.weight.grad.abs().sum() > 0  # the scene token's projection learns


def test_dataset_and_rl_batches_carry_each_episodes_first_frame():
    demos = synthetic_trajectories(2, steps=5, image_size=32)
    data = BCDataset(demos, 32, 4, InstructionEncoder(hashed_embed_fn()), scene_frames=True)
    batch = data.batch(torch.tensor([3, 5, 9]))
    first = [torch.from_numpy(demos[e].images[0]).permute(2, 0, 1).float() / 255.0 for e in (0, 1, 1)]
    torch.testing.assert_close(batch[OBS_SCENE_IMAGE], torch.stack(first))
    assert OBS_SCENE_IMAGE not in BCDataset(demos, 32, 4, InstructionEncoder(hashed_embed_fn())).batch(torch.tensor([0]))
    policy = make_policy(scene_memory=True)
    rl_batch = VLAAdapter(policy).batch_from_trajectory(demos[1], 2, 5)
    assert rl_batch[OBS_SCENE_IMAGE].shape == (3, 32, 32, 3)
    assert np.array_equal(rl_batch[OBS_SCENE_IMAGE][2], demos[1].images[0])
    assert policy.features(rl_batch).shape == (3, 32) and rl_batch[OBS_STATE].shape[0] == 3


def test_scene_memory_checkpoint_round_trips(tmp_path):
    policy = make_policy(scene_memory=True).eval()
    batch = policy.obs_to_batch(make_obs(0))
    policy.save(tmp_path / "ck")
    loaded = VLAPolicy.load(tmp_path / "ck", instruction_encoder=InstructionEncoder(hashed_embed_fn())).eval()
    assert loaded.config.scene_memory
    torch.testing.assert_close(loaded.features(batch), policy.features(batch), rtol=0, atol=0)
