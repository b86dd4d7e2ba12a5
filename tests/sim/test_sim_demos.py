"""Demonstration datasets: generate, manifest, load, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlhf.cli import main as rlhf_main
from rlhf.demos import generate_demos, load_demos
from sim.config import SimConfig


def test_generate_and_load_round_trip(tmp_path) -> None:
    out = tmp_path / "demos"
    manifest = generate_demos("reach", 3, ["expert", "jerky"], out, seed=10, config=SimConfig(image_size=24),
                              progress=False)
    m = json.loads(manifest.read_text())
    assert m["complete"] and len(m["episodes"]) == 3
    assert [r["seed"] for r in m["episodes"]] == [10, 11, 12]
    assert [r["style"] for r in m["episodes"]] == ["expert", "jerky", "expert"]
    trajs = load_demos(out)
    assert len(trajs) == 3
    assert [t.seed for t in load_demos(out, limit=2)] == [10, 11]
    t = trajs[0]
    assert t.images.shape[1:] == (24, 24, 3) and t.task == "reach" and t.seed == 10
    assert t.policy_version == "scripted:expert" and "mean_squared_jerk" in t.metrics
    assert t.ee_positions.shape == (len(t), 3) and t.object_positions.shape == (len(t), 2, 3)
    # Same arguments -> the same episode.
    again = generate_demos("reach", 1, ["expert"], tmp_path / "again", seed=10, config=SimConfig(image_size=24),
                           progress=False)
    assert np.array_equal(load_demos(again.parent)[0].actions, t.actions)


def test_bad_arguments_are_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown demo style"):
        generate_demos("reach", 1, ["sloppy"], tmp_path, progress=False)
    with pytest.raises(ValueError, match="episodes"):
        generate_demos("reach", 0, ["expert"], tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="manifest"):
        load_demos(tmp_path / "nothing")


def test_cli_smoke(tmp_path, capsys) -> None:
    out = tmp_path / "cli"
    rc = rlhf_main(["demos", "--task", "reach", "--episodes", "2", "--style", "mixed", "--out", str(out),
                    "--image-size", "24", "--seed", "3"])
    assert rc == 0
    assert "wrote 2 episodes" in capsys.readouterr().out
    assert len(load_demos(out)) == 2
