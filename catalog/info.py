"""What a store or a drive folder holds, at a glance (``drivecat info STORE|DRIVE_FOLDER``).

The first questions a person asks: how many drives, from which devices and software
versions, how many hours, how many segments of each tag value, and what went wrong
(drive status and quality problems by kind). A store is read through its catalog; a drive
folder (``<store>/drives/<drive_id>/``) through the catalog rows its manifest lists, so a
drive folder copied out of its store can be summarized too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from drivecat.catalog import db
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.store import MANIFEST, read_manifest, read_rows

#: The tags counted per value; booleans count the segments where they hold.
TAG_COUNTS = ("weather", "time_of_day", "at_intersection", "pedestrians_within_5m")


@dataclass(frozen=True)
class CatalogInfo:
    path: str
    kind: str  # "store" or "drive"
    drives: int
    hours: float
    messages: int
    bytes: int
    segments: int
    devices: dict[str, int]  # device_id -> drives
    versions: dict[str, int]  # device_version -> drives
    status: dict[str, int]  # drive status -> drives
    tags: dict[str, dict[str, int]]  # tag -> value -> segments
    pedestrian_segments: int  # segments with pedestrian_count > 0
    quality: dict[str, int]  # quality kind -> rows
    first_start: str | None  # ISO UTC
    last_end: str | None
    drive_ids: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_store(path: Path) -> bool:
    return db.catalog_path(path).is_file()


def is_drive_folder(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def store_info(store: Path) -> CatalogInfo:
    con = db.connect(store, read_only=True)
    try:
        return _summarize(con, str(store), "store")
    finally:
        con.close()


def drive_info(folder: Path) -> CatalogInfo:
    """A drive folder, from the rows its manifest lists (CatalogError if unreadable)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    rows = read_rows(folder, manifest)
    con = duckdb.connect()
    try:
        for name in ("drives", "segments", "quality", "topics"):
            if name not in rows:
                raise CatalogError(f"{folder / MANIFEST}: lists no {name} rows")
            con.register(name, rows[name])
        return _summarize(con, str(folder), "drive")
    finally:
        con.close()


def _pairs(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, int]:
    return {_key(k): int(v) for k, v in con.execute(sql).fetchall()}


def _key(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _summarize(con: duckdb.DuckDBPyConnection, path: str, kind: str) -> CatalogInfo:
    drives, hours, messages, size, first, last = con.execute(
        "SELECT count(*), coalesce(sum(duration_s), 0) / 3600, coalesce(sum(message_count), 0),"
        " coalesce(sum(bytes), 0), min(start_ns), max(end_ns) FROM drives"
    ).fetchone() or (0, 0.0, 0, 0, None, None)
    (segments,) = con.execute("SELECT count(*) FROM segments").fetchone() or (0,)
    tags = {
        tag: _pairs(con, f"SELECT {tag}, count(*) FROM segments GROUP BY 1 ORDER BY 2 DESC, 1")
        for tag in TAG_COUNTS
    }
    (peds,) = con.execute(
        "SELECT count(*) FROM segments WHERE pedestrian_count > 0"
    ).fetchone() or (0,)
    order = "SELECT drive_id FROM drives ORDER BY start_ns"
    ids = tuple(str(r[0]) for r in con.execute(order).fetchall())
    return CatalogInfo(
        path=path,
        kind=kind,
        drives=int(drives),
        hours=round(float(hours), 3),
        messages=int(messages),
        bytes=int(size),
        segments=int(segments),
        devices=_pairs(con, "SELECT device_id, count(*) FROM drives GROUP BY 1 ORDER BY 2 DESC, 1"),
        versions=_pairs(
            con, "SELECT device_version, count(*) FROM drives GROUP BY 1 ORDER BY 2 DESC, 1"
        ),
        status=_pairs(con, "SELECT status, count(*) FROM drives GROUP BY 1 ORDER BY 2 DESC, 1"),
        tags=tags,
        pedestrian_segments=int(peds),
        quality=_pairs(con, "SELECT kind, count(*) FROM quality GROUP BY 1 ORDER BY 2 DESC, 1"),
        first_start=_iso(first),
        last_end=_iso(last),
        drive_ids=ids,
    )


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="seconds")
