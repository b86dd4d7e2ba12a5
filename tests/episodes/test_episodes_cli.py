"""`rlhf episodes import|list|show|export` end to end on tiny data."""

from __future__ import annotations

import json

from rlhf.cli import main
from rlhf.episodes.bag_writer import write_episode_bag


def test_cli_import_list_show_export(tmp_path, traj_factory, robot_bag_factory, capsys):
    store = str(tmp_path / "store")
    ours = write_episode_bag(traj_factory(6, seed=1), tmp_path / "ours")
    robot_bag_factory(tmp_path / "rec", seconds=0.6, hw=(24, 32))
    assert main(["episodes", "import", str(ours), str(tmp_path / "rec"), "--store", store, "--rate", "10", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 added, 0 skipped, 0 failed" in out

    assert main(["episodes", "list", "--store", store, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["source"] for r in rows) == ["robot", "sim"]
    assert main(["episodes", "list", "--store", store, "--source", "sim"]) == 0
    assert "1 episode(s)" in capsys.readouterr().out

    sim_id = next(r["episode_id"] for r in rows if r["source"] == "sim")
    assert main(["episodes", "show", sim_id, "--store", store]) == 0
    assert json.loads(capsys.readouterr().out)["num_steps"] == 6
    assert main(["episodes", "show", "--bag", str(ours)]) == 0
    assert json.loads(capsys.readouterr().out)["topics"]["/joint_states"]["count"] == 6
    assert main(["episodes", "show", "missing", "--store", store]) == 1

    assert main(["episodes", "export", "--store", store, "--out", str(tmp_path / "ds"), "--no-progress"]) == 0
    info = json.loads((tmp_path / "ds/meta/info.json").read_text())
    assert info["total_episodes"] == 2 and info["total_frames"] == 6 + 6  # robot: 10 Hz from 1 ms to 600 ms

    bad = tmp_path / "bad"
    bad.mkdir()
    assert main(["episodes", "import", str(bad), "--store", store, "--no-progress"]) == 1
    assert "FAILED" in capsys.readouterr().err
