"""Drift: does the current data still look like the baseline (say, what a model trained on)?

``drift(store, baseline="device_version = '4.2.1'", current="device_version = '5.0.0'")``
compares two sets of segments. A side is a SQL condition over ``segments`` columns, or
``export:<export_id>``: the segments an earlier export read, from its lineage in the
``exports`` table (``ranges``: drive_id and seg_idx), which is what trained the model.

It compares:
- per tag (``catalog.conditions.TAGS`` and every plugin tag either side holds): the share of
  segments with each label, numbers in the conditions' bins;
- per topic, over the drives that hold each side's segments (``drift_topics``): message
  rate, bytes per message, frame sizes and keyframe interval from ``frames``, and points per
  sweep of a sample of lidar sweeps found through ``sensor_index``;
- per topic, the schema versions (``schema_sha256``) each side recorded.

Each distribution gets PSI, the Jensen-Shannon distance and a chi-square p-value
(``catalog.distance``). It is ``flagged`` when PSI passes ``psi_threshold`` or JS passes
``js_threshold``, and the p-value is under ``alpha`` (a few segments prove nothing); a topic's
schemas are flagged when the current side recorded a version the baseline did not. The
tag and topic counting runs in DuckDB; only per-drive values reach Python.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from drivecat.catalog import conditions, distance, sandbox
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.reading import sandboxed

PSI_THRESHOLD = 0.25
JS_THRESHOLD = 0.2
ALPHA = 0.01
#: The segments columns the tag comparisons read (``conditions.DIMENSIONS`` and ``tags``).
TAG_COLUMNS = (
    "weather",
    "time_of_day",
    "at_intersection",
    "pedestrian_count",
    "pedestrians_within_5m",
    "speed",
    "tags",
)
SIDES = ("baseline", "current")


@dataclass(frozen=True)
class Compared:
    """One quantity on both sides: counts per bin, and the distances."""

    key: str  # "tag:weather", "topic:/lidar/top/points:points_per_sweep"
    kind: str  # "tag" or "topic"
    name: str  # the tag, or the topic
    metric: str  # "share" for tags; rate_hz, bytes_per_message, frame_bytes, ...
    role: str | None
    bins: tuple[str, ...]
    baseline: tuple[float, ...]
    current: tuple[float, ...]
    psi: float
    js: float
    p_value: float
    flagged: bool
    baseline_median: float | None = None
    current_median: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SchemaVersions:
    """Which schema versions (sha256 -> schema name) each side recorded on a topic."""

    topic: str
    baseline: dict[str, str]
    current: dict[str, str]

    @property
    def flagged(self) -> bool:
        return bool(self.baseline) and bool(set(self.current) - set(self.baseline))

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "flagged": self.flagged}


@dataclass(frozen=True)
class Drift:
    baseline: str
    current: str
    segments: dict[str, int]
    drives: dict[str, int]
    psi_threshold: float
    js_threshold: float
    alpha: float
    compared: tuple[Compared, ...]
    schemas: tuple[SchemaVersions, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def flagged(self) -> list[str]:
        """Keys of what passed a threshold: compared keys and ``schema:<topic>``."""
        keys = [c.key for c in self.compared if c.flagged]
        return keys + [f"schema:{s.topic}" for s in self.schemas if s.flagged]

    def as_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "current": self.current,
            "segments": self.segments,
            "drives": self.drives,
            "thresholds": {"psi": self.psi_threshold, "js": self.js_threshold, "alpha": self.alpha},
            "flagged": self.flagged,
            "compared": [c.as_dict() for c in self.compared],
            "schemas": [s.as_dict() for s in self.schemas],
            "notes": list(self.notes),
        }


def compare(
    key: str,
    kind: str,
    name: str,
    metric: str,
    bins: Sequence[str],
    baseline: Sequence[float],
    current: Sequence[float],
    thresholds: tuple[float, float, float],
    role: str | None = None,
    medians: tuple[float | None, float | None] = (None, None),
) -> Compared:
    """Both sides' counts over ``bins`` with their PSI, JS distance and chi-square p-value;
    flagged when PSI or JS passes its threshold (``thresholds``: PSI, JS, alpha) and the
    p-value is under alpha."""
    p = distance.psi(baseline, current)
    j = distance.js_distance(baseline, current)
    chance = distance.p_value(baseline, current)
    return Compared(
        key,
        kind,
        name,
        metric,
        role,
        tuple(bins),
        tuple(float(x) for x in baseline),
        tuple(float(x) for x in current),
        round(p, 6),
        round(j, 6),
        round(chance, 8),
        (p > thresholds[0] or j > thresholds[1]) and chance < thresholds[2],
        *medians,
    )


def drift(
    store: Path,
    baseline: str,
    current: str,
    psi_threshold: float = PSI_THRESHOLD,
    js_threshold: float = JS_THRESHOLD,
    alpha: float = ALPHA,
    sweeps: int = 2,
) -> Drift:
    """Compare the ``current`` segments with the ``baseline`` ones (see the module doc).

    ``alpha``: the chi-square p-value under which a distance counts. ``sweeps``: lidar
    sweeps read per drive and topic for points per sweep (0: none).
    CatalogError for a side that is not one SQL expression or a known export, or that
    matches no segment.
    """
    from drivecat.catalog import drift_topics

    for value, option in (
        (psi_threshold, "--threshold"),
        (js_threshold, "--js-threshold"),
        (alpha, "--alpha"),
    ):
        if not value > 0:
            raise CatalogError(f"{option} {value}: must be a number > 0")
    thresholds = (psi_threshold, js_threshold, alpha)
    with sandboxed(store) as con:
        rels = {
            "baseline": side_relation(con, baseline, "baseline"),
            "current": side_relation(con, current, "current"),
        }
        # Only the columns the comparisons read: copying the lists and maps of a million
        # segments would be most of the time.
        cols = "drive_id, " + ", ".join(TAG_COLUMNS)
        con.execute(
            "CREATE TEMP TABLE _sides AS "
            f"SELECT 'baseline' AS side, {cols} FROM {rels['baseline']} "
            f"UNION ALL SELECT 'current' AS side, {cols} FROM {rels['current']}"
        )
        counts = dict(con.execute("SELECT side, count(*) FROM _sides GROUP BY side").fetchall())
        for side, spec in (("baseline", baseline), ("current", current)):
            if not counts.get(side):
                raise CatalogError(f"the {side} ({spec}) matches no segment")
        con.execute("CREATE TEMP TABLE _side_drives AS SELECT DISTINCT side, drive_id FROM _sides")
        drives = dict(con.execute("SELECT side, count(*) FROM _side_drives GROUP BY 1").fetchall())
        compared = tag_drift(con, thresholds)
        topics, notes = drift_topics.topic_drift(con, store, thresholds, sweeps)
        schemas = schema_versions(con)
    return Drift(
        baseline,
        current,
        {s: int(counts[s]) for s in SIDES},
        {s: int(drives.get(s, 0)) for s in SIDES},
        psi_threshold,
        js_threshold,
        alpha,
        tuple(compared + topics),
        tuple(schemas),
        tuple(notes),
    )


def side_relation(con: duckdb.DuckDBPyConnection, spec: str, side: str) -> str:
    """A side as SQL that selects its segments: ``export:ID`` or one SQL expression."""
    if spec.startswith("export:"):
        keys = export_segments(con, spec.removeprefix("export:").strip())
        name = f"_{side}_keys"
        con.register(name, keys)
        return f"(SELECT s.* FROM segments s SEMI JOIN {name} k USING (drive_id, seg_idx))"
    sandbox.one_expression(spec, f"--{side}")
    return f"(SELECT * FROM segments WHERE ({spec}))"


def export_segments(con: duckdb.DuckDBPyConnection, export_id: str) -> pa.Table:
    """(drive_id, seg_idx) of every segment an export read, from its lineage."""
    rows = con.execute("SELECT lineage FROM exports WHERE export_id = ?", [export_id]).fetchall()
    if not rows:
        known = [r[0] for r in con.execute("SELECT export_id FROM exports").fetchall()]
        hint = f"; known: {', '.join(sorted(known)[:10])}" if known else "; there is none"
        raise CatalogError(f"export:{export_id}: no such export in the exports table{hint}")
    try:
        lineage = json.loads(rows[0][0] or "")
        ranges = lineage["ranges"]
        pairs = [(str(r["drive_id"]), int(i)) for r in ranges for i in r["seg_idx"]]
    except (ValueError, KeyError, TypeError):
        raise CatalogError(
            f"export:{export_id}: its lineage does not list the segments it read"
        ) from None
    return pa.table(
        {
            "drive_id": pa.array([p[0] for p in pairs], pa.string()),
            "seg_idx": pa.array([p[1] for p in pairs], pa.int32()),
        }
    )


def tag_drift(
    con: duckdb.DuckDBPyConnection, thresholds: tuple[float, float, float]
) -> list[Compared]:
    """Per tag, the share of each side's segments with each label."""
    plugin = con.execute(
        "SELECT DISTINCT unnest(map_keys(tags)) FROM _sides WHERE tags IS NOT NULL ORDER BY 1"
    ).fetchall()
    dims = conditions.parse([*conditions.TAGS, *(f"tag:{k}" for (k,) in plugin)])
    union = " UNION ALL ".join(
        f"SELECT side, {i} AS dim, {d.expr} AS label, count(*) AS n FROM _sides GROUP BY ALL"
        for i, d in enumerate(dims)
    )
    found: dict[int, dict[str, dict[str, int]]] = {}
    for side, dim, label, n in con.execute(union).fetchall():
        found.setdefault(dim, {}).setdefault(label, {})[side] = int(n)
    out = []
    for i, dim in enumerate(dims):
        seen = found.get(i, {})
        extra = sorted(label for label in seen if label not in dim.domain)
        labels = [*dim.domain, *extra]
        b = [seen.get(label, {}).get("baseline", 0) for label in labels]
        c = [seen.get(label, {}).get("current", 0) for label in labels]
        if len(labels) == 1 and set(labels) == {conditions.UNKNOWN}:
            continue  # a tag neither side has: nothing to compare
        out.append(compare(f"tag:{dim.name}", "tag", dim.name, "share", labels, b, c, thresholds))
    return out


def schema_versions(con: duckdb.DuckDBPyConnection) -> list[SchemaVersions]:
    rows = con.execute(
        "SELECT t.topic, d.side, t.schema_sha256, any_value(t.schema_name) "
        "FROM topics t JOIN _side_drives d USING (drive_id) "
        "WHERE t.schema_sha256 IS NOT NULL GROUP BY ALL ORDER BY 1, 2, 3"
    ).fetchall()
    found: dict[str, dict[str, dict[str, str]]] = {}
    for topic, side, sha, name in rows:
        found.setdefault(topic, {"baseline": {}, "current": {}})[side][sha] = name or ""
    return [SchemaVersions(t, v["baseline"], v["current"]) for t, v in sorted(found.items())]
