"""Tiny-budget smoke runs of `rlhf ppo train` and `rlhf dpo train` on the real sim and VLA policy."""

from __future__ import annotations

import json

import pytest
import torch

from rlhf.cli import main


@pytest.fixture(scope="module")
def bc_checkpoint(tmp_path_factory, tiny_policy_config):
    from rlhf.policy.vla import VLAPolicy

    path = tmp_path_factory.mktemp("bc") / "policy"
    VLAPolicy(tiny_policy_config).save(path)
    return path


@pytest.mark.slow
def test_cli_ppo_train_on_gold_reward_then_dpo(bc_checkpoint, tmp_path):
    out = tmp_path / "ppo"
    rc = main(["ppo", "train", "--policy", str(bc_checkpoint), "--task", "reach", "--out", str(out),
               "--gold-reward", "--iterations", "2", "--episodes-per-iter", "2", "--num-envs", "2",
               "--vector-mode", "sync", "--max-episode-steps", "6", "--image-size", "32", "--no-tensorboard",
               "--no-progress"])
    assert rc == 0
    assert (out / "head" / "head.pt").exists() and (out / "proxy_gold_kl.png").exists()
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["iteration"] == 2
    assert "gold/return" in (out / "metrics.csv").read_text().splitlines()[0]

    # DPO on two of those episodes re-recorded as files, with one preference between them.
    import gymnasium as gym

    import sim
    from rlhf.policy.vla import VLAPolicy
    from rlhf.prefs.triples import PreferenceTriple
    from rlhf.reward.inputs import write_triples_jsonl
    from rlhf.rl.policy_adapter import VLAAdapter
    from rlhf.rl.rollouts import VectorRolloutCollector

    policy = VLAAdapter(VLAPolicy.load(bc_checkpoint))
    fn = lambda: gym.make(sim.ENV_ID, task="reach", config=sim.SimConfig(image_size=32))  # noqa: E731
    col = VectorRolloutCollector([fn], policy, mode="sync", max_episode_steps=5, task="reach")
    recs = col.collect([3, 3])
    col.close()
    eps = tmp_path / "episodes"
    for r in recs:
        r.trajectory.save(eps / f"{r.trajectory.episode_id}.npz")
    a, b = recs[0].trajectory.episode_id, recs[1].trajectory.episode_id
    write_triples_jsonl([PreferenceTriple("p0", "x", a, b, (0, 5), (0, 5), 1.0)], tmp_path / "t.jsonl")
    rc = main(["dpo", "train", "--policy", str(bc_checkpoint), "--episodes", str(eps), "--triples",
               str(tmp_path / "t.jsonl"), "--out", str(tmp_path / "dpo"), "--epochs", "2", "--no-progress"])
    assert rc == 0 and (tmp_path / "dpo" / "head" / "head.pt").exists()


def test_cli_reports_bad_input_by_name(bc_checkpoint, tmp_path, capsys):
    rc = main(["ppo", "train", "--policy", str(bc_checkpoint), "--out", str(tmp_path), "--gold-reward",
               "--kl-coef", "-1", "--no-tensorboard"])
    assert rc == 2 and "PPOConfig.kl_coef" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a machine without a GPU gives")
@pytest.mark.parametrize("command", ["ppo", "dpo"])
def test_cli_device_cuda_without_a_gpu_exits_2_naming_the_flag(bc_checkpoint, tmp_path, capsys, command):
    if command == "ppo":
        argv = ["ppo", "train", "--policy", str(bc_checkpoint), "--out", str(tmp_path), "--gold-reward", "--no-tensorboard"]
    else:
        argv = ["dpo", "train", "--policy", str(bc_checkpoint), "--episodes", str(tmp_path), "--triples",
                str(tmp_path / "t.jsonl"), "--out", str(tmp_path / "dpo")]
    rc = main([*argv, "--device", "cuda"])
    assert rc == 2 and "--device is 'cuda'" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_rlhf_loop_one_tiny_round(bc_checkpoint, tmp_path):
    out = tmp_path / "loop"
    rc = main(["rlhf", "loop", "--policy", str(bc_checkpoint), "--task", "reach", "--out", str(out),
               "--rounds", "1", "--pairs-per-round", "2", "--ppo-iterations-per-round", "1", "--reward-epochs", "1",
               "--reward-kinematic",
               "--episodes-per-iter", "2", "--num-envs", "2", "--vector-mode", "sync", "--max-episode-steps", "6",
               "--image-size", "32", "--no-tensorboard", "--no-progress"])
    assert rc == 0
    assert len(list((out / "episodes").glob("*.npz"))) == 4  # two rollouts from each of two initial states
    assert json.loads((out / "trainer_state.json").read_text())["iteration"] == 1


def test_cli_rlhf_loop_store_labeler_needs_store(bc_checkpoint, tmp_path, capsys):
    rc = main(["rlhf", "loop", "--policy", str(bc_checkpoint), "--out", str(tmp_path), "--labeler", "store"])
    assert rc == 2 and "--store" in capsys.readouterr().err
