"""Independent readers for checking what ingest wrote: the mcap library, nothing of ours."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
from mcap.reader import make_reader
from mcap.stream_reader import StreamReader

MessageKey = tuple[str, int, int, int, str]


def message_keys(paths: Iterable[Path]) -> Counter[MessageKey]:
    """(topic, log_time, publish_time, sequence, sha256 of bytes) of every message, counted.

    Streams the records, so it also reads recordings without a summary; a truncated file
    yields what precedes the cut.
    """
    keys: Counter[MessageKey] = Counter()
    for path in paths:
        channels: dict[int, str] = {}
        with open(path, "rb") as f:
            try:
                for record in StreamReader(f, skip_magic=False).records:
                    kind = type(record).__name__
                    if kind == "Channel":
                        channels[record.id] = record.topic
                    elif kind == "Message":
                        digest = hashlib.sha256(record.data).hexdigest()
                        keys[
                            (
                                channels[record.channel_id],
                                record.log_time,
                                record.publish_time,
                                record.sequence,
                                digest,
                            )
                        ] += 1
            except Exception:
                pass  # a cut file ends here: what came before has been counted
    return keys


def query(store: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` over the store's catalog, opened read-only with plain DuckDB."""
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def store_files(store: Path, drive_id: str) -> list[Path]:
    return sorted((store / "drives" / drive_id).glob("*/*.mcap"))


def summary_of(path: Path):  # type: ignore[no-untyped-def]
    with open(path, "rb") as f:
        reader = make_reader(f)
        return reader.get_summary(), reader.get_header(), list(reader.iter_metadata())
