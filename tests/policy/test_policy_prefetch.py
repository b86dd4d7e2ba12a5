"""Batches built ahead in a thread: the same batches in the same order (so the same BC run), a
producer's error reaches the trainer, and closing stops the thread."""

from __future__ import annotations

import threading

import pytest
import torch

from rlhf.policy.bc import BCConfig, train_bc
from rlhf.policy.config import PolicyConfig
from rlhf.policy.instruction_encoder import InstructionEncoder, hashed_embed_fn
from rlhf.policy.prefetch import BatchPrefetcher
from rlhf.policy.synthetic import synthetic_trajectories

TINY = PolicyConfig(
    image_size=32, cnn_channels=(8, 16, 16), stem_stride=2, image_tokens_side=2, d_model=32, n_heads=2,
    ff_dim=64, head_hidden=32,
)  # fmt: skip


def test_prefetched_batches_come_in_the_order_they_were_made():
    gen = torch.Generator().manual_seed(0)
    with BatchPrefetcher(lambda: {"x": torch.randn(3, generator=gen)}, depth=3) as pf:
        got = [pf.next()["x"] for _ in range(20)]
    ref = torch.Generator().manual_seed(0)
    for x in got:
        assert torch.equal(x, torch.randn(3, generator=ref))


def test_bc_with_prefetch_is_the_same_run(tmp_path):
    torch.set_num_threads(1)
    demos = synthetic_trajectories(6, steps=12, image_size=32)
    heads = []
    for depth in (0, 2):
        torch.manual_seed(0)
        cfg = BCConfig(steps=25, batch_size=16, warmup_steps=5, eval_every=0, device="cpu", prefetch_batches=depth,
                       image_shift=2)
        res = train_bc(demos, tmp_path / f"d{depth}", cfg, TINY, instruction_encoder=InstructionEncoder(hashed_embed_fn()),
                       progress=False)
        heads.append(res.policy.state_dict())
    for k, v in heads[0].items():
        assert torch.equal(v, heads[1][k]), k
    assert not [t for t in threading.enumerate() if t.name == "batch-prefetch"]  # train_bc closed it


def test_a_producer_error_is_raised_by_next_and_close_stops_the_thread():
    calls = []

    def make():
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("frame 7 is corrupt")
        return {"x": torch.zeros(1)}

    pf = BatchPrefetcher(make, depth=1)
    pf.next()
    pf.next()
    with pytest.raises(ValueError, match="frame 7 is corrupt"):
        pf.next()
    pf.close()
    endless = BatchPrefetcher(lambda: {"x": torch.zeros(1)}, depth=2)
    endless.next()
    endless.close()
    assert not endless._thread.is_alive()
    with pytest.raises(ValueError, match="prefetch_batches"):
        BCConfig(prefetch_batches=-2)
