"""The catalog's tables: one definition that gives both the DuckDB DDL and the Arrow schema.

Table and column names are a public contract (DESIGN.md, "Catalog tables"): SQL written by
users and other tools depends on them. Add columns at the end; never rename or drop one.
These definitions are the current version of the catalog (``migrations.CURRENT_VERSION``):
a change here needs a step in ``migrations.py`` that brings older catalogs to it.

Times are stored twice: ``*_ns`` as BIGINT nanoseconds since the Unix epoch (exact, for
programs) and ``*_time`` as TIMESTAMPTZ (microseconds, for people).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from drivecat.catalog.errors import CatalogError

TIME = pa.timestamp("ns", tz="UTC")


Default = bool | int | float | str | None


@dataclass(frozen=True)
class Column:
    """One column. ``default`` is what a row that lacks the column gets: rows written by an
    older release, read back by ``catalog rebuild``, and ``INSERT ... BY NAME``."""

    name: str
    sql: str
    arrow: pa.DataType
    default: Default = None

    def ddl(self) -> str:
        if self.default is None:
            return f"{self.name} {self.sql}"
        return f"{self.name} {self.sql} DEFAULT {sql_literal(self.default)}"


def sql_literal(value: Default) -> str:
    """A Python scalar as a SQL literal (for DEFAULT clauses; never for user input)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    sort_key: tuple[str, ...] = ()

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow) for c in self.columns])

    def ddl(self) -> str:
        cols = ",\n  ".join(c.ddl() for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols}\n)"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def conform(self, rows: pa.Table) -> pa.Table:
        """Rows written by this or any earlier release, as this table's Arrow schema.

        A column the rows lack gets its default: the ``*_ns`` twin of a ``*_time`` column,
        else ``Column.default`` (NULL unless declared). A column this table does not have
        is an error: the rows were written by a newer drivecat, and dropping the column
        would lose what it knows. Raises CatalogError (without the file: the caller has it).
        """
        extra = [n for n in rows.column_names if n not in self.names]
        if extra:
            raise CatalogError(
                f"column {', '.join(extra)} is not in this drivecat's {self.name} table "
                "(written by a newer drivecat? upgrade drivecat)"
            )
        arrays = []
        for column in self.columns:
            twin = column.name.removesuffix("_time") + "_ns"
            if column.name in rows.column_names:
                source = rows.column(column.name)
            elif column.name.endswith("_time") and twin in rows.column_names:
                source = rows.column(twin)
            elif column.default is None and "NOT NULL" in column.sql:
                raise CatalogError(f"{self.name} rows lack column {column.name}")
            else:
                source = pa.array([column.default] * rows.num_rows, type=column.arrow)
            try:
                arrays.append(source.cast(column.arrow))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
                reason = str(err).strip().splitlines()[0]
                raise CatalogError(
                    f"column {column.name} cannot be read as {column.sql}: {reason}"
                ) from None
        return pa.Table.from_arrays(arrays, schema=self.arrow_schema)

    def empty(self) -> pa.Table:
        return self.arrow_schema.empty_table()

    def from_rows(self, rows: list[dict[str, object]]) -> pa.Table:
        """Rows as dicts keyed by column name; a missing key is NULL.

        Each ``<x>_time`` column with an ``<x>_ns`` twin is filled from it, exactly, so the
        two can never disagree.
        """
        table = pa.Table.from_pylist(rows, schema=self.arrow_schema)
        names = table.column_names
        for i, name in enumerate(names):
            twin = name.removesuffix("_time") + "_ns"
            if name.endswith("_time") and twin in names:
                table = table.set_column(i, name, table.column(twin).cast(TIME))
        return table


def _c(name: str, sql: str, arrow: pa.DataType, default: Default = None) -> Column:
    return Column(name, sql, arrow, default)


def _span(prefix: str = "") -> tuple[Column, ...]:
    return (
        _c(f"{prefix}start_ns", "BIGINT", pa.int64()),
        _c(f"{prefix}end_ns", "BIGINT", pa.int64()),
        _c(f"{prefix}start_time", "TIMESTAMPTZ", TIME),
        _c(f"{prefix}end_time", "TIMESTAMPTZ", TIME),
    )


DRIVES = Table(
    "drives",
    (
        _c("drive_id", "VARCHAR NOT NULL", pa.string()),
        _c("vehicle_id", "VARCHAR", pa.string()),
        _c("device_id", "VARCHAR", pa.string()),
        _c("device_version", "VARCHAR", pa.string()),
        _c("operator", "VARCHAR", pa.string()),
        *_span(),
        _c("duration_s", "DOUBLE", pa.float64()),
        _c("fingerprint", "VARCHAR", pa.string()),
        _c("status", "VARCHAR", pa.string()),
        _c("lost_messages", "BIGINT", pa.int64()),
        _c("lost_bytes", "BIGINT", pa.int64()),
        _c("message_count", "BIGINT", pa.int64()),
        _c("bytes", "BIGINT", pa.int64()),
        _c("source", "VARCHAR", pa.string()),
        _c("tool_version", "VARCHAR", pa.string()),
        _c("ingested_at", "TIMESTAMPTZ", TIME),
    ),
)

TOPICS = Table(
    "topics",
    (
        _c("drive_id", "VARCHAR NOT NULL", pa.string()),
        _c("topic", "VARCHAR NOT NULL", pa.string()),
        _c("role", "VARCHAR", pa.string()),
        _c("schema_name", "VARCHAR", pa.string()),
        _c("schema_sha256", "VARCHAR", pa.string()),
        _c("encoding", "VARCHAR", pa.string()),
        _c("message_count", "BIGINT", pa.int64()),
        _c("bytes", "BIGINT", pa.int64()),
        _c("rate_hz", "DOUBLE", pa.float64()),
        *_span(),
        _c("slug", "VARCHAR", pa.string()),
    ),
    sort_key=("drive_id", "topic"),
)

FILES = Table(
    "files",
    (
        _c("drive_id", "VARCHAR NOT NULL", pa.string()),
        _c("topic", "VARCHAR NOT NULL", pa.string()),
        _c("path", "VARCHAR NOT NULL", pa.string()),
        *_span(),
        _c("message_count", "BIGINT", pa.int64()),
        _c("bytes", "BIGINT", pa.int64()),
        _c("sha256", "VARCHAR", pa.string()),
    ),
    sort_key=("drive_id", "topic", "start_ns"),
)

SCHEMAS = Table(
    "schemas",
    (
        _c("schema_sha256", "VARCHAR NOT NULL", pa.string()),
        _c("name", "VARCHAR", pa.string()),
        _c("encoding", "VARCHAR", pa.string()),
        _c("data", "BLOB", pa.binary()),
    ),
)

SEGMENTS = Table(
    "segments",
    (
        _c("drive_id", "VARCHAR NOT NULL", pa.string()),
        _c("seg_idx", "INTEGER NOT NULL", pa.int32()),
        *_span(),
        _c("device_version", "VARCHAR", pa.string()),
        _c("lat", "DOUBLE", pa.float64()),
        _c("lon", "DOUBLE", pa.float64()),
        _c("h3_cell", "UBIGINT", pa.uint64()),
        _c("h3_cells", "UBIGINT[]", pa.list_(pa.uint64())),
        _c("speed", "DOUBLE", pa.float64()),
        _c("distance_m", "DOUBLE", pa.float64()),
        _c("weather", "VARCHAR", pa.string()),
        _c("at_intersection", "BOOLEAN", pa.bool_()),
        _c("pedestrian_count", "INTEGER", pa.int32()),
        _c("pedestrians_within_5m", "BOOLEAN", pa.bool_()),
        _c("time_of_day", "VARCHAR", pa.string()),
        _c("tags", "MAP(VARCHAR, VARCHAR)", pa.map_(pa.string(), pa.string())),
    ),
    sort_key=("start_ns", "drive_id"),
)

FRAMES = Table(
    "frames",
    (
        _c("drive_id", "VARCHAR NOT NULL", pa.string()),
        _c("topic", "VARCHAR NOT NULL", pa.string()),
        _c("frame_idx", "BIGINT NOT NULL", pa.int64()),
        _c("log_time_ns", "BIGINT", pa.int64()),
        _c("capture_ns", "BIGINT", pa.int64()),
        _c("is_keyframe", "BOOLEAN", pa.bool_()),
        _c("keyframe_idx", "BIGINT", pa.int64()),
        _c("file", "VARCHAR", pa.string()),
        _c("message_idx", "BIGINT", pa.int64()),
        _c("bytes", "BIGINT", pa.int64()),
        _c("codec", "VARCHAR", pa.string()),
    ),
    sort_key=("drive_id", "topic", "frame_idx"),
)

SENSOR_INDEX = Table(
    "sensor_index",
    (
        _c("drive_id", "VARCHAR NOT NULL", pa.string()),
        _c("topic", "VARCHAR NOT NULL", pa.string()),
        _c("role", "VARCHAR", pa.string()),
        _c("log_time_ns", "BIGINT", pa.int64()),
        _c("capture_ns", "BIGINT", pa.int64()),
        _c("file", "VARCHAR", pa.string()),
        _c("message_idx", "BIGINT", pa.int64()),
    ),
    sort_key=("drive_id", "topic", "log_time_ns"),
)

QUALITY = Table(
    "quality",
    (
        _c("drive_id", "VARCHAR NOT NULL", pa.string()),
        _c("topic", "VARCHAR", pa.string()),
        _c("kind", "VARCHAR NOT NULL", pa.string()),
        *_span(),
        _c("count", "BIGINT", pa.int64()),
        _c("detail", "VARCHAR", pa.string()),
    ),
)

EXPORTS = Table(
    "exports",
    (
        _c("export_id", "VARCHAR NOT NULL", pa.string()),
        _c("created_at", "TIMESTAMPTZ", TIME),
        _c("query", "VARCHAR", pa.string()),
        _c("format", "VARCHAR", pa.string()),
        _c("out", "VARCHAR", pa.string()),
        _c("sample_count", "BIGINT", pa.int64()),
        _c("lineage", "VARCHAR", pa.string()),
    ),
)

# Catalog version 2. An attachment (calibration, a map tile...) or a metadata record of one
# of the drive's inputs. ``path`` is where its bytes are kept, relative to the store;
# a metadata record has no bytes of its own and keeps its key/value map in ``metadata``.
ATTACHMENTS = Table(
    "attachments",
    (
        _c("drive_id", "VARCHAR NOT NULL", pa.string()),
        _c("name", "VARCHAR NOT NULL", pa.string()),
        _c("kind", "VARCHAR NOT NULL", pa.string()),  # 'attachment' or 'metadata'
        _c("media_type", "VARCHAR", pa.string()),
        _c("log_time_ns", "BIGINT", pa.int64()),
        _c("create_time_ns", "BIGINT", pa.int64()),
        _c("log_time", "TIMESTAMPTZ", TIME),
        _c("create_time", "TIMESTAMPTZ", TIME),
        _c("bytes", "BIGINT", pa.int64()),
        _c("sha256", "VARCHAR", pa.string()),
        _c("path", "VARCHAR", pa.string()),
        _c("metadata", "MAP(VARCHAR, VARCHAR)", pa.map_(pa.string(), pa.string())),
    ),
    sort_key=("drive_id", "kind", "name", "log_time_ns"),
)

# Catalog version 2. One imported label of one exported dataset sample. ``box`` is
# [x, y, width, height] in pixels of ``frame`` (COCO's order); ``attributes`` is JSON text.
LABELS = Table(
    "labels",
    (
        _c("dataset", "VARCHAR NOT NULL", pa.string()),
        _c("sample_id", "VARCHAR NOT NULL", pa.string()),
        _c("frame", "VARCHAR", pa.string()),
        _c("labeler", "VARCHAR NOT NULL", pa.string()),
        _c("class", "VARCHAR", pa.string()),
        _c("box", "DOUBLE[4]", pa.list_(pa.float64(), 4)),
        _c("attributes", "VARCHAR", pa.string()),
        _c("imported_at", "TIMESTAMPTZ", TIME),
        # Version 3: where the labeled image came from (samples.parquet at import), so labels
        # join segments by (drive_id, seg_idx); tag names a tag's row (class is its value),
        # NULL for a box. box is [left, top, right, bottom] in pixels.
        _c("drive_id", "VARCHAR", pa.string()),
        _c("topic", "VARCHAR", pa.string()),
        _c("frame_idx", "BIGINT", pa.int64()),
        _c("time_ns", "BIGINT", pa.int64()),
        _c("seg_idx", "INTEGER", pa.int32()),
        _c("tag", "VARCHAR", pa.string()),
    ),
    sort_key=("dataset", "sample_id", "labeler"),
)

#: Tables that hold one drive's rows; a drive is committed and replaced as a unit.
DRIVE_TABLES: tuple[Table, ...] = (
    DRIVES,
    TOPICS,
    FILES,
    SEGMENTS,
    FRAMES,
    SENSOR_INDEX,
    QUALITY,
    ATTACHMENTS,
)
ALL_TABLES: tuple[Table, ...] = (*DRIVE_TABLES, SCHEMAS, EXPORTS, LABELS)
BY_NAME: dict[str, Table] = {t.name: t for t in ALL_TABLES}
