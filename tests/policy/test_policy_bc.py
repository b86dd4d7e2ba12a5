"""Behavioural cloning on synthetic demonstrations, the demo filter, the LR schedule, the encoder cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlhf.constants import ACTION, ACTION_IS_PAD, OBS_IMAGE
from rlhf.policy.bc import AUX_HEAD_FILE, AUX_SCALE_M, BCConfig, load_aux_head, lr_at, select_demos, train_bc
from rlhf.policy.config import PolicyConfig
from rlhf.policy.dataset import AUX_OBJECT_OFFSETS, BCDataset
from rlhf.policy.instruction_encoder import InstructionEncoder, InstructionEncoderError, hashed_embed_fn
from rlhf.policy.synthetic import synthetic_trajectories
from rlhf.policy.vla import VLAPolicy

TINY = PolicyConfig(
    image_size=32, cnn_channels=(8, 16, 16), stem_stride=2, image_tokens_side=2, d_model=32, n_heads=2,
    ff_dim=64, head_hidden=32,
)  # fmt: skip


def test_tiny_bc_run_lowers_the_loss_and_writes_outputs(tmp_path):
    torch.set_num_threads(1)
    demos = synthetic_trajectories(12, steps=15, image_size=32)
    evals = []

    def eval_fn(policy, final):
        evals.append(final)
        return {"eval/success_rate": 0.5 if final else 0.25}

    cfg = BCConfig(steps=120, batch_size=32, lr=3e-3, warmup_steps=10, log_every=10, eval_every=60,
                   device="cpu")  # fmt: skip
    result = train_bc(demos, tmp_path, cfg, TINY, eval_fn=eval_fn,
                      instruction_encoder=InstructionEncoder(hashed_embed_fn()), progress=False)  # fmt: skip
    losses = [h["losses/bc_loss"] for h in result.history if "losses/bc_loss" in h]
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:2])
    aux = [h["losses/aux_object_mse"] for h in result.history if "losses/aux_object_mse" in h]
    assert len(aux) == len(losses) and aux[-1] < aux[0]  # the auxiliary object-offset loss trains too
    assert evals == [False, True]
    assert result.final_metrics == {"eval/success_rate": 0.5}
    assert (tmp_path / "policy" / "model.pt").is_file() and (tmp_path / "best" / "model.pt").is_file()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("losses/bc_loss" in x and "charts/SPS" in x for x in lines)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 120 and summary["best_success_rate"] == 0.5
    # The written checkpoint is the trained policy.
    loaded = VLAPolicy.load(tmp_path / "policy", instruction_encoder=InstructionEncoder(hashed_embed_fn()))
    batch = BCDataset(demos[:1], 32, TINY.chunk_size, loaded.instruction_encoder).batch(torch.arange(4))
    assert torch.equal(loaded.head_outputs(batch)[0], result.policy.eval().head_outputs(batch)[0])
    # The auxiliary head is saved beside it, and it is the trained one: it reads the object offsets
    # from the loaded policy's features better than predicting no offset at all.
    head = load_aux_head(tmp_path / AUX_HEAD_FILE)
    target = batch[AUX_OBJECT_OFFSETS] / AUX_SCALE_M
    with torch.no_grad():
        err = torch.nn.functional.mse_loss(head(loaded.features(batch)), target)
    assert err < 0.5 * target.pow(2).mean()


def test_a_foreign_aux_head_file_is_a_clear_error(tmp_path):
    (tmp_path / "aux_head.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not an auxiliary head"):
        load_aux_head(tmp_path / "aux_head.pt")
    with pytest.raises(FileNotFoundError, match="no auxiliary head"):
        load_aux_head(tmp_path / "missing.pt")


def test_bc_stops_at_the_time_budget(tmp_path):
    demos = synthetic_trajectories(2, steps=5, image_size=32)
    cfg = BCConfig(steps=10_000, batch_size=4, time_budget_s=1.0, device="cpu")
    result = train_bc(demos, tmp_path, cfg, TINY, instruction_encoder=InstructionEncoder(hashed_embed_fn()),
                      progress=False)  # fmt: skip
    assert 0 < result.steps < 10_000


def test_failed_demos_are_dropped_unless_asked():
    demos = synthetic_trajectories(3, steps=5, image_size=16)
    demos[1].success = False
    assert [d.episode_id for d in select_demos(demos, True)] == [demos[0].episode_id, demos[2].episode_id]
    assert len(select_demos(demos, False)) == 3
    for d in demos:
        d.success = False
    with pytest.raises(ValueError, match="no demonstrations left"):
        select_demos(demos, True)


def test_keep_fraction_keeps_the_best_demos_by_gold_quality():
    demos = synthetic_trajectories(4, steps=5, image_size=16)
    for d, (length, idle) in zip(demos, [(5.0, 0.3), (2.0, 0.0), (3.0, 0.1), (9.0, 0.5)], strict=True):
        d.metrics = {"episode_length_s": length, "idle_fraction": idle}
    kept = select_demos(demos, True, keep_fraction=0.5)
    assert [d.episode_id for d in kept] == [demos[1].episode_id, demos[2].episode_id]


def test_dataset_chunks_pad_past_the_episode_end():
    demos = synthetic_trajectories(2, steps=5, image_size=16)
    data = BCDataset(demos, 32, 4, InstructionEncoder(hashed_embed_fn()))
    assert len(data) == 10 and data.embeddings.shape[0] == len({d.instruction for d in demos})
    batch = data.batch(torch.tensor([3, 4, 5]))
    assert batch[OBS_IMAGE].shape == (3, 3, 32, 32)
    assert batch[ACTION_IS_PAD].tolist() == [[False, False, True, True], [False, True, True, True],
                                             [False, False, False, False]]  # fmt: skip
    # Padded steps repeat the episode's last action, never the next episode's first.
    assert torch.equal(batch[ACTION][1, 1], torch.from_numpy(demos[0].actions[4]))
    assert torch.equal(batch[ACTION][2, 0], torch.from_numpy(demos[1].actions[0]))
    # Step 5 is the second episode's first frame, channel-first, resized to the policy's input.
    same_size = BCDataset(demos, 16, 4, InstructionEncoder(hashed_embed_fn()))
    frames = same_size.frames(torch.tensor([5, 4]))
    assert torch.equal(frames[0], torch.from_numpy(demos[1].images[0]).permute(2, 0, 1))
    assert torch.equal(frames[1], torch.from_numpy(demos[0].images[4]).permute(2, 0, 1))
    # At the policy's size the dataset holds the episodes' own frames: building it copies none.
    assert all(np.shares_memory(f, d.images) for f, d in zip(same_size._frames, demos, strict=True))
    torch.testing.assert_close(batch[OBS_IMAGE][2], data.frames(torch.tensor([5]))[0].float() / 255.0)


def test_lr_schedule_warms_up_then_decays():
    cfg = BCConfig(steps=1000, lr=1e-3, warmup_steps=100, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-5)
    assert lr_at(99, cfg) == pytest.approx(1e-3)
    assert lr_at(1000, cfg) == pytest.approx(1e-4)
    assert lr_at(500, cfg) < lr_at(200, cfg)


@pytest.mark.parametrize(("field", "value"), [("steps", 0), ("lr", 0.0), ("device", "tpu"), ("min_lr_ratio", 2.0)])
def test_bc_config_names_bad_fields(field, value):
    with pytest.raises(ValueError, match=field):
        BCConfig(**{field: value})


def test_encoder_disk_cache_round_trip(tmp_path):
    path = tmp_path / "emb.json"
    enc = InstructionEncoder(hashed_embed_fn(), cache_path=path)
    a = enc.encode(["reach red", "reach blue", "reach red"])
    assert a.shape == (3, 384) and enc.encoder_calls == 1
    again = InstructionEncoder(lambda texts: pytest.fail("must not encode cached text"), cache_path=path)
    assert np.array_equal(again.encode("reach blue"), a[1])
    with pytest.raises(InstructionEncoderError, match="shape"):
        InstructionEncoder(lambda texts: np.zeros((1, 5), np.float32)).encode("x")


@pytest.mark.slow
def test_minilm_embeddings_are_frozen_semantic_and_cached():
    """The real all-MiniLM-L6-v2 from its package, offline (about 5-10 s to load)."""
    enc = InstructionEncoder()
    e = enc.encode(["pick up the red cube and place it on the green pad",
                    "pick up the red cube and put it on the green pad",
                    "move the gripper to the blue ball"])  # fmt: skip
    assert e.shape == (3, 384)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2  # paraphrases are closer than different tasks
    enc.encode("move the gripper to the blue ball")
    assert enc.encoder_calls == 1


def test_dataset_never_imitates_unimitated_steps():
    demos = synthetic_trajectories(2, steps=6, image_size=16)
    for e, d in enumerate(demos):
        d.actions[:, 0] = 10 * e + np.arange(len(d))  # tells the step a target came from
    demos[0].extra["unimitated_steps"] = [3]
    data = BCDataset(demos, 16, 4, InstructionEncoder(hashed_embed_fn()))
    assert data.anchors.tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]
    # A chunk that reaches a pushed step ends there, as at the episode's end.
    assert data.chunk_pad[:3].tolist() == [[False, False, False, True], [False, False, True, True],
                                           [False, True, True, True]]  # fmt: skip
    assert data.chunk_pad[4].tolist() == [False, False, True, True]
    drawn = data.sample(512, torch.Generator().manual_seed(0))
    first = drawn[ACTION][:, 0, 0]
    assert 3.0 not in first.tolist() and {0.0, 2.0, 4.0, 10.0} <= set(first.tolist())
    demos[1].extra["unimitated_steps"] = [6]  # the episode has steps 0..5
    with pytest.raises(ValueError, match="unimitated_steps outside"):
        BCDataset(demos, 16, 3, InstructionEncoder(hashed_embed_fn()))


def test_dataset_batches_carry_the_wrist_frames(tmp_path):
    import dataclasses

    from rlhf.constants import OBS_WRIST_IMAGE

    demos = synthetic_trajectories(2, steps=5, image_size=16)
    enc = InstructionEncoder(hashed_embed_fn())
    with pytest.raises(ValueError, match="--wrist-camera"):
        BCDataset(demos, 16, 3, enc, wrist_image_size=8)
    rng = np.random.default_rng(0)
    demos = [dataclasses.replace(d, wrist_images=rng.integers(0, 255, (5, 8, 8, 3), dtype=np.uint8)) for d in demos]
    data = BCDataset(demos, 16, 3, enc, wrist_image_size=8)
    batch = data.batch(torch.tensor([6, 0]))
    assert batch[OBS_WRIST_IMAGE].shape == (2, 3, 8, 8)
    expected = torch.from_numpy(demos[1].wrist_images[1]).permute(2, 0, 1) / 255.0
    torch.testing.assert_close(batch[OBS_WRIST_IMAGE][0], expected)
    assert OBS_WRIST_IMAGE not in BCDataset(demos, 16, 3, enc).batch(torch.tensor([0]))
    # BC trains a wrist-camera policy end to end on them.
    cfg = dataclasses.replace(TINY, wrist_camera=True, wrist_image_size=16)
    result = train_bc(demos, tmp_path, BCConfig(steps=3, batch_size=4), cfg, instruction_encoder=enc, progress=False)
    assert result.steps == 3 and VLAPolicy.load(result.checkpoint, instruction_encoder=enc).config.wrist_camera
