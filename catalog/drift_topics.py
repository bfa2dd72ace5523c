"""Per-topic drift: what each side's drives recorded on each topic, one value per drive.

Over the drives that hold each side's segments (the ``_side_drives`` temp table that
``catalog.drift`` builds), each statistic is one number per drive and topic, because the
drive is the unit that varies: frames or sweeps of one drive are alike, and counting each
would make a handful of drives look like thousands of independent samples.
- ``rate_hz`` and ``bytes_per_message`` (``topics``);
- ``frame_bytes``: the drive's median frame size, and ``keyframe_interval``: its median
  number of frames from one keyframe to the next (``frames``, aggregated in DuckDB);
- ``points_per_sweep``: the median over ``sweeps`` lidar sweeps of the drive, found through
  ``sensor_index`` and read from the store files (the catalog keeps no point counts), for
  at most :data:`MAX_SWEEP_DRIVES` drives per side. When the files cannot be read (a catalog
  without its store), a note says so.

Numbers are binned by ``distance.edges`` on the baseline's deciles.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np

from drivecat.catalog import distance
from drivecat.catalog.drift import Compared, compare
from drivecat.catalog.errors import CatalogError

_DECILES = [i / 10 for i in range(11)]


MAX_SWEEP_DRIVES = 64


def topic_drift(
    con: duckdb.DuckDBPyConnection,
    store: Path,
    thresholds: tuple[float, float, float],
    sweeps: int,
) -> tuple[list[Compared], list[str]]:
    """Every topic statistic both sides have, compared; and notes on what was not."""
    values: dict[tuple[str, str], dict[str, list[float]]] = {}
    roles: dict[str, str | None] = {}

    def add(side: str, topic: str, metric: str, value: float | None) -> None:
        if value is not None:
            values.setdefault((topic, metric), {}).setdefault(side, []).append(float(value))

    rows = con.execute(
        "SELECT d.side, t.topic, t.role, t.rate_hz, t.bytes / nullif(t.message_count, 0) "
        "FROM topics t JOIN _side_drives d USING (drive_id)"
    ).fetchall()
    for side, topic, role, rate, per_message in rows:
        roles.setdefault(topic, role)
        add(side, topic, "rate_hz", rate)
        add(side, topic, "bytes_per_message", per_message)
    frames = con.execute(
        "SELECT side, topic, median(bytes), median(gop) FILTER (WHERE is_keyframe) FROM ("
        "  SELECT d.side, f.drive_id, f.topic, f.bytes, f.is_keyframe,"
        "    f.frame_idx - lag(f.frame_idx) OVER (PARTITION BY d.side, f.drive_id, f.topic,"
        "      f.is_keyframe ORDER BY f.frame_idx) AS gop"
        "  FROM frames f JOIN _side_drives d USING (drive_id)"
        ") GROUP BY side, drive_id, topic"
    ).fetchall()
    for side, topic, frame_bytes, gop in frames:
        add(side, topic, "frame_bytes", frame_bytes)
        add(side, topic, "keyframe_interval", gop)
    notes: list[str] = []
    if sweeps > 0:
        for (side, topic), points in _points_per_sweep(con, store, sweeps, notes).items():
            for value in points:
                add(side, topic, "points_per_sweep", value)
    out = []
    for (topic, metric), sides in sorted(values.items()):
        if len(sides) == 2:
            b, c = sides["baseline"], sides["current"]
            out.append(numbers(topic, metric, roles.get(topic), b, c, thresholds))
    return out, notes


def numbers(
    topic: str,
    metric: str,
    role: str | None,
    baseline: Sequence[float],
    current: Sequence[float],
    thresholds: tuple[float, float, float],
) -> Compared:
    """Two samples of a number, binned on the baseline's deciles, compared."""
    b = np.asarray(baseline, dtype=float)
    c = np.asarray(current, dtype=float)
    edges = distance.edges(np.quantile(b, _DECILES).tolist())
    counts_b = np.bincount(np.searchsorted(edges, b, side="right"), minlength=len(edges) + 1)
    counts_c = np.bincount(np.searchsorted(edges, c, side="right"), minlength=len(edges) + 1)
    return compare(
        f"topic:{topic}:{metric}",
        "topic",
        topic,
        metric,
        distance.bin_labels(edges),
        counts_b.tolist(),
        counts_c.tolist(),
        thresholds,
        role,
        (float(np.median(b)), float(np.median(c))),
    )


def _points_per_sweep(
    con: duckdb.DuckDBPyConnection, store: Path, sweeps: int, notes: list[str]
) -> dict[tuple[str, str], list[float]]:
    """(side, topic) -> each sampled drive's median points per sweep.

    The sample is deterministic: per side and topic the drives with the smallest hash of
    their id, and in each the ``sweeps`` sweeps with the smallest hash of their time.
    """
    from drivecat.catalog.store_files import StoreFiles
    from drivecat.catalog.store_read import Decoders, points_of, read_at

    picked = con.execute(
        "SELECT side, drive_id, topic, file, log_time_ns, rank FROM ("
        "  SELECT d.side, s.drive_id, s.topic, s.file, s.log_time_ns,"
        "    row_number() OVER (PARTITION BY d.side, s.drive_id, s.topic, s.file, s.log_time_ns"
        "                       ORDER BY s.message_idx) - 1 AS rank,"
        "    row_number() OVER (PARTITION BY d.side, s.drive_id, s.topic"
        "                       ORDER BY hash(s.log_time_ns), s.message_idx) AS pick,"
        "    dense_rank() OVER (PARTITION BY d.side, s.topic ORDER BY hash(s.drive_id),"
        "                       s.drive_id) AS drive_pick"
        "  FROM sensor_index s JOIN _side_drives d USING (drive_id) WHERE s.role = 'lidar'"
        ") WHERE pick <= ? AND drive_pick <= ?",
        [sweeps, MAX_SWEEP_DRIVES],
    ).fetchall()
    if not picked:
        return {}
    # One read per distinct message, in file and time order; a drive on both sides counts
    # on both.
    owners: dict[tuple[str, str, int, int], list[tuple[str, str]]] = {}
    for side, drive_id, topic, file, ns, rank in picked:
        owners.setdefault((topic, file, int(ns), int(rank)), []).append((side, drive_id))
    wanted = sorted(owners, key=lambda w: (w[1], w[2], w[3]))
    per_drive: dict[tuple[str, str, str], list[int]] = {}
    decoders = Decoders()
    try:
        with StoreFiles(store) as files:
            for want, (schema, channel, data) in zip(wanted, read_at(files, wanted), strict=True):
                n = len(points_of(decoders, schema, channel, data, store / want[1]))
                for side, drive_id in owners[want]:
                    per_drive.setdefault((side, want[0], drive_id), []).append(n)
    except CatalogError as err:
        notes.append(f"points per sweep not compared: {err}")
        return {}
    out: dict[tuple[str, str], list[float]] = {}
    for (side, topic, _), counts in sorted(per_drive.items()):
        out.setdefault((side, topic), []).append(float(np.median(counts)))
    return out
