"""The annotation API: token access, admin-only management, validation, Range video, labels in the store."""

from __future__ import annotations

import pytest
from annotate_helpers import episodes_for
from fastapi.testclient import TestClient

from rlhf.annotate.server import create_app
from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.campaign import CampaignConfig
from rlhf.prefs.triples import LABEL_A, LABEL_B, LABEL_EQUAL

ADMIN = "adm-token"


@pytest.fixture()
def app(store, video_dir):
    store.add_episodes(episodes_for(video_dir))
    return create_app(store, admin_token=ADMIN)


def _client(app, token=None):
    return TestClient(app, headers={"Authorization": f"Bearer {token}"} if token else {})


def test_pages_and_static_served(app):
    c = _client(app)
    html = c.get("/annotate").text
    assert "<video id=\"video-left\"" in html and "Keyboard shortcuts" in html
    assert "cdn" not in html.lower() and "https://" not in html  # no network at run time
    assert c.get("/static/annotate.js").status_code == 200
    assert "Campaign dashboard" in c.get("/dashboard").text


def test_tokens_and_admin_access(app, store):
    anon, admin = _client(app), _client(app, ADMIN)
    assert anon.get("/api/me").status_code == 401
    assert _client(app, "nope").get("/api/me").status_code == 401
    r = admin.post("/api/admin/annotators", json={"annotator_id": "alice"})
    assert r.status_code == 200
    token = r.json()["token"]
    alice = _client(app, token)
    assert alice.get("/api/me").json()["annotator_id"] == "alice"
    assert TestClient(app).get(f"/api/me?token={token}").status_code == 200  # token link form
    assert alice.post("/api/admin/campaigns", json={"campaign_id": "x"}).status_code == 403
    assert alice.get("/api/admin/campaigns").status_code == 403
    assert admin.post("/api/admin/annotators", json={"annotator_id": "alice"}).status_code == 409


def test_input_validation(app):
    admin = _client(app, ADMIN)
    bad = [
        ("/api/admin/campaigns", {"campaign_id": "bad id"}),
        ("/api/admin/campaigns", {"campaign_id": "c", "gold_rate": 2}),
        ("/api/admin/campaigns", {"campaign_id": "c", "surprise": 1}),
        ("/api/admin/campaigns", {"campaign_id": "c", "axis_weights": {"beauty": 1}}),
        ("/api/admin/annotators", {"annotator_id": "a", "role": "root"}),
        ("/api/admin/episodes", {"episodes": [{"episode_id": "z", "task": "t", "instruction": "i", "num_steps": 0,
                                               "fps": 10, "video_path": "/x.mp4"}]}),
    ]
    for path, body in bad:
        r = admin.post(path, json=body)
        assert r.status_code == 422, (path, body, r.text)
    assert admin.post("/api/admin/campaigns", json={"campaign_id": "c", "calibration_size": 0}).status_code == 200
    assert admin.post("/api/admin/campaigns/c/pairs", json={}).status_code == 422
    assert admin.post("/api/admin/campaigns/nope/pairs", json={"n": 1}).status_code == 404
    r = admin.post("/api/admin/campaigns/c/pairs", json={"pairs": [{"episode_a": "ep0", "episode_b": "ep0"}]})
    assert r.status_code == 422 and "itself" in r.json()["detail"]
    token = admin.post("/api/admin/annotators", json={"annotator_id": "a"}).json()["token"]
    a = _client(app, token)
    assert admin.post("/api/admin/campaigns/c/pairs", json={"n": 2, "seed": 0}).json()["added"] == 2
    item = a.get("/api/campaigns/c/next").json()["item"]
    for body in (
        {"item_id": item["item_id"], "axes": {"beauty": "left"}},
        {"item_id": item["item_id"], "axes": {"speed": "up"}},
        {"item_id": item["item_id"], "axes": {}, "marks": [{"t": -1}]},
        {"item_id": item["item_id"], "axes": {}, "client_ms": -5},
        {"item_id": item["item_id"], "axes": {}, "prob_left": 0.7},  # soft label needs an explicit overall
    ):
        assert a.post("/api/campaigns/c/labels", json=body).status_code == 422, body
    assert a.post("/api/campaigns/c/labels", json={"item_id": "i-none", "axes": {}}).status_code == 404


def test_video_supports_range_requests(app, store, video_dir):
    token = store.add_annotator("alice")
    c = TestClient(app)
    assert c.get("/videos/ep0").status_code == 401
    full = c.get(f"/videos/ep0?token={token}")
    assert full.status_code == 200 and full.headers["accept-ranges"] == "bytes"
    size = (video_dir / "ep0.mp4").stat().st_size
    assert len(full.content) == size
    part = c.get(f"/videos/ep0?token={token}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 100-199/{size}"
    assert part.content == full.content[100:200]
    tail = c.get(f"/videos/ep0?token={token}", headers={"Range": f"bytes={size - 10}-"})
    assert tail.status_code == 206 and tail.content == full.content[-10:]
    assert c.get(f"/videos/ep0?token={token}", headers={"Range": f"bytes={size + 10}-"}).status_code == 416
    assert c.get(f"/videos/nope?token={token}").status_code == 404
    jailed = TestClient(create_app(store, video_root=video_dir / "elsewhere"))
    assert jailed.get(f"/videos/ep0?token={token}").status_code == 403
    assert TestClient(create_app(store, video_root=video_dir)).get(f"/videos/ep0?token={token}").status_code == 200


def test_label_round_trip_maps_sides_to_episodes(app, store):
    store.create_campaign(CampaignConfig("c", calibration_size=0, gold_rate=0, repeat_rate=0))
    for _ in range(12):
        store.add_pair("c", "ep0", "ep1", (0, 20), (10, 30))
    token = store.add_annotator("alice")
    a = _client(app, token)
    seen = set()
    for _ in range(12):
        nxt = a.get("/api/campaigns/c/next").json()
        assert nxt["status"] == "item"
        item = nxt["item"]
        assert item["instruction"] == "reach the red cube" and item["axes"] == list(PREFERENCE_AXES)
        left_is_a = item["left"]["episode_id"] == "ep0"
        seen.add(left_is_a)
        seg = item["left"] if left_is_a else item["right"]
        assert (seg["start_s"], seg["stop_s"]) == (0.0, 2.0) and "token=" in seg["video_url"]
        body = {"item_id": item["item_id"], "axes": {a: "left" for a in PREFERENCE_AXES}, "marks": [{"t": 0.5}],
                "client_ms": 900}
        r = a.post("/api/campaigns/c/labels", json=body)
        assert r.status_code == 200 and "feedback" not in r.json()
        lab = [x for x in store.labels("c") if x.assignment_id == item["item_id"]][0]
        # "left" means episode A exactly when A was shown on the left.
        assert lab.label == (LABEL_A if left_is_a else LABEL_B)
        assert lab.marks[0]["step_a"] == 5 and lab.marks[0]["step_b"] == 15 and lab.client_ms == 900
        assert a.post("/api/campaigns/c/labels", json=body).status_code == 409
    assert seen == {True, False}
    assert a.get("/api/campaigns/c/next").json()["status"] == "done"
    export = _client(app, ADMIN).get("/api/admin/campaigns/c/export")
    assert export.status_code == 200 and len(export.text.splitlines()) == 12


def test_calibration_feedback_in_display_terms(app, store):
    store.create_campaign(CampaignConfig("c", calibration_size=2, qualification_threshold=1.0))
    for _ in range(2):
        store.add_pair("c", "ep0", "ep1", kind="calibration", known_label=LABEL_A,
                       known_axes={a: LABEL_A for a in PREFERENCE_AXES} | {"speed": LABEL_EQUAL})
    store.add_pair("c", "ep2", "ep3")
    token = store.add_annotator("bob")
    b = _client(app, token)
    results = []
    for _ in range(2):
        nxt = b.get("/api/campaigns/c/next").json()
        assert nxt["phase"] == "calibration"
        item = nxt["item"]
        a_side = "left" if item["left"]["episode_id"] == "ep0" else "right"
        r = b.post("/api/campaigns/c/labels", json={"item_id": item["item_id"], "axes": {}, "overall": a_side}).json()
        assert r["feedback"]["correct"] and r["feedback"]["expected_overall"] == a_side
        assert r["feedback"]["expected_axes"]["speed"] == "equal"
        results.append(r["calibration"])
    assert results[0]["qualified"] is None and results[1] == {"qualified": True, "accuracy": 1.0}
    nxt = b.get("/api/campaigns/c/next").json()
    assert nxt["phase"] == "work" and nxt["status"] == "item"


def test_dashboard_stats_json(app, store):
    store.create_campaign(CampaignConfig("c", calibration_size=0))
    admin = _client(app, ADMIN)
    s = admin.get("/api/admin/campaigns/c/stats").json()
    assert s["counts"]["labels"] == 0 and set(s["axes"]) == {*PREFERENCE_AXES, "overall"}
    assert admin.get("/api/admin/campaigns").json()[0]["campaign_id"] == "c"
