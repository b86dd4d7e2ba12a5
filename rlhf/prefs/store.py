"""The preference store: annotators, campaigns, episodes, pairs, item locks and labels in SQLite (WAL).

One file holds a whole deployment. Every write runs in a `BEGIN IMMEDIATE` transaction, so handing
out items is atomic across threads and processes: an item handed to one annotator is not handed to
another until it is answered or its lock expires. Each thread gets its own connection.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.campaign import PAIR_KINDS, CampaignConfig
from rlhf.prefs.labels import aggregate_axes, label_to_prob
from rlhf.prefs.schema import migrate
from rlhf.prefs.triples import LABEL_A, LABEL_B, LABEL_CANT_TELL, LABEL_EQUAL, PreferenceTriple

ROLES: tuple[str, ...] = ("annotator", "teacher", "admin")


class StoreError(ValueError):
    """Bad input to the store (unknown id, invalid value); the message names what is wrong."""


class NotFound(StoreError):
    """An id does not exist."""


class Conflict(StoreError):
    """The request clashes with stored state (already answered, duplicate id)."""


def hash_token(token: str) -> str:
    """Tokens are stored only as SHA-256 hashes, so a leaked database does not leak access."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Annotator:
    annotator_id: str
    role: str


@dataclass(frozen=True)
class EpisodeRecord:
    """An episode as the annotation page needs it: where its video is and how steps map to time."""

    episode_id: str
    task: str
    instruction: str
    video_url: str
    """What the browser loads: '/videos/<id>' (served from video_path) or an absolute URL."""
    num_steps: int
    fps: float
    """Video frames (= control steps) per second; step i is shown at time i / fps."""
    duration: float = 0.0
    video_path: str | None = None
    """Local MP4 file the server streams (with HTTP Range) when video_url is '/videos/<id>'."""
    gold_axes: dict[str, float] | None = None
    """Gold per-axis scores (higher is better) where known; used for known answers of gold pairs."""
    wrist_video_url: str | None = None
    """The wrist camera's video on the same clock as video_url ('/wrist-videos/<id>' or an absolute
    URL); None when the episode has no wrist camera."""
    wrist_video_path: str | None = None
    """Local file the server streams when wrist_video_url is '/wrist-videos/<id>'."""

    def __post_init__(self) -> None:
        if not self.episode_id:
            raise StoreError("episode_id must be non-empty")
        if self.num_steps < 1:
            raise StoreError(f"episode {self.episode_id!r}: num_steps must be >= 1, got {self.num_steps}")
        if not (self.fps > 0):
            raise StoreError(f"episode {self.episode_id!r}: fps must be > 0, got {self.fps}")
        if self.gold_axes is not None:
            unknown = set(self.gold_axes) - set(PREFERENCE_AXES)
            if unknown:
                raise StoreError(f"episode {self.episode_id!r}: gold_axes has unknown axes {sorted(unknown)}")
        if self.wrist_video_path and not self.wrist_video_url:
            # A path alone would never reach the page: the page loads URLs.
            raise StoreError(f"episode {self.episode_id!r}: wrist_video_path is set but wrist_video_url is not")


@dataclass(frozen=True)
class PairRecord:
    pair_id: str
    campaign_id: str
    kind: str
    episode_a: str
    episode_b: str
    segment_a: tuple[int, int]
    segment_b: tuple[int, int]
    a_on_left: bool
    """Whether episode_a was (randomly) put on the left of the page."""
    known_label: int | None = None
    known_axes: dict[str, int] | None = None
    repeat_of: str | None = None
    only_for: str | None = None


@dataclass(frozen=True)
class Assignment:
    """An item handed to an annotator: a pair, reserved for them until `expires_at`."""

    assignment_id: str
    pair: PairRecord
    annotator_id: str
    shown_at: float
    expires_at: float


@dataclass(frozen=True)
class NextItem:
    """The answer to 'what should this annotator do next?'.

    status: 'item' (assignment set), 'wait' (everything left is locked by others: ask again later),
    'done' (nothing left for this annotator), 'not_qualified' (failed calibration),
    'no_calibration' (the campaign needs calibration pairs before anyone can start).
    """

    status: str
    assignment: Assignment | None = None
    phase: str = "work"  # 'calibration' or 'work': what the annotator is told
    calibration_done: int = 0
    calibration_total: int = 0


@dataclass(frozen=True)
class LabelRecord:
    label_id: int
    assignment_id: str
    campaign_id: str
    pair_id: str
    kind: str
    annotator_id: str
    axes: dict[str, int]
    label: int
    prob_a: float | None
    overall_explicit: bool
    marks: list[dict[str, Any]]
    shown_at: float
    answered_at: float
    client_ms: float | None
    correct: bool | None
    repeat_of: str | None = None


@dataclass(frozen=True)
class SubmitResult:
    label: LabelRecord
    feedback: dict[str, Any] | None = None
    """For calibration items: {'correct', 'expected_label', 'expected_axes'} in episode order."""
    qualified: bool | None = None
    calibration_accuracy: float | None = None


@dataclass
class _Enrolment:
    qualified: bool | None
    calibration_accuracy: float | None = None
    n_work: int = 0
    n_gold: int = 0
    n_repeat: int = 0


class PreferenceStore:
    """SQLite-backed preference store. Safe to share between threads; open it in several processes."""

    def __init__(
        self, path: str | os.PathLike, *, seed: int | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        self.schema_version = migrate(conn)

    # ------------------------------------------------------------------ plumbing
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the database's write lock up front (no upgrade deadlocks)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _random(self) -> float:
        with self._rng_lock:
            return self._rng.random()

    def close(self) -> None:
        with self._conns_lock:
            for conn in self._conns:
                try:
                    conn.close()
                except sqlite3.ProgrammingError:
                    pass  # closed from its own thread already
            self._conns.clear()
        self._local = threading.local()

    def __enter__(self) -> PreferenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ annotators
    def add_annotator(self, annotator_id: str, role: str = "annotator", *, rotate: bool = False) -> str:
        """Create an annotator (or, with rotate=True, give an existing one a new token); returns the token.

        The token is returned once and stored only as a hash.
        """
        if not annotator_id or len(annotator_id) > 200:
            raise StoreError("annotator_id must be 1-200 characters")
        if role not in ROLES:
            raise StoreError(f"role must be one of {ROLES}, got {role!r}")
        token = secrets.token_urlsafe(24)
        with self._write() as conn:
            row = conn.execute("SELECT role FROM annotators WHERE id=?", (annotator_id,)).fetchone()
            if row is not None:
                if not rotate:
                    raise Conflict(f"annotator {annotator_id!r} already exists")
                conn.execute(
                    "UPDATE annotators SET token_hash=?, role=? WHERE id=?", (hash_token(token), role, annotator_id)
                )
            else:
                conn.execute(
                    "INSERT INTO annotators (id, token_hash, role, created_at) VALUES (?, ?, ?, ?)",
                    (annotator_id, hash_token(token), role, self._clock()),
                )
        return token

    def authenticate(self, token: str | None) -> Annotator | None:
        """The annotator holding `token`, or None."""
        if not token:
            return None
        row = self._conn().execute("SELECT id, role FROM annotators WHERE token_hash=?", (hash_token(token),)).fetchone()
        return Annotator(row["id"], row["role"]) if row else None

    def annotators(self) -> list[Annotator]:
        rows = self._conn().execute("SELECT id, role FROM annotators ORDER BY id").fetchall()
        return [Annotator(r["id"], r["role"]) for r in rows]

    # ------------------------------------------------------------------ campaigns
    def create_campaign(self, config: CampaignConfig) -> CampaignConfig:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM campaigns WHERE id=?", (config.campaign_id,)).fetchone():
                raise Conflict(f"campaign {config.campaign_id!r} already exists")
            conn.execute(
                "INSERT INTO campaigns (id, name, axis_weights, calibration_size, qualification_threshold,"
                " gold_rate, repeat_rate, labels_per_pair, lock_seconds, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    config.campaign_id,
                    config.name,
                    json.dumps(config.axis_weights),
                    config.calibration_size,
                    config.qualification_threshold,
                    config.gold_rate,
                    config.repeat_rate,
                    config.labels_per_pair,
                    config.lock_seconds,
                    self._clock(),
                ),
            )
        return config

    def campaign(self, campaign_id: str) -> CampaignConfig:
        row = self._conn().execute("SELECT * FROM campaigns WHERE id=?", (campaign_id,)).fetchone()
        if row is None:
            raise NotFound(f"no campaign {campaign_id!r}")
        return CampaignConfig(
            campaign_id=row["id"],
            name=row["name"],
            axis_weights=json.loads(row["axis_weights"]),
            calibration_size=row["calibration_size"],
            qualification_threshold=row["qualification_threshold"],
            gold_rate=row["gold_rate"],
            repeat_rate=row["repeat_rate"],
            labels_per_pair=row["labels_per_pair"],
            lock_seconds=row["lock_seconds"],
        )

    def campaigns(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT id FROM campaigns ORDER BY created_at, id")]

    # ------------------------------------------------------------------ episodes
    def add_episodes(self, episodes: Iterable[EpisodeRecord], *, replace: bool = False) -> int:
        """Register episodes (ids must be new unless replace=True); returns how many were written."""
        rows = [
            (
                e.episode_id,
                e.task,
                e.instruction,
                e.video_url,
                e.video_path,
                float(e.duration or (e.num_steps / e.fps)),
                float(e.fps),
                int(e.num_steps),
                json.dumps(e.gold_axes) if e.gold_axes is not None else None,
                e.wrist_video_url,
                e.wrist_video_path,
            )
            for e in episodes
        ]
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        with self._write() as conn:
            try:
                conn.executemany(
                    f"{verb} INTO episodes (id, task, instruction, video_url, video_path, duration, fps,"
                    " num_steps, gold_axes, wrist_video_url, wrist_video_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except sqlite3.IntegrityError as e:
                raise Conflict(f"episode already registered ({e}); pass replace=True to overwrite") from e
        return len(rows)

    def episode(self, episode_id: str) -> EpisodeRecord:
        row = self._conn().execute("SELECT * FROM episodes WHERE id=?", (episode_id,)).fetchone()
        if row is None:
            raise NotFound(f"no episode {episode_id!r}")
        return _episode_from_row(row)

    def episodes(self, task: str | None = None) -> list[EpisodeRecord]:
        if task is None:
            rows = self._conn().execute("SELECT * FROM episodes ORDER BY id").fetchall()
        else:
            rows = self._conn().execute("SELECT * FROM episodes WHERE task=? ORDER BY id", (task,)).fetchall()
        return [_episode_from_row(r) for r in rows]

    # ------------------------------------------------------------------ pairs
    def add_pair(
        self,
        campaign_id: str,
        episode_a: str,
        episode_b: str,
        segment_a: tuple[int, int] | None = None,
        segment_b: tuple[int, int] | None = None,
        *,
        kind: str = "work",
        known_label: int | None = None,
        known_axes: Mapping[str, int] | None = None,
        a_on_left: bool | None = None,
    ) -> PairRecord:
        """Add one pair. Segments default to whole episodes; left/right is randomised unless given."""
        return self.add_pairs(
            campaign_id,
            [dict(episode_a=episode_a, episode_b=episode_b, segment_a=segment_a, segment_b=segment_b,
                  kind=kind, known_label=known_label, known_axes=known_axes, a_on_left=a_on_left)],
        )[0]

    def add_pairs(self, campaign_id: str, specs: Sequence[Mapping[str, Any]]) -> list[PairRecord]:
        """Add pairs from dicts with the keyword arguments of `add_pair`, in one transaction."""
        self.campaign(campaign_id)
        out: list[PairRecord] = []
        now = self._clock()
        with self._write() as conn:
            for spec in specs:
                pair = self._validated_pair(conn, campaign_id, spec)
                _insert_pair(conn, pair, self._random(), now)
                out.append(pair)
        return out

    def _validated_pair(self, conn: sqlite3.Connection, campaign_id: str, spec: Mapping[str, Any]) -> PairRecord:
        kind = spec.get("kind", "work")
        if kind not in PAIR_KINDS or kind == "repeat":
            raise StoreError(f"pair kind must be calibration, gold or work (repeats are made by the store), got {kind!r}")
        eps = {}
        for side in ("episode_a", "episode_b"):
            row = conn.execute("SELECT * FROM episodes WHERE id=?", (spec[side],)).fetchone()
            if row is None:
                raise NotFound(f"pair {side}: no episode {spec[side]!r}")
            eps[side] = _episode_from_row(row)
        a, b = eps["episode_a"], eps["episode_b"]
        if a.episode_id == b.episode_id:
            raise StoreError(f"pair compares episode {a.episode_id!r} with itself")
        if (a.task, a.instruction) != (b.task, b.instruction):
            raise StoreError(
                f"pair episodes differ in task/instruction: {a.episode_id!r} ({a.task}: {a.instruction!r}) vs "
                f"{b.episode_id!r} ({b.task}: {b.instruction!r})"
            )
        segs = []
        for ep, key in ((a, "segment_a"), (b, "segment_b")):
            seg = spec.get(key) or (0, ep.num_steps)
            seg = (int(seg[0]), int(seg[1]))
            if not (0 <= seg[0] < seg[1] <= ep.num_steps):
                raise StoreError(f"{key} {seg} is outside episode {ep.episode_id!r} (0..{ep.num_steps})")
            segs.append(seg)
        known_label = spec.get("known_label")
        known_axes = spec.get("known_axes")
        if kind in ("calibration", "gold") and known_label is None:
            raise StoreError(f"a {kind} pair needs a known_label")
        if known_label is not None and known_label not in (LABEL_A, LABEL_B, LABEL_EQUAL):
            raise StoreError(f"known_label must be LABEL_A, LABEL_B or LABEL_EQUAL, got {known_label!r}")
        if known_axes is not None:
            unknown = set(known_axes) - set(PREFERENCE_AXES)
            if unknown:
                raise StoreError(f"known_axes has unknown axes {sorted(unknown)}")
            known_axes = {k: int(v) for k, v in known_axes.items()}
        a_on_left = spec.get("a_on_left")
        if a_on_left is None:
            a_on_left = self._random() < 0.5
        return PairRecord(
            pair_id=spec.get("pair_id") or f"p-{uuid.uuid4().hex[:16]}",
            campaign_id=campaign_id,
            kind=kind,
            episode_a=a.episode_id,
            episode_b=b.episode_id,
            segment_a=segs[0],
            segment_b=segs[1],
            a_on_left=bool(a_on_left),
            known_label=known_label,
            known_axes=known_axes,
        )

    def pair(self, pair_id: str) -> PairRecord:
        row = self._conn().execute("SELECT * FROM pairs WHERE id=?", (pair_id,)).fetchone()
        if row is None:
            raise NotFound(f"no pair {pair_id!r}")
        return _pair_from_row(row)

    def pairs(self, campaign_id: str, kind: str | None = None) -> list[PairRecord]:
        q = "SELECT * FROM pairs WHERE campaign_id=?"
        args: list[Any] = [campaign_id]
        if kind is not None:
            q += " AND kind=?"
            args.append(kind)
        return [_pair_from_row(r) for r in self._conn().execute(q + " ORDER BY order_key", args)]

    # ------------------------------------------------------------------ items
    def next_item(self, campaign_id: str, annotator_id: str) -> NextItem:
        """Hand the annotator their next item (atomically locking it), or say why there is none.

        Order: an open item of theirs (re-shown, lock renewed) -> calibration until done -> when
        qualified, a repeat (repeat_rate), a hidden gold pair (gold_rate) or a work pair, uniformly
        among the pairs with the fewest labels and locks.
        """
        cfg = self.campaign(campaign_id)
        roll = self._random()
        now = self._clock()
        with self._write() as conn:
            enrol = _enrolment(conn, campaign_id, annotator_id, now)
            n_cal = conn.execute(
                "SELECT COUNT(*) FROM pairs WHERE campaign_id=? AND kind='calibration'", (campaign_id,)
            ).fetchone()[0]
            cal_total = min(cfg.calibration_size, n_cal)
            cal_done = cal_total  # a decided annotator is through calibration; count only while it runs
            if enrol.qualified is None:
                cal_done = conn.execute(
                    "SELECT COUNT(*) FROM labels l JOIN pairs p ON p.id=l.pair_id"
                    " WHERE l.campaign_id=? AND l.annotator_id=? AND p.kind='calibration'",
                    (campaign_id, annotator_id),
                ).fetchone()[0]

            def item(assignment: Assignment, phase: str) -> NextItem:
                return NextItem("item", assignment, phase, cal_done, cal_total)

            open_row = conn.execute(
                "SELECT a.*, p.kind FROM assignments a JOIN pairs p ON p.id=a.pair_id"
                " WHERE a.campaign_id=? AND a.annotator_id=? AND a.answered_at IS NULL ORDER BY a.shown_at LIMIT 1",
                (campaign_id, annotator_id),
            ).fetchone()
            if open_row is not None:
                expires = now + cfg.lock_seconds
                conn.execute("UPDATE assignments SET expires_at=? WHERE id=?", (expires, open_row["id"]))
                pair = _pair_from_row(conn.execute("SELECT * FROM pairs WHERE id=?", (open_row["pair_id"],)).fetchone())
                phase = "calibration" if pair.kind == "calibration" else "work"
                return item(Assignment(open_row["id"], pair, annotator_id, open_row["shown_at"], expires), phase)

            if enrol.qualified is None:
                if cfg.calibration_size > 0 and n_cal == 0:
                    return NextItem("no_calibration", calibration_total=0)
                if cal_done < cal_total:
                    row = conn.execute(
                        "SELECT p.* FROM pairs p WHERE p.campaign_id=? AND p.kind='calibration' AND NOT EXISTS"
                        " (SELECT 1 FROM assignments a WHERE a.pair_id=p.id AND a.annotator_id=?)"
                        " ORDER BY p.order_key LIMIT 1",
                        (campaign_id, annotator_id),
                    ).fetchone()
                    if row is not None:
                        return item(self._assign(conn, cfg, _pair_from_row(row), annotator_id, now), "calibration")
                # Calibration is not needed (size 0) or finished without a verdict: decide now.
                enrol = _qualify(conn, cfg, annotator_id, cal_total, now)
            if not enrol.qualified:
                return NextItem("not_qualified", phase="calibration", calibration_done=cal_done, calibration_total=cal_total)

            # Hidden quality items: drawn at random at their rates, and topped up when an annotator is
            # owed more than one (so short sessions and the end of the work queue still get their share).
            done = {"work": enrol.n_work, "gold": enrol.n_gold, "repeat": enrol.n_repeat}
            total = sum(done.values()) + 1
            owed_repeat = cfg.repeat_rate * total - done["repeat"]
            owed_gold = cfg.gold_rate * total - done["gold"]
            pair: PairRecord | None = None
            if roll < cfg.repeat_rate or owed_repeat >= 1:
                pair = self._make_repeat(conn, campaign_id, annotator_id, now)
            if pair is None and (cfg.repeat_rate <= roll < cfg.repeat_rate + cfg.gold_rate or owed_gold >= 1):
                pair = self._next_gold(conn, campaign_id, annotator_id)
            if pair is None:
                # Fewest labels first, then the shuffled order; the queue index walks past full pairs,
                # so only pairs locked by others right now are looked at and skipped.
                row = conn.execute(
                    "SELECT p.* FROM pairs p WHERE p.campaign_id=? AND p.kind='work' AND p.label_count < ?"
                    " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.pair_id=p.id AND a.annotator_id=?)"
                    " AND p.label_count + (SELECT COUNT(*) FROM assignments a WHERE a.pair_id=p.id"
                    "   AND a.answered_at IS NULL AND a.expires_at > ?) < ?"
                    " ORDER BY p.label_count, p.order_key LIMIT 1",
                    (campaign_id, cfg.labels_per_pair, annotator_id, now, cfg.labels_per_pair),
                ).fetchone()
                if row is not None:
                    pair = _pair_from_row(row)
            if pair is None and owed_repeat > 0:
                pair = self._make_repeat(conn, campaign_id, annotator_id, now)
            if pair is None and owed_gold > 0:
                pair = self._next_gold(conn, campaign_id, annotator_id)
            if pair is None:
                # Nothing free: is something merely locked by others (wait) or is this annotator done?
                pending = conn.execute(
                    "SELECT 1 FROM pairs p WHERE p.campaign_id=? AND p.kind='work' AND p.label_count < ?"
                    " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.pair_id=p.id AND a.annotator_id=?)"
                    " LIMIT 1",
                    (campaign_id, cfg.labels_per_pair, annotator_id),
                ).fetchone()
                status = "wait" if pending else "done"
                return NextItem(status, calibration_done=cal_done, calibration_total=cal_total)
            return item(self._assign(conn, cfg, pair, annotator_id, now), "work")

    def _assign(
        self, conn: sqlite3.Connection, cfg: CampaignConfig, pair: PairRecord, annotator_id: str, now: float
    ) -> Assignment:
        assignment = Assignment(f"i-{uuid.uuid4().hex}", pair, annotator_id, now, now + cfg.lock_seconds)
        conn.execute(
            "INSERT INTO assignments (id, campaign_id, pair_id, annotator_id, shown_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (assignment.assignment_id, cfg.campaign_id, pair.pair_id, annotator_id, now, assignment.expires_at),
        )
        if pair.kind in ("work", "gold", "repeat"):
            conn.execute(
                f"UPDATE enrolments SET n_{pair.kind} = n_{pair.kind} + 1 WHERE campaign_id=? AND annotator_id=?",
                (cfg.campaign_id, annotator_id),
            )
        return assignment

    def _next_gold(self, conn: sqlite3.Connection, campaign_id: str, annotator_id: str) -> PairRecord | None:
        row = conn.execute(
            "SELECT p.* FROM pairs p WHERE p.campaign_id=? AND p.kind='gold' AND NOT EXISTS"
            " (SELECT 1 FROM assignments a WHERE a.pair_id=p.id AND a.annotator_id=?)"
            " ORDER BY p.order_key LIMIT 1",
            (campaign_id, annotator_id),
        ).fetchone()
        return _pair_from_row(row) if row else None

    def _make_repeat(
        self, conn: sqlite3.Connection, campaign_id: str, annotator_id: str, now: float
    ) -> PairRecord | None:
        """A fresh 'repeat' copy of a work pair this annotator labelled (not their latest), sides re-drawn."""
        rows = conn.execute(
            "SELECT p.* FROM labels l JOIN pairs p ON p.id=l.pair_id WHERE l.campaign_id=? AND l.annotator_id=?"
            " AND p.kind='work' AND NOT EXISTS (SELECT 1 FROM pairs r WHERE r.repeat_of=p.id AND r.only_for=?)"
            " ORDER BY l.id",
            (campaign_id, annotator_id, annotator_id),
        ).fetchall()
        rows = rows[:-1]  # never repeat the pair they have just answered
        if not rows:
            return None
        with self._rng_lock:
            src = _pair_from_row(self._rng.choice(rows))
            a_on_left = self._rng.random() < 0.5
        pair = PairRecord(
            pair_id=f"r-{uuid.uuid4().hex[:16]}",
            campaign_id=campaign_id,
            kind="repeat",
            episode_a=src.episode_a,
            episode_b=src.episode_b,
            segment_a=src.segment_a,
            segment_b=src.segment_b,
            a_on_left=a_on_left,
            repeat_of=src.pair_id,
            only_for=annotator_id,
        )
        _insert_pair(conn, pair, self._random(), now)
        return pair

    def assignment(self, assignment_id: str) -> tuple[Assignment, bool]:
        """(the assignment, whether it is answered)."""
        row = self._conn().execute("SELECT * FROM assignments WHERE id=?", (assignment_id,)).fetchone()
        if row is None:
            raise NotFound(f"no item {assignment_id!r}")
        pair = self.pair(row["pair_id"])
        a = Assignment(row["id"], pair, row["annotator_id"], row["shown_at"], row["expires_at"])
        return a, row["answered_at"] is not None

    # ------------------------------------------------------------------ labels
    def submit_label(
        self,
        assignment_id: str,
        annotator_id: str,
        axes: Mapping[str, int],
        *,
        overall: int | None = None,
        prob_a: float | None = None,
        marks: Sequence[Mapping[str, Any]] = (),
        client_ms: float | None = None,
    ) -> SubmitResult:
        """Record the answer to an item. Labels are in episode order (LABEL_A = the pair's episode_a).

        `axes` maps axis -> LABEL_*; axes left out count as can't-tell. `overall` (LABEL_*) overrides
        the weighted aggregate; `prob_a` overrides the probability stored with an explicit overall.
        An item can be answered once, by the annotator it was handed to, even after its lock expired
        (a late answer is kept, never lost).
        """
        unknown = set(axes) - set(PREFERENCE_AXES)
        if unknown:
            raise StoreError(f"unknown axes {sorted(unknown)}; axes are {PREFERENCE_AXES}")
        valid = (LABEL_A, LABEL_B, LABEL_EQUAL, LABEL_CANT_TELL)
        bad = {k: v for k, v in axes.items() if v not in valid}
        if bad:
            raise StoreError(f"axis labels must be LABEL_A/B/EQUAL/CANT_TELL (1-4), got {bad}")
        if overall is not None and overall not in valid:
            raise StoreError(f"overall must be a LABEL_* value (1-4), got {overall!r}")
        if prob_a is not None and not (0.0 <= prob_a <= 1.0):
            raise StoreError(f"prob_a must be in [0, 1], got {prob_a}")
        full_axes = {axis: int(axes.get(axis, LABEL_CANT_TELL)) for axis in PREFERENCE_AXES}
        clean_marks = _validate_marks(marks)
        now = self._clock()
        with self._write() as conn:
            row = conn.execute("SELECT * FROM assignments WHERE id=?", (assignment_id,)).fetchone()
            if row is None:
                raise NotFound(f"no item {assignment_id!r}")
            if row["annotator_id"] != annotator_id:
                raise Conflict(f"item {assignment_id!r} was handed to another annotator")
            if row["answered_at"] is not None:
                raise Conflict(f"item {assignment_id!r} is already answered")
            cfg = self.campaign(row["campaign_id"])
            pair = _pair_from_row(conn.execute("SELECT * FROM pairs WHERE id=?", (row["pair_id"],)).fetchone())
            if overall is None:
                label, p = aggregate_axes(full_axes, cfg.axis_weights)
                explicit = False
            else:
                label, p = overall, (prob_a if prob_a is not None else label_to_prob(overall))
                explicit = True
            correct = None if pair.known_label is None else label == pair.known_label
            marks_steps = [_mark_steps(m, pair, conn) for m in clean_marks]
            cur = conn.execute(
                "INSERT INTO labels (assignment_id, campaign_id, pair_id, annotator_id, axes, label, prob_a,"
                " overall_explicit, marks, shown_at, answered_at, client_ms, correct)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    assignment_id, cfg.campaign_id, pair.pair_id, annotator_id, json.dumps(full_axes), label, p,
                    int(explicit), json.dumps(marks_steps), row["shown_at"], now, client_ms,
                    None if correct is None else int(correct),
                ),
            )
            conn.execute("UPDATE assignments SET answered_at=? WHERE id=?", (now, assignment_id))
            conn.execute("UPDATE pairs SET label_count = label_count + 1 WHERE id=?", (pair.pair_id,))
            record = LabelRecord(
                label_id=int(cur.lastrowid), assignment_id=assignment_id, campaign_id=cfg.campaign_id,
                pair_id=pair.pair_id, kind=pair.kind, annotator_id=annotator_id, axes=full_axes, label=label,
                prob_a=p, overall_explicit=explicit, marks=marks_steps, shown_at=row["shown_at"], answered_at=now,
                client_ms=client_ms, correct=correct, repeat_of=pair.repeat_of,
            )
            feedback = qualified = accuracy = None
            if pair.kind == "calibration":
                feedback = {"correct": bool(correct), "expected_label": pair.known_label,
                            "expected_axes": pair.known_axes}
                n_cal = conn.execute(
                    "SELECT COUNT(*) FROM pairs WHERE campaign_id=? AND kind='calibration'", (cfg.campaign_id,)
                ).fetchone()[0]
                enrol = _qualify(conn, cfg, annotator_id, min(cfg.calibration_size, n_cal), now)
                qualified, accuracy = enrol.qualified, enrol.calibration_accuracy
        return SubmitResult(record, feedback, qualified, accuracy)

    def labels(self, campaign_id: str, kinds: Sequence[str] | None = None) -> list[LabelRecord]:
        """All labels of a campaign (optionally only some pair kinds), in the order they arrived."""
        q = (
            "SELECT l.*, p.kind, p.repeat_of FROM labels l JOIN pairs p ON p.id=l.pair_id"
            " WHERE l.campaign_id=?"
        )
        args: list[Any] = [campaign_id]
        if kinds:
            q += f" AND p.kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        rows = self._conn().execute(q + " ORDER BY l.id", args).fetchall()
        return [_label_from_row(r) for r in rows]

    def enrolment(self, campaign_id: str, annotator_id: str) -> dict[str, Any]:
        row = self._conn().execute(
            "SELECT * FROM enrolments WHERE campaign_id=? AND annotator_id=?", (campaign_id, annotator_id)
        ).fetchone()
        if row is None:
            return {"qualified": None, "calibration_accuracy": None}
        q = row["qualified"]
        return {"qualified": None if q is None else bool(q), "calibration_accuracy": row["calibration_accuracy"]}

    def triples(
        self, campaign_id: str, *, kinds: Sequence[str] = ("work", "gold"), qualified_only: bool = True
    ) -> list[PreferenceTriple]:
        """Labelled comparisons as PreferenceTriples, for the reward model and DPO.

        Can't-tell answers are left out; ties stay (prob_a 0.5). Repeats are left out by default (they
        would count one annotator twice); so are labels of annotators who failed calibration.
        """
        labels = self.labels(campaign_id, kinds)
        failed = set()
        if qualified_only:
            failed = {
                r[0]
                for r in self._conn().execute(
                    "SELECT annotator_id FROM enrolments WHERE campaign_id=? AND qualified=0", (campaign_id,)
                )
            }
        pairs: dict[str, PairRecord] = {}
        instructions: dict[str, str] = {}
        out = []
        for lab in labels:
            if lab.label == LABEL_CANT_TELL or lab.prob_a is None or lab.annotator_id in failed:
                continue
            pair = pairs.get(lab.pair_id) or pairs.setdefault(lab.pair_id, self.pair(lab.pair_id))
            if pair.episode_a not in instructions:
                instructions[pair.episode_a] = self.episode(pair.episode_a).instruction
            out.append(
                PreferenceTriple(
                    pair_id=pair.pair_id,
                    instruction=instructions[pair.episode_a],
                    episode_a=pair.episode_a,
                    episode_b=pair.episode_b,
                    segment_a=pair.segment_a,
                    segment_b=pair.segment_b,
                    prob_a=float(lab.prob_a),
                    annotator_id=lab.annotator_id,
                    campaign_id=campaign_id,
                    axes=dict(lab.axes),
                )
            )
        return out

    def counts(self, campaign_id: str) -> dict[str, int]:
        """Pairs per kind, labels, and items locked right now."""
        conn = self._conn()
        out = {f"pairs/{k}": 0 for k in PAIR_KINDS}
        for r in conn.execute("SELECT kind, COUNT(*) FROM pairs WHERE campaign_id=? GROUP BY kind", (campaign_id,)):
            out[f"pairs/{r[0]}"] = r[1]
        out["labels"] = conn.execute("SELECT COUNT(*) FROM labels WHERE campaign_id=?", (campaign_id,)).fetchone()[0]
        out["locked"] = conn.execute(
            "SELECT COUNT(*) FROM assignments WHERE campaign_id=? AND answered_at IS NULL AND expires_at > ?",
            (campaign_id, self._clock()),
        ).fetchone()[0]
        return out


# ---------------------------------------------------------------------- row helpers
def _episode_from_row(row: sqlite3.Row) -> EpisodeRecord:
    return EpisodeRecord(
        episode_id=row["id"],
        task=row["task"],
        instruction=row["instruction"],
        video_url=row["video_url"],
        num_steps=row["num_steps"],
        fps=row["fps"],
        duration=row["duration"],
        video_path=row["video_path"],
        gold_axes=json.loads(row["gold_axes"]) if row["gold_axes"] else None,
        wrist_video_url=row["wrist_video_url"],
        wrist_video_path=row["wrist_video_path"],
    )


def _pair_from_row(row: sqlite3.Row) -> PairRecord:
    return PairRecord(
        pair_id=row["id"],
        campaign_id=row["campaign_id"],
        kind=row["kind"],
        episode_a=row["episode_a"],
        episode_b=row["episode_b"],
        segment_a=(row["seg_a_start"], row["seg_a_stop"]),
        segment_b=(row["seg_b_start"], row["seg_b_stop"]),
        a_on_left=bool(row["a_on_left"]),
        known_label=row["known_label"],
        known_axes=json.loads(row["known_axes"]) if row["known_axes"] else None,
        repeat_of=row["repeat_of"],
        only_for=row["only_for"],
    )


def _label_from_row(row: sqlite3.Row) -> LabelRecord:
    return LabelRecord(
        label_id=row["id"],
        assignment_id=row["assignment_id"],
        campaign_id=row["campaign_id"],
        pair_id=row["pair_id"],
        kind=row["kind"],
        annotator_id=row["annotator_id"],
        axes=json.loads(row["axes"]),
        label=row["label"],
        prob_a=row["prob_a"],
        overall_explicit=bool(row["overall_explicit"]),
        marks=json.loads(row["marks"]),
        shown_at=row["shown_at"],
        answered_at=row["answered_at"],
        client_ms=row["client_ms"],
        correct=None if row["correct"] is None else bool(row["correct"]),
        repeat_of=row["repeat_of"],
    )


def _insert_pair(conn: sqlite3.Connection, pair: PairRecord, order_key: float, now: float) -> None:
    try:
        conn.execute(
            "INSERT INTO pairs (id, campaign_id, kind, episode_a, episode_b, seg_a_start, seg_a_stop, seg_b_start,"
            " seg_b_stop, a_on_left, known_label, known_axes, repeat_of, only_for, order_key, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                pair.pair_id, pair.campaign_id, pair.kind, pair.episode_a, pair.episode_b, *pair.segment_a,
                *pair.segment_b, int(pair.a_on_left), pair.known_label,
                json.dumps(pair.known_axes) if pair.known_axes is not None else None, pair.repeat_of,
                pair.only_for, order_key, now,
            ),
        )
    except sqlite3.IntegrityError as e:
        raise Conflict(f"pair {pair.pair_id!r}: {e}") from e


def _enrolment(conn: sqlite3.Connection, campaign_id: str, annotator_id: str, now: float) -> _Enrolment:
    row = conn.execute(
        "SELECT qualified, calibration_accuracy, n_work, n_gold, n_repeat FROM enrolments"
        " WHERE campaign_id=? AND annotator_id=?",
        (campaign_id, annotator_id),
    ).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO enrolments (campaign_id, annotator_id, qualified, updated_at) VALUES (?, ?, NULL, ?)",
            (campaign_id, annotator_id, now),
        )
        return _Enrolment(None)
    q = row["qualified"]
    return _Enrolment(
        None if q is None else bool(q), row["calibration_accuracy"], row["n_work"], row["n_gold"], row["n_repeat"]
    )


def _qualify(
    conn: sqlite3.Connection, cfg: CampaignConfig, annotator_id: str, cal_total: int, now: float
) -> _Enrolment:
    """Decide qualification once all `cal_total` calibration pairs are answered (no calibration: qualified)."""
    rows = conn.execute(
        "SELECT l.correct FROM labels l JOIN pairs p ON p.id=l.pair_id"
        " WHERE l.campaign_id=? AND l.annotator_id=? AND p.kind='calibration'",
        (cfg.campaign_id, annotator_id),
    ).fetchall()
    if len(rows) < cal_total:
        acc = sum(bool(r[0]) for r in rows) / len(rows) if rows else None
        conn.execute(
            "UPDATE enrolments SET calibration_accuracy=?, updated_at=? WHERE campaign_id=? AND annotator_id=?",
            (acc, now, cfg.campaign_id, annotator_id),
        )
        return _Enrolment(None, acc)
    acc = sum(bool(r[0]) for r in rows) / len(rows) if rows else None
    qualified = acc is None or acc >= cfg.qualification_threshold
    conn.execute(
        "INSERT INTO enrolments (campaign_id, annotator_id, qualified, calibration_accuracy, updated_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (campaign_id, annotator_id) DO UPDATE SET"
        " qualified=excluded.qualified, calibration_accuracy=excluded.calibration_accuracy,"
        " updated_at=excluded.updated_at",
        (cfg.campaign_id, annotator_id, int(qualified), acc, now),
    )
    return _Enrolment(qualified, acc)


def _validate_marks(marks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if len(marks) > 100:
        raise StoreError(f"at most 100 marks per label, got {len(marks)}")
    out = []
    for i, m in enumerate(marks):
        t = m.get("t")
        if not isinstance(t, int | float) or not (0 <= t < 1e5):
            raise StoreError(f"mark {i}: t must be seconds from the segment start (>= 0), got {t!r}")
        note = str(m.get("note", ""))[:500]
        out.append({"t": float(t), "note": note})
    return out


def _mark_steps(mark: dict[str, Any], pair: PairRecord, conn: sqlite3.Connection) -> dict[str, Any]:
    """Attach the control step each mark falls on in each episode (marks are in shared segment time)."""
    out = dict(mark)
    for side, ep_id, seg in (("a", pair.episode_a, pair.segment_a), ("b", pair.episode_b, pair.segment_b)):
        fps = conn.execute("SELECT fps FROM episodes WHERE id=?", (ep_id,)).fetchone()[0]
        out[f"step_{side}"] = min(seg[1] - 1, seg[0] + int(mark["t"] * fps))
    return out
