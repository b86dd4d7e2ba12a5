"""The scripted teacher posts through the HTTP API; the dashboard tells noisy teachers from clean ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fastapi.testclient import TestClient

from rlhf.annotate.server import create_app
from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.store import EpisodeRecord, PreferenceStore
from rlhf.prefs.teacher import ScriptedTeacher, TeacherRunConfig
from rlhf.prefs.teacher_model import TeacherConfig
from rlhf.prefs.triples import LABEL_A, LABEL_B

ADMIN = "admin-secret"
STEPS = 20


@pytest.fixture()
def world(tmp_path):
    """30 episodes of one instruction with a hidden quality q; gold step rewards sum to q, every axis
    score grows with q, so the known answers and a perfect teacher agree."""
    rng = np.random.default_rng(0)
    q = {f"e{i:02d}": float(rng.normal()) for i in range(30)}
    steps = {e: np.full(STEPS, v / STEPS) for e, v in q.items()}
    axes = {e: {a: v * (1 + 0.1 * k) for k, a in enumerate(PREFERENCE_AXES)} for e, v in q.items()}
    store = PreferenceStore(tmp_path / "prefs.sqlite", seed=0)
    store.add_episodes(
        EpisodeRecord(e, "reach", "reach the red cube", f"/videos/{e}", STEPS, 10.0, gold_axes=axes[e]) for e in q
    )
    app = create_app(store, admin_token=ADMIN)
    admin = TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"})
    r = admin.post("/api/admin/campaigns", json={
        "campaign_id": "c", "calibration_size": 10, "qualification_threshold": 0.3, "gold_rate": 0.3,
        "repeat_rate": 0.1, "labels_per_pair": 3})
    assert r.status_code == 200, r.text
    for kind, n, seed in (("calibration", 10, 1), ("gold", 40, 2), ("work", 40, 3)):
        r = admin.post("/api/admin/campaigns/c/pairs", json={"n": n, "kind": kind, "seed": seed})
        assert r.status_code == 200 and r.json()["added"] == n, r.text
    yield store, app, admin, q, steps, axes
    store.close()


def _run(app, admin, cfg, steps, axes, seed):
    token = ScriptedTeacher.register(admin, cfg)
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    return ScriptedTeacher(cfg, client, steps, axes).run(TeacherRunConfig("c", seed=seed), progress=False)


def test_teachers_are_told_apart_by_the_dashboard(world):
    store, app, admin, q, steps, axes = world
    oracle = TeacherConfig()
    clean = TeacherConfig(beta=20.0)
    noisy = TeacherConfig(beta=1.0, mistake_rate=0.25)
    assert len({oracle.name, clean.name, noisy.name}) == 3  # each configuration is its own annotator
    reports = {c.name: _run(app, admin, c, steps, axes, seed) for seed, c in enumerate((oracle, clean, noisy))}
    for rep in reports.values():
        assert rep.final_status == "done" and rep.calibration_seen == 10 and rep.labels > 40

    r = admin.get("/api/admin/campaigns/c/stats")
    assert r.status_code == 200
    stats = r.json()["annotators"]
    o, c, n = stats[oracle.name], stats[clean.name], stats[noisy.name]
    assert o["gold_accuracy"] == 1.0 and o["gold_kappa"] == pytest.approx(1.0) and o["self_consistency"] == 1.0
    assert n["gold_labels"] >= 8 and c["gold_labels"] >= 8
    assert n["gold_accuracy"] < c["gold_accuracy"] <= 1.0
    assert n["gold_kappa"] < c["gold_kappa"]
    assert n["mean_pairwise_kappa"] < c["mean_pairwise_kappa"]
    assert n["calibration_accuracy"] <= c["calibration_accuracy"]
    axes_stats = r.json()["axes"]
    assert set(axes_stats) == {*PREFERENCE_AXES, "overall"} and axes_stats["overall"]["items"] >= 40
    assert -1 <= axes_stats["overall"]["fleiss_kappa"] <= 1

    # The oracle's stored labels are in episode order whatever side each episode was shown on.
    for lab in store.labels("c", ["work"]):
        if lab.annotator_id == oracle.name:
            pair = store.pair(lab.pair_id)
            expected = LABEL_A if q[pair.episode_a] > q[pair.episode_b] else LABEL_B
            assert lab.label == expected and lab.axes["success"] == expected
    sides = {store.pair(lab.pair_id).a_on_left for lab in store.labels("c", ["work"])}
    assert sides == {True, False}


def test_teacher_answer_uses_segments_myopia_and_skip(world):
    _, app, admin, q, steps, axes = world
    item = {
        "item_id": "x",
        "left": {"episode_id": "e00", "start_step": 0, "stop_step": 10},
        "right": {"episode_id": "e01", "start_step": 10, "stop_step": 20},
    }
    rewards = {"e00": np.r_[np.ones(10), np.zeros(10)], "e01": np.r_[np.zeros(10), 0.5 * np.ones(10)]}
    t = ScriptedTeacher(TeacherConfig(), admin, rewards)
    rng = np.random.default_rng(0)
    assert t.answer(item, rng) == {"item_id": "x", "axes": {}, "overall": "left"}  # 10 vs 5 on the segments
    skip = ScriptedTeacher(TeacherConfig(skip_threshold=20.0), admin, rewards, lambda e: {"success": 1.0})
    assert skip.answer(item, rng)["overall"] == "cant_tell"
    eq = ScriptedTeacher(TeacherConfig(equal_threshold=6.0), admin, rewards, lambda e: {"success": 1.0})
    out = eq.answer(item, rng)
    assert out["overall"] == "tie" and out["axes"] == {"success": "equal"}
    with pytest.raises(ValueError, match="segment needs"):
        t.answer({**item, "right": {"episode_id": "e01", "start_step": 0, "stop_step": 99}}, rng)
    assert math.isinf(TeacherConfig().beta)
