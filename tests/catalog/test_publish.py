"""catalog publish: hive-partitioned Parquet that DuckDB reads, written incrementally."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from click.testing import CliRunner

from drivecat.cli.main import drivecat
from drivecat.ingest.identity import DeviceIdentity
from drivecat.ingest.run import IngestOptions, ingest_drive


def _publish(store: Path, out: Path) -> dict[str, object]:
    result = CliRunner().invoke(
        drivecat, ["catalog", "publish", "--store", str(store), "--parquet", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_publish_is_readable_and_incremental(
    small_drive: Path, sidecar_drive: Path, tmp_path: Path
) -> None:
    store, out = tmp_path / "store", tmp_path / "parquet"
    ingest_drive(small_drive, IngestOptions(store=store))
    first = _publish(store, out)
    assert len(first["written"]) == 1  # type: ignore[arg-type]
    ingest_drive(sidecar_drive, IngestOptions(store=store))
    second = _publish(store, out)
    assert second["skipped"] == 1 and len(second["written"]) == 1  # type: ignore[arg-type]
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    expected = con.execute(
        "SELECT s.drive_id, strftime(d.start_time AT TIME ZONE 'UTC', '%Y-%m-%d'), "
        "d.device_version, count(*) FROM segments s JOIN drives d USING (drive_id) "
        "GROUP BY ALL ORDER BY 1"
    ).fetchall()
    con.close()
    got = duckdb.sql(
        f"SELECT drive_id, CAST(date AS VARCHAR), device_version, count(*) FROM read_parquet("
        f"'{out}/segments/*/*/*.parquet', hive_partitioning = true) GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert got == expected
    # a replaced drive under another version moves to its new partition
    flags = DeviceIdentity(device_version="5.0.0")
    ingest_drive(small_drive, IngestOptions(store=store, device=flags, force=True))
    third = _publish(store, out)
    assert len(third["written"]) == 1  # type: ignore[arg-type]
    versions = duckdb.sql(
        f"SELECT DISTINCT device_version FROM read_parquet('{out}/drives/*/*/*.parquet', "
        "hive_partitioning = true) ORDER BY 1"
    ).fetchall()
    assert sorted(v[0] for v in versions) == sorted(
        ["5.0.0", json.loads((sidecar_drive / "drive.json").read_text())["device_version"]]
    )
