"""``catalog export --format mcap``: the matching time ranges as MCAP files.

``--format mcap`` writes one MCAP file per contiguous matching range per drive. For each
range ``[start_ns, end_ns)`` of one drive, the store files of the chosen topics that overlap
it are read with the seeking reader (``iter_messages`` from ``starting_at`` to
``ending_before``, in log-time order), merged across files in log-time order, and written
to ``<drive_id>_<start label>_<end label>.mcap`` (labels as in the store:
``20260615T173000Z``, with ``.fffffffff`` when the time has a fraction of a second).

Each output is self-contained: zstd chunks, statistics, chunk and message indexes, every
schema record copied byte for byte from the store (so Foxglove and the mcap readers decode
it), the channels with their metadata, the drive's attachments (read from its attachments
folder, checked against their sha256) and metadata records (every record of its inputs in
order, then its ``device`` record), as ``catalog.attachments`` reads them. The header's
profile is the one every store file read shares (``ros1``, ``ros2``), else empty. Message
bytes, ``log_time``, ``publish_time`` and ``sequence`` are copied unchanged.

``with_latched``: a topic is *latched* (slow: calibration, ``tf_static``, map context) when
its rate is under 1 Hz or unknown (a topic of fewer than 2 messages has no rate). For each
latched topic the last message before the range start, if any, is written too, with its
original ``log_time`` (so the file starts before the range). A latched message that falls
inside the range is written once, as usual.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
from mcap.records import Channel, Message, Schema
from mcap.writer import CompressionType, Writer

from drivecat.catalog.attachments import DriveRecords, drive_records, lineage_entry
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.export import (
    ExportOptions,
    ExportProgress,
    TimeRange,
    Written,
    drive_topics,
)
from drivecat.catalog.store_files import StoreFiles
from drivecat.ingest import crc
from drivecat.naming import time_label
from drivecat.types import common_profile

LATCHED_MAX_HZ = 1.0
_TICK = 2000  # messages between progress reports

_Item = tuple[int, int, Schema | None, Channel, Message]  # (log_time, file order, ...)


# ---------------------------------------------------------------------------- the mcap format


def write(
    con: duckdb.DuckDBPyConnection,
    store: Path,
    ranges: list[TimeRange],
    options: ExportOptions,
    folder: Path,
    progress: ExportProgress | None = None,
) -> Written:
    """Write one MCAP per range into ``folder``; return the counts and the files read.

    CatalogError when a topic in ``options.topics`` is in none of the ranges' drives, or a
    store file is missing or unreadable.
    """
    written = Written()
    plans = []
    seen_topics: set[str] = set()
    for r in ranges:
        found = drive_topics(con, r.drive_id)
        seen_topics |= {t[0] for t in found}
        chosen = [t for t in found if not options.topics or t[0] in options.topics]
        latched = [t[0] for t in chosen if t[3] is None or t[3] < LATCHED_MAX_HZ]
        plans.append((r, [t[0] for t in chosen], latched if options.with_latched else []))
    unknown = sorted(set(options.topics) - seen_topics)
    if unknown:
        raise CatalogError(f"--topics: {unknown[0]!r} is in none of the matching drives")
    total = sum(_estimate(con, r, topics) for r, topics, _ in plans)

    def tick(n: int) -> None:
        if progress is not None:
            progress(written.sample_count + n, max(total, written.sample_count + n), "messages")

    kept: dict[str, DriveRecords] = {}
    for r, topics, latched in plans:
        files = _files(con, r.drive_id, topics, r.start_ns, r.end_ns)
        before = _latched_files(con, r.drive_id, latched, r.start_ns)
        name = f"{r.drive_id}_{time_label(r.start_ns)}_{time_label(r.end_ns)}.mcap"
        if r.drive_id not in kept:
            kept[r.drive_id] = drive_records(store, r.drive_id)
        records = kept[r.drive_id]
        counts = _write_range(
            store, folder / name, r, files, before, written.sources, tick, records
        )
        written.attachments.extend(lineage_entry(a, name) for a in records.attachments)
        n = sum(counts.values())
        written.outputs.append(
            {"path": name, "drive_id": r.drive_id, "start_ns": r.start_ns, "end_ns": r.end_ns,
             "messages": n, "topics": counts}
        )  # fmt: skip
        written.sample_count += n
        tick(0)
    return written


def _estimate(con: duckdb.DuckDBPyConnection, r: TimeRange, topics: list[str]) -> int:
    """Messages a range should hold, prorated from the files it overlaps: for progress."""
    if not topics:
        return 0
    found = con.execute(
        "SELECT sum(message_count * (least(end_ns, $3) - greatest(start_ns, $2)) "
        "/ greatest(end_ns - start_ns, 1)) FROM files WHERE drive_id = $1 "
        "AND list_contains($4, topic) AND start_ns < $3 AND end_ns > $2",
        [r.drive_id, r.start_ns, r.end_ns, topics],
    ).fetchone()
    return int(found[0] or 0) if found else 0


def _files(
    con: duckdb.DuckDBPyConnection, drive_id: str, topics: list[str], start_ns: int, end_ns: int
) -> list[tuple[str, str]]:
    """(topic, store-relative path) of the files of ``topics`` overlapping [start, end)."""
    if not topics:
        return []
    return [
        (t, p)
        for t, p in con.execute(
            "SELECT topic, path FROM files WHERE drive_id = ? AND list_contains(?, topic) "
            "AND start_ns < ? AND end_ns > ? ORDER BY start_ns, topic, path",
            [drive_id, topics, end_ns, start_ns],
        ).fetchall()
    ]


def _latched_files(
    con: duckdb.DuckDBPyConnection, drive_id: str, topics: list[str], start_ns: int
) -> list[tuple[str, list[str]]]:
    """For each latched topic, its files that start before ``start_ns``, latest first."""
    out = []
    for topic in topics:
        paths = con.execute(
            "SELECT path FROM files WHERE drive_id = ? AND topic = ? AND start_ns < ? "
            "ORDER BY start_ns DESC",
            [drive_id, topic, start_ns],
        ).fetchall()
        if paths:
            out.append((topic, [p for (p,) in paths]))
    return out


def _last_before(
    files: StoreFiles, topic: str, paths: list[str], start_ns: int
) -> tuple[_Item, str] | None:
    """The last message of ``topic`` before ``start_ns``, and the file it came from."""
    for path in paths:
        for schema, channel, message in files.messages(path, topic, end_ns=start_ns, reverse=True):
            return (message.log_time, -1, schema, channel, message), path
    return None


def _stream(files: StoreFiles, path: str, order: int, topic: str, r: TimeRange) -> Iterator[_Item]:
    for schema, channel, message in files.messages(path, topic, r.start_ns, r.end_ns):
        yield message.log_time, order, schema, channel, message


def _order(item: _Item) -> tuple[int, int]:
    return item[0], item[1]


def _write_range(
    store: Path,
    out: Path,
    r: TimeRange,
    paths: list[tuple[str, str]],
    latched: list[tuple[str, list[str]]],
    sources: set[str],
    tick: Callable[[int], None],
    records: DriveRecords,
) -> dict[str, int]:
    """Write one range's messages, and its drive's ``records``, to ``out``; return the
    message count per topic.

    ``tick(n)`` is called every few thousand messages with the count written so far.
    """
    counts: dict[str, int] = {}
    n = 0
    crc.install()  # the writer's CRCs by ISA-L: the same checksums, 5x faster
    with StoreFiles(store) as files, open(out, "wb") as stream:
        writer = Writer(stream, compression=CompressionType.ZSTD, enable_data_crcs=True)
        streams = []
        for order, (topic, path) in enumerate(paths):
            sources.add(path)
            streams.append(_stream(files, path, order, topic, r))
        early = []
        read = {p for _, p in paths}
        for topic, before in latched:
            found = _last_before(files, topic, before, r.start_ns)
            if found is not None:
                early.append(found[0])
                sources.add(found[1])
                read.add(found[1])
        profiles = [files.call(p, lambda rd: rd.get_header().profile) for p in sorted(read)]
        writer.start(profile=common_profile(profiles).value, library="drivecat export")
        for a in records.attachments:
            writer.add_attachment(
                a.create_time_ns, a.log_time_ns, a.name, a.media_type, a.read(store)
            )
        for record in records.metadata:
            writer.add_metadata(record.name, dict(record.metadata))
        if records.device:
            writer.add_metadata("device", dict(records.device))
        ids = _Ids(writer)
        merged = heapq.merge(sorted(early, key=_order), *streams, key=_order)
        for log_time, _, schema, channel, message in merged:
            writer.add_message(
                ids.channel(schema, channel),
                log_time,
                message.data,
                message.publish_time,
                message.sequence,
            )
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
            n += 1
            if n % _TICK == 0:
                tick(n)
        writer.finish()
    return dict(sorted(counts.items()))


class _Ids:
    """Schema, channel and metadata records of the output, each written once.

    Schemas are keyed by content (name, encoding, bytes), channels by topic, encoding,
    schema and metadata: the same topic in two store files is one channel in the output.
    """

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.schemas: dict[tuple[str, str, bytes], int] = {}
        self.channels: dict[tuple[Any, ...], int] = {}
        self.by_source: dict[tuple[int, int], int] = {}  # (id(schema), id(channel)) -> id

    def channel(self, schema: Schema | None, channel: Channel) -> int:
        fast = (id(schema), id(channel))
        found = self.by_source.get(fast)
        if found is not None:
            return found
        schema_id = 0
        if schema is not None:
            skey = (schema.name, schema.encoding, bytes(schema.data))
            schema_id = self.schemas.get(skey, 0)
            if not schema_id:
                schema_id = self.writer.register_schema(schema.name, schema.encoding, schema.data)
                self.schemas[skey] = schema_id
        ckey = (
            channel.topic,
            channel.message_encoding,
            schema_id,
            tuple(sorted(channel.metadata.items())),
        )
        cid = self.channels.get(ckey)
        if cid is None:
            cid = self.writer.register_channel(
                channel.topic, channel.message_encoding, schema_id, dict(channel.metadata)
            )
            self.channels[ckey] = cid
        self.by_source[fast] = cid
        return cid
