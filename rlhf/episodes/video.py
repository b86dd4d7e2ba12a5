"""Browser-playable videos of episodes (H.264 MP4 or VP9 WebM through PyAV) and side-by-side pairs.

Each frame keeps its episode time: frame i is shown at `timestamps[i] - timestamps[0]` (millisecond
presentation stamps, so irregular control steps stay where they happened). A JSON sidecar next to
the video (`<name>.frames.json`) holds the exact frame times and, for pair videos, which control
step of each episode every frame shows, so an annotation page can map `currentTime` to steps. An
episode's wrist-camera video (`write_wrist_video`) is written from the same timestamps, so it has the
scene video's frame count and frame times and plays on the same clock (`check_same_clock`).

MP4s are yuv420p H.264 with the index at the front (`+faststart`) so a browser starts playing before
the whole file has arrived. Odd frame sizes are padded by one edge pixel (yuv420p needs even sizes).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from rlhf.atomic import atomic_write_json
from rlhf.episodes.segment import latest_at_or_before

_CODECS = {"h264": ("libx264", "mp4", ".mp4"), "vp9": ("libvpx-vp9", "webm", ".webm")}
_TIME_BASE = Fraction(1, 1000)  # pts unit: 1 ms


@dataclass
class VideoConfig:
    """How episode videos are encoded."""

    codec: str = "h264"
    """"h264" (MP4, plays everywhere) or "vp9" (WebM; slower to encode)."""
    crf: int = 23
    """Constant rate factor: lower is better quality and bigger files (0-51 for h264, 0-63 for vp9)."""
    preset: str = "veryfast"
    """x264 speed/size preset (ignored for vp9)."""
    keyframe_interval: int = 10
    """Frames between keyframes: short keeps frame-accurate seeking cheap in the annotation page."""

    def __post_init__(self) -> None:
        if self.codec not in _CODECS:
            raise ValueError(f"VideoConfig.codec must be one of {sorted(_CODECS)}, got {self.codec!r}")
        if not 0 <= self.crf <= 63:
            raise ValueError(f"VideoConfig.crf must be in [0, 63], got {self.crf}")
        if self.keyframe_interval < 1:
            raise ValueError(f"VideoConfig.keyframe_interval must be >= 1, got {self.keyframe_interval}")
        encoder = _CODECS[self.codec][0]
        if encoder not in av.codecs_available:
            raise ValueError(f"VideoConfig.codec {self.codec!r}: this PyAV build has no {encoder} encoder")

    @property
    def suffix(self) -> str:
        """File suffix of this codec's container: ".mp4" or ".webm"."""
        return _CODECS[self.codec][2]


@dataclass
class VideoInfo:
    """What a written (or probed) video holds."""

    path: str
    codec: str
    width: int
    height: int
    num_frames: int
    duration_s: float  # first frame to the end of the last one
    frame_times: list[float]  # presentation time of each frame, s from the first


def sidecar_path(video_path: str | Path) -> Path:
    """`clip.mp4` -> `clip.frames.json`."""
    p = Path(video_path)
    return p.with_name(p.stem + ".frames.json")


def _even(frames: np.ndarray) -> np.ndarray:
    """Pad (T, H, W, 3) frames to even H and W by repeating the last row/column."""
    _, h, w, _ = frames.shape
    if h % 2 == 0 and w % 2 == 0:
        return frames
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class VideoEncoder:
    """Appends RGB frames with their times to a new video file (used for episodes and datasets).

    `add(frame, t)` takes a (H, W, 3) uint8 frame and its time in seconds (non-decreasing by at
    least one `time_base` tick); `close()` flushes the encoder. Write to a temp path and rename
    if readers must never see a partial file (as `write_video` does).
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        config: VideoConfig | None = None,
        *,
        rate: Fraction | float = Fraction(10),
        time_base: Fraction = _TIME_BASE,
    ) -> None:
        self.config = config or VideoConfig()
        encoder, fmt, _ = _CODECS[self.config.codec]
        self.width, self.height = width + width % 2, height + height % 2
        self.time_base = time_base
        self.num_frames = 0
        self._last_pts = -1
        options = {"movflags": "+faststart"} if fmt == "mp4" else {}
        self._container = av.open(str(path), "w", format=fmt, options=options)
        rate = rate if isinstance(rate, Fraction) else Fraction(rate).limit_denominator(1000)
        self._stream = self._container.add_stream(encoder, rate=rate)
        self._stream.width, self._stream.height, self._stream.pix_fmt = self.width, self.height, "yuv420p"
        self._stream.time_base = time_base
        self._stream.codec_context.time_base = time_base
        self._stream.codec_context.gop_size = self.config.keyframe_interval
        opts = {"crf": str(self.config.crf)}
        if self.config.codec == "h264":
            opts.update(preset=self.config.preset)
        else:  # libvpx-vp9: constant quality, fastest realtime settings
            opts.update({"b:v": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"})
        self._stream.options = opts

    def add(self, frame: np.ndarray, t: float) -> None:
        pts = int(round(t / float(self.time_base)))
        if pts <= self._last_pts:
            raise ValueError(f"frame {self.num_frames} at {t:.6f} s is not after the previous frame")
        if frame.shape[:2] != (self.height, self.width):
            frame = _even(frame[None])[0]
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"frame {self.num_frames}: expected ({self.height}, {self.width}, 3) uint8, got {frame.shape} {frame.dtype}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = pts
        vf.time_base = self.time_base
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self._last_pts = pts
        self.num_frames += 1

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        """Stop without flushing (after an error); the caller removes the file."""
        try:
            self._container.close()
        except Exception:  # the file is being discarded anyway
            pass

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(
    images: np.ndarray,
    timestamps: np.ndarray,
    path: str | Path,
    config: VideoConfig | None = None,
    sidecar_extra: dict | None = None,
) -> VideoInfo:
    """Encode `images` (T, H, W, 3) uint8 RGB shown at `timestamps` (T,) s; returns what was written.

    The file appears atomically (temp file + rename) together with its `.frames.json` sidecar.
    """
    config = config or VideoConfig()
    path = Path(path)
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise ValueError(f"{path}: images must be (T, H, W, 3) uint8, got {images.shape} {images.dtype}")
    if len(images) == 0 or len(images) != len(timestamps):
        raise ValueError(f"{path}: need one timestamp per frame and at least one frame, got {len(images)} frames "
                         f"and {len(timestamps)} timestamps")
    if path.suffix != config.suffix:
        raise ValueError(f"{path}: a {config.codec} video must end in {config.suffix}")
    rel = np.asarray(timestamps, dtype=np.float64) - float(timestamps[0])
    pts = np.round(rel / float(_TIME_BASE)).astype(np.int64)
    if np.any(np.diff(pts) <= 0):
        raise ValueError(f"{path}: frame times must increase by at least 1 ms")
    _, h, w, _ = images.shape
    step = float(np.median(np.diff(rel))) if len(rel) > 1 else 0.1
    rate = Fraction(1 / step).limit_denominator(1000) if step > 0 else Fraction(10)

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        with VideoEncoder(tmp, w, h, config, rate=rate) as enc:
            for i in range(len(images)):
                enc.add(images[i], float(pts[i]) * float(_TIME_BASE))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    info = VideoInfo(
        path=str(path),
        codec=config.codec,
        width=enc.width,
        height=enc.height,
        num_frames=len(images),
        duration_s=float(rel[-1] + step),
        frame_times=[float(t) for t in rel],
    )
    atomic_write_json(sidecar_path(path), {**asdict(info), "time_origin_s": float(timestamps[0]), **(sidecar_extra or {})})
    return info


def check_wrist_frames(episode_id: str, wrist_images: np.ndarray | None, num_steps: int) -> None:
    """Raise ValueError naming the episode unless there is one wrist-camera frame per step."""
    if wrist_images is None:
        raise ValueError(f"episode {episode_id!r}: has no wrist-camera frames to encode")
    if len(wrist_images) != num_steps:
        raise ValueError(
            f"episode {episode_id!r}: {len(wrist_images)} wrist-camera frames but {num_steps} steps "
            "(the wrist video must have one frame per scene-video frame)"
        )


def write_wrist_video(
    episode_id: str,
    wrist_images: np.ndarray | None,
    timestamps: np.ndarray,
    path: str | Path,
    config: VideoConfig | None = None,
) -> VideoInfo:
    """Encode an episode's wrist-camera frames (T, h, w, 3) uint8 on its scene video's clock.

    Frame i is shown at `timestamps[i] - timestamps[0]`, exactly like the scene video written from
    the same `timestamps`, so the two files have one frame count, one fps and one set of frame times
    and a page can play them from a single clock. Raises ValueError naming the episode when there is
    no wrist frame per step.
    """
    check_wrist_frames(episode_id, wrist_images, len(timestamps))
    return write_video(wrist_images, timestamps, path, config, sidecar_extra={"episode_id": episode_id, "camera": "wrist"})


def read_sidecar(video_path: str | Path) -> dict | None:
    """The `.frames.json` sidecar written next to a video by `write_video`, or None when there is none."""
    p = sidecar_path(video_path)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{p}: unreadable frame sidecar ({e})") from e


def check_same_clock(episode_id: str, scene_path: str | Path, wrist_path: str | Path, *, tol_s: float = 1e-3) -> None:
    """Raise ValueError naming the episode when its wrist video does not run on its scene video's clock.

    Compares the two sidecars (frame count, then frame times); videos without sidecars (made
    elsewhere) cannot be checked without decoding them, so they pass.
    """
    scene, wrist = read_sidecar(scene_path), read_sidecar(wrist_path)
    if scene is None or wrist is None:
        return
    if int(scene["num_frames"]) != int(wrist["num_frames"]):
        raise ValueError(
            f"episode {episode_id!r}: the wrist video {wrist_path} has {wrist['num_frames']} frames but the "
            f"scene video {scene_path} has {scene['num_frames']}"
        )
    diff = np.abs(np.asarray(scene["frame_times"], float) - np.asarray(wrist["frame_times"], float))
    if diff.size and float(diff.max()) > tol_s:
        i = int(diff.argmax())
        raise ValueError(
            f"episode {episode_id!r}: the wrist video {wrist_path} shows frame {i} at {wrist['frame_times'][i]:.3f} s, "
            f"the scene video at {scene['frame_times'][i]:.3f} s (the two must share one clock)"
        )


def probe_video(path: str | Path) -> VideoInfo:
    """Decode a video and report its frame count, frame times and duration (from the stream)."""
    path = Path(path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * f.time_base) for f in container.decode(stream)]
        codec = stream.codec_context.name
        w, h = stream.codec_context.width, stream.codec_context.height
        if stream.duration is not None:
            end = float(stream.duration * stream.time_base) + float((stream.start_time or 0) * stream.time_base)
        else:
            end = float(container.duration or 0) / av.time_base
    t0 = times[0] if times else 0.0
    return VideoInfo(str(path), codec, w, h, len(times), end - t0, [t - t0 for t in times])


def decode_frames(path: str | Path) -> np.ndarray:
    """All frames of a video as (T, H, W, 3) uint8 RGB."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])])


def _label(img: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = np.ascontiguousarray(img)
    scale = max(0.3, img.shape[0] / 256)
    cv2.putText(out, text, (4, int(14 * scale) + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(out, text, (4, int(14 * scale) + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def make_pair_video(
    traj_a,
    traj_b,
    path: str | Path,
    config: VideoConfig | None = None,
    *,
    labels: tuple[str, str] = ("A", "B"),
    fps: float | None = None,
    gap_px: int = 4,
) -> VideoInfo:
    """A side-by-side video of two trajectories on one clock (A left, B right).

    Both start at their first frame; the shorter one holds its last frame. Output frames come at
    `fps` (default: the faster of the two control rates). The sidecar's `steps_a`/`steps_b` list
    the control step shown on each side in every output frame.
    """
    import cv2

    ta = traj_a.timestamps - traj_a.timestamps[0]
    tb = traj_b.timestamps - traj_b.timestamps[0]
    if fps is None:
        rates = [1.0 / float(np.median(np.diff(t))) for t in (ta, tb) if len(t) > 1 and np.median(np.diff(t)) > 0]
        fps = max(rates) if rates else 10.0
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    end = max(float(ta[-1]), float(tb[-1]))
    times = np.arange(int(np.floor(end * fps + 1e-9)) + 1) / fps
    ia = np.maximum(latest_at_or_before(ta, times + 1e-9), 0)
    ib = np.maximum(latest_at_or_before(tb, times + 1e-9), 0)
    h = max(traj_a.images.shape[1], traj_b.images.shape[1])

    def fit(img: np.ndarray) -> np.ndarray:
        if img.shape[0] == h:
            return img
        w = int(round(img.shape[1] * h / img.shape[0]))
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)

    frames_a = [_label(fit(img), labels[0]) for img in traj_a.images]
    frames_b = [_label(fit(img), labels[1]) for img in traj_b.images]
    sep = np.full((h, gap_px, 3), 255, dtype=np.uint8)
    out = np.stack([np.concatenate([frames_a[a], sep, frames_b[b]], axis=1) for a, b in zip(ia, ib, strict=True)])
    return write_video(
        out,
        times,
        path,
        config,
        sidecar_extra={
            "episode_a": traj_a.episode_id,
            "episode_b": traj_b.episode_id,
            "labels": list(labels),
            "steps_a": ia.tolist(),
            "steps_b": ib.tolist(),
        },
    )
