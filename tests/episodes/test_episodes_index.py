"""The SQLite episode index: rows, filters, updates, WAL, and schema migrations."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from rlhf.episodes.index import MIGRATIONS, SCHEMA_VERSION, EpisodeIndex, EpisodeRecord


def rec(i: int, **kw) -> EpisodeRecord:
    base = dict(
        episode_id=f"ep{i:03d}", task="reach" if i % 2 else "push", instruction=f"do thing {i}", source="sim",
        duration_s=1.0 + i, num_steps=10 + i, bag_path=f"bags/ep{i:03d}", video_path=f"videos/ep{i:03d}.mp4",
        policy_version="bc:1" if i < 3 else "ppo:2", success=bool(i % 3), metrics={"time_s": float(i)},
        created_at=1000.0 + i,
    )
    base.update(kw)
    return EpisodeRecord(**base)


def test_add_get_list_update_remove(tmp_path):
    idx = EpisodeIndex(tmp_path / "index.sqlite")
    assert idx.schema_version == SCHEMA_VERSION
    assert idx._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for i in range(6):
        idx.add(rec(i))
    assert len(idx) == 6 and "ep002" in idx and "nope" not in idx
    assert idx.get("ep004") == rec(4)
    assert [r.episode_id for r in idx.list(task="reach")] == ["ep001", "ep003", "ep005"]
    assert [r.episode_id for r in idx.list(policy_version="bc:1", success=True)] == ["ep001", "ep002"]
    assert [r.episode_id for r in idx.list(instruction_contains="thing 5")] == ["ep005"]
    assert len(idx.list(limit=2)) == 2
    with pytest.raises(KeyError, match="already"):
        idx.add(rec(1))
    with pytest.raises(ValueError, match="source"):
        idx.add(rec(9, source="lab"))
    new = idx.update("ep000", success=True, metrics={"jerk": 2.5}, extra={"note": "relabelled"})
    assert new.success is True and idx.get("ep000").metrics == {"jerk": 2.5}
    assert idx.get("ep000").extra == {"note": "relabelled"}
    with pytest.raises(ValueError, match="cannot update"):
        idx.update("ep000", episode_id="x")
    idx.remove("ep000")
    with pytest.raises(KeyError):
        idx.get("ep000")
    with pytest.raises(KeyError):
        idx.remove("ep000")
    idx.close()
    # Reopening finds the same rows.
    with EpisodeIndex(tmp_path / "index.sqlite") as again:
        assert len(again) == 5 and again.get("ep003").success is False


def test_migrates_a_version_1_database(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO episodes VALUES ('old1', 'reach', 'go', '', 'robot', '{\"time_s\": 3.0}', NULL, 2.0, 20, 'bags/old1', '', 5.0)"
    )
    conn.commit()
    conn.close()
    idx = EpisodeIndex(path)
    assert idx.schema_version == SCHEMA_VERSION == 3
    old = idx.get("old1")
    assert (old.source, old.success, old.metrics, old.extra) == ("robot", None, {"time_s": 3.0}, {})
    assert old.wrist_video_path == ""  # rows from before the wrist camera have none
    names = {r[1] for r in idx._conn.execute("PRAGMA index_list(episodes)")}
    assert {"episodes_task", "episodes_policy"} <= names
    idx.close()


def test_a_version_2_database_opens_and_takes_wrist_videos(tmp_path):
    # An index written before the wrist camera's column existed (schema 2, the last shipped one).
    path = tmp_path / "v2.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + MIGRATIONS[1] + "PRAGMA user_version = 2;")
    conn.execute(
        "INSERT INTO episodes VALUES ('old2', 'reach', 'go', '', 'sim', '{}', 1, 2.0, 20, 'bags/old2',"
        " 'videos/old2.mp4', 5.0, '{}')"
    )
    conn.commit()
    conn.close()
    with EpisodeIndex(path) as idx:
        assert idx.schema_version == SCHEMA_VERSION
        old = idx.get("old2")
        assert (old.video_path, old.wrist_video_path) == ("videos/old2.mp4", "")
        idx.add(rec(1, wrist_video_path="videos/wrist/ep001.mp4"))
        assert idx.get("ep001").wrist_video_path == "videos/wrist/ep001.mp4"
        assert idx.update("old2", wrist_video_path="videos/wrist/old2.mp4").wrist_video_path == "videos/wrist/old2.mp4"


def test_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "new.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        EpisodeIndex(path)


def test_shared_between_threads_and_connections(tmp_path):
    path = tmp_path / "index.sqlite"
    idx = EpisodeIndex(path)
    other = EpisodeIndex(path)  # e.g. another process

    def add_many(start):
        for i in range(start, start + 20):
            idx.add(rec(i))

    threads = [threading.Thread(target=add_many, args=(s,)) for s in (0, 100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(other) == 40
    idx.close()
    other.close()
