"""DAgger: expert relabelling of policy rollouts in the sim, and training that continues a policy."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlhf.policy.bc import BCConfig, train_bc
from rlhf.policy.config import PolicyConfig
from rlhf.policy.dagger import DaggerConfig, collect_relabelled, train_dagger
from rlhf.policy.instruction_encoder import InstructionEncoder, hashed_embed_fn
from rlhf.policy.normalizer import Normalizer
from rlhf.policy.synthetic import synthetic_trajectories
from rlhf.policy.vla import VLAPolicy
from rlhf.rollout import run_episode
from sim.config import SimConfig
from sim.demonstrators import make_demonstrator

TINY = PolicyConfig(
    image_size=32, cnn_channels=(8, 16, 16), stem_stride=2, image_tokens_side=2, d_model=32, n_heads=2,
    ff_dim=64, head_hidden=32,
)  # fmt: skip
SIM = SimConfig(task="reach", image_size=32)


def _policy() -> VLAPolicy:
    torch.manual_seed(0)
    encoder = InstructionEncoder(hashed_embed_fn())
    demos = synthetic_trajectories(2, steps=5, image_size=32)
    return VLAPolicy(TINY, Normalizer.from_trajectories(demos, encoder), encoder)


def test_beta_one_replays_the_expert_exactly():
    """With beta = 1 every executed action is the expert's: the episode is the expert's own demo."""
    from rlhf.policy.evaluate import make_env

    trajs, stats = collect_relabelled(_policy(), "reach", [7], beta=1.0, sim_config=SIM, progress=False)
    env = make_env("reach", SIM)
    demo = run_episode(env, make_demonstrator("reach", "expert", seed=7), seed=7)
    env.close()
    assert stats["dagger/policy_step_fraction"] == 0.0 and stats["dagger/rollout_success_rate"] == 1.0
    assert np.array_equal(trajs[0].actions, demo.actions)
    assert np.array_equal(trajs[0].images, demo.images)
    assert trajs[0].extra["relabelled_by"] == "scripted:expert"


def test_beta_zero_lets_the_policy_drive_and_labels_with_the_expert():
    """With beta = 0 the untrained policy drives (it does not reach the ball), yet every stored action
    is the expert's answer to the state the policy produced: a corrective action toward the ball."""
    trajs, stats = collect_relabelled(_policy(), "reach", [7], beta=0.0, sim_config=SIM, progress=False)
    t = trajs[0]
    assert stats["dagger/policy_step_fraction"] == 1.0 and not t.success
    # The executed motion is the policy's, so the recorded states differ from the expert's demo...
    from rlhf.policy.evaluate import make_env

    env = make_env("reach", SIM)
    demo = run_episode(env, make_demonstrator("reach", "expert", seed=7), seed=7)
    env.close()
    n = min(len(t), len(demo))
    assert not np.allclose(t.joint_positions[:n], demo.joint_positions[:n], atol=1e-3)
    # ...while the labels are valid expert commands: in range, gripper open, and not the policy's
    # own near-zero output.
    assert np.all(np.abs(t.actions[:, :7]) <= SIM.max_joint_delta + 1e-6)
    assert np.all(t.actions[:, 7] == 1.0)
    assert np.abs(t.actions[:5, :7]).max() > 0.01


def test_train_bc_continues_an_existing_policy(tmp_path):
    torch.set_num_threads(1)
    demos = synthetic_trajectories(6, steps=10, image_size=32)
    encoder = InstructionEncoder(hashed_embed_fn())
    cfg = BCConfig(steps=20, batch_size=8, warmup_steps=2, log_every=5, device="cpu")
    first = train_bc(demos, tmp_path / "a", cfg, TINY, instruction_encoder=encoder, progress=False)
    before = {k: v.clone() for k, v in first.policy.state_dict().items()}
    stats = first.policy.normalizer.action_mean.copy()
    second = train_bc(demos[:3], tmp_path / "b", cfg, progress=False, init_policy=first.policy)
    assert second.policy is first.policy
    assert any(not torch.equal(before[k], v) for k, v in second.policy.state_dict().items())
    # Normalisation stats stay those of the original demos (not recomputed from the new data).
    assert np.array_equal(second.policy.normalizer.action_mean, stats)


def test_train_dagger_runs_rounds_and_writes_a_summary(tmp_path):
    from rlhf.policy.evaluate import make_env

    torch.set_num_threads(1)
    env = make_env("reach", SIM)
    demos = [run_episode(env, make_demonstrator("reach", "mixed", seed=s), seed=s) for s in range(4)]
    env.close()
    cfg = DaggerConfig(rounds=2, initial_steps=10, steps_per_round=5, episodes_per_round=2, beta=0.5, beta_decay=0.5)
    bc_cfg = BCConfig(batch_size=8, warmup_steps=2, log_every=5, device="cpu")
    calls = []

    def eval_fn(policy, final):
        calls.append(final)
        return {"eval/success_rate": 0.1 * len(calls), "gold/path_length_m": 1.0}

    res = train_dagger(demos, tmp_path, "reach", cfg, bc_cfg, TINY, eval_fn=eval_fn, sim_config=SIM, progress=False,
                       log=lambda _: None)  # fmt: skip
    # One evaluation after the initial BC and after each round, then the final one.
    assert calls == [False, False, False, True]
    assert [r["eval/success_rate"] for r in res.rounds] == pytest.approx([0.1, 0.2, 0.3])
    assert res.final_metrics["eval/success_rate"] == pytest.approx(0.4)
    assert [r["round"] for r in res.rounds] == [0, 1, 2]
    assert [r["beta"] for r in res.rounds[1:]] == [0.5, 0.25]
    assert [r["data_episodes"] for r in res.rounds] == [4, 6, 8]
    summary = json.loads((tmp_path / "dagger_summary.json").read_text())
    assert len(summary["rounds"]) == 3 and (tmp_path / "policy" / "model.pt").is_file()


@pytest.mark.parametrize("field,value", [("rounds", -1), ("beta", 1.5), ("steps_per_round", 0), ("time_budget_s", 0)])
def test_dagger_config_names_bad_fields(field, value):
    with pytest.raises(ValueError, match=field):
        DaggerConfig(**{field: value})
