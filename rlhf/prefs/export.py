"""Export preference triples to JSONL or parquet (atomically) and read them back.

Each row: pair_id, instruction, preferred, rejected (episode ids; null for a tie), episode_a/b,
segment_a/b ([start, stop) steps), prob_a, annotator_id, campaign_id and one column per axis
(`axis_<name>`: LABEL_* in episode order, A = episode_a).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlhf.atomic import atomic_write_bytes, atomic_write_text
from rlhf.constants import PREFERENCE_AXES
from rlhf.prefs.triples import LABEL_CANT_TELL, PreferenceTriple

FORMATS = ("jsonl", "parquet")


def triple_to_row(t: PreferenceTriple) -> dict[str, Any]:
    preferred = t.preferred
    rejected = None if preferred is None else (t.episode_b if preferred == t.episode_a else t.episode_a)
    row: dict[str, Any] = {
        "pair_id": t.pair_id,
        "instruction": t.instruction,
        "preferred": preferred,
        "rejected": rejected,
        "episode_a": t.episode_a,
        "episode_b": t.episode_b,
        "segment_a": list(t.segment_a),
        "segment_b": list(t.segment_b),
        "prob_a": t.prob_a,
        "annotator_id": t.annotator_id,
        "campaign_id": t.campaign_id,
    }
    for axis in PREFERENCE_AXES:
        row[f"axis_{axis}"] = int(t.axes.get(axis, LABEL_CANT_TELL))
    return row


def row_to_triple(row: dict[str, Any]) -> PreferenceTriple:
    return PreferenceTriple(
        pair_id=row["pair_id"],
        instruction=row["instruction"],
        episode_a=row["episode_a"],
        episode_b=row["episode_b"],
        segment_a=tuple(int(x) for x in row["segment_a"]),
        segment_b=tuple(int(x) for x in row["segment_b"]),
        prob_a=float(row["prob_a"]),
        annotator_id=row.get("annotator_id") or "",
        campaign_id=row.get("campaign_id") or "",
        axes={a: int(row[f"axis_{a}"]) for a in PREFERENCE_AXES if row.get(f"axis_{a}") is not None},
    )


def _format_of(path: Path, fmt: str | None) -> str:
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"{path}: cannot tell the export format; use a .jsonl or .parquet name or pass format")
    return fmt


def write_triples(triples: Sequence[PreferenceTriple], path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Write triples to `path` (.jsonl or .parquet) atomically; returns the path."""
    path = Path(path)
    fmt = _format_of(path, fmt)
    rows = [triple_to_row(t) for t in triples]
    if fmt == "jsonl":
        atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("pair_id", pa.string()), ("instruction", pa.string()), ("preferred", pa.string()),
            ("rejected", pa.string()), ("episode_a", pa.string()), ("episode_b", pa.string()),
            ("segment_a", pa.list_(pa.int64())), ("segment_b", pa.list_(pa.int64())), ("prob_a", pa.float64()),
            ("annotator_id", pa.string()), ("campaign_id", pa.string()),
            *[(f"axis_{a}", pa.int8()) for a in PREFERENCE_AXES],
        ]
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_triples(path: str | os.PathLike, fmt: str | None = None) -> list[PreferenceTriple]:
    """Read triples written by `write_triples`; errors name the file and line/row."""
    path = Path(path)
    fmt = _format_of(path, fmt)
    if fmt == "jsonl":
        out = []
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    out.append(row_to_triple(json.loads(line)))
                except (ValueError, KeyError, TypeError) as e:
                    raise ValueError(f"{path}:{i}: bad preference row ({e})") from e
        return out
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    try:
        return [row_to_triple(r) for r in rows]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: bad preference row ({e})") from e
