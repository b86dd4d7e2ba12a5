"""Smoke runs of `rlhf reward train|eval|score` on tiny synthetic data."""

import argparse
import json

import numpy as np
import pytest
import torch

from rlhf.prefs.teacher_model import TeacherConfig
from rlhf.reward import commands
from rlhf.reward.dataset import label_pairs, sample_segment_pairs
from rlhf.reward.inputs import read_triples_file, write_triples_jsonl
from rlhf.reward.synthetic import synthetic_episodes, synthetic_gold_rewards, tiny_config


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rlhf")
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


@pytest.fixture
def data(tmp_path):
    episodes = synthetic_episodes(8, seed=4, steps=24)
    for traj in episodes.values():
        traj.save(tmp_path / "episodes" / f"{traj.episode_id}.npz")
    gold = {k: synthetic_gold_rewards(v) for k, v in episodes.items()}
    rng = np.random.default_rng(0)
    triples = label_pairs(sample_segment_pairs(episodes, 30, 1.0, rng), gold, TeacherConfig(), rng)
    write_triples_jsonl(triples, tmp_path / "triples.jsonl")
    cfg = tiny_config(epochs=1, ensemble_size=2, segment_seconds=1.0).to_dict()
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return tmp_path


def test_train_eval_score(data, capsys):
    ckpt = data / "ckpt"
    rc = _run(
        [
            "reward",
            "train",
            "--episodes",
            str(data / "episodes"),
            "--triples",
            str(data / "triples.jsonl"),
            "--out",
            str(ckpt),
            "--config",
            str(data / "config.json"),
            "--ensemble-size",
            "3",
            "--no-progress",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["members"] == 3 and "losses/bt_loss" in summary
    assert (ckpt / "model.pt").is_file()

    rc = _run(
        [
            "reward",
            "eval",
            "--checkpoint",
            str(ckpt),
            "--episodes",
            str(data / "episodes"),
            "--triples",
            str(data / "triples.jsonl"),
            "--json",
            str(data / "m.json"),
            "--no-progress",
        ]
    )
    assert rc == 0
    metrics = json.loads((data / "m.json").read_text())
    assert 0.0 <= metrics["reward/accuracy"] <= 1.0 and "reward/ece" in metrics

    rc = _run(
        [
            "reward",
            "score",
            "--checkpoint",
            str(ckpt),
            "--episodes",
            str(data / "episodes"),
            "--episode",
            "syn-0",
            "--k",
            "2",
            "--json",
            str(data / "s.json"),
            "--no-progress",
        ]
    )
    assert rc == 0
    out = json.loads((data / "s.json").read_text())["scores"][0]
    assert out["episode_id"] == "syn-0" and len(out["per_step_mean"]) == 24
    assert out["conservative"] == pytest.approx(out["mean"] - 2 * out["std"])


def test_cli_errors_are_clear(data, capsys):
    assert (
        _run(
            [
                "reward",
                "score",
                "--checkpoint",
                str(data / "missing"),
                "--episodes",
                str(data / "episodes"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "no such checkpoint folder" in capsys.readouterr().err
    (data / "bad.jsonl").write_text('{"pair_id": "x"}\n')
    assert (
        _run(
            [
                "reward",
                "train",
                "--episodes",
                str(data / "episodes"),
                "--triples",
                str(data / "bad.jsonl"),
                "--out",
                str(data / "c"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "bad.jsonl:1: missing field" in capsys.readouterr().err
    with pytest.raises(ValueError, match="does not exist"):
        read_triples_file(data / "nope.jsonl")


def test_kinematic_flag_names_episodes_without_object_positions(data, capsys):
    argv = ["reward", "train", "--episodes", str(data / "episodes"), "--triples", str(data / "triples.jsonl"),
            "--out", str(data / "ckpt"), "--config", str(data / "config.json"), "--kinematic", "--no-progress"]
    assert _run(argv) != 0
    assert "needs episodes with object_positions" in capsys.readouterr().err
    assert not (data / "ckpt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a machine without a GPU gives")
def test_train_device_cuda_without_gpu_fails_cleanly(data, capsys):
    argv = ["reward", "train", "--episodes", str(data / "episodes"), "--triples", str(data / "triples.jsonl"),
            "--out", str(data / "ckpt"), "--config", str(data / "config.json"), "--device", "cuda", "--no-progress"]
    assert _run(argv) == 2
    assert "RewardConfig.device is 'cuda'" in capsys.readouterr().err
    assert not (data / "ckpt").exists()
