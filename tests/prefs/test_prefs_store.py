"""The preference store: schema, annotators, pairs, item locking, calibration, gold/repeat items, labels."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.campaign import CampaignConfig
from rlhf.prefs.schema import MIGRATIONS
from rlhf.prefs.store import Conflict, EpisodeRecord, NotFound, PreferenceStore, StoreError
from rlhf.prefs.triples import LABEL_A, LABEL_B, LABEL_CANT_TELL, LABEL_EQUAL, PreferenceTriple


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _episodes(n: int = 6, task: str = "reach", instruction: str = "reach the red cube", prefix: str = "e"):
    return [
        EpisodeRecord(f"{prefix}{i}", task, instruction, f"/videos/{prefix}{i}", num_steps=20, fps=10.0,
                      gold_axes={a: float(i) for a in PREFERENCE_AXES})
        for i in range(n)
    ]


@pytest.fixture()
def clock():
    return Clock()


@pytest.fixture()
def store(tmp_path, clock):
    s = PreferenceStore(tmp_path / "p.sqlite", seed=1, clock=clock)
    s.add_episodes(_episodes())
    yield s
    s.close()


def _all_a():
    return {a: LABEL_A for a in PREFERENCE_AXES}


def test_schema_wal_and_migrations(tmp_path):
    path = tmp_path / "p.sqlite"
    PreferenceStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"annotators", "campaigns", "episodes", "pairs", "assignments", "labels", "enrolments"} <= tables
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this code"):
        PreferenceStore(path)


def test_annotator_tokens_are_hashed(store, tmp_path):
    token = store.add_annotator("alice")
    assert store.authenticate(token).annotator_id == "alice"
    assert store.authenticate("wrong") is None and store.authenticate(None) is None
    with pytest.raises(Conflict):
        store.add_annotator("alice")
    new = store.add_annotator("alice", rotate=True)
    assert store.authenticate(token) is None and store.authenticate(new).annotator_id == "alice"
    raw = (tmp_path / "p.sqlite").read_bytes()
    assert new.encode() not in raw  # only the hash is stored
    with pytest.raises(StoreError, match="role"):
        store.add_annotator("bob", role="root")


def test_pairs_validated_and_sides_randomised(store):
    store.create_campaign(CampaignConfig("c", calibration_size=0))
    store.add_episodes(_episodes(2, instruction="push the cube", prefix="x"))
    with pytest.raises(StoreError, match="task/instruction"):
        store.add_pair("c", "e0", "x0")
    with pytest.raises(StoreError, match="itself"):
        store.add_pair("c", "e0", "e0")
    with pytest.raises(StoreError, match="outside episode"):
        store.add_pair("c", "e0", "e1", (0, 25), (0, 5))
    with pytest.raises(NotFound):
        store.add_pair("c", "e0", "nope")
    with pytest.raises(StoreError, match="known_label"):
        store.add_pair("c", "e0", "e1", kind="gold")
    sides = [store.add_pair("c", "e0", "e1", (2, 12), (0, 10)).a_on_left for _ in range(40)]
    assert 5 < sum(sides) < 35  # both sides occur: randomised
    again = store.pairs("c")
    assert [p.a_on_left for p in again] and {p.segment_a for p in again} == {(2, 12)}
    assert sorted(p.a_on_left for p in again) == sorted(sides)  # recorded as drawn


def test_item_locked_until_answered_or_expired(store, clock):
    store.create_campaign(CampaignConfig("c", calibration_size=0, gold_rate=0, repeat_rate=0, lock_seconds=60))
    store.add_pair("c", "e0", "e1")
    for name in ("ann", "bob"):
        store.add_annotator(name)
    first = store.next_item("c", "ann")
    assert first.status == "item"
    # Same annotator asking again gets the same open item back (a page reload loses nothing).
    assert store.next_item("c", "ann").assignment.assignment_id == first.assignment.assignment_id
    assert store.next_item("c", "bob").status == "wait"
    clock.t += 61  # ann's lock expired: the pair may go to bob
    second = store.next_item("c", "bob")
    assert second.status == "item" and second.assignment.pair.pair_id == first.assignment.pair.pair_id
    # A late answer by ann is still kept (never lost); bob answers too.
    store.submit_label(first.assignment.assignment_id, "ann", _all_a())
    store.submit_label(second.assignment.assignment_id, "bob", _all_a())
    assert len(store.labels("c")) == 2
    assert store.next_item("c", "ann").status == "done"


def test_labels_per_pair_and_no_duplicate_items(store):
    store.create_campaign(CampaignConfig("c", calibration_size=0, gold_rate=0, repeat_rate=0, labels_per_pair=2))
    for i in range(3):
        store.add_pair("c", f"e{i}", f"e{i + 3}")
    seen: dict[str, list[str]] = {}
    for name in ("a1", "a2", "a3"):
        store.add_annotator(name)
        seen[name] = []
        while (nxt := store.next_item("c", name)).status == "item":
            seen[name].append(nxt.assignment.pair.pair_id)
            store.submit_label(nxt.assignment.assignment_id, name, _all_a())
    for ids in seen.values():
        assert len(ids) == len(set(ids))  # never the same pair twice
    per_pair = {}
    for lab in store.labels("c"):
        per_pair[lab.pair_id] = per_pair.get(lab.pair_id, 0) + 1
    assert per_pair and set(per_pair.values()) == {2}
    assert seen["a3"] == []


def test_submit_errors(store):
    store.create_campaign(CampaignConfig("c", calibration_size=0, gold_rate=0, repeat_rate=0))
    store.add_pair("c", "e0", "e1")
    store.add_annotator("ann")
    store.add_annotator("bob")
    item = store.next_item("c", "ann").assignment
    with pytest.raises(Conflict, match="another annotator"):
        store.submit_label(item.assignment_id, "bob", _all_a())
    with pytest.raises(StoreError, match="unknown axes"):
        store.submit_label(item.assignment_id, "ann", {"beauty": LABEL_A})
    with pytest.raises(StoreError, match="axis labels"):
        store.submit_label(item.assignment_id, "ann", {"speed": 9})
    with pytest.raises(StoreError, match="mark 0"):
        store.submit_label(item.assignment_id, "ann", _all_a(), marks=[{"t": -1}])
    res = store.submit_label(item.assignment_id, "ann", _all_a(), marks=[{"t": 0.55, "note": "bump"}], client_ms=1234)
    assert res.label.marks == [{"t": 0.55, "note": "bump", "step_a": 5, "step_b": 5}]
    with pytest.raises(Conflict, match="already answered"):
        store.submit_label(item.assignment_id, "ann", _all_a())
    with pytest.raises(NotFound):
        store.submit_label("i-nope", "ann", _all_a())
    lab = store.labels("c")[0]
    assert lab.client_ms == 1234 and lab.answered_at >= lab.shown_at


def test_weighted_aggregate_and_explicit_overall(store):
    weights = {"success": 3.0, "speed": 1.0, "smoothness": 0.0, "safety": 0.0, "naturalness": 0.0}
    store.create_campaign(CampaignConfig("c", axis_weights=weights, calibration_size=0, gold_rate=0, repeat_rate=0))
    for i in range(3):
        store.add_pair("c", f"e{i}", f"e{i + 3}")
    store.add_annotator("ann")
    # success A (w 3), speed B (w 1): score 2 / 4 -> prob_a 0.75, label A; zero-weight axes do not vote.
    it = store.next_item("c", "ann").assignment
    r = store.submit_label(it.assignment_id, "ann", {"success": LABEL_A, "speed": LABEL_B, "safety": LABEL_B})
    assert r.label.label == LABEL_A and r.label.prob_a == pytest.approx(0.75)
    assert r.label.axes["naturalness"] == LABEL_CANT_TELL
    it = store.next_item("c", "ann").assignment
    r = store.submit_label(it.assignment_id, "ann", {"success": LABEL_CANT_TELL}, overall=LABEL_EQUAL)
    assert r.label.label == LABEL_EQUAL and r.label.prob_a == 0.5 and r.label.overall_explicit
    it = store.next_item("c", "ann").assignment
    r = store.submit_label(it.assignment_id, "ann", {})
    assert r.label.label == LABEL_CANT_TELL and r.label.prob_a is None
    triples = store.triples("c")
    assert len(triples) == 2  # can't-tell left out
    assert all(isinstance(t, PreferenceTriple) and t.instruction == "reach the red cube" for t in triples)
    assert {t.prob_a for t in triples} == {0.75, 0.5}


def test_calibration_feedback_and_qualification(store):
    store.create_campaign(CampaignConfig("c", calibration_size=4, qualification_threshold=0.75, gold_rate=0,
                                         repeat_rate=0))
    store.add_annotator("good")
    store.add_annotator("bad")
    assert store.next_item("c", "good").status == "no_calibration"
    for i in range(4):
        store.add_pair("c", f"e{i}", f"e{i + 1}", kind="calibration", known_label=LABEL_B,
                       known_axes={a: LABEL_B for a in PREFERENCE_AXES})
    store.add_pair("c", "e0", "e5")
    for name, answers in (("good", [LABEL_B, LABEL_B, LABEL_B, LABEL_A]), ("bad", [LABEL_B, LABEL_A, LABEL_A, LABEL_A])):
        for k, ans in enumerate(answers):
            nxt = store.next_item("c", name)
            assert nxt.status == "item" and nxt.phase == "calibration" and nxt.calibration_done == k
            res = store.submit_label(nxt.assignment.assignment_id, name, {a: ans for a in PREFERENCE_AXES})
            assert res.feedback["correct"] == (ans == LABEL_B)
            assert res.feedback["expected_label"] == LABEL_B
            assert res.qualified is (None if k < 3 else name == "good")
    assert store.enrolment("c", "good") == {"qualified": True, "calibration_accuracy": 0.75}
    assert store.next_item("c", "good").phase == "work"
    assert store.next_item("c", "bad").status == "not_qualified"


def test_gold_and_repeat_items(tmp_path, clock):
    s = PreferenceStore(tmp_path / "q.sqlite", seed=3, clock=clock)
    s.add_episodes(_episodes(12))
    s.create_campaign(CampaignConfig("c", calibration_size=0, gold_rate=0.3, repeat_rate=0.3))
    for i in range(5):
        s.add_pair("c", f"e{i}", f"e{i + 6}", kind="gold", known_label=LABEL_B)
    for i in range(6):
        s.add_pair("c", f"e{i}", f"e{i + 5}")
    s.add_annotator("ann")
    kinds = []
    while (nxt := s.next_item("c", "ann")).status == "item":
        pair = nxt.assignment.pair
        kinds.append(pair.kind)
        s.submit_label(nxt.assignment.assignment_id, "ann", {a: LABEL_B for a in PREFERENCE_AXES})
        if pair.kind == "repeat":
            src = s.pair(pair.repeat_of)
            assert (src.episode_a, src.episode_b, src.segment_a) == (pair.episode_a, pair.episode_b, pair.segment_a)
            assert pair.only_for == "ann"
    assert kinds.count("work") == 6 and kinds.count("gold") >= 1 and kinds.count("repeat") >= 1
    assert all(lab.correct for lab in s.labels("c", ["gold"]))
    # Triples leave out repeats by default (one annotator would count twice).
    assert {s.pair(t.pair_id).kind for t in s.triples("c")} <= {"work", "gold"}
    s.close()


def test_campaign_config_rejects_bad_values():
    with pytest.raises(ValueError, match="gold_rate"):
        CampaignConfig("c", gold_rate=1.5)
    with pytest.raises(ValueError, match="unknown axes"):
        CampaignConfig("c", axis_weights={"beauty": 1.0})
    with pytest.raises(ValueError, match="positive weight"):
        CampaignConfig("c", axis_weights={a: 0.0 for a in PREFERENCE_AXES})
    with pytest.raises(ValueError, match="campaign_id"):
        CampaignConfig("bad id")
    cfg = CampaignConfig("c", axis_weights={"success": 2})
    assert cfg.axis_weights["speed"] == 0.0 and CampaignConfig.from_dict(cfg.to_dict()) == cfg


def test_migration_from_v1_backfills_counters(tmp_path, monkeypatch):
    import rlhf.prefs.schema as schema

    path = tmp_path / "old.sqlite"
    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS[:1])
    conn = sqlite3.connect(path, isolation_level=None)
    assert schema.migrate(conn) == 1
    conn.execute("INSERT INTO annotators VALUES ('ann', 'h', 'annotator', 0)")
    conn.execute("INSERT INTO campaigns VALUES ('c', '', '{\"success\": 1.0}', 0, 0.5, 0, 0, 1, 60, 0)")
    conn.execute("INSERT INTO enrolments VALUES ('c', 'ann', 1, NULL, 0)")
    for e in ("e0", "e1", "e2"):
        conn.execute(f"INSERT INTO episodes VALUES ('{e}', 'reach', 'go', '/videos/{e}', NULL, 2, 10, 20, NULL)")
    conn.execute("INSERT INTO pairs VALUES ('p0', 'c', 'work', 'e0', 'e1', 0, 20, 0, 20, 1, NULL, NULL, NULL, NULL, 0.1, 0)")
    conn.execute("INSERT INTO pairs VALUES ('p1', 'c', 'work', 'e1', 'e2', 0, 20, 0, 20, 0, NULL, NULL, NULL, NULL, 0.2, 0)")
    conn.execute("INSERT INTO assignments VALUES ('i0', 'c', 'p0', 'ann', 0, 60, 1)")
    conn.execute("INSERT INTO labels (assignment_id, campaign_id, pair_id, annotator_id, axes, label, prob_a,"
                 " overall_explicit, marks, shown_at, answered_at, client_ms, correct)"
                 " VALUES ('i0', 'c', 'p0', 'ann', '{}', 1, 1.0, 0, '[]', 0, 1, NULL, NULL)")
    conn.close()
    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS)
    with PreferenceStore(path) as s:
        assert s.schema_version == len(MIGRATIONS)
        row = s._conn().execute("SELECT label_count FROM pairs WHERE id='p0'").fetchone()
        assert row[0] == 1
        assert s._conn().execute("SELECT n_work FROM enrolments").fetchone()[0] == 1
        s.add_annotator("bob")
        nxt = s.next_item("c", "bob")
        assert nxt.assignment.pair.pair_id == "p1"  # p0 already has its one label
        assert s.triples("c")[0].pair_id == "p0"


def test_a_store_from_before_wrist_videos_opens(tmp_path, monkeypatch):
    import rlhf.prefs.schema as schema

    path = tmp_path / "v2.sqlite"
    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS[:2])  # the last schema without the wrist columns
    conn = sqlite3.connect(path, isolation_level=None)
    assert schema.migrate(conn) == 2
    conn.execute("INSERT INTO episodes VALUES ('old0', 'reach', 'go', '/videos/old0', '/v/old0.mp4', 2, 10, 20, NULL)")
    conn.close()
    monkeypatch.setattr(schema, "MIGRATIONS", MIGRATIONS)
    with PreferenceStore(path) as s:
        assert s.schema_version == len(MIGRATIONS)
        ep = s.episode("old0")
        assert (ep.video_url, ep.wrist_video_url, ep.wrist_video_path) == ("/videos/old0", None, None)
        new = dataclasses.replace(ep, episode_id="new0", wrist_video_url="/wrist-videos/new0", wrist_video_path="/v/w.mp4")
        s.add_episodes([new])
        assert s.episode("new0") == new
    with pytest.raises(StoreError, match="'x': wrist_video_path is set but wrist_video_url is not"):
        EpisodeRecord("x", "t", "i", "/videos/x", 10, 10.0, wrist_video_path="/v/x.mp4")
