"""VLAPolicy: shapes, the action queue, the Gaussian, freezing the backbone, config validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlhf.constants import ACTION, ACTION_IS_PAD, OBS_IMAGE, OBS_INSTRUCTION, OBS_INSTRUCTION_EMB, OBS_STATE
from rlhf.policy.config import PolicyConfig
from rlhf.policy.instruction_encoder import InstructionEncoder, hashed_embed_fn
from rlhf.policy.vla import VLAPolicy

TINY = dict(
    image_size=32, cnn_channels=(8, 16, 16), stem_stride=2, image_tokens_side=2, d_model=32, n_heads=2,
    ff_dim=64, head_hidden=32,
)  # fmt: skip


def make_policy(**kw) -> VLAPolicy:
    torch.manual_seed(0)
    return VLAPolicy(PolicyConfig(**{**TINY, **kw}), instruction_encoder=InstructionEncoder(hashed_embed_fn()))


def make_batch(b: int = 4, size: int = 32, chunk: int = 4) -> dict:
    g = torch.Generator().manual_seed(1)
    return {
        OBS_IMAGE: torch.rand(b, 3, size, size, generator=g),
        OBS_STATE: torch.randn(b, 15, generator=g),
        OBS_INSTRUCTION: ["reach the red ball", "reach the blue ball"] * (b // 2),
        ACTION: torch.randn(b, chunk, 8, generator=g) * 0.05,
    }


def make_obs(size: int = 48, instruction: str = "reach the red ball") -> dict:
    rng = np.random.default_rng(0)
    return {
        "image": rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
        "joint_positions": rng.standard_normal(7).astype(np.float32),
        "joint_velocities": np.zeros(7, np.float32),
        "gripper": np.array([0.04], np.float32),
        "instruction": instruction,
    }


def test_forward_returns_scalar_loss_and_namespaced_metrics():
    policy = make_policy()
    loss, metrics = policy(make_batch())
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert {"losses/bc_loss", "losses/action_mse", "losses/action_nll"} <= set(metrics)
    assert all(k.count("/") == 1 for k in metrics)


def test_padded_chunk_steps_do_not_count():
    policy = make_policy()
    batch = make_batch()
    pad = torch.zeros(4, 4, dtype=torch.bool)
    pad[:, 1:] = True
    batch[ACTION_IS_PAD] = pad
    _, m1 = policy(batch)
    batch[ACTION] = batch[ACTION].clone()
    batch[ACTION][:, 1:] += 100.0  # garbage where padded
    _, m2 = policy(batch)
    assert m1["losses/action_mse"] == pytest.approx(m2["losses/action_mse"], rel=1e-6)


def test_features_distribution_and_log_prob_shapes():
    policy = make_policy()
    batch = make_batch()
    assert policy.features(batch).shape == (4, 32)
    dist = policy.distribution(batch)
    assert dist.loc.shape == (4, 8) and dist.scale.shape == (4, 8)
    lp = policy.log_prob(batch, dist.loc.detach())
    assert lp.shape == (4,)
    # The mean is the most likely action: any shift lowers the log-density.
    assert torch.all(lp > policy.log_prob(batch, dist.loc.detach() + 0.5 * dist.scale.detach()))


def test_precomputed_embeddings_equal_instruction_strings():
    policy = make_policy()
    batch = make_batch()
    emb = torch.from_numpy(policy.instruction_encoder.encode(batch[OBS_INSTRUCTION]))
    by_text = policy.features(batch)
    batch2 = {k: v for k, v in batch.items() if k != OBS_INSTRUCTION}
    batch2[OBS_INSTRUCTION_EMB] = emb
    assert torch.equal(by_text, policy.features(batch2))


def test_state_dependent_std_option():
    policy = make_policy(state_dependent_std=True)
    dist = policy.distribution(make_batch())
    assert dist.scale.shape == (4, 8) and torch.all(dist.scale > 0)


def test_select_action_shape_and_bounds():
    policy = make_policy()
    a = policy.select_action(make_obs())
    assert a.shape == (8,) and a.dtype == np.float32
    assert -1.0 <= a[-1] <= 1.0


def test_action_queue_predicts_once_per_n_action_steps():
    policy = make_policy(chunk_size=4, n_action_steps=3)
    calls = []
    handle = policy.backbone.register_forward_hook(lambda *a: calls.append(1))
    obs = make_obs()
    for _ in range(6):
        policy.select_action(obs)
    assert len(calls) == 2
    policy.reset()
    policy.select_action(obs)
    assert len(calls) == 3
    handle.remove()


def test_temporal_ensemble_averages_each_steps_predictions_by_age():
    k = 0.5
    policy = make_policy(chunk_size=3, temporal_ensemble=k)
    reference = make_policy(chunk_size=3)  # same seed, same weights: its chunks are the predictions
    rng = np.random.default_rng(3)
    observations = []
    for _ in range(5):
        o = make_obs()
        o["joint_positions"] = rng.standard_normal(7).astype(np.float32)
        observations.append(o)
    chunks = [reference.predict_chunk(o) for o in observations]
    for t, o in enumerate(observations):
        got = policy.select_action(o)
        ages = range(min(t, 2) + 1)  # chunks predicted at t, t-1, t-2 (at most chunk_size of them)
        w = np.array([np.exp(-k * a) for a in ages])
        want = sum(wi * chunks[t - a][a] for wi, a in zip(w, ages, strict=True)) / w.sum()
        np.testing.assert_allclose(got, reference.clip_action(want), rtol=1e-5, atol=1e-6)
    policy.reset()  # a new episode starts from its own first prediction only
    np.testing.assert_allclose(policy.select_action(observations[4]), chunks[4][0], rtol=1e-5, atol=1e-6)


def test_instruction_embedding_is_computed_once_per_instruction():
    policy = make_policy()
    for _ in range(5):
        policy.select_action(make_obs(instruction="reach the red ball"))
    policy.select_action(make_obs(instruction="reach the blue ball"))
    assert policy.instruction_encoder.encoder_calls == 2


def test_sentence_encoder_is_not_a_trainable_parameter():
    policy = make_policy()
    names = [n for n, _ in policy.named_parameters()]
    assert all(n.startswith(("backbone.", "action_head.")) for n in names)
    assert sum(p.numel() for p in policy.parameters()) < 1_000_000  # MiniLM alone has 22M


def test_freeze_backbone_one_step_changes_head_only():
    policy = make_policy()
    policy.freeze_backbone()
    before_backbone = {k: v.clone() for k, v in policy.backbone.state_dict().items()}
    before_head = {k: v.clone() for k, v in policy.action_head.state_dict().items()}
    opt = torch.optim.Adam(policy.trainable_parameters(), lr=1e-2)
    loss, _ = policy(make_batch())
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert all(torch.equal(before_backbone[k], v) for k, v in policy.backbone.state_dict().items())
    changed = [k for k, v in policy.action_head.state_dict().items() if not torch.equal(before_head[k], v)]
    assert set(changed) == set(before_head)  # every head tensor moved
    assert all(p.grad is None for p in policy.backbone.parameters())


def test_freeze_backbone_with_all_params_in_optimizer_still_leaves_backbone():
    # PPO code may build its optimiser from policy.parameters(): frozen params get no grad, no update.
    policy = make_policy()
    policy.freeze_backbone()
    before = {k: v.clone() for k, v in policy.backbone.state_dict().items()}
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2, weight_decay=0.1)
    loss, _ = policy(make_batch())
    loss.backward()
    opt.step()
    assert all(torch.equal(before[k], v) for k, v in policy.backbone.state_dict().items())


@pytest.mark.parametrize(
    ("field", "value"),
    [("d_model", 0), ("n_heads", 3), ("n_action_steps", 9), ("image_size", 30), ("dropout", 1.5),
     ("log_std_init", 3.0), ("image_tokens_side", 5)],
)  # fmt: skip
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        PolicyConfig(**{**TINY, field: value})


def test_bad_batch_names_the_key():
    policy = make_policy()
    batch = make_batch()
    batch[OBS_STATE] = torch.zeros(4, 9)
    with pytest.raises(ValueError, match=OBS_STATE):
        policy(batch)
    with pytest.raises(KeyError, match=OBS_IMAGE):
        policy.features({OBS_STATE: torch.zeros(4, 15)})


def test_head_distribution_from_cached_features_matches_distribution():
    policy = make_policy()
    batch = make_batch()
    with torch.no_grad():
        feats = policy.features(batch)
        a, b = policy.distribution(batch), policy.head_distribution(feats)
    assert torch.equal(a.loc, b.loc) and torch.equal(a.scale, b.scale)


def test_hidden_velocities_do_not_change_the_output():
    policy = make_policy(use_joint_velocities=False)
    batch = make_batch()
    other = dict(batch)
    other[OBS_STATE] = batch[OBS_STATE].clone()
    other[OBS_STATE][:, 7:14] += 5.0  # velocities only
    assert torch.equal(policy.features(batch), policy.features(other))
    other[OBS_STATE][:, 0] += 1.0  # a joint position does matter
    assert not torch.equal(policy.features(batch), policy.features(other))


def test_hidden_gripper_reading_does_not_change_the_output():
    policy = make_policy(use_gripper_reading=False)
    batch = make_batch()
    other = dict(batch)
    other[OBS_STATE] = batch[OBS_STATE].clone()
    other[OBS_STATE][:, 14] += 0.05  # the gripper opening only
    assert torch.equal(policy.features(batch), policy.features(other))
    other[OBS_STATE][:, 7] += 1.0  # a joint velocity does matter
    assert not torch.equal(policy.features(batch), policy.features(other))
    grip_only = dict(batch)
    grip_only[OBS_STATE] = batch[OBS_STATE].clone()
    grip_only[OBS_STATE][:, 14] += 0.05
    seen = make_policy()  # the default sees the reading
    assert not torch.equal(seen.features(batch), seen.features(grip_only))


def test_wrist_camera_policy_reads_the_wrist_frames():
    from rlhf.constants import OBS_WRIST_IMAGE

    policy = make_policy(wrist_camera=True, wrist_image_size=16)
    batch = make_batch()
    with pytest.raises(KeyError, match=OBS_WRIST_IMAGE):
        policy.features(batch)
    g = torch.Generator().manual_seed(3)
    batch[OBS_WRIST_IMAGE] = torch.rand(4, 3, 16, 16, generator=g)
    f1 = policy.features(batch)
    batch[OBS_WRIST_IMAGE] = torch.rand(4, 3, 16, 16, generator=g)
    assert not torch.allclose(f1, policy.features(batch))  # the wrist view reaches the features
    # Raw uint8 frames of another size are resized, as for the scene camera.
    batch[OBS_WRIST_IMAGE] = np.zeros((4, 24, 24, 3), np.uint8)
    assert policy.features(batch).shape == (4, 32)
    obs = make_obs()
    with pytest.raises(KeyError, match="wrist_image"):
        policy.select_action(obs)
    assert policy.select_action({**obs, "wrist_image": np.zeros((20, 20, 3), np.uint8)}).shape == (8,)
    # The wrist CNN is part of the backbone: freezing it freezes the wrist CNN too.
    policy.freeze_backbone()
    assert not any(p.requires_grad for p in policy.backbone.wrist_encoder.parameters())
    plain = make_policy()
    with pytest.raises(ValueError, match="no wrist camera encoder"):
        plain.backbone(*plain.prepare(make_batch()), torch.zeros(4, 3, 16, 16))
    with pytest.raises(ValueError, match="wrist_image_size"):
        PolicyConfig(**{**TINY, "wrist_camera": True, "wrist_image_size": 20})


def test_wrist_dropout_hides_the_wrist_view_in_training_only():
    from rlhf.constants import OBS_WRIST_IMAGE

    policy = make_policy(wrist_camera=True, wrist_image_size=16, wrist_dropout=0.9)
    batch = make_batch(b=64)
    g = torch.Generator().manual_seed(4)
    a, b = torch.rand(64, 3, 16, 16, generator=g), torch.rand(64, 3, 16, 16, generator=g)
    policy.train()
    torch.manual_seed(0)
    fa = policy.features({**batch, OBS_WRIST_IMAGE: a})
    torch.manual_seed(0)  # the same samples hidden
    fb = policy.features({**batch, OBS_WRIST_IMAGE: b})
    same = torch.isclose(fa, fb, atol=1e-6).all(1)
    assert 0.75 < same.float().mean() < 1.0  # ~90 % of the samples never saw their wrist frames
    policy.eval()
    same = torch.isclose(policy.features({**batch, OBS_WRIST_IMAGE: a}), policy.features({**batch, OBS_WRIST_IMAGE: b}),
                         atol=1e-6).all(1)  # fmt: skip
    assert not same.any()
    with pytest.raises(ValueError, match="wrist_dropout"):
        PolicyConfig(**{**TINY, "wrist_dropout": 1.0})
