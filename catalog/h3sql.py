"""H3 functions for SQL, registered on every catalog connection as DuckDB Python UDFs.

No DuckDB extension is needed: h3-py does the work. Cells are UBIGINT (H3's 64-bit index)
and resolutions INTEGER. Where the DuckDB community ``h3`` extension (``INSTALL h3 FROM
community; LOAD h3``) has a function of the same meaning, ours has its name and argument
order, so the same SQL runs in a plain DuckDB with that extension loaded: every function
below but ``h3_polygon_to_cells`` (GeoJSON; the extension's ``h3_polygon_wkt_to_cells``
takes WKT) and the aliases ``h3_cell_to_string`` / ``h3_string_to_cell``, the names drivecat
used first for the extension's ``h3_h3_to_string`` / ``h3_string_to_h3``.

Each function is vectorized over Arrow batches and NULL-safe: a NULL argument gives a NULL
result. Invalid input (a resolution outside 0..15, a number
that is not a cell, a string that is not a cell, bad GeoJSON) fails the query with a
message naming the function and the value.

=====================================================  ===========================
``h3_latlng_to_cell(lat DOUBLE, lng DOUBLE, res INT)``  UBIGINT, the cell holding the point
``h3_cell_to_parent(cell UBIGINT, res INT)``            UBIGINT, the ancestor at ``res``
``h3_grid_disk(cell UBIGINT, k INT)``                   UBIGINT[], cells within k steps, sorted
``h3_h3_to_string(cell UBIGINT)``                       VARCHAR, e.g. ``'89283082803ffff'``
``h3_string_to_h3(s VARCHAR)``                          UBIGINT
``h3_cell_to_string``, ``h3_string_to_cell``            aliases of the two above
``h3_polygon_to_cells(geojson VARCHAR, res INT)``       UBIGINT[], cells whose centers are
                                                         inside a GeoJSON Polygon or
                                                         MultiPolygon (a geometry or a
                                                         Feature), sorted
``h3_cell_to_lat(cell UBIGINT)``, ``h3_cell_to_lng``     DOUBLE, the cell center
``h3_cell_to_latlng(cell UBIGINT)``                     DOUBLE[], [lat, lng] of the center
``h3_get_resolution(cell UBIGINT)``                     INTEGER
``h3_is_valid_cell(cell UBIGINT)``                      BOOLEAN
=====================================================  ===========================

Example::

    SELECT * FROM segments WHERE h3_cell = h3_latlng_to_cell(37.7749, -122.4194, 9);
    SELECT count(*) FROM segments
    WHERE h3_cell_to_parent(h3_cell, 7) = h3_string_to_h3('87283082bffffff');
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import duckdb
import h3.api.basic_int as h3
import pyarrow as pa
from duckdb.func import PythonUDFType

_ARROW = {
    "UBIGINT": pa.uint64(),
    "UBIGINT[]": pa.list_(pa.uint64()),
    "VARCHAR": pa.string(),
    "DOUBLE": pa.float64(),
    "DOUBLE[]": pa.list_(pa.float64()),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
}


def _res(value: int) -> int:
    if not 0 <= value <= 15:
        raise ValueError(f"resolution {value} is not in 0..15")
    return value


def _cell(value: int) -> int:
    if not h3.is_valid_cell(value):
        raise ValueError(f"{value} is not a valid H3 cell")
    return value


# -- one row of each function -------------------------------------------------------------
def _latlng_to_cell(lat: float, lng: float, res: int) -> int:
    return h3.latlng_to_cell(lat, lng, _res(res))


def _cell_to_parent(cell: int, res: int) -> int:
    return h3.cell_to_parent(_cell(cell), _res(res))


def _grid_disk(cell: int, k: int) -> list[int]:
    if k < 0:
        raise ValueError(f"k = {k} is negative")
    return sorted(h3.grid_disk(_cell(cell), k))


def _cell_to_string(cell: int) -> str:
    return h3.int_to_str(_cell(cell))


def _string_to_cell(text: str) -> int:
    try:
        value = h3.str_to_int(text.strip())
    except ValueError:
        raise ValueError("not a hexadecimal H3 index") from None
    return _cell(value)


def _polygon_to_cells(text: str, res: int) -> list[int]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not JSON: {err}") from None
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = doc.get("geometry")
    if not isinstance(doc, dict) or doc.get("type") not in ("Polygon", "MultiPolygon"):
        raise ValueError("not a GeoJSON Polygon or MultiPolygon")
    return sorted(h3.h3shape_to_cells(h3.geo_to_h3shape(doc), _res(res)))


def _cell_to_lat(cell: int) -> float:
    return h3.cell_to_latlng(_cell(cell))[0]


def _cell_to_lng(cell: int) -> float:
    return h3.cell_to_latlng(_cell(cell))[1]


def _cell_to_latlng(cell: int) -> list[float]:
    return list(h3.cell_to_latlng(_cell(cell)))


def _get_resolution(cell: int) -> int:
    return h3.get_resolution(_cell(cell))


def _column(name: str, row: Callable[..., Any], out: str, *columns: pa.Array) -> pa.Array:
    """Apply ``row`` to each row of Arrow columns; NULL in, NULL out; an error names the
    SQL function and the row."""
    values: list[Any] = []
    for args in zip(*(c.to_pylist() for c in columns), strict=True):
        if any(a is None for a in args):
            values.append(None)
            continue
        try:
            values.append(row(*args))
        except (ValueError, TypeError) as err:  # h3's errors are ValueErrors
            shown = ", ".join(repr(a) for a in args)
            raise ValueError(f"{name}({shown}): {err or type(err).__name__}") from None
    return pa.array(values, type=_ARROW[out])


# -- the UDFs: Arrow columns in, an Arrow column out --------------------------------------
# Module-level on purpose: DuckDB keeps only a borrowed reference to each callable, and a
# function registered through one connection serves every connection to that database,
# so the callables must outlive any connection. DuckDB reads their arity, hence no *args.
def h3_latlng_to_cell(lat: pa.Array, lng: pa.Array, res: pa.Array) -> pa.Array:
    return _column("h3_latlng_to_cell", _latlng_to_cell, "UBIGINT", lat, lng, res)


def h3_cell_to_parent(cell: pa.Array, res: pa.Array) -> pa.Array:
    return _column("h3_cell_to_parent", _cell_to_parent, "UBIGINT", cell, res)


def h3_grid_disk(cell: pa.Array, k: pa.Array) -> pa.Array:
    return _column("h3_grid_disk", _grid_disk, "UBIGINT[]", cell, k)


def h3_h3_to_string(cell: pa.Array) -> pa.Array:
    return _column("h3_h3_to_string", _cell_to_string, "VARCHAR", cell)


def h3_string_to_h3(text: pa.Array) -> pa.Array:
    return _column("h3_string_to_h3", _string_to_cell, "UBIGINT", text)


def h3_cell_to_string(cell: pa.Array) -> pa.Array:
    return _column("h3_cell_to_string", _cell_to_string, "VARCHAR", cell)


def h3_string_to_cell(text: pa.Array) -> pa.Array:
    return _column("h3_string_to_cell", _string_to_cell, "UBIGINT", text)


def h3_polygon_to_cells(geojson: pa.Array, res: pa.Array) -> pa.Array:
    return _column("h3_polygon_to_cells", _polygon_to_cells, "UBIGINT[]", geojson, res)


def h3_cell_to_lat(cell: pa.Array) -> pa.Array:
    return _column("h3_cell_to_lat", _cell_to_lat, "DOUBLE", cell)


def h3_cell_to_lng(cell: pa.Array) -> pa.Array:
    return _column("h3_cell_to_lng", _cell_to_lng, "DOUBLE", cell)


def h3_cell_to_latlng(cell: pa.Array) -> pa.Array:
    return _column("h3_cell_to_latlng", _cell_to_latlng, "DOUBLE[]", cell)


def h3_get_resolution(cell: pa.Array) -> pa.Array:
    return _column("h3_get_resolution", _get_resolution, "INTEGER", cell)


def h3_is_valid_cell(cell: pa.Array) -> pa.Array:
    return _column("h3_is_valid_cell", h3.is_valid_cell, "BOOLEAN", cell)


@dataclass(frozen=True)
class Udf:
    name: str
    fn: Callable[..., Any]
    params: tuple[str, ...]
    returns: str


FUNCTIONS: tuple[Udf, ...] = (
    Udf("h3_latlng_to_cell", h3_latlng_to_cell, ("DOUBLE", "DOUBLE", "INTEGER"), "UBIGINT"),
    Udf("h3_cell_to_parent", h3_cell_to_parent, ("UBIGINT", "INTEGER"), "UBIGINT"),
    Udf("h3_grid_disk", h3_grid_disk, ("UBIGINT", "INTEGER"), "UBIGINT[]"),
    Udf("h3_h3_to_string", h3_h3_to_string, ("UBIGINT",), "VARCHAR"),
    Udf("h3_string_to_h3", h3_string_to_h3, ("VARCHAR",), "UBIGINT"),
    Udf("h3_cell_to_string", h3_cell_to_string, ("UBIGINT",), "VARCHAR"),
    Udf("h3_string_to_cell", h3_string_to_cell, ("VARCHAR",), "UBIGINT"),
    Udf("h3_polygon_to_cells", h3_polygon_to_cells, ("VARCHAR", "INTEGER"), "UBIGINT[]"),
    Udf("h3_cell_to_lat", h3_cell_to_lat, ("UBIGINT",), "DOUBLE"),
    Udf("h3_cell_to_lng", h3_cell_to_lng, ("UBIGINT",), "DOUBLE"),
    Udf("h3_cell_to_latlng", h3_cell_to_latlng, ("UBIGINT",), "DOUBLE[]"),
    Udf("h3_get_resolution", h3_get_resolution, ("UBIGINT",), "INTEGER"),
    Udf("h3_is_valid_cell", h3_is_valid_cell, ("UBIGINT",), "BOOLEAN"),
)


def register(con: duckdb.DuckDBPyConnection) -> None:
    """Register the H3 functions on ``con`` (read-only connections too).

    Idempotent: functions already there (registered through this or another connection to
    the same database, or by the H3 community extension under the same name) are left as
    they are.
    """
    # Creating and ignoring "already exists" is cheaper than listing duckdb_functions(),
    # which costs tens of ms on every connection.
    for udf in FUNCTIONS:
        with suppress(duckdb.NotImplementedException, duckdb.CatalogException):
            con.create_function(
                udf.name, udf.fn, list(udf.params), udf.returns, type=PythonUDFType.ARROW
            )
