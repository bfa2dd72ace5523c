"""``catalog export --format dataset``: one training sample per reference message.

Layout of the dataset root (every path in it is relative to the root)::

    samples.parquet                                   one row per sample
    lineage.json                                      see catalog.export
    README.md                                         the dataset card (catalog.dataset_card)
    images/<drive_id>/<camera slug>/<frame_idx:06d>.png|jpg
    pointclouds/<drive_id>/<reference slug>/<reference_time_ns>.pcd
    labels/<drive_id>/<reference slug>/<reference_time_ns>.json
    attachments/<drive_id>/<nnnn>_<name>             the drive's attachments (calibration...)

Samples. The reference messages are the ``sensor_index`` rows of the reference topic (by
default each drive's role ``lidar`` topics) whose ``log_time`` lies in a matching range.
Their time, ``reference_time_ns``, is the capture time (the message's own stamp), else the
log time: the time base of ``frames`` and of the ``align`` macro. For every camera (by
default each drive's role ``video`` topics) ``align`` gives the nearest frame; a sample is
dropped when a camera has no frame (counted as ``no_frame``) or its ``|dt_ns|`` is over
``max_dt_ms`` (``dt_over_max``). ``sample_id`` is
``<drive_id>_<reference slug>_<reference_time_ns>``.

Frames are decoded exactly (``catalog.frames.iter_frames``: one decoder per camera, frames
in order, the decoder reused along each GOP) and written as PNG (lossless) or JPEG through
PyAV's encoders; a frame shared by two samples is written once. Point clouds (lidar
references only) are the message's points in its own frame (the ``pose`` of a
``foxglove.PointCloud`` is not applied), x, y, z and intensity when present, written as
binary ``.pcd`` through open3d, voxel-downsampled when asked. The label JSON holds the
sample's ids and times, its frames, ``segment`` (the segment's window and tag columns,
``tags`` the plugin map) and ``detections``: the message of the drive's role
``detections`` topic (``ObjectList``-shaped: protobuf or ROS) whose stamp is nearest the
reference time, with ``dt_ns`` and its objects; null when the drive has none.

samples.parquet columns: sample_id, drive_id, seg_idx, split, reference_topic,
reference_time_ns, pointcloud_path, label_path, frames (list of struct topic, frame_idx,
time_ns, dt_ns, path), then :data:`catalog.export.TAG_COLUMNS` with the types of
``segments``.

Attachments. Every attachment of every drive with a sample is copied from the store's
attachments folder under the name it has there (checked against the sha256 recorded at
ingest), and listed in ``lineage.json`` (``attachments``: name, media type, sha256, store
path and dataset path): calibration is what makes the point clouds and images usable
together.
"""

from __future__ import annotations

import bisect
import json
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from drivecat.catalog import frames as frames_mod
from drivecat.catalog.attachments import drive_records, lineage_entry
from drivecat.catalog.dataset import import_open3d
from drivecat.catalog.dataset_card import CARD, render_card
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.export import (
    TAG_COLUMNS,
    ExportOptions,
    ExportProgress,
    ImageFormat,
    NothingToExport,
    SegmentRow,
    TimeRange,
    Written,
    drive_topics,
    split_of,
)
from drivecat.catalog.store_files import StoreFiles
from drivecat.catalog.store_read import Decoders, detections_of, points_of, read_at, read_range
from drivecat.catalog.tables import SEGMENTS
from drivecat.naming import topic_slug
from drivecat.types import INDEXED_ROLES, Role

SAMPLES = "samples.parquet"
ATTACHMENTS = "attachments"
FRAME_TYPE = pa.struct(
    [
        ("topic", pa.string()),
        ("frame_idx", pa.int64()),
        ("time_ns", pa.int64()),
        ("dt_ns", pa.int64()),
        ("path", pa.string()),
    ]
)
SAMPLES_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("drive_id", pa.string()),
        ("seg_idx", pa.int32()),
        ("split", pa.string()),
        ("reference_topic", pa.string()),
        ("reference_time_ns", pa.int64()),
        ("pointcloud_path", pa.string()),
        ("label_path", pa.string()),
        ("frames", pa.list_(FRAME_TYPE)),
        *(SEGMENTS.arrow_schema.field(c) for c in TAG_COLUMNS),
    ]
)
_POOL_MIN_IMAGES = 200  # below this, starting a worker process costs more than it saves
_RUN = 128  # frames per worker job, at least
_DETECTIONS_MARGIN_NS = 1_000_000_000  # stamps lead log times; look this far past a range


@dataclass(frozen=True)
class _Topic:
    topic: str
    role: str  # a Role value, "" when the catalog has none
    slug: str


@dataclass(frozen=True)
class _Sample:
    sample_id: str
    drive_id: str
    segment: SegmentRow
    reference: _Topic
    time_ns: int
    log_time_ns: int
    stem: str  # file name of its point cloud and label: reference_time_ns, made unique
    file: str
    rank: int  # messages of its file with the same log_time before it
    frames: tuple[dict[str, Any], ...]


def write(
    con: duckdb.DuckDBPyConnection,
    store: Path,
    ranges: list[TimeRange],
    options: ExportOptions,
    folder: Path,
    progress: ExportProgress | None = None,
) -> Written:
    """Write the dataset of ``ranges`` into ``folder``; return the counts and files read.

    CatalogError when a named reference or camera topic is in none of the matching drives,
    or a store file is missing or disagrees with the catalog. NothingToExport when the
    ranges hold no reference message at all.
    """
    written = Written(
        dropped={"no_frame": 0, "dt_over_max": 0}, stats={"images": 0, "decoded_frames": 0}
    )
    by_drive: dict[str, list[TimeRange]] = {}
    for r in ranges:
        by_drive.setdefault(r.drive_id, []).append(r)
    aligned = _Alignment(con, list(by_drive))
    plans = [_plan(con, d, rs, options, aligned, written) for d, rs in by_drive.items()]
    _check_named_topics(plans, options)
    if not any(refs for _, refs, _ in plans):
        what = options.reference_topic or "role 'lidar'"
        raise NothingToExport(f"no reference topic ({what}) in the matching drives")
    total = sum(len(samples) for samples, _, _ in plans)
    images = sum(len({(f["topic"], f["frame_idx"]) for s in p[0] for f in s.frames}) for p in plans)
    if any(t.role == Role.LIDAR for _, refs, _ in plans for t in refs):
        import_open3d()  # a missing system library fails here, in one line, before any file
    decoders = Decoders()
    parquet = pq.ParquetWriter(folder / SAMPLES, SAMPLES_SCHEMA, compression="zstd")
    with parquet, _Workers(_worker_count(options.image_workers, images)) as workers:
        for samples, _, cameras in plans:
            rows = []  # one drive's rows at a time: memory does not grow with the export
            made = _write_drive(
                con, store, folder, samples, cameras, options, workers, decoders, written
            )
            for row in made:
                rows.append(row)
                if progress is not None:
                    progress(written.sample_count + len(rows), total, "samples")
            parquet.write_table(pa.Table.from_pylist(rows, schema=SAMPLES_SCHEMA))
            written.sample_count += len(rows)
    for drive_id, (samples, _, _) in zip(by_drive, plans, strict=True):
        if samples:  # a drive with no sample is not in the dataset
            _copy_attachments(store, folder, drive_id, written)
    _write_card(folder, store, options, written)
    return written


def _copy_attachments(store: Path, folder: Path, drive_id: str, written: Written) -> None:
    for a in drive_records(store, drive_id).attachments:
        relative = f"{ATTACHMENTS}/{drive_id}/{a.file_name}"
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(a.read(store))
        written.attachments.append(lineage_entry(a, relative))


def _write_card(folder: Path, store: Path, options: ExportOptions, written: Written) -> None:
    from datetime import UTC, datetime

    from drivecat import __version__

    card = render_card(
        pq.read_table(folder / SAMPLES),
        where=options.where,
        store=Path(store).absolute(),
        out=Path(options.out).absolute(),
        created_at=datetime.now(tz=UTC).isoformat(timespec="seconds"),
        tool_version=__version__,
        dropped=dict(written.dropped),
    )
    (folder / CARD).write_text(card)


def _check_named_topics(plans: list[Any], options: ExportOptions) -> None:
    refs = {t.topic: t.role for _, rs, _ in plans for t in rs}
    cams = {t.topic for _, _, cs in plans for t in cs if t.role}
    ref = options.reference_topic
    if ref and ref not in refs:
        raise CatalogError(f"--reference-topic {ref!r} is in none of the matching drives")
    if ref and refs[ref] not in INDEXED_ROLES:
        raise CatalogError(f"--reference-topic {ref!r} has role {refs[ref]!r}, not lidar or image")
    missing = [c for c in options.camera_topics if c not in cams]
    if missing:
        raise CatalogError(f"--camera-topics: {missing[0]!r} is in none of the matching drives")


# ---------------------------------------------------------------------------- planning


def _plan(
    con: duckdb.DuckDBPyConnection,
    drive_id: str,
    ranges: list[TimeRange],
    options: ExportOptions,
    aligned: _Alignment,
    written: Written,
) -> tuple[list[_Sample], list[_Topic], list[_Topic]]:
    """The drive's kept samples (in log-time order), its reference topics and its cameras."""
    topics = {
        t[0]: _Topic(t[0], t[1] or "", t[2] or topic_slug(t[0]))
        for t in drive_topics(con, drive_id)
    }
    if options.reference_topic:
        refs = [topics[options.reference_topic]] if options.reference_topic in topics else []
    else:
        refs = [t for t in topics.values() if t.role == Role.LIDAR]
    if options.camera_topics:
        # A named camera the drive lacks stays in the list: its samples have no frame.
        cameras = [topics.get(c, _Topic(c, "", topic_slug(c))) for c in options.camera_topics]
    else:
        cameras = [t for t in topics.values() if t.role == Role.VIDEO]
    segments = [s for r in ranges for s in r.segments]
    starts = [s.start_ns for s in segments]
    max_dt_ns = options.max_dt_ms * 1e6
    samples: list[_Sample] = []
    ids: set[str] = set()
    for ref in refs:
        for log_ns, time_ns, file, rank in _references(con, drive_id, ref.topic, ranges):
            frames, reason = [], None
            for cam in cameras:
                found = aligned.get(ref.topic, cam.topic).get((drive_id, time_ns))
                if found is None:
                    reason = reason or "no_frame"
                    continue
                frame_idx, frame_ns = found
                if abs(frame_ns - time_ns) > max_dt_ns:
                    reason = "dt_over_max" if reason is None else reason
                path = f"images/{drive_id}/{cam.slug}/{frame_idx:06d}.{options.image_format.value}"
                frames.append(
                    {"topic": cam.topic, "frame_idx": frame_idx, "time_ns": frame_ns,
                     "dt_ns": frame_ns - time_ns, "path": path}
                )  # fmt: skip
            if reason is not None:
                written.dropped[reason] += 1
                continue
            seg = segments[bisect.bisect_right(starts, log_ns) - 1]
            stem = _unique(ref.slug, str(time_ns), ids)
            samples.append(
                _Sample(f"{drive_id}_{ref.slug}_{stem}", drive_id, seg, ref, time_ns, log_ns,
                        stem, file, rank, tuple(frames))
            )  # fmt: skip
    samples.sort(key=lambda s: (s.log_time_ns, s.reference.topic))
    return samples, refs, cameras


def _references(
    con: duckdb.DuckDBPyConnection, drive_id: str, topic: str, ranges: list[TimeRange]
) -> list[tuple[int, int, str, int]]:
    """(log_time_ns, reference time, file, rank) of the topic's messages in the ranges;
    ``rank`` tells apart messages of one file that share a log_time (see export_mcap.read_at)."""
    out = []
    for r in ranges:
        out.extend(
            con.execute(
                "SELECT log_time_ns, coalesce(nullif(capture_ns, 0), log_time_ns), file, "
                "row_number() OVER (PARTITION BY file, log_time_ns ORDER BY message_idx) - 1 "
                "FROM sensor_index WHERE drive_id = ? AND topic = ? "
                "AND log_time_ns >= ? AND log_time_ns < ? ORDER BY log_time_ns, message_idx",
                [drive_id, topic, r.start_ns, r.end_ns],
            ).fetchall()
        )
    return out


class _Alignment:
    """The ``align`` macro's nearest frames, fetched once per (reference topic, camera)
    for all the export's drives: (drive_id, reference time) -> (frame_idx, frame time)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, drive_ids: list[str]) -> None:
        self.con, self.drive_ids = con, drive_ids
        self._cache: dict[tuple[str, str], dict[tuple[str, int], tuple[int, int]]] = {}

    def get(self, reference: str, camera: str) -> dict[tuple[str, int], tuple[int, int]]:
        found = self._cache.get((reference, camera))
        if found is None:
            rows = self.con.execute(
                "SELECT drive_id, reference_time_ns, frame_idx, frame_time_ns "
                "FROM align(?, ?, NULL) WHERE frame_idx IS NOT NULL AND list_contains(?, drive_id)",
                [reference, camera, self.drive_ids],
            ).fetchall()
            found = {(d, int(t)): (int(i), int(f)) for d, t, i, f in rows}
            self._cache[(reference, camera)] = found
        return found


def _unique(slug: str, stem: str, taken: set[str]) -> str:
    found, k = stem, 1
    while f"{slug}/{found}" in taken:  # two messages with one stamp on one topic
        found, k = f"{stem}-{k}", k + 1
    taken.add(f"{slug}/{found}")
    return found


# ---------------------------------------------------------------------------- writing


def _write_drive(
    con: duckdb.DuckDBPyConnection,
    store: Path,
    folder: Path,
    samples: list[_Sample],
    cameras: list[_Topic],
    options: ExportOptions,
    workers: _Workers,
    decoders: Decoders,
    written: Written,
) -> Iterator[dict[str, Any]]:
    """Write the frames, point clouds and labels of one drive's samples, in log-time order;
    yield each sample's samples.parquet row once its point cloud and label are written.
    The frames are all on disk when the generator is exhausted."""
    if not samples:
        return
    drive_id = samples[0].drive_id
    split = split_of(drive_id, options.split)
    fmt = options.image_format
    jobs = [
        j
        for c in cameras
        for j in _start_frames(con, store, folder, c, samples, fmt, workers, written)
    ]
    with StoreFiles(store) as files:
        detections = _detections(con, files, drive_id, samples, decoders, written)
        wanted = [(s.reference.topic, s.file, s.log_time_ns, s.rank) for s in samples]
        messages = read_at(files, wanted)
        for sample, (schema, channel, data) in zip(samples, messages, strict=True):
            written.sources.add(sample.file)
            pcd = None
            if sample.reference.role == Role.LIDAR:
                pcd = f"pointclouds/{drive_id}/{sample.reference.slug}/{sample.stem}.pcd"
                points = points_of(decoders, schema, channel, data, store / sample.file)
                _write_pcd(points, folder / pcd, options.voxel_m)
            label = f"labels/{drive_id}/{sample.reference.slug}/{sample.stem}.json"
            row = _row(sample, split, pcd, label)
            _write_label(folder / label, row, sample, detections)
            yield row
    for job in jobs:  # a worker's error is raised here
        _count_frames(written, job.get())


def _row(sample: _Sample, split: str, pcd: str | None, label: str) -> dict[str, Any]:
    return {
        "sample_id": sample.sample_id,
        "drive_id": sample.drive_id,
        "seg_idx": sample.segment.seg_idx,
        "split": split,
        "reference_topic": sample.reference.topic,
        "reference_time_ns": sample.time_ns,
        "pointcloud_path": pcd,
        "label_path": label,
        "frames": list(sample.frames),
        **sample.segment.tags,
    }


def _write_label(
    path: Path, row: dict[str, Any], sample: _Sample, detections: _Detections | None
) -> None:
    seg = sample.segment
    doc = {
        **{k: row[k] for k in ("sample_id", "drive_id", "seg_idx", "split", "reference_topic")},
        "reference_time_ns": sample.time_ns,
        "reference_log_time_ns": sample.log_time_ns,
        "frames": list(sample.frames),
        "segment": {"start_ns": seg.start_ns, "end_ns": seg.end_ns, **seg.tags},
        "detections": detections.nearest(sample.time_ns) if detections is not None else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")


def _write_pcd(points: np.ndarray, path: Path, voxel_m: float | None) -> None:
    """x, y, z (and intensity when the (n, 4) array has it) as binary PCD via open3d."""
    from drivecat.catalog.dataset import import_open3d

    o3d = import_open3d()

    cloud = o3d.t.geometry.PointCloud()
    tensor = o3d.core.Tensor.from_numpy
    cloud.point.positions = tensor(np.ascontiguousarray(points[:, :3], np.float32))
    if points.shape[1] > 3:
        cloud.point.intensity = tensor(np.ascontiguousarray(points[:, 3:4], np.float32))
    if voxel_m and len(points):
        cloud = cloud.voxel_down_sample(voxel_m)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not o3d.t.io.write_point_cloud(path, cloud):
        raise CatalogError(f"{path}: open3d could not write the point cloud")


def _start_frames(
    con: duckdb.DuckDBPyConnection,
    store: Path,
    folder: Path,
    camera: _Topic,
    samples: list[_Sample],
    fmt: ImageFormat,
    workers: _Workers,
    written: Written,
) -> list[Any]:
    """Decode and write one camera's frames that the samples use, in frame order.

    The frames go in runs cut between GOPs (:func:`_runs`), each decoded with one decoder:
    to the worker processes when there are some (their pending jobs are returned), else
    here and now (nothing is returned).
    """
    drive_id = samples[0].drive_id
    paths = {
        f["frame_idx"]: str(folder / f["path"])
        for s in samples
        for f in s.frames
        if f["topic"] == camera.topic
    }
    targets = sorted(paths)
    written.sources |= _frame_files(con, drive_id, camera.topic, targets)
    (folder / "images" / drive_id / camera.slug).mkdir(parents=True, exist_ok=True)
    jobs = []
    for run in _runs(con, drive_id, camera.topic, targets):
        job = (str(store), drive_id, camera.topic, run, [paths[i] for i in run], fmt.value)
        if workers.pool is None:
            _count_frames(written, _frames_job(*job))
        else:
            jobs.append(workers.pool.apply_async(_frames_job, job))
    return jobs


def _count_frames(written: Written, done: tuple[int, int]) -> None:
    written.stats["images"] += done[0]
    written.stats["decoded_frames"] += done[1]


def _frames_job(
    store: str, drive_id: str, topic: str, targets: list[int], paths: list[str], fmt: str
) -> tuple[int, int]:
    """In a worker: decode ``targets`` in order with one decoder, write each to its path.
    Returns (pictures written, access units decoded)."""
    images = fed = 0
    found = frames_mod.iter_frames(Path(store), drive_id, topic, targets)
    for result, path in zip(found, paths, strict=True):
        _encode_to(result.image, Path(path), ImageFormat(fmt))
        images, fed = images + 1, fed + result.decoded
    return images, fed


def _runs(
    con: duckdb.DuckDBPyConnection, drive_id: str, topic: str, targets: list[int]
) -> list[list[int]]:
    """``targets`` cut into runs of at least _RUN frames, only where a new GOP starts: a
    worker starting a run decodes nothing that another worker has already decoded."""
    keyframe = dict(
        con.execute(
            "SELECT frame_idx, coalesce(keyframe_idx, frame_idx) FROM frames WHERE drive_id = ? "
            "AND topic = ? AND list_contains(?, frame_idx)",
            [drive_id, topic, targets],
        ).fetchall()
    )
    runs: list[list[int]] = [[]]
    for t in targets:
        run = runs[-1]
        if len(run) >= _RUN and keyframe.get(t) != keyframe.get(run[-1]):
            runs.append(run := [])
        run.append(t)
    return [r for r in runs if r]


class _Workers:
    """Processes that decode and write frames while this one writes point clouds and labels.

    PyAV's encoders hold the GIL and pictures are most of an export's work, so a second
    process is what makes a second core useful. ``count`` 0: no processes. They are started
    with ``spawn`` (safe beside DuckDB's threads); leaving the context on an error
    terminates them, so nothing writes into the temporary folder after it is removed.
    """

    def __init__(self, count: int) -> None:
        self.pool = multiprocessing.get_context("spawn").Pool(count) if count > 0 else None

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if self.pool is None:
            return
        if kind is None:
            self.pool.close()
        else:
            self.pool.terminate()
        self.pool.join()


def _worker_count(asked: int | None, images: int) -> int:
    if asked is not None:
        return asked
    return max(1, min(4, (os.cpu_count() or 1) - 1)) if images >= _POOL_MIN_IMAGES else 0


def _encode_to(image: np.ndarray, path: Path, fmt: ImageFormat) -> None:
    """Write an RGB uint8 (h, w, 3) image as PNG (lossless) or JPEG (about quality 95)."""
    import av

    height, width = image.shape[:2]
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    if fmt is ImageFormat.PNG:
        ctx = av.CodecContext.create("png", "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "rgb24"  # type: ignore[attr-defined]
        ctx.options = {"compression_level": "2"}  # zlib level 2: a third of the time of 6
    else:
        ctx = av.CodecContext.create("mjpeg", "w")
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuvj444p"  # type: ignore[attr-defined]
        ctx.options = {"qmin": "1", "qmax": "2"}
        ctx.time_base = Fraction(1, 1)
        frame = frame.reformat(format="yuvj444p")
    packets = [*ctx.encode(frame), *ctx.encode(None)]  # type: ignore[attr-defined]
    try:
        path.write_bytes(b"".join(bytes(p) for p in packets))
    except OSError as err:
        raise CatalogError(f"{path}: cannot write the image: {err.strerror}") from None


def _frame_files(
    con: duckdb.DuckDBPyConnection, drive_id: str, topic: str, targets: list[int]
) -> set[str]:
    """The store files decoding ``targets`` reads: every frame from a target's keyframe."""
    if not targets:
        return set()
    found = con.execute(
        "SELECT DISTINCT f.file FROM frames f JOIN frames t ON f.drive_id = t.drive_id "
        "AND f.topic = t.topic AND f.frame_idx BETWEEN coalesce(t.keyframe_idx, t.frame_idx) "
        "AND t.frame_idx WHERE t.drive_id = ? AND t.topic = ? AND list_contains(?, t.frame_idx)",
        [drive_id, topic, targets],
    ).fetchall()
    return {str(f) for (f,) in found}


# ---------------------------------------------------------------------------- detections


class _Detections:
    """A drive's detection messages, by stamp; ``nearest(t)`` is the label's ``detections``."""

    def __init__(self, topic: str, items: list[tuple[int, list[dict[str, Any]]]]) -> None:
        items.sort(key=lambda item: item[0])
        self.topic = topic
        self.times = [t for t, _ in items]
        self.objects = [o for _, o in items]

    def nearest(self, t_ns: int) -> dict[str, Any] | None:
        if not self.times:
            return None
        i = bisect.bisect_left(self.times, t_ns)
        if i == len(self.times) or (i > 0 and t_ns - self.times[i - 1] <= self.times[i] - t_ns):
            i -= 1  # a tie goes to the earlier message
        return {
            "topic": self.topic,
            "time_ns": self.times[i],
            "dt_ns": self.times[i] - t_ns,
            "objects": self.objects[i],
        }


def _detections(
    con: duckdb.DuckDBPyConnection,
    files: StoreFiles,
    drive_id: str,
    samples: list[_Sample],
    decoders: Decoders,
    written: Written,
) -> _Detections | None:
    """The drive's first role ``detections`` topic near the samples, decoded; or None."""
    topics = drive_topics(con, drive_id, role=Role.DETECTIONS)
    if not topics:
        return None
    topic, margin = topics[0][0], _DETECTIONS_MARGIN_NS
    windows: list[list[int]] = []  # [lo, hi) of log time around the samples, merged
    for t in sorted(s.log_time_ns for s in samples):
        if windows and t - margin <= windows[-1][1]:
            windows[-1][1] = t + margin
        else:
            windows.append([t - margin, t + margin])
    items: list[tuple[int, list[dict[str, Any]]]] = []
    for lo, hi in windows:
        for path, schema, channel, message in read_range(con, files, drive_id, topic, lo, hi):
            written.sources.add(path)
            found = detections_of(decoders, schema, channel, message.data, files.store / path)
            if found is None:
                return None  # not an ObjectList-shaped schema: no detections to report
            items.append((found[0] or message.log_time, found[1]))
    return _Detections(topic, items)
