"""The whole workflow through the `rlhf` command: episodes, campaign, annotator, serve, teacher, stats, export."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import numpy as np

from rlhf.cli import main
from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.export import read_triples
from rlhf.prefs.store import PreferenceStore


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_workflow(tmp_path, video_dir, capsys):
    db = str(tmp_path / "prefs.sqlite")
    rng = np.random.default_rng(0)
    q = {f"ep{i}": float(rng.normal()) for i in range(8)}
    rows = [{"episode_id": e, "task": "reach", "instruction": "reach the red cube", "num_steps": 40, "fps": 10,
             "video_path": str(video_dir / f"ep{i % 4}.mp4"), "gold_axes": {a: v for a in PREFERENCE_AXES}}
            for i, (e, v) in enumerate(q.items())]
    (tmp_path / "episodes.json").write_text(json.dumps(rows))
    gold = {e: {"step_rewards": [v / 40] * 40, "axes": {a: v for a in PREFERENCE_AXES}} for e, v in q.items()}
    (tmp_path / "gold.json").write_text(json.dumps(gold))

    assert main(["annotate", "add-episodes", "--db", db, "--file", str(tmp_path / "episodes.json")]) == 0
    assert main(["annotate", "new-campaign", "--db", db, "--id", "c", "--calibration", "3", "--gold", "4",
                 "--work", "10"]) == 0
    assert "3 calibration, 4 gold, 10 work" in capsys.readouterr().out
    assert main(["annotate", "add-annotator", "--db", db, "--id", "alice"]) == 0
    out = capsys.readouterr().out
    assert "/annotate?token=" in out and "&campaign=c" in out

    port = _free_port()
    env = dict(os.environ, RLHF_ADMIN_TOKEN="cli-admin")
    server = subprocess.Popen(
        [sys.executable, "-m", "rlhf.cli", "annotate", "serve", "--db", db, "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"{url}/api/me", headers={"Authorization": "Bearer cli-admin"}, timeout=2)
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        assert r.json()["role"] == "admin"
        assert main(["prefs", "teacher", "--url", url, "--campaign", "c", "--gold", str(tmp_path / "gold.json"),
                     "--admin-token", "cli-admin", "--mistake-rate", "0.1", "--seed", "1"]) == 0
        out = capsys.readouterr().out
        assert "teacher:binf-g1-m0.1" in out and "stopped: done" in out
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert main(["prefs", "stats", "--db", db, "--campaign", "c", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    (name,) = stats["annotators"]
    assert stats["annotators"][name]["calibration_labels"] == 3 and stats["counts"]["labels"] >= 13
    assert main(["prefs", "stats", "--db", db, "--campaign", "c"]) == 0
    assert "gold_accuracy" in capsys.readouterr().out
    assert main(["prefs", "stats", "--db", db, "--campaign", "nope"]) == 2
    out_file = tmp_path / "triples.parquet"
    assert main(["prefs", "export", "--db", db, "--campaign", "c", "--out", str(out_file)]) == 0
    triples = read_triples(out_file)
    with PreferenceStore(db) as store:
        assert len(triples) == len(store.triples("c")) >= 10  # the 10 work pairs, plus any hidden gold
    assert {t.annotator_id for t in triples} == {name}


def test_demo_dir_gets_a_campaign_and_a_link(tmp_path, video_dir, capsys):
    from annotate_helpers import episodes_for

    from rlhf.annotate.commands import _prepare_demo

    with PreferenceStore(tmp_path / "prefs.sqlite") as store:
        store.add_episodes(episodes_for(video_dir, n=8))
        _prepare_demo(store, tmp_path, "http://127.0.0.1:8600")
        out = capsys.readouterr()
        assert "no episode store" in out.err
        assert "created campaign demo" in out.out and "annotate?token=" in out.out
        counts = store.counts("demo")
        assert counts["pairs/calibration"] > 0 and counts["pairs/work"] > 0
        _prepare_demo(store, tmp_path, "http://127.0.0.1:8600")  # idempotent: no second campaign
        assert store.campaigns() == ["demo"]
