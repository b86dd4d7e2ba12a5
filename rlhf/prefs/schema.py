"""The preference store's SQLite schema as a list of migrations, applied in order via PRAGMA user_version.

Append a new migration to change the schema; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema.
    """
    CREATE TABLE annotators (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('annotator', 'teacher', 'admin')),
        created_at REAL NOT NULL
    );
    CREATE TABLE campaigns (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        axis_weights TEXT NOT NULL,
        calibration_size INTEGER NOT NULL,
        qualification_threshold REAL NOT NULL,
        gold_rate REAL NOT NULL,
        repeat_rate REAL NOT NULL,
        labels_per_pair INTEGER NOT NULL,
        lock_seconds REAL NOT NULL,
        created_at REAL NOT NULL
    );
    -- Per campaign: has the annotator passed calibration (NULL while it is still running)?
    CREATE TABLE enrolments (
        campaign_id TEXT NOT NULL REFERENCES campaigns(id),
        annotator_id TEXT NOT NULL REFERENCES annotators(id),
        qualified INTEGER,
        calibration_accuracy REAL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (campaign_id, annotator_id)
    );
    CREATE TABLE episodes (
        id TEXT PRIMARY KEY,
        task TEXT NOT NULL,
        instruction TEXT NOT NULL,
        video_url TEXT NOT NULL,
        video_path TEXT,
        duration REAL NOT NULL,
        fps REAL NOT NULL,
        num_steps INTEGER NOT NULL,
        gold_axes TEXT
    );
    CREATE TABLE pairs (
        id TEXT PRIMARY KEY,
        campaign_id TEXT NOT NULL REFERENCES campaigns(id),
        kind TEXT NOT NULL CHECK (kind IN ('calibration', 'gold', 'repeat', 'work')),
        episode_a TEXT NOT NULL REFERENCES episodes(id),
        episode_b TEXT NOT NULL REFERENCES episodes(id),
        seg_a_start INTEGER NOT NULL, seg_a_stop INTEGER NOT NULL,
        seg_b_start INTEGER NOT NULL, seg_b_stop INTEGER NOT NULL,
        a_on_left INTEGER NOT NULL,
        known_label INTEGER,
        known_axes TEXT,
        repeat_of TEXT REFERENCES pairs(id),
        only_for TEXT REFERENCES annotators(id),
        order_key REAL NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX pairs_campaign_kind ON pairs (campaign_id, kind, order_key);
    -- An item handed to an annotator; it reserves the pair until answered or expires_at.
    CREATE TABLE assignments (
        id TEXT PRIMARY KEY,
        campaign_id TEXT NOT NULL REFERENCES campaigns(id),
        pair_id TEXT NOT NULL REFERENCES pairs(id),
        annotator_id TEXT NOT NULL REFERENCES annotators(id),
        shown_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        answered_at REAL,
        UNIQUE (pair_id, annotator_id)
    );
    CREATE INDEX assignments_annotator ON assignments (campaign_id, annotator_id, answered_at);
    CREATE TABLE labels (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        assignment_id TEXT NOT NULL UNIQUE REFERENCES assignments(id),
        campaign_id TEXT NOT NULL REFERENCES campaigns(id),
        pair_id TEXT NOT NULL REFERENCES pairs(id),
        annotator_id TEXT NOT NULL REFERENCES annotators(id),
        axes TEXT NOT NULL,
        label INTEGER NOT NULL,
        prob_a REAL,
        overall_explicit INTEGER NOT NULL,
        marks TEXT NOT NULL,
        shown_at REAL NOT NULL,
        answered_at REAL NOT NULL,
        client_ms REAL,
        correct INTEGER,
        UNIQUE (pair_id, annotator_id)
    );
    CREATE INDEX labels_campaign ON labels (campaign_id, annotator_id);
    """,
    # 2: counters that keep picking the next item O(annotators) instead of O(labels): answered labels
    # per pair (with a queue index), and items handed out per annotator and kind.
    """
    ALTER TABLE pairs ADD COLUMN label_count INTEGER NOT NULL DEFAULT 0;
    UPDATE pairs SET label_count = (SELECT COUNT(*) FROM labels l WHERE l.pair_id = pairs.id);
    CREATE INDEX pairs_queue ON pairs (campaign_id, kind, label_count, order_key);
    ALTER TABLE enrolments ADD COLUMN n_work INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE enrolments ADD COLUMN n_gold INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE enrolments ADD COLUMN n_repeat INTEGER NOT NULL DEFAULT 0;
    UPDATE enrolments SET
        n_work = (SELECT COUNT(*) FROM assignments a JOIN pairs p ON p.id = a.pair_id WHERE p.kind = 'work'
                  AND a.campaign_id = enrolments.campaign_id AND a.annotator_id = enrolments.annotator_id),
        n_gold = (SELECT COUNT(*) FROM assignments a JOIN pairs p ON p.id = a.pair_id WHERE p.kind = 'gold'
                  AND a.campaign_id = enrolments.campaign_id AND a.annotator_id = enrolments.annotator_id),
        n_repeat = (SELECT COUNT(*) FROM assignments a JOIN pairs p ON p.id = a.pair_id WHERE p.kind = 'repeat'
                    AND a.campaign_id = enrolments.campaign_id AND a.annotator_id = enrolments.annotator_id);
    """,
    # 3: an optional second camera per episode (the wrist camera), shown beside the scene video; NULL
    # for episodes registered before and for episodes without one.
    """
    ALTER TABLE episodes ADD COLUMN wrist_video_url TEXT;
    ALTER TABLE episodes ADD COLUMN wrist_video_path TEXT;
    """,
)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this database has not seen; returns the schema version now in force."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"preference store schema version {version} is newer than this code knows ({len(MIGRATIONS)}); "
            "upgrade the rlhf package"
        )
    for i in range(version, len(MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _split(MIGRATIONS[i]):
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {i + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _split(script: str) -> list[str]:
    """Split a migration into statements (ours hold no ';' inside strings), dropping '--' comments."""
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
