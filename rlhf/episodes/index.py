"""The episode index: one SQLite row per stored episode (stdlib sqlite3, WAL journal).

The schema is versioned with `PRAGMA user_version`; `MIGRATIONS[i]` takes a database from version
i to i + 1, and opening an index runs the missing ones in one transaction each. Never edit a
migration that has shipped: append a new one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the episodes table.
    """
    CREATE TABLE episodes (
        episode_id     TEXT PRIMARY KEY,
        task           TEXT NOT NULL,
        instruction    TEXT NOT NULL,
        policy_version TEXT NOT NULL DEFAULT '',
        source         TEXT NOT NULL CHECK (source IN ('sim', 'robot')),
        metrics_json   TEXT NOT NULL DEFAULT '{}',
        success        INTEGER,
        duration_s     REAL NOT NULL,
        num_steps      INTEGER NOT NULL,
        bag_path       TEXT NOT NULL,
        video_path     TEXT NOT NULL DEFAULT '',
        created_at     REAL NOT NULL
    );
    """,
    # 1 -> 2: lookups by task / policy, and free-form tags (e.g. the bag an episode was imported from).
    """
    CREATE INDEX episodes_task ON episodes (task, created_at);
    CREATE INDEX episodes_policy ON episodes (policy_version);
    ALTER TABLE episodes ADD COLUMN extra_json TEXT NOT NULL DEFAULT '{}';
    """,
    # 2 -> 3: the wrist camera's video, where an episode has one ('' for rows written before, as for
    # episodes without a wrist camera).
    """
    ALTER TABLE episodes ADD COLUMN wrist_video_path TEXT NOT NULL DEFAULT '';
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass
class EpisodeRecord:
    """One row of the index. Paths are relative to the store root when the store wrote them."""

    episode_id: str
    task: str
    instruction: str
    source: str
    duration_s: float
    num_steps: int
    bag_path: str
    video_path: str = ""
    policy_version: str = ""
    success: bool | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # gold metrics where known
    extra: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)  # seconds since the epoch
    wrist_video_path: str = ""  # the wrist camera's video, on the main video's clock; '' when none

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_COLUMNS = {
    "episode_id": "episode_id",
    "task": "task",
    "instruction": "instruction",
    "source": "source",
    "duration_s": "duration_s",
    "num_steps": "num_steps",
    "bag_path": "bag_path",
    "video_path": "video_path",
    "policy_version": "policy_version",
    "success": "success",
    "metrics": "metrics_json",
    "extra": "extra_json",
    "created_at": "created_at",
    "wrist_video_path": "wrist_video_path",
}


def _to_row(rec: EpisodeRecord) -> dict[str, Any]:
    row = {}
    for f in fields(rec):
        v = getattr(rec, f.name)
        if f.name in ("metrics", "extra"):
            v = json.dumps(v, sort_keys=True)
        elif f.name == "success":
            v = None if v is None else int(bool(v))
        row[_COLUMNS[f.name]] = v
    return row


def _from_row(row: sqlite3.Row) -> EpisodeRecord:
    kw = {}
    for name, col in _COLUMNS.items():
        v = row[col]
        if name in ("metrics", "extra"):
            v = json.loads(v)
        elif name == "success":
            v = None if v is None else bool(v)
        kw[name] = v
    return EpisodeRecord(**kw)


def _locked(method):
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class EpisodeIndex:
    """SQLite index of episodes: `add`, `get`, `list` (filtered), `update`, `remove`.

    Safe to share between threads. Each call opens its own short transaction, so several processes (recorder, annotation server,
    trainer) can share one index file; WAL lets readers run while one writes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by threads (e.g. a web server's workers), serialised by a lock.
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    # ------------------------------------------------------------------ schema
    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path}: index schema version {version} is newer than this code's {SCHEMA_VERSION}; upgrade rlhf"
            )
        for v in range(version, SCHEMA_VERSION):
            # executescript commits first; wrap each step so a failed migration leaves version v intact.
            self._conn.executescript(f"BEGIN IMMEDIATE;\n{MIGRATIONS[v]}\nPRAGMA user_version = {v + 1};\nCOMMIT;")

    @_locked
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> EpisodeIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ rows
    @_locked
    def add(self, record: EpisodeRecord) -> EpisodeRecord:
        """Insert a new row; raise KeyError if the episode id is already indexed."""
        if record.source not in ("sim", "robot"):
            raise ValueError(f"episode {record.episode_id!r}: source must be 'sim' or 'robot', got {record.source!r}")
        row = _to_row(record)
        cols = ", ".join(row)
        marks = ", ".join(f":{c}" for c in row)
        try:
            self._conn.execute(f"INSERT INTO episodes ({cols}) VALUES ({marks})", row)
        except sqlite3.IntegrityError as e:
            if "UNIQUE" in str(e) or "PRIMARY KEY" in str(e):
                raise KeyError(f"episode {record.episode_id!r} is already in the index {self.path}") from e
            raise ValueError(f"episode {record.episode_id!r}: {e}") from e
        return record

    @_locked
    def get(self, episode_id: str) -> EpisodeRecord:
        """The row of `episode_id`; KeyError if absent."""
        row = self._conn.execute("SELECT * FROM episodes WHERE episode_id = ?", (episode_id,)).fetchone()
        if row is None:
            raise KeyError(f"episode {episode_id!r} is not in the index {self.path}")
        return _from_row(row)

    @_locked
    def __contains__(self, episode_id: str) -> bool:
        return self._conn.execute("SELECT 1 FROM episodes WHERE episode_id = ?", (episode_id,)).fetchone() is not None

    @_locked
    def __len__(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM episodes").fetchone()[0])

    @_locked
    def list(
        self,
        *,
        task: str | None = None,
        source: str | None = None,
        policy_version: str | None = None,
        success: bool | None = None,
        instruction_contains: str | None = None,
        limit: int | None = None,
    ) -> list[EpisodeRecord]:
        """Rows matching every given filter, oldest first."""
        where, args = [], []
        for col, val in (("task", task), ("source", source), ("policy_version", policy_version)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if success is not None:
            where.append("success = ?")
            args.append(int(success))
        if instruction_contains:
            where.append("instruction LIKE ?")
            args.append(f"%{instruction_contains}%")
        sql = "SELECT * FROM episodes"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, episode_id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [_from_row(r) for r in self._conn.execute(sql, args)]

    @_locked
    def update(self, episode_id: str, /, **changes: Any) -> EpisodeRecord:
        """Change some fields of a row (e.g. `success=`, `metrics=`, `video_path=`); returns the new row."""
        bad = [k for k in changes if k not in _COLUMNS or k == "episode_id"]
        if bad:
            raise ValueError(f"cannot update fields {bad}; updatable: {sorted(set(_COLUMNS) - {'episode_id'})}")
        rec = self.get(episode_id)
        for k, v in changes.items():
            setattr(rec, k, v)
        row = _to_row(rec)
        sets = ", ".join(f"{_COLUMNS[k]} = :{_COLUMNS[k]}" for k in changes)
        self._conn.execute(f"UPDATE episodes SET {sets} WHERE episode_id = :episode_id", row)
        return rec

    @_locked
    def remove(self, episode_id: str) -> None:
        """Delete a row; KeyError if absent."""
        cur = self._conn.execute("DELETE FROM episodes WHERE episode_id = ?", (episode_id,))
        if cur.rowcount == 0:
            raise KeyError(f"episode {episode_id!r} is not in the index {self.path}")
