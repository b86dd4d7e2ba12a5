"""Helpers shared by the annotation tests: small H.264 MP4s made with PyAV, episode rows, a live server.

Kept out of conftest.py: several test folders have a conftest, so `from conftest import` would pick
whichever was imported first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rlhf.annotate.episode_source import served_video_url
from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.store import EpisodeRecord


def make_mp4(path: Path, n_frames: int, fps: int, *, hue: int = 0, size: tuple[int, int] = (160, 120)) -> Path:
    """An H.264 MP4 whose frame i shows a bar at x proportional to i (so frames differ visibly)."""
    import av

    w, h = size
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"g": str(fps), "preset": "ultrafast"}
        for i in range(n_frames):
            img = np.full((h, w, 3), 40, dtype=np.uint8)
            img[:, :, hue % 3] = 90
            x = int((w - 12) * i / max(1, n_frames - 1))
            img[h // 3 : 2 * h // 3, x : x + 12] = 250
            img[: h // 8, : int(w * (i + 1) / n_frames)] = (250, 220, 60)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def episodes_for(video_dir: Path, n: int = 4, steps: int = 40, fps: float = 10.0) -> list[EpisodeRecord]:
    rng = np.random.default_rng(0)
    return [
        EpisodeRecord(
            episode_id=f"ep{i}",
            task="reach",
            instruction="reach the red cube",
            video_url=served_video_url(f"ep{i}"),
            video_path=str(video_dir / f"ep{i % 4}.mp4"),
            num_steps=steps,
            fps=fps,
            gold_axes={a: float(rng.normal()) for a in PREFERENCE_AXES},
        )
        for i in range(n)
    ]


