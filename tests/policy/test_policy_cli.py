"""CLI smoke runs with tiny budgets: `rlhf bc train` then `rlhf policy eval` in the sim."""

from __future__ import annotations

import json

import pytest

from rlhf.cli import main
from rlhf.policy.synthetic import synthetic_trajectories


@pytest.mark.slow
def test_bc_train_then_policy_eval(tmp_path, capsys):
    demos = tmp_path / "demos"
    for t in synthetic_trajectories(4, steps=6, image_size=96):
        t.save(demos / f"{t.episode_id}.npz")
    out = tmp_path / "run"
    rc = main(["bc", "train", "--demos", str(demos), "--out", str(out), "--task", "reach", "--steps", "3",
               "--batch-size", "4", "--eval-episodes", "0", "--final-eval-episodes", "1", "--device", "cpu",
               "--threads", "1", "--no-progress"])  # fmt: skip
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3
    assert summary["final"]["eval/episodes"] == 1.0 and 0.0 <= summary["final"]["eval/success_rate"] <= 1.0
    assert any(k.startswith("gold/") for k in summary["final"])
    metrics_file = tmp_path / "eval.json"
    rc = main(["policy", "eval", "--checkpoint", str(out / "policy"), "--task", "reach", "--episodes", "1",
               "--json", str(metrics_file), "--no-progress", "--threads", "1"])  # fmt: skip
    assert rc == 0
    metrics = json.loads(metrics_file.read_text())
    assert metrics["eval/episodes"] == 1.0 and "eval/success_rate" in metrics


def test_policy_eval_reports_a_bad_checkpoint_without_traceback(tmp_path, capsys):
    (tmp_path / "ck").mkdir()
    rc = main(["policy", "eval", "--checkpoint", str(tmp_path / "ck"), "--task", "reach", "--episodes", "1"])
    assert rc == 2
    assert "config.json" in capsys.readouterr().err


def test_bc_train_reports_an_empty_demo_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = main(["bc", "train", "--demos", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "no demonstrations" in capsys.readouterr().err


def test_demo_folders_with_different_cameras_are_refused(tmp_path):
    from rlhf.policy.commands import demo_sim_config, make_sim_config

    for name, eye in (("a", [1.0, 0.35, 0.9]), ("b", [1.0, 0.35, 0.85])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(
            json.dumps({"task": "reach", "episodes": [], "config": {"task": "reach", "camera_eye": eye}})
        )
    assert demo_sim_config([str(tmp_path / "a")]) == {"camera_eye": [1.0, 0.35, 0.9]}
    assert make_sim_config("pick_place", {"camera_eye": [1.0, 0.35, 0.9]}).task == "pick_place"
    with pytest.raises(ValueError, match="camera_eye"):
        demo_sim_config([str(tmp_path / "a"), str(tmp_path / "b")])


def test_bc_train_reads_only_the_demos_it_imitates(tmp_path, capsys):
    """With manifests, the demos are chosen from their listed success and gold metrics before any
    episode is read: a failed or low-quality episode's file is never opened (here it is garbage)."""
    folder = tmp_path / "demos"
    folder.mkdir()
    rows = []
    for i, t in enumerate(synthetic_trajectories(4, steps=6, image_size=32)):
        name = f"episode_{i:05d}.npz"
        success = i != 1
        length = [5.0, 5.0, 5.0, 9.0][i]  # episode 3 is the slowest: the quality filter drops it
        if i in (1, 3):
            (folder / name).write_bytes(b"not an npz")
        else:
            t.save(folder / name)
        metrics = {"episode_length_s": length, "mean_squared_jerk": 1.0}
        rows.append({"file": name, "episode_id": t.episode_id, "success": success, "metrics": metrics})
    (folder / "manifest.json").write_text(json.dumps({"task": "reach", "episodes": rows}))
    out = tmp_path / "run"
    rc = main(["bc", "train", "--demos", str(folder), "--out", str(out), "--task", "reach", "--steps", "2",
               "--batch-size", "4", "--image-size", "32", "--keep-fraction", "0.67", "--eval-episodes", "0",
               "--final-eval-episodes", "0", "--device", "cpu", "--threads", "1", "--no-progress"])  # fmt: skip
    assert rc == 0
    config = json.loads((out / "bc_config.json").read_text())
    assert (config["demos_total"], config["demos_used"]) == (4, 2)
    assert config["bc"]["keep_fraction"] == 0.67
    # Without the filter the garbage files are read: a clear error naming the file, no traceback.
    rc = main(["bc", "train", "--demos", str(folder), "--out", str(tmp_path / "run2"), "--task", "reach",
               "--steps", "1", "--image-size", "32", "--include-failures", "--final-eval-episodes", "0",
               "--eval-episodes", "0", "--no-progress"])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "error:" in err and "episode_0000" in err and "unreadable trajectory file" in err


@pytest.mark.slow
def test_wrist_camera_from_demos_to_evaluation(tmp_path, capsys):
    demos = tmp_path / "demos"
    assert main(["demos", "--task", "reach", "--episodes", "2", "--image-size", "32", "--wrist-camera",
                 "--wrist-image-size", "32", "--out", str(demos)]) == 0  # fmt: skip
    out = tmp_path / "run"
    args = ["bc", "train", "--demos", str(demos), "--out", str(out), "--steps", "2", "--batch-size", "4",
            "--image-size", "32", "--eval-episodes", "0", "--final-eval-episodes", "1", "--device", "cpu",
            "--threads", "1", "--no-progress"]  # fmt: skip
    assert main([*args, "--wrist-camera", "--wrist-image-size", "32"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final"]["eval/episodes"] == 1.0  # the evaluation env rendered the wrist camera
    assert json.loads((out / "policy" / "config.json").read_text())["policy"]["wrist_camera"] is True
    # Demos without a wrist camera cannot teach a policy that needs one: refused before any reading.
    plain = tmp_path / "plain"
    assert main(["demos", "--task", "reach", "--episodes", "1", "--image-size", "32", "--out", str(plain)]) == 0
    capsys.readouterr()
    assert main([*args[:2], "--demos", str(plain), *args[4:], "--wrist-camera"]) == 2
    assert "recorded without one" in capsys.readouterr().err
