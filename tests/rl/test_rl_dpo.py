"""Trajectory-level DPO on stand-ins: one step raises the preferred side's log-prob margin; only the head moves."""

from __future__ import annotations

import pytest
import torch
from rl_standins import TinyRLPolicy, gold_step_rewards, make_toy_env

from rlhf.prefs.triples import PreferenceTriple
from rlhf.rl.config import DPOConfig
from rlhf.rl.dpo import DPOTrainer, build_pairs, sequence_logprob
from rlhf.rl.rollouts import VectorRolloutCollector


def make_data(policy):
    col = VectorRolloutCollector([make_toy_env] * 2, policy, mode="sync", task="toy")
    recs = col.collect([0, 0, 1, 1, 2, 2])  # two stochastic rollouts from each initial state
    episodes = {r.trajectory.episode_id: r.trajectory for r in recs}
    triples = []
    for i in range(0, 6, 2):
        a, b = recs[i].trajectory, recs[i + 1].trajectory
        prob_a = 1.0 if gold_step_rewards(a).sum() > gold_step_rewards(b).sum() else 0.0
        triples.append(PreferenceTriple(f"p{i}", "reach home", a.episode_id, b.episode_id, (0, 15), (0, 15), prob_a))
    triples.append(PreferenceTriple("tie", "reach home", recs[0].trajectory.episode_id,
                                    recs[2].trajectory.episode_id, (0, 5), (0, 5), 0.5))
    return episodes, triples


def test_dpo_step_increases_preferred_margin_and_moves_only_head():
    policy = TinyRLPolicy(seed=0, bc_steps=100)
    policy.policy.action_head.log_std.data.fill_(-1.5)  # wide enough for distinct rollouts
    episodes, triples = make_data(policy)
    pairs = build_pairs(policy, triples, episodes)
    assert len(pairs) == 3  # the tie carries no direction
    trainer = DPOTrainer(policy, DPOConfig(beta=0.5, learning_rate=1e-2, batch_size=8), progress=False)
    backbone = {k: v.clone() for k, v in policy.policy.backbone.state_dict().items()}

    def margin():
        with torch.no_grad():
            return sum(sequence_logprob(policy, p.chosen, None, False) - sequence_logprob(policy, p.rejected, None, False)
                       for p in pairs).item()

    before = trainer.evaluate(pairs)
    m0 = margin()
    trainer.train_step(pairs)
    assert margin() > m0
    after = trainer.evaluate(pairs)
    assert after["losses/dpo_loss"] < before["losses/dpo_loss"]
    assert before["losses/dpo_loss"] == pytest.approx(0.6931, abs=1e-3)  # at the reference: log 2
    for k, v in policy.policy.backbone.state_dict().items():
        assert torch.equal(v, backbone[k])
    hist = trainer.train(pairs)
    assert hist[-1]["dpo/accuracy"] == 1.0


def test_dpo_names_missing_episode():
    policy = TinyRLPolicy(seed=0, bc_steps=0)
    t = PreferenceTriple("p", "x", "nope", "nada", (0, 3), (0, 3), 1.0)
    with pytest.raises(KeyError, match="nope"):
        build_pairs(policy, [t], {})
    with pytest.raises(ValueError, match="DPOConfig.beta"):
        DPOConfig(beta=0.0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a machine without a GPU gives")
def test_dpo_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"DPOConfig.device is 'cuda'"):
        DPOTrainer(TinyRLPolicy(seed=0, bc_steps=0), DPOConfig(device="cuda"), progress=False)


def test_rpo_term_keeps_the_chosen_actions_likely():
    """Plain DPO may widen its margin by making both sides unlikely; RPO's NLL term holds the chosen
    side's likelihood up, and its loss reports the term."""
    chosen_logp = {}
    for alpha in (0.0, 1.0):
        policy = TinyRLPolicy(seed=0, bc_steps=100)
        policy.policy.action_head.log_std.data.fill_(-1.5)
        episodes, triples = make_data(policy)
        pairs = build_pairs(policy, triples, episodes)
        trainer = DPOTrainer(policy, DPOConfig(beta=0.5, learning_rate=1e-2, batch_size=8, epochs=60, rpo_alpha=alpha),
                             progress=False)
        hist = trainer.train(pairs)
        assert ("dpo/chosen_nll" in hist[-1]) == (alpha > 0)
        with torch.no_grad():
            chosen_logp[alpha] = sum(sequence_logprob(policy, p.chosen, None, True) for p in pairs).item()
    assert chosen_logp[1.0] > chosen_logp[0.0] + 1.0, chosen_logp
    with pytest.raises(ValueError, match="DPOConfig.rpo_alpha"):
        DPOConfig(rpo_alpha=-1.0)
