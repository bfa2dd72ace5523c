"""--workers 2 on a Dask LocalCluster (127.0.0.1) gives the same catalog as a serial run."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from drivecat.catalog.tables import DRIVE_TABLES
from drivecat.cli.main import drivecat

pytest.importorskip("dask.distributed")

VOLATILE = {"ingested_at"}


def _snapshot(store: Path) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        out = {}
        for table in (*DRIVE_TABLES,):
            cols = [c.name for c in table.columns if c.name not in VOLATILE]
            rows = con.execute(f"SELECT {', '.join(cols)} FROM {table.name}").fetchall()
            out[table.name] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def test_workers_match_serial(
    small_drive: Path, sidecar_drive: Path, truncated_drive: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.mcap").write_bytes(b"garbage")
    paths = [str(small_drive), str(sidecar_drive), str(bad), str(truncated_drive)]
    runner = CliRunner()
    serial = runner.invoke(
        drivecat, ["ingest", "run", *paths, "--store", str(tmp_path / "a"), "--json"]
    )
    parallel = runner.invoke(
        drivecat,
        ["ingest", "run", *paths, "--store", str(tmp_path / "b"), "--workers", "2", "--json"],
    )
    assert serial.exit_code == parallel.exit_code == 1
    by_path = {r["path"]: r for r in json.loads(parallel.stdout)}
    assert by_path[str(bad)]["status"] == "failed" and "x.mcap" in by_path[str(bad)]["error"]
    assert {r["status"] for p, r in by_path.items() if p != str(bad)} == {"ingested"}
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.mcap"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.mcap"))
    assert files_a == files_b
