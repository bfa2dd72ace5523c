"""catalog coverage, drift and report through click's CliRunner: output, exit codes, errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from drivecat.cli.main import catalog_group
from tests.conftest import Fleets


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(catalog_group, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_coverage_csv_lists_every_combination(fleet_store: Fleets) -> None:
    code, out, _ = _run(
        "coverage",
        "--store",
        str(fleet_store.store),
        "--by",
        "weather,time_of_day",
        "--min-hours",
        "0.01",
        "--format",
        "csv",
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["weather", "time_of_day", "segments", "drives", "hours", "gap"]
    assert len(rows) == 15
    found = {(r["weather"], r["time_of_day"]): int(r["segments"]) for r in rows}
    assert found[("clear", "day")] == 12 and found[("rain", "night")] == 6
    gaps = {k for k, r in zip(found, rows, strict=True) if r["gap"] == "True"}
    assert ("rain", "night") in gaps  # 6 segments of 4 s are under 0.01 h
    assert ("clear", "day") not in gaps


def test_drift_exits_1_on_drift_and_0_without(fleet_store: Fleets) -> None:
    store = str(fleet_store.store)
    code, out, _ = _run(
        "drift",
        "--store",
        store,
        "--baseline",
        "device_version = '4.2.1'",
        "--current",
        "device_version = '5.0.0'",
    )
    assert code == 1
    assert "DRIFT tag   weather share" in out and out.rstrip().endswith("7 drifted")
    same = " OR ".join(f"drive_id = '{d}'" for d in fleet_store.drive_ids["baseline_again"])
    base = " OR ".join(f"drive_id = '{d}'" for d in fleet_store.drive_ids["baseline"])
    code, out, _ = _run("drift", "--store", store, "--baseline", base, "--current", same, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["flagged"] == [] and doc["segments"] == {"baseline": 6, "current": 6}
    assert {"psi", "js", "p_value", "bins", "baseline", "current"} <= set(doc["compared"][0])


def test_errors_are_one_line(fleet_store: Fleets, tmp_path: Path) -> None:
    store = str(fleet_store.store)
    code, _, err = _run("coverage", "--store", store, "--by", "wether")
    assert code == 2
    assert err.startswith("Error: --by 'wether': not a condition; known: weather,")
    assert len(err.strip().splitlines()) == 1
    code, _, err = _run("drift", "--store", store, "--baseline", "export:x", "--current", "true")
    assert code == 2 and "export:x: no such export" in err
    code, _, err = _run("coverage", "--store", str(tmp_path / "none"))
    assert code == 2 and "no catalog here" in err


def test_report_writes_one_page(fleet_store: Fleets, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    code, stdout, _ = _run(
        "report",
        "--store",
        str(fleet_store.store),
        "--out",
        str(out),
        "--color-by",
        "weather",
        "--thumbnails",
        "0",
        "--json",
    )
    assert code == 0
    summary = json.loads(stdout)
    assert summary["out"] == str(out) and out.stat().st_size > 1_000_000  # plotly inlined
    assert summary["drives"] == 18 and summary["thumbnails"] == 0
    code, _, err = _run(
        "report", "--store", str(fleet_store.store), "--out", str(out), "--color-by", "colour"
    )
    assert code == 2 and "--color-by 'colour': not a condition" in err
