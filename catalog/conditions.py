"""The conditions a segment can be counted by: each tag as a SQL label and its domain.

Coverage and drift count segments by conditions. A condition is a :class:`Dimension`: a SQL
expression over the ``segments`` columns that gives a text label, and the labels that always
exist (its domain), so that a combination nobody drove still shows, with zero hours. That is
what a gap is. Numbers are put in bins here (pedestrian counts, speeds) so that every side of
every comparison uses the same edges.

Labels the domain does not list but the catalog holds (a device version, a plugin tag's
value, a weather a custom rule produced) are added after the domain, in text order. A NULL
tag is ``unknown``.

Dimension names: the keys of :data:`DIMENSIONS`, ``tag:<name>`` for a plugin tagger's value
in ``segments.tags``, and ``h3`` (the cell at the chosen resolution, see
:func:`h3_dimension`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from drivecat.catalog.errors import CatalogError
from drivecat.catalog.tables import sql_literal

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Dimension:
    """One condition. ``expr`` is SQL over ``segments`` giving a VARCHAR label (never NULL);
    ``domain`` lists the labels shown even when no segment has them, in display order."""

    name: str
    expr: str
    domain: tuple[str, ...]
    numeric: bool = False  # labels are bins of a number, in ascending order

    @property
    def column(self) -> str:
        """The dimension as a SQL identifier (``tag:cyclists`` -> ``tag_cyclists``)."""
        return re.sub(r"\W", "_", self.name)


def _flag(column: str) -> str:
    return f"CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' ELSE '{UNKNOWN}' END"


def _bins(column: str, edges: Sequence[float], labels: Sequence[str]) -> str:
    """``column`` as the label of the bin it falls in: labels[i] for edges[i-1] <= v < edges[i]."""
    whens = " ".join(
        f"WHEN {column} < {edge!r} THEN {sql_literal(label)}"
        for edge, label in zip(edges, labels, strict=False)
    )
    return f"CASE WHEN {column} IS NULL THEN '{UNKNOWN}' {whens} ELSE {sql_literal(labels[-1])} END"


PEDESTRIAN_BINS = ("0", "1-2", "3-5", "6-9", "10+")
SPEED_BINS = ("<0.5", "0.5-5", "5-10", "10-15", "15-25", "25+")  # m/s

DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension(
            "weather",
            f"coalesce(weather, '{UNKNOWN}')",
            ("clear", "rain", "snow", "fog", UNKNOWN),
        ),
        Dimension(
            "time_of_day", f"coalesce(time_of_day, '{UNKNOWN}')", ("day", "dawn_dusk", "night")
        ),
        Dimension("at_intersection", _flag("at_intersection"), ("true", "false")),
        Dimension(
            "pedestrians",
            _bins("pedestrian_count", (1, 3, 6, 10), PEDESTRIAN_BINS),
            PEDESTRIAN_BINS,
            numeric=True,
        ),
        Dimension("pedestrians_within_5m", _flag("pedestrians_within_5m"), ("true", "false")),
        Dimension(
            "speed", _bins("speed", (0.5, 5, 10, 15, 25), SPEED_BINS), SPEED_BINS, numeric=True
        ),
        Dimension("device_version", f"coalesce(device_version, '{UNKNOWN}')", ()),
    )
}

#: The tags drift compares by default: every tag the ingest pass computes.
TAGS: tuple[str, ...] = (
    "weather",
    "time_of_day",
    "at_intersection",
    "pedestrians",
    "pedestrians_within_5m",
    "speed",
)

_TAG_NAME = re.compile(r"tag:([A-Za-z_][A-Za-z0-9_.-]*)")


def h3_dimension(resolution: int) -> Dimension:
    """The segment's H3 cell (its midpoint's) at ``resolution`` (0..9), as H3's hex string.

    The expression reads ``h3_parent``, which :func:`source_sql` joins in from the distinct
    cells, so the Python UDF runs once per cell rather than once per segment.
    """
    if not 0 <= resolution <= 9:
        raise CatalogError(f"--h3-resolution {resolution}: must be 0..9 (segments are at 9)")
    return Dimension("h3", f"coalesce(h3_parent, '{UNKNOWN}')", (), numeric=False)


def parse(names: Sequence[str], h3_resolution: int | None = None) -> list[Dimension]:
    """The dimensions named, in order; ``h3`` needs ``h3_resolution``. CatalogError for an
    unknown or repeated name."""
    out: list[Dimension] = []
    for raw in names:
        name = raw.strip()
        if name in DIMENSIONS:
            out.append(DIMENSIONS[name])
        elif name == "h3":
            if h3_resolution is None:
                raise CatalogError("--by h3 needs --h3-resolution")
            out.append(h3_dimension(h3_resolution))
        elif match := _TAG_NAME.fullmatch(name):
            key = sql_literal(match.group(1))
            out.append(
                Dimension(name, f"coalesce(map_extract_value(tags, {key}), '{UNKNOWN}')", ())
            )
        else:
            known = ", ".join([*DIMENSIONS, "h3", "tag:<name>"])
            raise CatalogError(f"--by {name!r}: not a condition; known: {known}")
    if h3_resolution is not None and not any(d.name == "h3" for d in out):
        out.append(h3_dimension(h3_resolution))
    seen = [d.name for d in out]
    repeated = sorted({n for n in seen if seen.count(n) > 1})
    if repeated:
        raise CatalogError(f"--by {repeated[0]!r}: named twice")
    if not out:
        raise CatalogError("--by: name at least one condition")
    return out


def source_sql(where: str, h3_resolution: int | None) -> str:
    """The segments matching ``where`` (already checked to be one expression), with
    ``h3_parent`` when a resolution is given."""
    if h3_resolution is None:
        return f"(SELECT * FROM segments WHERE ({where}))"
    cells = (
        "(SELECT h3_cell AS _cell, "
        f"h3_cell_to_string(h3_cell_to_parent(h3_cell, {int(h3_resolution)})) AS h3_parent "
        "FROM (SELECT DISTINCT h3_cell FROM segments WHERE h3_cell IS NOT NULL))"
    )
    return (
        f"(SELECT s.*, c.h3_parent FROM segments s LEFT JOIN {cells} c ON s.h3_cell = c._cell "
        f"WHERE ({where}))"
    )


def values_sql(column: str, values: Sequence[str]) -> str:
    """A one-column VALUES list with each value's rank (``_o_<column>``)."""
    if not values:
        return f"(SELECT NULL::VARCHAR AS {column}, 0 AS _o_{column} WHERE false)"
    rows = ", ".join(f"({sql_literal(v)}, {i})" for i, v in enumerate(values))
    return f"(SELECT * FROM (VALUES {rows}) AS t({column}, _o_{column}))"
