"""A newer drivecat opens, extends and rebuilds a store written by an older one.

Ground truth: ``tests/data/store_49ab363.tar.xz``, a store written by drivecat at commit
49ab363 (catalog version 1, before migrations), read directly: its catalog with plain
``duckdb`` and its drive's rows with ``pyarrow.parquet``; and the generator's truth for a
drive ingested today.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import duckdb
import h3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from drivecat.catalog import db, migrations, query
from drivecat.catalog.errors import CatalogBusyError, CatalogError
from drivecat.catalog.tables import DRIVE_TABLES, Column, Table
from drivecat.cli.main import drivecat
from sample_logs.generate import generate

DATA = Path(__file__).resolve().parents[1] / "data"
OLD_DRIVE = "veh016_2026-04-25T173534Z"
VOLATILE = {"ingested_at"}  # not in question here; compared where the rows are the same


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    with tarfile.open(DATA / "store_49ab363.tar.xz") as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "store"


@pytest.fixture(scope="module")
def tiny_drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("tiny_drive"), seconds=4, lidar_points=100)


def raw_version(store: Path) -> str | None:
    """The version as the file says, read without drivecat."""
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT value FROM catalog_meta WHERE key = 'schema_version'")
        return str(rows.fetchall()[0][0])
    finally:
        con.close()


def raw_tables(store: Path) -> set[str]:
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        con.close()


def parquet_rows(store: Path, drive_id: str, table: str) -> list[tuple[object, ...]]:
    """A drive's rows of one table as its folder keeps them, sorted, in the table's order."""
    path = store / "drives" / drive_id / "catalog" / f"{table}.parquet"
    names = [c.name for t in DRIVE_TABLES if t.name == table for c in t.columns]
    table = pq.read_table(path).select([n for n in names if n not in VOLATILE])
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):  # DuckDB keeps *_time to the nearest microsecond
            ns = table.column(i).cast(pa.int64()).to_pylist()
            us = pa.array([None if v is None else (v + 500) // 1000 for v in ns], pa.int64())
            table = table.set_column(i, field.name, us)
    return sorted((tuple(r.values()) for r in table.to_pylist()), key=repr)


def catalog_rows(store: Path, drive_id: str, table: str) -> list[tuple[object, ...]]:
    columns = [c for t in DRIVE_TABLES if t.name == table for c in t.columns]
    cols = ", ".join(
        f"epoch_us({c.name}) AS {c.name}" if c.sql == "TIMESTAMPTZ" else c.name
        for c in columns
        if c.name not in VOLATILE
    )
    sql = f"SELECT {cols} FROM {table} WHERE drive_id = ?"
    rows = query.run_query(store, sql, [drive_id]).to_pylist()
    return sorted((tuple(r.values()) for r in rows), key=repr)


def cli(*args: str) -> object:
    return CliRunner().invoke(drivecat, list(args))


def test_an_old_store_is_queried_through_the_cli_and_python(old_store: Path) -> None:
    assert raw_version(old_store) == "1"
    manifest = json.loads((old_store / "drives" / OLD_DRIVE / "manifest.json").read_text())
    segments = pq.read_table(old_store / "drives" / OLD_DRIVE / "catalog" / "segments.parquet")

    result = cli(
        "catalog", "query", "SELECT drive_id, seg_idx, start_ns, weather, h3_cell, "
        "pedestrian_count FROM segments ORDER BY seg_idx", "--store", str(old_store),
        "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    want = segments.select(
        ["drive_id", "seg_idx", "start_ns", "weather", "h3_cell", "pedestrian_count"]
    ).to_pylist()
    for row in want:  # JSON's conventions: big integers as decimal strings, H3 cells as hex
        row["start_ns"], row["h3_cell"] = str(row["start_ns"]), h3.int_to_str(row["h3_cell"])
    assert got == sorted(want, key=lambda r: r["seg_idx"]) and len(got) == 1

    drive = query.run_query(old_store, "SELECT * FROM drives").to_pylist()
    assert [d["drive_id"] for d in drive] == [manifest["drive_id"]] == [OLD_DRIVE]
    assert drive[0]["device_version"] == manifest["device"]["device_version"]
    assert drive[0]["fingerprint"] == manifest["fingerprint"]
    for table, entry in manifest["catalog"].items():
        if table != "schemas":
            assert len(catalog_rows(old_store, OLD_DRIVE, table)) == entry["rows"], table

    # the read-only query upgraded the catalog first, and the new tables are there, empty
    assert raw_version(old_store) == str(migrations.latest()) == "4"
    for table in ("attachments", "labels"):
        assert query.run_query(old_store, f"SELECT count(*) AS n FROM {table}")["n"][0].as_py() == 0


def test_a_new_drive_ingests_into_an_old_store(old_store: Path, tiny_drive: Path) -> None:
    truth = json.loads((tiny_drive / "truth.json").read_text())
    result = cli("ingest", "run", str(tiny_drive), "--store", str(old_store), "--json")
    assert result.exit_code == 0, result.output

    drives = query.run_query(old_store, "SELECT drive_id FROM drives ORDER BY drive_id")
    assert drives["drive_id"].to_pylist() == sorted([OLD_DRIVE, truth["drive_id"]])
    counts = query.run_query(
        old_store, "SELECT topic, message_count FROM topics WHERE drive_id = ?", [truth["drive_id"]]
    ).to_pylist()
    assert {r["topic"]: r["message_count"] for r in counts} == {
        t: v["message_count"] for t, v in truth["topics"].items()
    }
    new_segments = catalog_rows(old_store, truth["drive_id"], "segments")
    assert len(new_segments) == len(truth["segments"])
    for table in DRIVE_TABLES:  # the old drive's rows are untouched
        if (old_store / "drives" / OLD_DRIVE / "catalog" / f"{table.name}.parquet").exists():
            want = parquet_rows(old_store, OLD_DRIVE, table.name)
            assert catalog_rows(old_store, OLD_DRIVE, table.name) == want, table.name


def test_rebuild_brings_back_old_and_new_drives(old_store: Path, tiny_drive: Path) -> None:
    truth = json.loads((tiny_drive / "truth.json").read_text())
    assert cli("ingest", "run", str(tiny_drive), "--store", str(old_store)).exit_code == 0
    (old_store / "catalog.duckdb").unlink()

    result = cli("catalog", "rebuild", "--store", str(old_store), "--json")
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.stdout)["drives"]) == sorted([OLD_DRIVE, truth["drive_id"]])
    assert raw_version(old_store) == str(migrations.latest())
    for drive_id in (OLD_DRIVE, truth["drive_id"]):
        for table in DRIVE_TABLES:
            path = old_store / "drives" / drive_id / "catalog" / f"{table.name}.parquet"
            if path.exists():
                want = parquet_rows(old_store, drive_id, table.name)
                assert catalog_rows(old_store, drive_id, table.name) == want, table.name
    assert len(catalog_rows(old_store, OLD_DRIVE, "frames")) == 98  # tests/data/README.md


def test_a_migrated_catalog_has_the_tables_of_a_fresh_one(old_store: Path, tmp_path: Path) -> None:
    db.migrate(old_store)
    db.connect(tmp_path / "fresh").close()

    def columns(store: Path) -> list[tuple[object, ...]]:
        con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
        try:
            return con.execute(
                "SELECT table_name, column_index, column_name, data_type, column_default, "
                "is_nullable FROM duckdb_columns() WHERE schema_name = 'main' ORDER BY ALL"
            ).fetchall()
        finally:
            con.close()

    assert columns(old_store) == columns(tmp_path / "fresh")
    assert {"attachments", "labels"} <= raw_tables(old_store)


def test_migration_steps_are_numbered_one_after_another() -> None:
    versions = [m.version for m in migrations.MIGRATIONS]
    assert versions == list(range(migrations.FIRST_VERSION + 1, migrations.latest() + 1))


def test_a_catalog_of_a_newer_drivecat_is_refused(old_store: Path) -> None:
    future = migrations.latest() + 1
    con = duckdb.connect(str(old_store / "catalog.duckdb"))
    con.execute("UPDATE catalog_meta SET value = ? WHERE key = 'schema_version'", [str(future)])
    con.close()
    for args in (["catalog", "query", "SELECT 1"], ["catalog", "migrate"]):
        result = cli(*args, "--store", str(old_store))
        assert result.exit_code == 2
        assert result.stderr == (
            f"Error: {old_store / 'catalog.duckdb'}: the catalog was written by a newer drivecat "
            f"(catalog version {future} > {migrations.latest()}, the newest drivecat "
            f"{__import__('drivecat').__version__} knows): upgrade drivecat\n"
        )
    assert raw_version(old_store) == str(future)  # and nothing was changed


def test_a_migration_failing_midway_leaves_the_old_version(
    old_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    boom = migrations.Migration(
        migrations.latest() + 1,
        "a step that fails after doing something",
        ("CREATE TABLE half_done (a INTEGER)", "SELECT error('disk on fire')"),
    )
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, boom))
    result = cli("catalog", "query", "SELECT count(*) FROM drives", "--store", str(old_store))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert f"cannot upgrade the catalog from version 1 to {boom.version}" in result.stderr
    assert "(a step that fails after doing something) failed" in result.stderr
    assert "disk on fire" in result.stderr
    assert raw_version(old_store) == "1"
    assert raw_tables(old_store).isdisjoint({"attachments", "labels", "half_done"})

    monkeypatch.undo()  # the real steps then upgrade it
    assert db.migrate(old_store).from_version == 1
    assert raw_version(old_store) == "4"


def test_a_catalog_without_any_version_is_version_1(old_store: Path) -> None:
    con = duckdb.connect(str(old_store / "catalog.duckdb"))
    con.execute("DROP TABLE catalog_meta")
    con.close()
    upgrade = db.migrate(old_store)
    assert (upgrade.from_version, upgrade.to_version) == (1, 4)
    assert raw_version(old_store) == "4"


def test_not_a_catalog_is_refused(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "catalog.duckdb"))
    con.execute("CREATE TABLE something_else (a INTEGER)")
    con.close()
    with pytest.raises(CatalogError, match="not a drivecat catalog"):
        db.connect(tmp_path)


def test_a_reader_that_cannot_write_is_told_to_migrate(
    old_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_connect = duckdb.connect

    def read_only_mount(path: str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        if not read_only:  # what DuckDB says on a read-only file system
            raise duckdb.IOException(f'IO Error: Cannot open file "{path}": Read-only file system')
        return real_connect(path, read_only=True)

    monkeypatch.setattr(db.duckdb, "connect", read_only_mount)
    result = cli("catalog", "query", "SELECT 1", "--store", str(old_store))
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: {old_store / 'catalog.duckdb'}: catalog version 1 must be upgraded to 4 before "
        "this drivecat can read it, and it cannot be written here (IO Error: Cannot open file "
        f'"{old_store / "catalog.duckdb"}": Read-only file system); run `catalog migrate '
        f"--store {old_store}` as a user who can write it\n"
    )
    assert raw_version(old_store) == "1"


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold(store: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store / "catalog.duckdb"), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_a_catalog_held_by_another_process_is_named_in_one_line(
    old_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = _hold(old_store, 30)
    try:
        monkeypatch.setattr(db, "LOCK_WAIT_S", 0.2)
        for args in (["catalog", "query", "SELECT 1"], ["catalog", "migrate"]):
            result = cli(*args, "--store", str(old_store))
            assert result.exit_code == 2
            assert result.stderr == (
                f"Error: {old_store / 'catalog.duckdb'}: the catalog is in use by another "
                f"process (PID {holder.pid}); try again when it has finished\n"
            )
        with pytest.raises(CatalogBusyError):
            db.connect(old_store, lock_wait_s=0)
    finally:
        holder.kill()
        holder.wait()


def test_opening_waits_for_a_short_hold(old_store: Path) -> None:
    holder = _hold(old_store, 0.5)
    try:
        con = db.connect(old_store, lock_wait_s=20)
        assert con.execute("SELECT count(*) FROM drives").fetchall() == [(1,)]
        con.close()
    finally:
        holder.kill()
        holder.wait()


def _rewrite(path: Path, change: object) -> None:
    """Rewrite a drive's rows file as another release would have written it: the manifest
    records the new file's sha256 (rebuild checks it)."""
    table = pq.read_table(path)
    pq.write_table(change(table), path)  # type: ignore[operator]
    manifest_path = path.parent.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["catalog"][path.stem]
    entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))


def test_rebuild_gives_missing_columns_their_defaults(old_store: Path) -> None:
    folder = old_store / "drives" / OLD_DRIVE / "catalog"
    want = pq.read_table(folder / "segments.parquet")
    # rows of a release that had neither segments.tags nor segments.start_time
    _rewrite(folder / "segments.parquet", lambda t: t.drop_columns(["tags", "start_time"]))
    (old_store / "catalog.duckdb").unlink()
    assert cli("catalog", "rebuild", "--store", str(old_store)).exit_code == 0
    got = query.run_query(
        old_store, "SELECT start_ns, epoch_ns(start_time) AS start_time, tags FROM segments"
    )
    assert got["start_ns"].to_pylist() == want["start_ns"].to_pylist()
    # filled from start_ns, to the microsecond DuckDB keeps
    (time_ns,), (start_ns,) = got["start_time"].to_pylist(), want["start_ns"].to_pylist()
    assert abs(time_ns - start_ns) <= 500
    assert got["tags"].to_pylist() == [None]


@pytest.mark.parametrize("damage", ["unknown column", "unknown table"])
def test_rebuild_refuses_rows_it_cannot_represent(old_store: Path, damage: str) -> None:
    folder = old_store / "drives" / OLD_DRIVE / "catalog"
    if damage == "unknown column":
        bad = folder / "topics.parquet"
        _rewrite(bad, lambda t: t.append_column("from_the_future", pa.array([1] * t.num_rows)))
        reason = "column from_the_future is not in this drivecat's topics table"
    else:
        bad = folder / "widgets.parquet"
        pq.write_table(pa.table({"drive_id": [OLD_DRIVE]}), bad)
        manifest_path = old_store / "drives" / OLD_DRIVE / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["catalog"]["widgets"] = {"path": "catalog/widgets.parquet", "rows": 1}
        manifest_path.write_text(json.dumps(manifest))
        reason = "rows of a table 'widgets' this drivecat does not know"
    result = cli("catalog", "rebuild", "--store", str(old_store))
    # the drive is skipped with one line (exit 1); a newer drivecat can still rebuild it
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {folder.parent}: skipped: {bad}: {reason}")
    assert result.stderr.count("\n") == 1
    con = duckdb.connect(str(old_store / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM drives").fetchone() == (0,)
    con.close()


def test_rebuild_carries_exports_over_from_an_old_catalog(old_store: Path) -> None:
    con = duckdb.connect(str(old_store / "catalog.duckdb"))  # written as version 1 would
    con.execute(
        "INSERT INTO exports VALUES ('e1', '2026-05-01 10:00:00+00', 'weather = ''rain''', "
        "'dataset', '/tmp/out', 7, '{}')"
    )
    con.close()
    assert cli("catalog", "rebuild", "--store", str(old_store)).exit_code == 0
    got = query.run_query(old_store, "SELECT export_id, query, sample_count FROM exports")
    assert got.to_pylist() == [{"export_id": "e1", "query": "weather = 'rain'", "sample_count": 7}]


def test_a_declared_default_fills_old_rows_in_arrow_and_in_duckdb() -> None:
    table = Table(
        "things",
        (
            Column("id", "VARCHAR NOT NULL", pa.string()),
            Column("lost", "BIGINT", pa.int64(), default=0),
            Column("note", "VARCHAR", pa.string(), default="it's new"),
        ),
    )
    old_rows = pa.table({"id": ["a", "b"]})
    assert table.conform(old_rows).to_pylist() == [
        {"id": "a", "lost": 0, "note": "it's new"},
        {"id": "b", "lost": 0, "note": "it's new"},
    ]
    con = duckdb.connect()
    con.execute(table.ddl())
    con.execute("INSERT INTO things (id) VALUES ('c')")
    assert con.execute("SELECT * FROM things").fetchall() == [("c", 0, "it's new")]
    with pytest.raises(CatalogError, match="things rows lack column id"):
        table.conform(pa.table({"lost": [1]}))


def test_plain_duckdb_has_align_in_a_migrated_catalog(old_store: Path) -> None:
    """Step 3 stores align() in the file: a duckdb connection drivecat never touched (no
    TEMP macro registered) runs it and gets what drivecat's own connection gets."""
    db.migrate(old_store)
    sql = "SELECT * FROM align('/lidar/top/points', '/camera/front/video', 50)"
    plain = duckdb.connect(str(old_store / "catalog.duckdb"), read_only=True)
    try:
        got = plain.execute(sql).fetchall()
    finally:
        plain.close()
    want = query.run_query(old_store, sql).to_pylist()
    assert got and [tuple(r.values()) for r in want] == got
    # and the answer is not vacuous: the old store's lidar sweeps have frames within 50 ms
    assert any(r[2] is not None for r in got)
