"""The H3 SQL functions equal h3-py, are NULL-safe, and work on every kind of connection."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import h3
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivecat.catalog import db, h3sql


def as_int(cell: str) -> int:
    return h3.str_to_int(cell)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    h3sql.register(connection)
    yield connection
    connection.close()


def test_the_readme_query(con: duckdb.DuckDBPyConnection) -> None:
    (got,) = con.execute("SELECT h3_latlng_to_cell(37.7749, -122.4194, 9)").fetchone() or ()
    assert got == as_int(h3.latlng_to_cell(37.7749, -122.4194, 9))
    assert con.execute("SELECT typeof(h3_latlng_to_cell(37.7749, -122.4194, 9))").fetchone() == (
        "UBIGINT",
    )


def test_random_inputs_equal_h3_py(con: duckdb.DuckDBPyConnection) -> None:
    rng = random.Random(20260615)
    n = 3000
    points = pa.table(
        {
            "lat": pa.array([rng.uniform(-90, 90) for _ in range(n)], pa.float64()),
            "lng": pa.array([rng.uniform(-180, 180) for _ in range(n)], pa.float64()),
            "res": pa.array([rng.randint(0, 15) for _ in range(n)], pa.int32()),
        }
    )
    con.register("p", points)
    rows = con.execute(
        """
        SELECT lat, lng, res, c, h3_cell_to_string(c), h3_cell_to_parent(c, res // 2),
               h3_cell_to_lat(c), h3_cell_to_lng(c), h3_get_resolution(c)
        FROM (SELECT *, h3_latlng_to_cell(lat, lng, res) AS c FROM p)
        """
    ).fetchall()
    assert len(rows) == n
    for lat, lng, res, c, text, parent, clat, clng, r in rows:
        expected = h3.latlng_to_cell(lat, lng, res)
        assert (c, text, r) == (as_int(expected), expected, res)
        assert parent == as_int(h3.cell_to_parent(expected, res // 2))
        assert (clat, clng) == h3.cell_to_latlng(expected)


def test_strings_parents_and_disks_equal_h3_py(con: duckdb.DuckDBPyConnection) -> None:
    rng = random.Random(5)
    cells = [
        h3.latlng_to_cell(rng.uniform(-80, 80), rng.uniform(-180, 180), rng.randint(1, 12))
        for _ in range(200)
    ]
    cells.append(h3.get_pentagons(5)[0])  # pentagons have 5 neighbours, not 6
    for text in cells:
        k = rng.randint(0, 3)
        got = con.execute(
            "SELECT h3_string_to_cell(?), h3_grid_disk(h3_string_to_cell(?), ?)", [text, text, k]
        ).fetchone()
        assert got == (as_int(text), sorted(as_int(c) for c in h3.grid_disk(text, k)))


def test_polygon_to_cells_takes_geojson_lng_lat(con: duckdb.DuckDBPyConnection) -> None:
    # A block of San Francisco; h3-py's LatLngPoly takes (lat, lng) pairs: the orders differ.
    ring = [(37.77, -122.42), (37.77, -122.41), (37.78, -122.41), (37.78, -122.42)]
    geojson = {"type": "Polygon", "coordinates": [[[lng, lat] for lat, lng in [*ring, ring[0]]]]}
    expected = sorted(as_int(c) for c in h3.polygon_to_cells(h3.LatLngPoly(ring), 10))
    (got,) = (
        con.execute("SELECT h3_polygon_to_cells(?, 10)", [json.dumps(geojson)]).fetchone() or ()
    )
    assert got == expected and len(expected) > 20
    feature = {"type": "Feature", "properties": {}, "geometry": geojson}
    (again,) = (
        con.execute("SELECT h3_polygon_to_cells(?, 10)", [json.dumps(feature)]).fetchone() or ()
    )
    assert again == expected


def test_nulls_give_nulls(con: duckdb.DuckDBPyConnection) -> None:
    row = con.execute(
        """
        SELECT h3_latlng_to_cell(NULL, 1.0, 9), h3_latlng_to_cell(1.0, 1.0, NULL),
               h3_cell_to_parent(NULL, 3), h3_grid_disk(NULL, 1), h3_cell_to_string(NULL),
               h3_string_to_cell(NULL), h3_polygon_to_cells(NULL, 9), h3_cell_to_lat(NULL),
               h3_cell_to_lng(NULL), h3_get_resolution(NULL), h3_is_valid_cell(NULL)
        """
    ).fetchone()
    assert row == (None,) * 11
    mixed = con.execute(
        "SELECT h3_latlng_to_cell(lat, 0.0, 9) FROM (VALUES (1.0), (NULL), (2.0)) t(lat)"
    ).fetchall()
    expected = [
        as_int(h3.latlng_to_cell(1.0, 0.0, 9)),
        None,
        as_int(h3.latlng_to_cell(2.0, 0.0, 9)),
    ]
    assert [r[0] for r in mixed] == expected


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT h3_latlng_to_cell(1, 1, 16)", "h3_latlng_to_cell.*resolution 16"),
        ("SELECT h3_cell_to_parent(12345::UBIGINT, 3)", "h3_cell_to_parent.*not a valid H3 cell"),
        ("SELECT h3_string_to_cell('not a cell')", "h3_string_to_cell.*not a hexadecimal"),
        ('SELECT h3_polygon_to_cells(\'{"type": "Point"}\', 9)', "not a GeoJSON Polygon"),
        ("SELECT h3_grid_disk(h3_latlng_to_cell(1, 1, 9), -1)", "negative"),
    ],
)
def test_invalid_input_fails_the_query_naming_the_function(
    con: duckdb.DuckDBPyConnection, sql: str, message: str
) -> None:
    with pytest.raises(duckdb.Error, match=message):
        con.execute(sql).fetchall()


def test_registering_twice_and_across_connections(tmp_path: Path) -> None:
    path = str(tmp_path / "x.duckdb")
    first = duckdb.connect(path)
    h3sql.register(first)
    h3sql.register(first)  # idempotent on one connection
    second = duckdb.connect(path)  # the same database: the functions are already there
    h3sql.register(second)
    first.close()  # the function must outlive the connection that registered it
    got = second.execute("SELECT h3_cell_to_string(h3_latlng_to_cell(0.5, 0.5, 3))").fetchone()
    assert got == (h3.latlng_to_cell(0.5, 0.5, 3),)
    second.close()


def test_on_a_read_only_catalog_connection(tmp_path: Path) -> None:
    cell = as_int(h3.latlng_to_cell(37.7749, -122.4194, 9))
    writer = db.connect(tmp_path)
    writer.execute(
        "INSERT INTO segments (drive_id, seg_idx, h3_cell, h3_cells) VALUES ('d', 0, ?, [?])",
        [cell, cell],
    )
    writer.close()
    reader = db.connect(tmp_path, read_only=True)
    try:
        rows = reader.execute(
            "SELECT drive_id, h3_cell_to_string(h3_cell) FROM segments "
            "WHERE h3_cell = h3_latlng_to_cell(37.7749, -122.4194, 9) "
            "AND list_contains(h3_grid_disk(h3_cell, 1), h3_cells[1])"
        ).fetchall()
    finally:
        reader.close()
    assert rows == [("d", h3.int_to_str(cell))]


@pytest.fixture(scope="module")
def shared() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    h3sql.register(connection)
    yield connection
    connection.close()


@settings(max_examples=100, deadline=None)
@given(
    lat=st.floats(-89.99, 89.99, allow_nan=False),
    lng=st.floats(-179.99, 179.99, allow_nan=False),
    res=st.integers(0, 15),
)
def test_round_trip_center_is_within_the_cells_circumradius(
    shared: duckdb.DuckDBPyConnection, lat: float, lng: float, res: int
) -> None:
    got = shared.execute(
        "SELECT c, h3_cell_to_lat(c), h3_cell_to_lng(c) "
        "FROM (SELECT h3_latlng_to_cell(?, ?, ?) AS c)",
        [lat, lng, res],
    ).fetchone()
    assert got is not None
    cell, clat, clng = got
    text = h3.int_to_str(cell)
    radius = max(
        h3.great_circle_distance((clat, clng), v, unit="m") for v in h3.cell_to_boundary(text)
    )
    assert h3.great_circle_distance((lat, lng), (clat, clng), unit="m") <= radius * 1.001 + 1e-6


def test_vectorized_speed(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TABLE big AS SELECT 37 + random() AS lat, -122 + random() AS lng FROM range(100000)"
    )
    start = time.perf_counter()
    (n,) = (
        con.execute("SELECT count(DISTINCT h3_latlng_to_cell(lat, lng, 7)) FROM big").fetchone()
        or ()
    )
    seconds = time.perf_counter() - start
    assert n > 100
    assert seconds < 10, f"100k cells took {seconds:.2f} s"


# The DuckDB community h3 extension's names and argument order (its README, "Full list of
# functions"): SQL written with them must run on a drivecat connection unchanged.
EXTENSION_CALLS = {
    "h3_latlng_to_cell(33.4484, -112.074, 9)": h3.str_to_int(
        h3.latlng_to_cell(33.4484, -112.074, 9)
    ),
    "h3_h3_to_string(h3_latlng_to_cell(33.4484, -112.074, 9))": h3.latlng_to_cell(
        33.4484, -112.074, 9
    ),
    "h3_string_to_h3('8929b6d3573ffff')": 0x8929B6D3573FFFF,
    "h3_cell_to_parent(h3_string_to_h3('8929b6d3573ffff'), 7)": h3.str_to_int(
        h3.cell_to_parent("8929b6d3573ffff", 7)
    ),
    "h3_cell_to_latlng(h3_string_to_h3('8929b6d3573ffff'))": list(
        h3.cell_to_latlng("8929b6d3573ffff")
    ),
    "len(h3_grid_disk(h3_string_to_h3('8929b6d3573ffff'), 1))": 7,
    "h3_get_resolution(h3_string_to_h3('8929b6d3573ffff'))": 9,
    "h3_is_valid_cell(h3_string_to_h3('8929b6d3573ffff'))": True,
}


@pytest.mark.parametrize("call", list(EXTENSION_CALLS))
def test_the_extensions_names_work(con: duckdb.DuckDBPyConnection, call: str) -> None:
    (got,) = con.execute(f"SELECT {call}").fetchone() or ()
    assert got == EXTENSION_CALLS[call]


def test_old_names_are_aliases(con: duckdb.DuckDBPyConnection) -> None:
    row = con.execute(
        "SELECT h3_cell_to_string(c) = h3_h3_to_string(c), "
        "h3_string_to_cell('8929b6d3573ffff') = h3_string_to_h3('8929b6d3573ffff') "
        "FROM (SELECT h3_latlng_to_cell(1.5, 2.5, 8) AS c)"
    ).fetchone()
    assert row == (True, True)
