"""Demonstration datasets: scripted episodes saved as one `Trajectory` .npz each plus a manifest.

Layout of a dataset folder:

    <out>/episode_00000.npz ... one Trajectory.save file per episode
    <out>/manifest.json        {"task", "episodes": [{"file", "episode_id", "seed", "style",
                                "success", "length", "metrics"}], "config": {...}, ...}

Episode i uses seed `seed + i` for both the scene and the demonstrator, and style
`styles[i % len(styles)]` ("mixed" draws a new blend per episode from that seed), so a dataset is
reproducible from its arguments. The manifest is written atomically after every episode file, so
an interrupted run leaves a consistent, loadable dataset.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlhf.atomic import atomic_write_json
from rlhf.trajectory import Trajectory, TrajectoryError

MANIFEST = "manifest.json"

_worker_env = None  # one env per worker process, built on first use


def _episode_job(job: tuple[int, str, int, dict[str, Any], str]) -> dict[str, Any]:
    """Run and save one episode; returns its manifest row. Runs in a worker process (or inline)."""
    global _worker_env
    from rlhf.rollout import run_episode
    from sim.config import SimConfig
    from sim.demonstrators import make_demonstrator
    from sim.env import PandaEnv

    index, style, seed, config_dict, out_dir = job
    if _worker_env is None or dataclasses.asdict(_worker_env.config) != config_dict:
        if _worker_env is not None:
            _worker_env.close()
        _worker_env = PandaEnv(SimConfig(**config_dict))
    actor = make_demonstrator(config_dict["task"], style, seed=seed)
    traj = run_episode(_worker_env, actor, seed=seed, episode_id=f"{config_dict['task']}-demo{index:05d}-s{seed}")
    traj.extra["demo_style"] = style
    name = f"episode_{index:05d}.npz"
    traj.save(Path(out_dir) / name)
    return {
        "file": name,
        "episode_id": traj.episode_id,
        "seed": seed,
        "style": style,
        "style_params": traj.extra.get("style", {}),
        "policy_version": traj.policy_version,
        "success": bool(traj.success),
        "length": len(traj),
        "metrics": traj.metrics,
    }


def generate_demos(
    task: str,
    episodes: int,
    styles: Sequence[str] | str = ("expert",),
    out_dir: str | os.PathLike = "data/demos",
    seed: int = 0,
    workers: int = 1,
    config=None,
    progress: bool = True,
) -> Path:
    """Generate `episodes` scripted demonstrations of `task` into `out_dir`; returns the manifest path.

    styles: preset names from `sim.demonstrators.STYLES` or "mixed", cycled over episodes.
    config: an optional `sim.config.SimConfig` (its task is replaced by `task`).
    """
    from tqdm import tqdm

    from sim.config import SimConfig
    from sim.demonstrators import MIXED, STYLES

    if episodes <= 0:
        raise ValueError(f"episodes must be > 0, got {episodes}")
    if workers <= 0:
        raise ValueError(f"workers must be > 0, got {workers}")
    styles = [styles] if isinstance(styles, str) else list(styles)
    if not styles:
        raise ValueError("styles must name at least one style")
    for s in styles:
        if s != MIXED and s not in STYLES:
            raise ValueError(f"unknown demo style {s!r}; known: {sorted(STYLES) + [MIXED]}")
    cfg = dataclasses.replace(config, task=task) if config is not None else SimConfig(task=task)
    cfg_dict = dataclasses.asdict(cfg)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(i, styles[i % len(styles)], seed + i, cfg_dict, str(out)) for i in range(episodes)]
    rows: list[dict[str, Any]] = []
    manifest_path = out / MANIFEST

    def write_manifest(done: bool) -> None:
        atomic_write_json(
            manifest_path,
            {
                "task": task,
                "styles": styles,
                "seed": seed,
                "episodes_requested": episodes,
                "complete": done,
                "config": _jsonable(cfg_dict),
                "episodes": sorted(rows, key=lambda r: r["file"]),
            },
        )

    bar = tqdm(total=episodes, desc=f"demos {task}", unit="ep", disable=not progress)
    if workers == 1:
        results = map(_episode_job, jobs)
        pool = None
    else:
        pool = mp.get_context("spawn").Pool(workers)
        results = pool.imap_unordered(_episode_job, jobs)
    try:
        for row in results:
            rows.append(row)
            write_manifest(done=False)
            wins = sum(r["success"] for r in rows)
            bar.set_postfix(success=f"{wins}/{len(rows)}")
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    write_manifest(done=True)
    return manifest_path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def load_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a dataset folder; raises a clear error when it is missing or malformed."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{directory}: no {MANIFEST}; is this a folder written by `rlhf demos`?")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise TrajectoryError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("episodes"), list):
        raise TrajectoryError(f"{path}: missing the 'episodes' list")
    return manifest


@dataclasses.dataclass(frozen=True)
class DemoRecord:
    """One episode of a demo folder as its manifest lists it: what choosing demos needs (success,
    gold metrics), without reading the episode's frames. `rlhf.policy.bc.select_demos` takes these
    as it takes trajectories."""

    folder: Path
    row: dict[str, Any]

    @property
    def success(self) -> bool | None:
        return self.row.get("success")

    @property
    def metrics(self) -> dict[str, float]:
        return self.row.get("metrics") or {}


def demo_records(directory: str | os.PathLike, only_successful: bool = False, limit: int | None = None) -> list[DemoRecord]:
    """The folder's manifest rows (the first `limit` of them, successful ones only if asked), in file order."""
    manifest = load_manifest(directory)
    rows = [r for r in manifest["episodes"] if not only_successful or r.get("success")][:limit]
    return [DemoRecord(Path(directory), r) for r in rows]


def read_demo_records(
    records: Sequence[DemoRecord], image_size: int | None = None, progress: bool = False
) -> list[Trajectory]:
    """The trajectories of `records`, in order. `image_size` resizes each episode's frames as it is
    read (area interpolation), so a large dataset is held at the training resolution, never all at
    the camera's. Files are read by two threads (decompression and resizing release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    def read(rec: DemoRecord) -> Trajectory:
        traj = Trajectory.load(rec.folder / rec.row["file"])
        if image_size is not None and traj.images.shape[1:3] != (image_size, image_size):
            from rlhf.policy.vision import resize_frames

            traj = dataclasses.replace(traj, images=resize_frames(traj.images, image_size))
        return traj

    names = sorted({r.folder.name for r in records})
    desc = f"load {names[0]}" if len(names) == 1 else f"load {len(names)} folders"
    with ThreadPoolExecutor(max_workers=2) as pool:
        it = pool.map(read, records)
        return list(tqdm(it, total=len(records), desc=desc, unit="ep", disable=not progress))


def load_demos(
    directory: str | os.PathLike,
    only_successful: bool = False,
    image_size: int | None = None,
    progress: bool = False,
    limit: int | None = None,
) -> list[Trajectory]:
    """All trajectories listed in the folder's manifest (the first `limit` of them), in file order;
    `image_size` as in `read_demo_records`."""
    records = demo_records(directory, only_successful=only_successful, limit=limit)
    return read_demo_records(records, image_size=image_size, progress=progress)
