"""The wrist camera on the annotation page: episodes stored with wrist frames get a second video on the
scene video's clock, the item JSON names it, and the server streams it like the scene video."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient

from rlhf.annotate.episode_source import (
    record_from_row,
    record_from_trajectory,
    records_from_episode_store,
    records_from_file,
)
from rlhf.annotate.server import create_app
from rlhf.episodes.store import EpisodeStore
from rlhf.episodes.video import probe_video, sidecar_path
from rlhf.prefs.campaign import CampaignConfig
from rlhf.trajectory import Trajectory

STEPS = 12
ADMIN = "adm-token"


def _traj(episode_id: str, *, wrist: bool, n: int = STEPS) -> Trajectory:
    rng = np.random.default_rng(len(episode_id))
    return Trajectory(
        episode_id=episode_id, task="reach", instruction="reach the red cube",
        timestamps=np.arange(n) / 10.0, images=rng.integers(0, 255, (n, 24, 32, 3), dtype=np.uint8),
        joint_positions=np.zeros((n, 7), np.float32), joint_velocities=np.zeros((n, 7), np.float32),
        gripper=np.zeros(n, np.float32), actions=np.zeros((n, 8), np.float32),
        wrist_images=rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8) if wrist else None,
    )


@pytest.fixture()
def episode_root(tmp_path):
    """An episode store holding one episode with a wrist camera and one without."""
    root = tmp_path / "episodes"
    with EpisodeStore(root) as es:
        es.add(_traj("with_wrist", wrist=True))
        es.add(_traj("scene_only", wrist=False))
    return root


def _item(app, store, token):
    """The one item of a campaign pairing the two episodes, keyed by episode id."""
    store.create_campaign(CampaignConfig("c", calibration_size=0, gold_rate=0, repeat_rate=0))
    store.add_pair("c", "with_wrist", "scene_only", (0, 10), (2, 12))
    nxt = TestClient(app, headers={"Authorization": f"Bearer {token}"}).get("/api/campaigns/c/next").json()
    return {nxt["item"][side]["episode_id"]: nxt["item"][side] for side in ("left", "right")}


def test_stored_wrist_frames_become_a_second_video_row(episode_root):
    recs = {r.episode_id: r for r in records_from_episode_store(episode_root)}
    wrist = recs["with_wrist"]
    assert wrist.wrist_video_url == "/wrist-videos/with_wrist"
    assert wrist.wrist_video_path == str(episode_root / "videos" / "wrist" / "with_wrist.mp4")
    scene_info, wrist_info = probe_video(wrist.video_path), probe_video(wrist.wrist_video_path)
    assert wrist_info.num_frames == scene_info.num_frames == wrist.num_steps == STEPS
    assert wrist_info.frame_times == pytest.approx(scene_info.frame_times, abs=1e-3)
    plain = recs["scene_only"]
    assert (plain.wrist_video_url, plain.wrist_video_path) == (None, None)


def test_item_names_the_wrist_video_and_the_server_streams_it(store, episode_root):
    store.add_episodes(records_from_episode_store(episode_root))
    token = store.add_annotator("alice")
    app = create_app(store, video_root=episode_root)
    sides = _item(app, store, token)
    assert sides["with_wrist"]["wrist_video_url"] == f"/wrist-videos/with_wrist?token={token}"
    assert sides["scene_only"]["wrist_video_url"] is None  # no wrist camera: the page keeps its layout
    assert sides["scene_only"]["video_url"] == f"/videos/scene_only?token={token}"

    c = TestClient(app)
    assert c.get("/wrist-videos/with_wrist").status_code == 401
    assert c.get("/wrist-videos/with_wrist?token=nope").status_code == 401
    full = c.get(sides["with_wrist"]["wrist_video_url"])
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
    assert full.content == (episode_root / "videos" / "wrist" / "with_wrist.mp4").read_bytes()
    part = c.get(sides["with_wrist"]["wrist_video_url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == full.content[:100]
    bearer = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert bearer.get("/wrist-videos/with_wrist").status_code == 200
    assert bearer.get("/wrist-videos/scene_only").status_code == 404
    assert bearer.get("/wrist-videos/nope").status_code == 404


def test_wrist_video_outside_the_video_root_is_refused(store, episode_root, tmp_path):
    # The scene video inside the served folder, the wrist video (same file, copied) outside it.
    outside = tmp_path / "elsewhere" / "w.mp4"
    outside.parent.mkdir()
    shutil.copy(episode_root / "videos" / "wrist" / "with_wrist.mp4", outside)
    recs = records_from_episode_store(episode_root)
    store.add_episodes([dataclasses.replace(r, wrist_video_path=str(outside)) if r.wrist_video_path else r for r in recs])
    token = store.add_annotator("alice")
    c = TestClient(create_app(store, video_root=episode_root))
    assert c.get(f"/videos/with_wrist?token={token}").status_code == 200
    r = c.get(f"/wrist-videos/with_wrist?token={token}")
    assert r.status_code == 403 and "wrist-camera video is outside" in r.json()["detail"]
    assert TestClient(create_app(store)).get(f"/wrist-videos/with_wrist?token={token}").status_code == 200


def test_admin_api_registers_wrist_videos(store, episode_root, tmp_path):
    app = create_app(store, admin_token=ADMIN)
    admin = TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"})
    base = {"task": "reach", "instruction": "reach the red cube", "num_steps": STEPS, "fps": 10}
    body = {"episodes": [
        dict(base, episode_id="with_wrist", video_path=str(episode_root / "videos" / "with_wrist.mp4"),
             wrist_video_path=str(episode_root / "videos" / "wrist" / "with_wrist.mp4")),
        dict(base, episode_id="scene_only", video_path=str(episode_root / "videos" / "scene_only.mp4")),
    ]}
    assert admin.post("/api/admin/episodes", json=body).json() == {"added": 2}
    assert store.episode("with_wrist").wrist_video_url == "/wrist-videos/with_wrist"
    assert store.episode("scene_only").wrist_video_url is None
    token = store.add_annotator("alice")
    sides = _item(app, store, token)
    assert TestClient(app).get(sides["with_wrist"]["wrist_video_url"]).status_code == 200
    # Another episode's wrist video, cut short, is refused by name.
    with EpisodeStore(tmp_path / "other") as es:
        es.add(_traj("short", wrist=True, n=8))
    short = dict(body["episodes"][0], episode_id="bad", wrist_video_path=str(tmp_path / "other/videos/wrist/short.mp4"))
    r = admin.post("/api/admin/episodes", json={"episodes": [short]})
    assert r.status_code == 422 and "episode 'bad': the wrist video" in r.json()["detail"]


def test_rows_with_wrist_videos_and_a_mismatched_one_named(tmp_path, episode_root):
    videos = episode_root / "videos"
    rows = [{"episode_id": "with_wrist", "task": "t", "instruction": "i", "num_steps": STEPS, "fps": 10,
             "video_path": "videos/with_wrist.mp4", "wrist_video_path": "videos/wrist/with_wrist.mp4"},
            {"episode_id": "scene_only", "task": "t", "instruction": "i", "num_steps": STEPS, "fps": 10,
             "video_path": "videos/scene_only.mp4", "wrist_video_path": ""}]
    (episode_root / "eps.json").write_text(json.dumps(rows))
    with_wrist, scene_only = records_from_file(episode_root / "eps.json")
    assert with_wrist.wrist_video_path == str(videos / "wrist" / "with_wrist.mp4")
    assert with_wrist.wrist_video_url == "/wrist-videos/with_wrist" and scene_only.wrist_video_url is None
    external = record_from_row(dict(rows[1], wrist_video_url="https://cdn.example/w.mp4"))
    assert (external.wrist_video_url, external.wrist_video_path) == ("https://cdn.example/w.mp4", None)

    # A wrist video cut short (here: another episode's, which has 8 frames) is refused by name.
    with EpisodeStore(tmp_path / "other") as es:
        es.add(_traj("short", wrist=True, n=8))
    short = tmp_path / "other" / "videos" / "wrist" / "short.mp4"
    assert sidecar_path(short).is_file()
    bad = dict(rows[0], video_path=str(videos / "with_wrist.mp4"), wrist_video_path=str(short))
    with pytest.raises(ValueError, match=r"episode 'with_wrist': the wrist video .* has 8 frames but the scene video .* has 12"):
        record_from_row(bad)


def test_record_from_trajectory_takes_the_wrist_video(episode_root):
    traj = _traj("with_wrist", wrist=True)
    scene, wrist = episode_root / "videos" / "with_wrist.mp4", episode_root / "videos" / "wrist" / "with_wrist.mp4"
    rec = record_from_trajectory(traj, scene, wrist_video_path=wrist)
    assert (rec.wrist_video_url, rec.wrist_video_path) == ("/wrist-videos/with_wrist", str(wrist.resolve()))
    assert record_from_trajectory(traj, scene).wrist_video_url is None
    other = episode_root / "videos" / "scene_only.mp4"  # right frame count and clock: accepted as is
    assert record_from_trajectory(traj, scene, wrist_video_path=other).wrist_video_path == str(other.resolve())
