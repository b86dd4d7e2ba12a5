"""Salvaging the complete part of an MCAP file whose tail was cut off (a recorder killed mid-write).

A cut-off MCAP has no footer or summary, so index-based readers refuse it. Its data section is
still a sequence of records: this reads them in order with CRC checks, keeps every message of every
complete chunk, and stops at the first record that is cut short or fails its checksum.
`SalvageReader` offers the small part of rosbags' Reader interface the bag reader uses.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader


@dataclass(frozen=True)
class SalvagedConnection:
    """A channel found in the salvaged records (rosbags' Connection fields the reader needs)."""

    id: int
    topic: str
    msgtype: str


class SalvageReader:
    """Messages of the intact part of a (truncated) MCAP file, sorted by log time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.storage = None  # no metadata: it sat at the lost end of the file
        self.stopped_by: str = ""  # why the scan ended early, "" if the file was whole
        schemas: dict[int, str] = {}
        channels: dict[int, SalvagedConnection] = {}
        messages: list[tuple[int, int, bytes]] = []
        with open(self.path, "rb") as f:
            try:
                for record in StreamReader(f, validate_crcs=True).records:
                    if isinstance(record, Schema):
                        schemas[record.id] = record.name
                    elif isinstance(record, Channel):
                        channels[record.id] = SalvagedConnection(record.id, record.topic, schemas.get(record.schema_id, ""))
                    elif isinstance(record, Message) and record.channel_id in channels:
                        messages.append((record.log_time, record.channel_id, bytes(record.data)))
            except Exception as e:  # noqa: BLE001 - the first damaged record ends the salvage
                self.stopped_by = f"{type(e).__name__}: {e}"
        messages.sort(key=lambda m: m[0])
        self.connections = list(channels.values())
        self._messages = messages

    def __enter__(self) -> SalvageReader:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def messages(self, connections: Sequence[SalvagedConnection] = ()) -> Iterator[tuple[SalvagedConnection, int, bytes]]:
        wanted = {c.id: c for c in (connections or self.connections)}
        for log_time, cid, data in self._messages:
            conn = wanted.get(cid)
            if conn is not None:
                yield conn, log_time, data
