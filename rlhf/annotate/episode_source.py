"""Where the annotation server's episodes come from: an adapter, so the server does not depend on how
episodes are stored.

The preference store only needs an `EpisodeRecord` per episode (id, task, instruction, video, fps,
steps, and optionally a wrist-camera video on the same clock). Today those come from trajectories
plus MP4 files, or from plain rows (JSON/JSONL, or any index that yields mappings or objects with
those attributes, such as the episode store's SQLite index).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rlhf.prefs.store import EpisodeRecord
from rlhf.trajectory import Trajectory

VIDEO_ROUTE = "/videos/"
WRIST_VIDEO_ROUTE = "/wrist-videos/"


def served_video_url(episode_id: str) -> str:
    """The URL under which the annotation server streams an episode's local video file."""
    return f"{VIDEO_ROUTE}{episode_id}"


def served_wrist_video_url(episode_id: str) -> str:
    """The URL under which the annotation server streams an episode's local wrist-camera video file."""
    return f"{WRIST_VIDEO_ROUTE}{episode_id}"


def check_wrist_clock(episode_id: str, video_path: str | None, wrist_video_path: str | None) -> None:
    """Refuse a wrist video whose frames do not match the scene video's (when both are local files
    with the sidecars `write_video` leaves); the page plays both from one clock."""
    if not video_path or not wrist_video_path:
        return
    from rlhf.episodes.video import check_same_clock  # imported here: PyAV is only needed for this check

    check_same_clock(episode_id, video_path, wrist_video_path)


def record_from_trajectory(
    traj: Trajectory,
    video_path: str | os.PathLike,
    *,
    fps: float | None = None,
    gold_axes: Mapping[str, float] | None = None,
    wrist_video_path: str | os.PathLike | None = None,
) -> EpisodeRecord:
    """An EpisodeRecord for a trajectory whose frames were rendered to `video_path`, one frame per step.

    fps defaults to the trajectory's control rate (steps / duration). `wrist_video_path`: its wrist
    camera's frames rendered on the same clock (e.g. `EpisodeStore.wrist_video_path(id)`).
    """
    n = len(traj)
    if fps is None:
        fps = (n - 1) / traj.duration if n > 1 and traj.duration > 0 else 10.0
    wrist = str(Path(wrist_video_path).resolve()) if wrist_video_path is not None else None
    check_wrist_clock(traj.episode_id, str(video_path), wrist)
    return EpisodeRecord(
        episode_id=traj.episode_id,
        task=traj.task,
        instruction=traj.instruction,
        video_url=served_video_url(traj.episode_id),
        video_path=str(Path(video_path).resolve()),
        num_steps=n,
        fps=float(fps),
        duration=n / float(fps),
        gold_axes=dict(gold_axes) if gold_axes is not None else None,
        wrist_video_url=served_wrist_video_url(traj.episode_id) if wrist else None,
        wrist_video_path=wrist,
    )


def _get(row: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(row, Mapping) and name in row:
            return row[name]
        if not isinstance(row, Mapping) and hasattr(row, name):
            return getattr(row, name)
    return default


def _local_path(path: Any, base_dir: str | os.PathLike | None) -> str | None:
    """A row's file path as a string, relative ones resolved against base_dir; None for ''/None."""
    if not path:
        return None
    if base_dir is not None and not os.path.isabs(str(path)):
        return str(Path(base_dir) / str(path))
    return str(path)


def record_from_row(row: Any, *, base_dir: str | os.PathLike | None = None) -> EpisodeRecord:
    """An EpisodeRecord from a mapping or object with episode_id/id, task, instruction, video_path or
    video_url, fps, and num_steps (or duration); optionally wrist_video_path or wrist_video_url.
    Relative video paths are resolved against base_dir."""
    episode_id = _get(row, "episode_id", "id")
    if not episode_id:
        raise ValueError(f"episode row has no episode_id: {row!r}")
    steps = _get(row, "num_steps", "steps", "length")
    duration = _get(row, "duration", "duration_s")
    fps = _get(row, "fps", "video_fps", "control_rate")
    if fps is None:
        # The episode store renders one frame per control step: rate = (steps - 1) / (last - first stamp).
        if steps is None or duration is None or float(duration) <= 0 or int(steps) < 2:
            raise ValueError(f"episode {episode_id!r}: row has no fps (and no num_steps + duration to derive it)")
        fps = round((int(steps) - 1) / float(duration), 6)
    fps = float(fps)
    if steps is None:
        if duration is None:
            raise ValueError(f"episode {episode_id!r}: row has neither num_steps nor duration")
        steps = max(1, round(float(duration) * fps))
    video_path = _local_path(_get(row, "video_path", "video"), base_dir)
    video_url = _get(row, "video_url") or (served_video_url(str(episode_id)) if video_path else None)
    if video_url is None:
        raise ValueError(f"episode {episode_id!r}: row has neither video_path nor video_url")
    # Optional; the episode store's index holds '' for episodes without a wrist camera.
    wrist_path = _local_path(_get(row, "wrist_video_path"), base_dir)
    wrist_url = _get(row, "wrist_video_url") or (served_wrist_video_url(str(episode_id)) if wrist_path else None)
    check_wrist_clock(str(episode_id), video_path, wrist_path)
    gold = _get(row, "gold_axes", "gold")
    if not gold:
        gold = _gold_from_metrics(_get(row, "metrics"))
    return EpisodeRecord(
        episode_id=str(episode_id),
        task=str(_get(row, "task", default="")),
        instruction=str(_get(row, "instruction", default="")),
        video_url=str(video_url),
        video_path=None if video_path is None else str(video_path),
        num_steps=int(steps),
        fps=fps,
        duration=int(steps) / fps,
        gold_axes=dict(gold) if gold else None,
        wrist_video_url=None if wrist_url is None else str(wrist_url),
        wrist_video_path=wrist_path,
    )


def _gold_from_metrics(metrics: Mapping[str, float] | None) -> dict[str, float] | None:
    """Gold axis scores from an episode's stored gold metrics, where the sim's formulas are available."""
    if not metrics:
        return None
    try:
        from sim.metrics import gold_axis_scores

        return {k: float(v) for k, v in gold_axis_scores(None, dict(metrics)).items()}
    except (ImportError, KeyError, TypeError, ValueError):
        return None  # metrics from elsewhere (a real robot) do not define gold axes


def records_from_rows(rows: Iterable[Any], *, base_dir: str | os.PathLike | None = None) -> list[EpisodeRecord]:
    return [record_from_row(r, base_dir=base_dir) for r in rows]


def records_from_file(path: str | os.PathLike) -> list[EpisodeRecord]:
    """Episode rows from a JSON list or a JSONL file; video paths are relative to the file's folder."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            rows = json.loads(text)
            if isinstance(rows, Mapping):
                rows = rows.get("episodes", [])
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    return records_from_rows(rows, base_dir=path.parent)


def records_from_episode_store(root: str | os.PathLike) -> list[EpisodeRecord]:
    """Episodes with videos from the episode store at `root` (its SQLite index lists them).

    Episodes stored without a video cannot be shown and are left out.
    """
    try:
        from rlhf.episodes.store import EpisodeStore
    except ImportError as e:
        raise RuntimeError(f"the episode store (rlhf.episodes.store.EpisodeStore) is not available: {e}") from e
    store = EpisodeStore(root)
    try:
        rows = [r for r in store.list() if _get(r, "video_path")]
    finally:
        store.close()
    return records_from_rows(rows, base_dir=root)
