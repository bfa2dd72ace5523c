"""``catalog export``: the segments a SQL condition selects, as MCAP files or a training dataset.

A run has four steps, and only the last one touches the catalog for writing:

1. ``--where`` (SQL over the ``segments`` columns) selects segments; the adjacent matching
   segments of a drive merge into one contiguous time range ``[start_ns, end_ns)`` of
   ``log_time`` (:func:`matching_segments`, :func:`merge_ranges`).
2. The ranges are written into ``<out parent>/.<out name>.tmp-<uuid>/`` by the format's
   exporter (:data:`catalog.exporters.EXPORTERS`: :mod:`catalog.export_mcap`,
   :mod:`catalog.export_dataset`), on a read-only connection.
3. ``lineage.json`` is written beside them: the query, the store and the catalog, the tool
   version, the options, the counts, every store file read (with its sha256 from the
   ``files`` table) and every source drive's manifest inputs (with their sha256).
4. In one catalog transaction the ``exports`` row is inserted and the folder renamed to
   ``out``. A failure at any step removes the temporary folder: ``out`` either holds a
   complete export that the catalog records, or it is left as it was.

``out`` must not exist, or be an empty folder; with ``force`` a non-empty ``out`` is
replaced (it is moved aside, and deleted only once the new export is in place), but only
when it is an export this store recorded there: every export holds a ``.drivecat-export``
marker with its id, and the id is journaled in ``<store>/journal/exports/``
(:mod:`catalog.journal`). ``out`` never lies inside the store, nor the store inside it.
Temporary folders of killed exports are removed by the next export into the same parent.

Errors: bad SQL, a missing catalog, an ``out`` in the way or an unreadable store file raise
:class:`CatalogError` (exit 2); no matching segment raises :class:`NothingToExport` (exit 1:
the job ran and found nothing to export).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

from drivecat import __version__
from drivecat.catalog import db, journal, locks, sandbox
from drivecat.catalog import store as store_fs
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.exporters import exporter_for, format_entry
from drivecat.catalog.tables import EXPORTS
from drivecat.naming import slug_problem
from drivecat.types import Role

#: ``(done, total, unit)``: called as work completes; ``unit`` is "messages" or "samples".
ExportProgress = Callable[[int, int, str], None]

LINEAGE = "lineage.json"
DEFAULT_SPLIT: tuple[tuple[str, float], ...] = (("train", 0.8), ("val", 0.2))

#: The segment columns carried into every sample (samples.parquet and the label JSON).
TAG_COLUMNS: tuple[str, ...] = (
    "device_version",
    "weather",
    "at_intersection",
    "pedestrian_count",
    "pedestrians_within_5m",
    "time_of_day",
    "speed",
    "distance_m",
    "lat",
    "lon",
    "h3_cell",
    "tags",
)


class NothingToExport(CatalogError):
    """The condition matched no segment: the job ran and found nothing (exit 1)."""

    exit_code = 1


class ImageFormat(StrEnum):
    PNG = "png"  # lossless: the decoded frame exactly
    JPG = "jpg"


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how. Topics left empty mean "every topic of that kind".

    - ``topics``: mcap only; the topics to carry (default: every topic of the drive).
    - ``reference_topic``: dataset only; one sample per message of this topic (default:
      each drive's role ``lidar`` topics).
    - ``camera_topics``: dataset only; the video topics aligned to each sample (default:
      each drive's role ``video`` topics).
    - ``max_dt_ms``: a sample whose nearest frame on any camera is further than this from
      the reference time is dropped and counted.
    - ``voxel_m``: voxel size for point-cloud downsampling, metres (None: every point).
    - ``split``: (name, fraction) buckets over a hash of ``drive_id``; fractions sum to 1.
    - ``with_latched``: mcap only; also carry the last message before each range of the
      slow topics (see :mod:`catalog.export_mcap`).
    - ``image_format``: dataset only; PNG (lossless, the decoded frame exactly) or JPEG.
    - ``image_workers``: dataset only; processes that decode and write the frames while
      this one writes point clouds and labels (0: none; None: one per spare core, up to
      4, when there are 200 frames or more). They are ``spawn`` processes: a script that
      calls :func:`export` needs the usual ``if __name__ == "__main__":`` guard.
    - ``force``: replace a non-empty ``out``.
    """

    where: str
    format: str  # a name in catalog.exporters.EXPORTERS: "mcap", "dataset", ...
    out: Path
    topics: tuple[str, ...] = ()
    reference_topic: str | None = None
    camera_topics: tuple[str, ...] = ()
    max_dt_ms: float = 50.0
    voxel_m: float | None = None
    split: tuple[tuple[str, float], ...] = DEFAULT_SPLIT
    with_latched: bool = False
    image_format: ImageFormat = ImageFormat.PNG
    image_workers: int | None = None
    force: bool = False

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(Path(self.out).absolute())
        d["split"] = dict(self.split)
        return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in d.items()}


class SegmentRow(NamedTuple):
    """One matching segment: its window of log time and its tag values (by TAG_COLUMNS)."""

    drive_id: str
    seg_idx: int
    start_ns: int
    end_ns: int
    tags: dict[str, Any]


class TimeRange(NamedTuple):
    """Contiguous matching segments of one drive: log_time in [start_ns, end_ns)."""

    drive_id: str
    start_ns: int
    end_ns: int
    segments: tuple[SegmentRow, ...]


@dataclass
class Written:
    """What a format writer reports back: counts for lineage, and the store files it read."""

    sample_count: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)  # e.g. images, decoded_frames
    sources: set[str] = field(default_factory=set)  # store-relative paths
    outputs: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)  # catalog.attachments


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    format: str
    out: str
    sample_count: int
    dropped: dict[str, int]
    stats: dict[str, int]
    ranges: int
    source_files: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------- selection


def segments_sql(where: str) -> str:
    """The SQL that selects the segments of ``where``, as it is run and recorded."""
    cols = ", ".join(TAG_COLUMNS)
    return (
        f"SELECT drive_id, seg_idx, start_ns, end_ns, {cols} FROM segments "
        f"WHERE ({where}) ORDER BY drive_id, start_ns"
    )


def matching_segments(con: duckdb.DuckDBPyConnection, where: str) -> list[SegmentRow]:
    """The segments ``where`` selects, by drive then time. CatalogError for bad SQL or
    for more than one expression. ``con`` must be locked down (``catalog.sandbox``)."""
    sandbox.one_expression(where)
    try:
        table = con.sql(segments_sql(where)).to_arrow_table()
    except duckdb.Error as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CatalogError(f"--where {where!r}: {message}") from None
    rows = []
    for r in table.to_pylist():
        if r["tags"] is not None:
            r["tags"] = dict(r["tags"])  # Arrow hands a MAP over as (key, value) pairs
        tags = {c: r[c] for c in TAG_COLUMNS}
        rows.append(SegmentRow(r["drive_id"], r["seg_idx"], r["start_ns"], r["end_ns"], tags))
    return rows


def merge_ranges(segments: Iterable[SegmentRow]) -> list[TimeRange]:
    """Merge segments (sorted by drive, then start) that touch into contiguous ranges."""
    ranges: list[TimeRange] = []
    for seg in segments:
        last = ranges[-1] if ranges else None
        if last is not None and last.drive_id == seg.drive_id and seg.start_ns <= last.end_ns:
            ranges[-1] = TimeRange(
                last.drive_id, last.start_ns, max(last.end_ns, seg.end_ns), (*last.segments, seg)
            )
        else:
            ranges.append(TimeRange(seg.drive_id, seg.start_ns, seg.end_ns, (seg,)))
    return ranges


# ---------------------------------------------------------------------------- splits


def parse_split(text: str) -> tuple[tuple[str, float], ...]:
    """``"train=0.8,val=0.2"`` -> ``(("train", 0.8), ("val", 0.2))``.

    CatalogError unless every part is ``name=fraction`` with a distinct name, fractions in
    [0, 1], summing to 1 (within 1e-6).
    """
    parts: list[tuple[str, float]] = []
    for item in text.split(","):
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            fraction = float(value)
        except ValueError:
            fraction = -1.0
        if not sep or not name or not 0.0 <= fraction <= 1.0:
            raise CatalogError(f"--split {text!r}: {item!r} is not name=fraction (0..1)")
        if name in dict(parts):
            raise CatalogError(f"--split {text!r}: {name!r} appears twice")
        parts.append((name, fraction))
    total = sum(f for _, f in parts)
    if abs(total - 1.0) > 1e-6:
        raise CatalogError(f"--split {text!r}: the fractions sum to {total:g}, not 1")
    return tuple(parts)


def drive_fraction(drive_id: str) -> float:
    """A stable number in [0, 1) for a drive: the first 8 bytes of sha256(drive_id)."""
    digest = hashlib.sha256(drive_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(drive_id: str, split: Sequence[tuple[str, float]]) -> str:
    """The bucket of ``drive_id``: buckets cover [0, 1) in the order given. Every sample of
    a drive gets the same one, so no drive leaks across train and val."""
    x = drive_fraction(drive_id)
    edge = 0.0
    for name, fraction in split:
        edge += fraction
        if x < edge:
            return name
    return split[-1][0]  # fractions that sum to 1 - 1e-7 leave a sliver: the last bucket


# ---------------------------------------------------------------------------- the run


def export(
    store: Path, options: ExportOptions, progress: ExportProgress | None = None
) -> ExportResult:
    """Export what ``options.where`` selects into ``options.out``; record it in ``exports``.

    See the module docstring for the steps, the atomicity and the errors. Before any
    work: ``out`` must lie apart from the store, the store must be writable (the export
    is recorded there), and with ``force`` a non-empty ``out`` must be an export this
    store recorded. Temporary folders of killed exports beside ``out`` are removed.
    """
    started = time.perf_counter()
    store = Path(store).absolute()
    out = Path(options.out).absolute()
    format_entry(options.format)  # an unknown format fails before anything is opened
    _check_apart(store, out)
    _check_out(out, options.force)
    _check_store_writable(store)
    export_id = uuid.uuid4().hex
    created_at = datetime.now(tz=UTC)
    con = db.connect(store, read_only=True)
    tmp = out.parent / f".{out.name}{TMP_INFIX}{export_id}"
    try:
        if options.force and out.is_dir() and any(out.iterdir()):
            _check_replaceable(con, store, out)
        sweep_temporary(out.parent)
        sandbox.lock_down(con)
        segments = matching_segments(con, options.where)
        if not segments:
            raise NothingToExport(f"--where {options.where!r}: no segment matches; nothing to do")
        ranges = merge_ranges(segments)
        for r in ranges:  # drive ids name output files: a tampered catalog must not steer them
            store_fs.check_drive_id(r.drive_id)
        _make_tmp(tmp)
        written = exporter_for(options.format)(con, store, ranges, options, tmp, progress)
        lineage = build_lineage(con, store, options, ranges, written, export_id, created_at)
        (tmp / LINEAGE).write_text(json.dumps(lineage, indent=2, default=str) + "\n")
        marker = {"export_id": export_id, "store": str(store)}
        (tmp / MARKER).write_text(json.dumps(marker) + "\n")
        con.close()
        _install(store, tmp, out, options, written, lineage, export_id, created_at)
    except OSError as err:  # a full disk, a read-only --out: one line naming the path
        shutil.rmtree(tmp, ignore_errors=True)
        where = err.filename or tmp
        reason = err.strerror or str(err).strip().splitlines()[0]
        raise CatalogError(f"{where}: cannot write the export: {reason}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        locks.release_folder(tmp)
        con.close()
    return ExportResult(
        export_id=export_id,
        format=options.format,
        out=str(out),
        sample_count=written.sample_count,
        dropped=dict(written.dropped),
        stats=dict(written.stats),
        ranges=len(ranges),
        source_files=len(written.sources),
        seconds=round(time.perf_counter() - started, 3),
    )


#: An export's temporary folder is ``.<out name>.tmp-<export id>`` beside ``out``.
TMP_INFIX = ".tmp-"
_TMP_NAME = re.compile(r"^\..+\.tmp-[0-9a-f]{32}$")
#: Written into every export: which export (and store) made this folder.
MARKER = ".drivecat-export"


def _make_tmp(tmp: Path) -> None:
    tmp.mkdir(parents=True)
    locks.hold_folder(tmp)  # a concurrent export's sweep leaves it alone


def sweep_temporary(parent: Path) -> list[Path]:
    """Remove the temporary folders of killed exports in ``parent``; return them.

    Only folders named exactly ``.<name>.tmp-<32 hex>``, never a symbolic link, and only
    when no running export holds their lock (:func:`locks.folder_abandoned`).
    """
    removed: list[Path] = []
    try:
        entries = sorted(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not _TMP_NAME.match(entry.name) or entry.is_symlink() or not entry.is_dir():
            continue
        if locks.folder_abandoned(entry):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _check_apart(store: Path, out: Path) -> None:
    """``out`` inside the store (or the store inside ``out``) would let ``--force`` or a
    rename destroy the store: refused."""
    real_store, real_out = store.resolve(), out.resolve()
    if real_out.is_relative_to(real_store) or real_store.is_relative_to(real_out):
        raise CatalogError(f"{out}: --out must lie outside the store {store} (and not hold it)")


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CatalogError(f"{out}: --out exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise CatalogError(f"{out}: --out exists and is not empty (use --force to replace it)")


def _check_store_writable(store: Path) -> None:
    """The export is recorded in the store (journal and catalog): a store that cannot be
    written fails now, not after the whole export was written."""
    folder = journal.journal_dir(store, EXPORTS)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
        if db.catalog_path(store).exists():
            open(db.catalog_path(store), "r+b").close()
    except OSError as err:
        where = err.filename or folder
        raise CatalogError(
            f"{where}: cannot record an export in this store: {err.strerror}"
        ) from None


def previous_export_id(out: Path) -> str | None:
    """The export id a folder says it holds: its marker, or (exports written before the
    marker existed) its lineage.json. None for anything else."""
    for name, key in ((MARKER, "export_id"), (LINEAGE, "export_id")):
        try:
            found = json.loads((out / name).read_text()).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if journal.valid_id(found):
            return str(found)
    return None


def _check_replaceable(con: duckdb.DuckDBPyConnection, store: Path, out: Path) -> None:
    """``--force`` replaces only an export of this store that was written to ``out``: its
    marker's id must be recorded (journal or ``exports``) with this very ``out``."""
    export_id = previous_export_id(out)
    recorded = journal.exported_to(store, export_id) if export_id else None
    if export_id and recorded is None:
        row = con.execute("SELECT out FROM exports WHERE export_id = ?", [export_id]).fetchone()
        recorded = None if row is None else str(row[0])
    if recorded is None or Path(recorded).absolute() != out:
        raise CatalogError(
            f"{out}: --force replaces only an export this store recorded there, and this "
            "folder is not one; remove it yourself or choose another --out"
        )


def _install(
    store: Path,
    tmp: Path,
    out: Path,
    options: ExportOptions,
    written: Written,
    lineage: dict[str, Any],
    export_id: str,
    created_at: datetime,
) -> None:
    """Journal the export, insert its row and rename the folder into place, under the
    store's writer lock and in one transaction."""
    values = {
        "export_id": export_id,
        "created_at": created_at,
        "query": options.where,
        "format": options.format,
        "out": str(out),
        "sample_count": written.sample_count,
        "lineage": json.dumps(lineage, default=str),
    }
    old: Path | None = None
    locks.release_folder(tmp)
    with locks.store_lock(store, f"export {export_id}"):
        journal.record_export(store, values)
        con = db.connect(store)
        try:
            with db.transaction(con):
                con.execute(
                    "INSERT INTO exports BY NAME SELECT ? AS export_id, ? AS created_at, "
                    "? AS query, ? AS format, ? AS out, ? AS sample_count, ? AS lineage",
                    list(values.values()),
                )
                if out.is_dir() and any(out.iterdir()):  # checked at the start: force is on
                    old = out.parent / f".{out.name}.old-{export_id}"
                    os.replace(out, old)
                try:
                    os.replace(tmp, out)
                except OSError as err:
                    if old is not None:
                        os.replace(old, out)
                        old = None
                    raise CatalogError(f"{out}: cannot move the export into place: {err}") from None
        except duckdb.Error as err:
            journal.forget_export(store, export_id)
            raise CatalogError(
                f"{db.catalog_path(store)}: cannot record the export: {err}"
            ) from None
        except BaseException:
            journal.forget_export(store, export_id)
            raise
        finally:
            con.close()
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------- lineage


def build_lineage(
    con: duckdb.DuckDBPyConnection,
    store: Path,
    options: ExportOptions,
    ranges: Sequence[TimeRange],
    written: Written,
    export_id: str,
    created_at: datetime,
) -> dict[str, Any]:
    """The lineage document: enough to say exactly what went into the export.

    ``sources`` lists every store file read (path relative to the store, its topic and its
    sha256 as the ``files`` table records it); ``drives`` lists each source drive with its
    fingerprint and its manifest's inputs (path and sha256 of every original recording);
    ``attachments`` every drive attachment the export carries (its store path, sha256 and
    where it was written in the export).
    """
    return {
        "export_id": export_id,
        "created_at": created_at.isoformat(),
        "tool": {"name": "drivecat", "version": __version__},
        "query": {"where": options.where, "sql": segments_sql(options.where)},
        "store": str(store),
        "catalog": str(db.catalog_path(store)),
        "format": options.format,
        "options": options.as_dict(),
        "counts": {
            format_entry(options.format).unit: written.sample_count,
            "dropped": dict(written.dropped),
            **written.stats,
            "ranges": len(ranges),
            "segments": sum(len(r.segments) for r in ranges),
            "source_files": len(written.sources),
        },
        "ranges": [
            {
                "drive_id": r.drive_id,
                "start_ns": r.start_ns,
                "end_ns": r.end_ns,
                "seg_idx": [s.seg_idx for s in r.segments],
            }
            for r in ranges
        ],
        "sources": _source_files(con, store, written.sources),
        "drives": [_drive_lineage(con, store, d) for d in sorted({r.drive_id for r in ranges})],
        "outputs": written.outputs,
        "attachments": written.attachments,
    }


def _source_files(
    con: duckdb.DuckDBPyConnection, store: Path, paths: set[str]
) -> list[dict[str, Any]]:
    if not paths:
        return []
    found = con.execute(
        "SELECT path, drive_id, topic, sha256, bytes FROM files WHERE list_contains(?, path) "
        "ORDER BY path",
        [sorted(paths)],
    ).fetchall()
    rows = [
        {"path": p, "drive_id": d, "topic": t, "sha256": s, "bytes": b} for p, d, t, s, b in found
    ]
    missing = paths - {r["path"] for r in rows}
    if missing:
        raise CatalogError(f"{store / min(missing)}: read for the export but not in `files`")
    return rows


def _drive_lineage(con: duckdb.DuckDBPyConnection, store: Path, drive_id: str) -> dict[str, Any]:
    found = con.execute(
        "SELECT fingerprint, device_id, device_version, status FROM drives WHERE drive_id = ?",
        [drive_id],
    ).fetchone()
    fingerprint, device_id, device_version, status = found or (None, None, None, None)
    manifest = store_fs.read_manifest(store_fs.drive_dir(store, drive_id))
    return {
        "drive_id": drive_id,
        "fingerprint": fingerprint,
        "device_id": device_id,
        "device_version": device_version,
        "status": status,
        "manifest": f"drives/{drive_id}/{store_fs.MANIFEST}",
        "inputs": manifest.get("inputs", []),
    }


# ---------------------------------------------------------------------------- shared helpers


def drive_topics(
    con: duckdb.DuckDBPyConnection, drive_id: str, role: Role | None = None
) -> list[tuple[str, str | None, str | None, float | None, int]]:
    """(topic, role, slug, rate_hz, message_count) of a drive's topics, optionally of a role."""
    sql = "SELECT topic, role, slug, rate_hz, message_count FROM topics WHERE drive_id = ?"
    params: list[Any] = [drive_id]
    if role is not None:
        sql += " AND role = ?"
        params.append(str(role))
    found = [tuple(r) for r in con.execute(sql + " ORDER BY topic", params).fetchall()]
    for topic, _, slug, _, _ in found:
        # slugs name folders of the export: a tampered catalog must not steer them out
        if slug is not None and slug_problem(slug):
            raise CatalogError(f"topic {topic!r} of drive {drive_id}: bad folder name {slug!r}")
    return found  # type: ignore[return-value]
