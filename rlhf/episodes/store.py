"""`EpisodeStore`: the facade every other component uses to keep and fetch episodes.

Layout under `root`:

    index.sqlite               the EpisodeIndex (paths in it are relative to root)
    bags/<episode_id>/         one rosbag2 folder (MCAP) per episode
    videos/<episode_id>.mp4    browser-playable main-camera video (+ .frames.json sidecar)
    videos/wrist/<episode_id>.mp4  the wrist camera's video on the same clock, for episodes that have one
    pairs/<a>__<b>.mp4         side-by-side pair videos made on demand for annotation
    .staging/                  work in progress; emptied as each add finishes or fails

`add` is all-or-nothing: the bag and the video are written under .staging, moved into place by
renames, and the index row is inserted last; any failure removes whatever was already moved, so a
reader never sees half an episode.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from rlhf.episodes.bag_reader import BagError, BagReadConfig, read_episodes
from rlhf.episodes.bag_writer import BagWriteConfig, write_episode_bag
from rlhf.episodes.index import EpisodeIndex, EpisodeRecord
from rlhf.episodes.video import (
    VideoConfig,
    check_wrist_frames,
    make_pair_video,
    sidecar_path,
    write_video,
    write_wrist_video,
)
from rlhf.trajectory import Trajectory

_SAFE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@dataclass
class StoreConfig:
    """How the store writes episodes."""

    bag: BagWriteConfig = field(default_factory=BagWriteConfig)
    """Bag writing (topics, compression)."""
    video: VideoConfig = field(default_factory=VideoConfig)
    """Video encoding (codec, quality)."""
    write_videos: bool = True
    """Write a browser-playable video per episode (the annotation page needs it), and a second one
    of the wrist camera for episodes that have wrist frames."""

    def __post_init__(self) -> None:
        if not isinstance(self.bag, BagWriteConfig):
            raise ValueError(f"StoreConfig.bag must be a BagWriteConfig, got {type(self.bag).__name__}")
        if not isinstance(self.video, VideoConfig):
            raise ValueError(f"StoreConfig.video must be a VideoConfig, got {type(self.video).__name__}")


@dataclass
class ImportReport:
    """What `import_bags` did with each bag: nothing is silently dropped."""

    added: list[EpisodeRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (episode id, why), e.g. already stored
    failed: list[tuple[str, str]] = field(default_factory=list)  # (bag or episode, error message)

    @property
    def ok(self) -> bool:
        return not self.failed


def _fsync_tree(root: Path) -> None:
    """fsync every file under `root` (a crash after the renames must not leave empty files)."""
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


class EpisodeStore:
    """Episodes on disk: rosbag2 bags, videos and a SQLite index under one root folder."""

    def __init__(self, root: str | Path, config: StoreConfig | None = None) -> None:
        self.root = Path(root)
        self.config = config or StoreConfig()
        for sub in ("bags", "videos", "pairs", ".staging"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.index = EpisodeIndex(self.root / "index.sqlite")
        self._add_lock = threading.Lock()  # two threads adding one id must not interleave their renames

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ paths
    def bag_path(self, episode_id: str) -> Path:
        return self.root / self.index.get(episode_id).bag_path

    def video_path(self, episode_id: str) -> Path | None:
        rel = self.index.get(episode_id).video_path
        return self.root / rel if rel else None

    def wrist_video_path(self, episode_id: str) -> Path | None:
        """The wrist camera's video, or None when the episode has none."""
        rel = self.index.get(episode_id).wrist_video_path
        return self.root / rel if rel else None

    @staticmethod
    def _wrist_video_rel(video_rel: Path) -> Path:
        # A subfolder rather than a name suffix: ids may contain dots, so "<id>.wrist.mp4" could be
        # another episode's main video.
        return video_rel.parent / "wrist" / video_rel.name

    # ------------------------------------------------------------------ write
    def add(self, traj: Trajectory) -> EpisodeRecord:
        """Store one episode (bag + video(s) + index row), all or nothing; returns its index row.

        With `write_videos`, an episode with `wrist_images` also gets a wrist-camera video on the
        main video's clock (`EpisodeRecord.wrist_video_path`).

        Raises KeyError if the id is already stored, ValueError if it is not usable as a file name.
        """
        with self._add_lock:
            return self._add(traj)

    def _add(self, traj: Trajectory) -> EpisodeRecord:
        eid = traj.episode_id
        if not _SAFE_ID.fullmatch(eid):
            raise ValueError(f"episode id {eid!r} must be 1-128 of [A-Za-z0-9_.-] and not start with '.'")
        if eid in self.index:
            raise KeyError(f"episode {eid!r} is already in the store {self.root}")
        bag_rel = Path("bags") / eid
        video_rel = Path("videos") / f"{eid}{self.config.video.suffix}" if self.config.write_videos else None
        wrist_rel = self._wrist_video_rel(video_rel) if video_rel and traj.wrist_images is not None else None
        if (self.root / bag_rel).exists():
            raise KeyError(f"{self.root / bag_rel} exists but is not indexed; remove it or re-import it")
        if wrist_rel:  # before anything is written (the bag writer would stop at a missing frame)
            check_wrist_frames(eid, traj.wrist_images, len(traj))
        staging = self.root / ".staging" / f"{eid}.{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        moved: list[Path] = []
        try:
            video_uri = (self.root / video_rel).resolve().as_uri() if video_rel else ""
            bag_uri = (self.root / bag_rel).resolve().as_uri()
            write_episode_bag(traj, staging / "bag", config=self.config.bag, video_uri=video_uri, bag_uri=bag_uri)
            if video_rel:
                write_video(traj.images, traj.timestamps, staging / video_rel.name, self.config.video)
            if wrist_rel:  # same timestamps as the main video: one clock for both on the page
                write_wrist_video(eid, traj.wrist_images, traj.timestamps, staging / "wrist" / wrist_rel.name, self.config.video)
            _fsync_tree(staging)  # durable before they become visible
            # Move into place: the videos (and their sidecars) first, the bag last, the index row after.
            videos = [(staging / video_rel.name, self.root / video_rel)] if video_rel else []
            if wrist_rel:
                (self.root / wrist_rel).parent.mkdir(parents=True, exist_ok=True)
                videos.append((staging / "wrist" / wrist_rel.name, self.root / wrist_rel))
            for src, dst in videos:
                for frm, to in ((src, dst), (sidecar_path(src), sidecar_path(dst))):
                    os.replace(frm, to)
                    moved.append(to)
            os.rename(staging / "bag", self.root / bag_rel)
            moved.append(self.root / bag_rel)
            record = EpisodeRecord(
                episode_id=eid,
                task=traj.task,
                instruction=traj.instruction,
                source=traj.source,
                duration_s=traj.duration,
                num_steps=len(traj),
                bag_path=bag_rel.as_posix(),
                video_path=video_rel.as_posix() if video_rel else "",
                policy_version=traj.policy_version,
                success=traj.success,
                metrics={k: float(v) for k, v in traj.metrics.items()},
                extra={k: v for k, v in traj.extra.items() if k in ("source_bag", "start_time_ns")},
                wrist_video_path=wrist_rel.as_posix() if wrist_rel else "",
            )
            self.index.add(record)
            return record
        except BaseException:
            for p in reversed(moved):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                elif p.exists():
                    p.unlink()
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def remove(self, episode_id: str) -> None:
        """Delete an episode: index row first (so readers stop seeing it), then its files."""
        rec = self.index.get(episode_id)
        self.index.remove(episode_id)
        shutil.rmtree(self.root / rec.bag_path, ignore_errors=True)
        stale = list((self.root / "pairs").glob(f"{episode_id}__*")) + list((self.root / "pairs").glob(f"*__{episode_id}.*"))
        for rel in (rec.video_path, rec.wrist_video_path):
            if rel:
                stale += [self.root / rel, sidecar_path(self.root / rel)]
        for p in stale:
            if p.exists():
                p.unlink()

    # ------------------------------------------------------------------ read
    def get(self, episode_id: str) -> EpisodeRecord:
        return self.index.get(episode_id)

    def list(self, **filters) -> list[EpisodeRecord]:
        """Index rows; filters as `EpisodeIndex.list` (task=, source=, policy_version=, success=, ...)."""
        return self.index.list(**filters)

    def load(self, episode_id: str) -> Trajectory:
        """The stored trajectory, read back from its bag."""
        bag = self.bag_path(episode_id)
        cfg = BagReadConfig(
            image_topic=self.config.bag.image_topic,
            wrist_image_topic=self.config.bag.wrist_image_topic,
            command_topic=self.config.bag.command_topic,
            joint_states_topic=self.config.bag.joint_states_topic,
            segment_by="markers",
            min_steps=1,
        )
        for traj in read_episodes(bag, cfg):
            if traj.episode_id == episode_id:
                return traj
        raise BagError(f"{bag}: holds no episode {episode_id!r}")

    def load_many(self, episode_ids: Iterable[str]) -> dict[str, Trajectory]:
        return {eid: self.load(eid) for eid in episode_ids}

    def pair_video(self, id_a: str, id_b: str, *, labels: tuple[str, str] = ("A", "B")) -> Path:
        """Side-by-side video of two stored episodes (A left), made once and cached under pairs/."""
        path = self.root / "pairs" / f"{id_a}__{id_b}{self.config.video.suffix}"
        if not path.exists():
            make_pair_video(self.load(id_a), self.load(id_b), path, self.config.video, labels=labels)
        return path

    # ------------------------------------------------------------------ import / export
    def import_bags(
        self, paths: Sequence[str | Path], config: BagReadConfig | None = None, *, progress: bool = True
    ) -> ImportReport:
        """Read each bag (ours or a real robot's), cut it into episodes and store them.

        One bad bag never costs the others: its error goes into `report.failed` and the import
        goes on. Episodes already stored are reported in `skipped`.
        """
        report = ImportReport()
        bar = tqdm(list(paths), desc="import bags", unit="bag", disable=not progress)
        for path in bar:
            bar.set_postfix_str(Path(path).name)
            try:
                episodes = read_episodes(path, config)
            except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the import
                report.failed.append((str(path), str(e) if isinstance(e, BagError) else f"{type(e).__name__}: {e}"))
                continue
            for traj in episodes:
                if traj.episode_id in self.index:
                    report.skipped.append((traj.episode_id, f"already stored (from {path})"))
                    continue
                try:
                    report.added.append(self.add(traj))
                except Exception as e:  # noqa: BLE001
                    report.failed.append((f"{path}#{traj.episode_id}", f"{type(e).__name__}: {e}"))
        return report

    def export_lerobot(self, out_dir: str | Path, episode_ids: Sequence[str] | None = None, **kwargs) -> Path:
        """Write the chosen episodes (default: all) as a LeRobot v3.0 dataset; see lerobot_export."""
        from rlhf.episodes.lerobot_export import LeRobotExportConfig, export_lerobot

        ids = list(episode_ids) if episode_ids is not None else [r.episode_id for r in self.list()]
        return export_lerobot((self.load(i) for i in ids), out_dir, LeRobotExportConfig(**kwargs), num_episodes=len(ids))
