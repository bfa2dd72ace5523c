"""The catalog rows and the manifest of one drive, built from a finished pass's ``PassResult``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from drivecat.catalog import tables
from drivecat.catalog.store import MANIFEST_FORMAT
from drivecat.ingest.drive import DriveInputs
from drivecat.ingest.pass_result import PassResult
from drivecat.schemas.hashing import schema_sha256
from drivecat.types import AttachmentKind

_NS = 1_000_000_000


def _utc(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns / _NS, tz=UTC)


_INT64_MAX = (1 << 63) - 1


def _span(start_ns: int | None, end_ns: int | None) -> dict[str, Any]:
    # A clock outlier's file may hold log times from 2**63 ns (year 2262) up to 2**64 - 1,
    # which BIGINT cannot hold: such a time is NULL in the catalog; the manifest keeps it.
    start_ns = None if start_ns is None or start_ns > _INT64_MAX else start_ns
    end_ns = None if end_ns is None or end_ns > _INT64_MAX else end_ns
    return {
        "start_ns": start_ns,
        "end_ns": end_ns,
        "start_time": _utc(start_ns),
        "end_time": _utc(end_ns),
    }


def input_sizes(inputs: DriveInputs) -> dict[str, int]:
    """Size in bytes of each input file, keyed like ``inputs.input_hashes``."""
    return {rel: (inputs.root / rel).stat().st_size for rel in inputs.input_hashes}


def _int64(ns: int) -> int | None:
    """An MCAP time (uint64) as a BIGINT: NULL for the rare one past 2**63 - 1 (the
    manifest keeps it exactly)."""
    return ns if ns < 1 << 63 else None


def _prefix(drive_id: str, rel: str) -> str:
    return f"drives/{drive_id}/{rel}"


def build_rows(
    p: PassResult, drive_id: str, inputs: DriveInputs, version: str
) -> dict[str, pa.Table]:
    """Every catalog table's rows for the drive; file paths relative to the store."""
    identity = p.identity
    drive = {
        "drive_id": drive_id,
        "vehicle_id": identity.vehicle_id,
        "device_id": identity.device_id,
        "device_version": identity.device_version,
        "operator": identity.operator,
        **_span(p.start_ns, p.end_ns),
        "duration_s": (
            None if p.start_ns is None or p.end_ns is None else (p.end_ns - p.start_ns) / 1e9
        ),
        "fingerprint": inputs.fingerprint,
        "status": p.status.value,
        "lost_messages": p.lost_messages,
        "lost_bytes": p.lost_bytes,
        "message_count": p.message_count,
        "bytes": sum(input_sizes(inputs).values()),
        "source": str(inputs.root),
        "tool_version": version,
        "ingested_at": datetime.now(tz=UTC),
    }
    schema_rows: dict[str, dict[str, Any]] = {}
    topic_rows = []
    for t in p.topics:
        schema = t.schema
        sha = None
        if schema is not None:
            sha = schema_sha256(schema.name, schema.encoding, schema.data)
            schema_rows[sha] = {
                "schema_sha256": sha,
                "name": schema.name,
                "encoding": schema.encoding,
                "data": schema.data,
            }
        topic_rows.append(
            {
                "drive_id": drive_id,
                "topic": t.topic,
                "role": t.role.value,
                "schema_name": schema.name if schema else None,
                "schema_sha256": sha,
                "encoding": t.encoding,
                "message_count": t.message_count,
                "bytes": t.bytes,
                "rate_hz": t.rate_hz,
                **_span(t.start_ns, t.end_ns + 1),
                "slug": t.slug,
            }
        )
    file_rows = [
        {
            "drive_id": drive_id,
            "topic": f.topic,
            "path": _prefix(drive_id, f.path),
            **_span(f.start_ns, f.end_ns),
            "message_count": f.message_count,
            "bytes": f.bytes,
            "sha256": f.sha256,
        }
        for f in p.files
    ]
    frame_rows = [
        {**row, "drive_id": drive_id, "file": _prefix(drive_id, row["file"])} for row in p.frames
    ]
    sensor_rows = [
        {**row, "drive_id": drive_id, "file": _prefix(drive_id, row["file"])}
        for row in p.sensor_rows
    ]
    quality_rows = [
        {
            "drive_id": drive_id,
            "topic": q.topic or None,
            "kind": q.kind.value,
            **_span(q.start_ns, q.end_ns),
            "count": q.count,
            "detail": q.detail,
        }
        for q in p.quality
    ]
    segment_rows = [{**row, "drive_id": drive_id} for row in p.segments]
    return {
        "drives": tables.DRIVES.from_rows([drive]),
        "topics": tables.TOPICS.from_rows(topic_rows),
        "files": tables.FILES.from_rows(file_rows),
        "schemas": tables.SCHEMAS.from_rows(list(schema_rows.values())),
        "segments": tables.SEGMENTS.from_rows(segment_rows),
        "frames": tables.FRAMES.from_rows(frame_rows),
        "sensor_index": tables.SENSOR_INDEX.from_rows(sensor_rows),
        "quality": tables.QUALITY.from_rows(quality_rows),
        "attachments": tables.ATTACHMENTS.from_rows(_attachment_rows(p, drive_id)),
    }


def _attachment_rows(p: PassResult, drive_id: str) -> list[dict[str, Any]]:
    """One row per attachment (``path`` relative to the store), then one per metadata
    record (its map in ``metadata``; no media type, time or file)."""
    rows: list[dict[str, Any]] = [
        {
            "drive_id": drive_id,
            "name": a.name,
            "kind": AttachmentKind.ATTACHMENT.value,
            "media_type": a.media_type,
            "log_time_ns": _int64(a.log_time_ns),  # *_time are filled from these
            "create_time_ns": _int64(a.create_time_ns),
            "bytes": a.bytes,
            "sha256": a.sha256,
            "path": _prefix(drive_id, a.path),
            "metadata": None,
        }
        for a in p.attachments
    ]
    rows.extend(
        {
            "drive_id": drive_id,
            "name": m.name,
            "kind": AttachmentKind.METADATA.value,
            "metadata": list(m.metadata.items()),
        }
        for m in p.metadata
    )
    return rows


def build_manifest(
    p: PassResult, drive_id: str, inputs: DriveInputs, catalog_entries: dict[str, Any]
) -> dict[str, Any]:
    identity = p.identity
    sizes = input_sizes(inputs)
    return {
        "format": MANIFEST_FORMAT,
        "drive_id": drive_id,
        "device": identity.as_metadata(),
        "fingerprint": inputs.fingerprint,
        "status": p.status.value,
        "start_ns": p.start_ns,
        "end_ns": p.end_ns,
        "source": str(inputs.root),
        "inputs": [
            {"path": rel, "sha256": sha, "bytes": sizes.get(rel)}
            for rel, sha in sorted(inputs.input_hashes.items())
        ],
        "topics": {t: slug for t, slug in sorted(p.slugs.items())},
        "files": [
            {
                "path": f.path,
                "topic": f.topic,
                "start_ns": f.start_ns,
                "end_ns": f.end_ns,
                "message_count": f.message_count,
                "bytes": f.bytes,
                "sha256": f.sha256,
            }
            for f in p.files
        ],
        "attachments": [
            {
                "name": a.name,
                "media_type": a.media_type,
                "log_time_ns": a.log_time_ns,
                "create_time_ns": a.create_time_ns,
                "bytes": a.bytes,
                "sha256": a.sha256,
                "path": a.path,
                "source": a.source,
            }
            for a in p.attachments
        ],
        "metadata": [
            {"name": m.name, "metadata": dict(m.metadata), "source": m.source} for m in p.metadata
        ],
        "catalog": catalog_entries,
        "ingested_at": datetime.now(tz=UTC).isoformat(),
    }
