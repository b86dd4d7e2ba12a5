"""Episode and pair videos: right frame count, duration and frame times; they play in Chromium."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from rlhf.episodes.video import (
    VideoConfig,
    check_same_clock,
    decode_frames,
    make_pair_video,
    probe_video,
    sidecar_path,
    write_video,
    write_wrist_video,
)


def flat(traj):
    """Flat-colour frames (red = 9 * step, green = blue = 100): what survives lossy coding intact."""
    traj.images[:] = 100
    traj.images[:, :, :, 0] = (np.arange(len(traj)) * 9 % 256).astype(np.uint8)[:, None, None]
    return traj


@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_video_frame_count_duration_and_times(tmp_path, traj_factory, codec):
    traj = flat(traj_factory(25, hw=(33, 47)))  # odd sizes get padded for yuv420p
    jitter = np.random.default_rng(0).uniform(-0.01, 0.01, len(traj))
    jitter[0] = 0
    ts = traj.timestamps + jitter + 5.0  # irregular steps, not starting at 0
    cfg = VideoConfig(codec=codec)
    info = write_video(traj.images, ts, tmp_path / f"ep{cfg.suffix}", cfg)
    probed = probe_video(info.path)
    assert probed.num_frames == info.num_frames == 25
    assert (probed.width, probed.height) == (48, 34)
    # Each frame plays at its own step's time (ms precision), so playback syncs with the trajectory.
    np.testing.assert_allclose(probed.frame_times, ts - ts[0], atol=1e-3)
    assert probed.duration_s == pytest.approx(ts[-1] - ts[0] + 0.1, abs=0.03)
    side = json.loads(sidecar_path(info.path).read_text())
    np.testing.assert_allclose(side["frame_times"], ts - ts[0], atol=1e-12)
    assert side["time_origin_s"] == pytest.approx(5.0)
    frames = decode_frames(info.path)
    assert frames.shape == (25, 34, 48, 3)
    # Lossy, but the red level (step index * 9) survives within a few levels.
    red = frames[:, :33, :47, 0].astype(float).mean(axis=(1, 2))
    np.testing.assert_allclose(red, np.arange(25) * 9 % 256, atol=6)
    if codec == "h264":
        data = Path(info.path).read_bytes()
        assert data.find(b"moov") < data.find(b"mdat")  # +faststart: index before the media


def test_video_rejects_bad_input(tmp_path, traj_factory):
    traj = traj_factory(3)
    with pytest.raises(ValueError, match="increase"):
        write_video(traj.images, np.zeros(3), tmp_path / "a.mp4")
    with pytest.raises(ValueError, match=r"must end in \.webm"):
        write_video(traj.images, traj.timestamps, tmp_path / "a.mp4", VideoConfig(codec="vp9"))
    with pytest.raises(ValueError, match="codec"):
        VideoConfig(codec="h265")
    assert not list(tmp_path.iterdir())


def test_wrist_video_shares_the_scene_clock_and_mismatches_name_the_episode(tmp_path, traj_factory):
    traj = traj_factory(8, seed=2, wrist_hw=(10, 14))
    traj.timestamps = traj.timestamps + np.r_[0, 0, 0.03, 0.03, 0.03, 0.05, 0.05, 0.05]  # irregular steps
    scene = write_video(traj.images, traj.timestamps, tmp_path / "scene.mp4")
    wrist = write_wrist_video(traj.episode_id, traj.wrist_images, traj.timestamps, tmp_path / "wrist.mp4")
    assert wrist.num_frames == scene.num_frames == 8 and wrist.frame_times == scene.frame_times
    assert probe_video(tmp_path / "wrist.mp4").frame_times == pytest.approx(scene.frame_times, abs=1e-3)
    check_same_clock(traj.episode_id, tmp_path / "scene.mp4", tmp_path / "wrist.mp4")  # passes

    with pytest.raises(ValueError, match=rf"episode '{traj.episode_id}': 5 wrist-camera frames but 8 steps"):
        write_wrist_video(traj.episode_id, traj.wrist_images[:5], traj.timestamps, tmp_path / "short.mp4")
    with pytest.raises(ValueError, match="no wrist-camera frames"):
        write_wrist_video(traj.episode_id, None, traj.timestamps, tmp_path / "none.mp4")
    write_video(traj.wrist_images[:6], traj.timestamps[:6], tmp_path / "cut.mp4")  # made elsewhere, cut short
    with pytest.raises(ValueError, match=r"episode 'e1': the wrist video .*cut.mp4 has 6 frames but the scene video .* has 8"):
        check_same_clock("e1", tmp_path / "scene.mp4", tmp_path / "cut.mp4")
    write_video(traj.wrist_images, np.arange(8) / 5.0, tmp_path / "slow.mp4")  # right count, other clock
    with pytest.raises(ValueError, match="share one clock"):
        check_same_clock("e1", tmp_path / "scene.mp4", tmp_path / "slow.mp4")


def test_pair_video_side_by_side(tmp_path, traj_factory):
    a = flat(traj_factory(20, seed=1, hw=(32, 32)))
    b = flat(traj_factory(30, seed=2, hw=(16, 16)))  # longer and smaller: resized to A's height
    info = make_pair_video(a, b, tmp_path / "pair.mp4")
    assert info.num_frames == 30 and probe_video(info.path).num_frames == 30
    assert (info.width, info.height) == (32 + 4 + 32, 32)
    side = json.loads(sidecar_path(info.path).read_text())
    assert side["steps_a"] == list(range(20)) + [19] * 10  # A holds its last frame
    assert side["steps_b"] == list(range(30))
    assert (side["episode_a"], side["episode_b"]) == (a.episode_id, b.episode_id)
    frames = decode_frames(info.path)
    # Left half follows A's step index, right half B's (red channel = 9 * step), away from the labels.
    np.testing.assert_allclose(frames[:, 24:, 20:30, 0].mean(axis=(1, 2)), np.array(side["steps_a"]) * 9, atol=8)
    np.testing.assert_allclose(frames[:, 24:, 56:66, 0].mean(axis=(1, 2)), np.array(side["steps_b"]) * 9 % 256, atol=8)


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support: a browser can only seek in a video served with ranges."""

    def log_message(self, *args) -> None:
        pass

    def send_head(self):
        rng = self.headers.get("Range", "")
        path = Path(self.translate_path(self.path))
        if not rng.startswith("bytes=") or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        first, _, last = rng[len("bytes="):].partition("-")
        start = int(first) if first else max(0, size - int(last))
        end = min(int(last), size - 1) if first and last else size - 1
        f = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        return _Limited(f, end - start + 1)


class _Limited:
    """A file object that reads at most n bytes (the requested range)."""

    def __init__(self, f, n: int) -> None:
        self.f, self.left = f, n

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.f.read(size)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


@pytest.mark.browser
@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_video_plays_in_headless_chromium(tmp_path, traj_factory, codec):
    if not Path("/usr/bin/chromium").exists():
        pytest.fail("/usr/bin/chromium is missing: run `bash scripts/install_browser.sh`")
    from playwright.sync_api import sync_playwright

    cfg = VideoConfig(codec=codec)
    a, b = traj_factory(40, seed=1, hw=(64, 64)), traj_factory(30, seed=2, hw=(64, 64))
    write_video(a.images, a.timestamps, tmp_path / f"ep{cfg.suffix}", cfg)
    make_pair_video(a, b, tmp_path / f"pair{cfg.suffix}", cfg)
    (tmp_path / "index.html").write_text(
        f'<video id="ep" muted playsinline preload="auto" src="ep{cfg.suffix}"></video>'
        f'<video id="pair" muted playsinline preload="auto" src="pair{cfg.suffix}"></video>'
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_RangeHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                      "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"],
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
            js_state = "id => { const v = document.getElementById(id); return [v.readyState, v.duration, v.error && v.error.code]; }"
            for vid in ("ep", "pair"):
                page.wait_for_function("id => document.getElementById(id).readyState >= 2", arg=vid, timeout=15000)
                ready, duration, error = page.evaluate(js_state, vid)
                assert ready >= 2 and error is None
                assert duration == pytest.approx(4.0, abs=0.15)
                t0 = page.evaluate("id => document.getElementById(id).currentTime", vid)
                page.evaluate("id => document.getElementById(id).play()", vid)
                page.wait_for_function(
                    "([id, t0]) => document.getElementById(id).currentTime > t0 + 0.2", arg=[vid, t0], timeout=10000
                )
                # Seeking to a step's time lands there (what synchronised playback relies on).
                page.evaluate("id => { const v = document.getElementById(id); v.pause(); v.currentTime = 2.0; }", vid)
                page.wait_for_function(
                    "id => !document.getElementById(id).seeking && document.getElementById(id).readyState >= 2",
                    arg=vid, timeout=10000,
                )
                assert page.evaluate("id => document.getElementById(id).currentTime", vid) == pytest.approx(2.0, abs=0.05)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
