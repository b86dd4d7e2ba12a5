"""Checkpoints: bit-exact round trips, head-only files, and every mismatch named in a CheckpointError."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlhf.policy.checkpoint import CheckpointError, write_folder_atomic
from rlhf.policy.config import PolicyConfig
from rlhf.policy.instruction_encoder import InstructionEncoder, hashed_embed_fn
from rlhf.policy.normalizer import Normalizer
from rlhf.policy.synthetic import synthetic_trajectories
from rlhf.policy.vla import VLAPolicy

TINY = dict(
    image_size=32, cnn_channels=(8, 16, 16), stem_stride=2, image_tokens_side=2, d_model=32, n_heads=2,
    ff_dim=64, head_hidden=32,
)  # fmt: skip


def make_policy(seed: int = 0, **kw) -> VLAPolicy:
    torch.manual_seed(seed)
    norm = Normalizer.from_trajectories(synthetic_trajectories(3, image_size=16))
    return VLAPolicy(PolicyConfig(**{**TINY, **kw}), norm, InstructionEncoder(hashed_embed_fn()))


def load(path, **kw) -> VLAPolicy:
    return VLAPolicy.load(path, instruction_encoder=InstructionEncoder(hashed_embed_fn()), **kw)


def obs(i: int) -> dict:
    rng = np.random.default_rng(i)
    return {
        "image": rng.integers(0, 255, (40, 40, 3), dtype=np.uint8),
        "joint_positions": rng.standard_normal(7).astype(np.float32),
        "joint_velocities": rng.standard_normal(7).astype(np.float32),
        "gripper": np.array([0.03], np.float32),
        "instruction": "move to the red dot",
    }


def test_save_load_round_trip_is_bit_exact(tmp_path):
    policy = make_policy()
    policy.select_action(obs(0))  # caches an instruction embedding, which travels with the checkpoint
    path = policy.save(tmp_path / "ckpt")
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json", "instruction_embeddings.json", "model.pt", "normalization.json"]  # fmt: skip
    loaded = load(path)
    sd1, sd2 = policy.state_dict(), loaded.state_dict()
    assert sd1.keys() == sd2.keys() and all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    assert loaded.config == policy.config
    assert loaded.normalizer.to_dict() == policy.normalizer.to_dict()
    for i in range(3):
        policy.reset()
        loaded.reset()
        assert np.array_equal(policy.select_action(obs(i)), loaded.select_action(obs(i)))
    assert loaded.instruction_encoder.encoder_calls == 0  # embedding came from the checkpoint


def test_load_checks_weights_file_digest(tmp_path):
    path = make_policy().save(tmp_path / "ckpt")
    data = bytearray((path / "model.pt").read_bytes())
    data[-100] ^= 0xFF
    (path / "model.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="weights_sha256"):
        load(path)


def test_mismatched_expected_config_names_the_field(tmp_path):
    path = make_policy().save(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="d_model: 48 != 32"):
        load(path, expected_config=PolicyConfig(**{**TINY, "d_model": 48}))


def test_mismatched_shape_names_key_and_shapes(tmp_path):
    path = make_policy().save(tmp_path / "ckpt")
    header = json.loads((path / "config.json").read_text())
    header["policy"]["head_hidden"] = 48  # config now disagrees with the stored tensors
    (path / "config.json").write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match=r"action_head\.mlp\.0\.weight.*\(32, 32\).*\(48, 32\)"):
        load(path)


def test_missing_or_bad_files_are_named(tmp_path):
    path = make_policy().save(tmp_path / "ckpt")
    (path / "normalization.json").unlink()
    with pytest.raises(CheckpointError, match="normalization.json"):
        load(path)
    path = make_policy().save(tmp_path / "ckpt2")
    header = json.loads((path / "config.json").read_text())
    header["policy"]["wings"] = 2
    (path / "config.json").write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match="wings"):
        load(path)
    with pytest.raises(CheckpointError, match="not a checkpoint folder"):
        load(tmp_path / "nowhere")


def test_structural_overrides_are_refused_non_structural_allowed(tmp_path):
    path = make_policy().save(tmp_path / "ckpt")
    assert load(path, deterministic=False).config.deterministic is False
    with pytest.raises(CheckpointError, match="d_model"):
        load(path, d_model=16)


def test_head_round_trip_and_digest(tmp_path):
    policy = make_policy()
    head_path = policy.save_head(tmp_path / "head")
    header = json.loads((head_path / "head_config.json").read_text())
    assert len(header["weights_sha256"]) == 64 and len(header["backbone_sha256"]) == 64
    other = make_policy()  # same seed -> same backbone; perturb its head
    with torch.no_grad():
        for p in other.action_head.parameters():
            p.add_(1.0)
    other.load_head(head_path)
    for k, v in policy.action_head.state_dict().items():
        assert torch.equal(v, other.action_head.state_dict()[k])


def test_head_from_another_backbone_is_refused(tmp_path):
    head_path = make_policy(seed=0).save_head(tmp_path / "head")
    stranger = make_policy(seed=1)
    with pytest.raises(CheckpointError, match="backbone_sha256"):
        stranger.load_head(head_path)
    stranger.load_head(head_path, check_backbone=False)  # explicit override works


def test_head_with_different_shape_is_refused(tmp_path):
    head_path = make_policy(chunk_size=2).save_head(tmp_path / "head")
    with pytest.raises(CheckpointError, match="chunk_size: 4 != 2"):
        make_policy(chunk_size=4).load_head(head_path, check_backbone=False)


def test_atomic_folder_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "ck"
    write_folder_atomic(target, {"a.txt": b"old"})
    write_folder_atomic(target, {"b.txt": b"new"})
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


def test_failed_write_keeps_the_old_checkpoint(tmp_path):
    target = tmp_path / "ck"
    write_folder_atomic(target, {"a.txt": b"old"})

    with pytest.raises(TypeError):
        write_folder_atomic(target, {"a.txt": b"x", "b.txt": object()})  # type: ignore[dict-item]
    assert (target / "a.txt").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]


def test_instruction_stats_centre_embeddings_and_travel_with_the_checkpoint(tmp_path):
    demos = synthetic_trajectories(6, image_size=16)
    enc = InstructionEncoder(hashed_embed_fn())
    norm = Normalizer.from_trajectories(demos, enc)
    emb = torch.from_numpy(enc.encode(sorted({d.instruction for d in demos})))
    centred = norm.normalize_instruction(emb)
    assert torch.allclose(centred.mean(0), torch.zeros(384), atol=1e-5)
    assert float(centred.norm(dim=1).pow(2).mean().sqrt()) == pytest.approx(1.0, rel=1e-4)
    policy = VLAPolicy(PolicyConfig(**TINY), norm, enc)
    loaded = load(policy.save(tmp_path / "ck"))
    assert np.array_equal(loaded.normalizer.instruction_mean, norm.instruction_mean)
    assert loaded.normalizer.instruction_scale == norm.instruction_scale
    # One distinct instruction: centred to zero, but never scaled up.
    single = Normalizer.from_trajectories(demos[:1], enc)
    assert single.instruction_scale == 1.0


def test_wrist_camera_checkpoint_round_trips_and_is_refused_by_a_plain_config(tmp_path):
    policy = make_policy(wrist_camera=True, wrist_image_size=16)
    o = {**obs(0), "wrist_image": np.random.default_rng(5).integers(0, 255, (16, 16, 3), dtype=np.uint8)}
    path = policy.save(tmp_path / "ckpt")
    loaded = load(path)
    assert loaded.config.wrist_camera and loaded.backbone.wrist_encoder is not None
    sd1, sd2 = policy.state_dict(), loaded.state_dict()
    assert sd1.keys() == sd2.keys() and all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    assert np.array_equal(policy.select_action(o), loaded.select_action(o))
    with pytest.raises(CheckpointError, match="wrist_camera"):
        load(path, expected_config=PolicyConfig(**TINY))
