"""Reading the reward CLI's inputs: a folder of trajectory files and a file of preference triples."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tqdm.auto import tqdm

from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.triples import PreferenceTriple
from rlhf.trajectory import Trajectory


def load_episode_dir(path: str | os.PathLike, progress: bool = True) -> dict[str, Trajectory]:
    """Every `*.npz` trajectory (Trajectory.save format) under `path`, keyed by episode id.

    Raises ValueError for a missing folder, an empty one, or two files with the same episode id.
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: episodes folder does not exist")
    files = sorted(path.rglob("*.npz"))
    if not files:
        raise ValueError(f"{path}: no trajectory files (*.npz) found")
    out: dict[str, Trajectory] = {}
    where: dict[str, Path] = {}
    for f in tqdm(files, desc="loading episodes", disable=not progress, leave=False):
        traj = Trajectory.load(f)
        if traj.episode_id in out:
            raise ValueError(
                f"episode id {traj.episode_id!r} appears in both {where[traj.episode_id]} and {f}"
            )
        out[traj.episode_id] = traj
        where[traj.episode_id] = f
    return out


def _row_to_triple(row: dict, where: str) -> PreferenceTriple:
    try:
        axes = dict(row.get("axes") or {})
        for axis in PREFERENCE_AXES:  # the preference export's one-column-per-axis layout
            if row.get(f"axis_{axis}") is not None:
                axes[axis] = int(row[f"axis_{axis}"])
        return PreferenceTriple(
            pair_id=str(row["pair_id"]),
            instruction=str(row.get("instruction", "")),
            episode_a=str(row["episode_a"]),
            episode_b=str(row["episode_b"]),
            segment_a=tuple(int(x) for x in row["segment_a"]),
            segment_b=tuple(int(x) for x in row["segment_b"]),
            prob_a=float(row["prob_a"]),
            annotator_id=str(row.get("annotator_id") or ""),
            campaign_id=str(row.get("campaign_id") or ""),
            axes=axes,
        )
    except KeyError as e:
        raise ValueError(f"{where}: missing field {e.args[0]!r}") from e
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from e


def read_triples_file(path: str | os.PathLike) -> list[PreferenceTriple]:
    """Preference triples from a .jsonl file (one object per line, PreferenceTriple fields or the
    preference export's rows) or a .parquet export. Errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: triples file does not exist")
    if path.suffix.lower() == ".parquet":
        from rlhf.prefs.export import read_triples  # the preference store's own reader

        return read_triples(path)
    out = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{i}: not valid JSON ({e})") from e
        out.append(_row_to_triple(row, f"{path}:{i}"))
    if not out:
        raise ValueError(f"{path}: no triples")
    return out


def write_triples_jsonl(triples: list[PreferenceTriple], path: str | os.PathLike) -> None:
    """Write triples as JSON lines (PreferenceTriple fields), atomically."""
    from dataclasses import asdict

    from rlhf.atomic import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(asdict(t), sort_keys=True) + "\n" for t in triples))
