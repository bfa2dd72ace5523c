"""What the catalog commands print: tables that fit, JSON that keeps every digit, SQL from
stdin or a file. Values are checked against the demo drive's generator truth."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import h3
import pytest
from click.testing import CliRunner
from rich.console import Console

from drivecat.catalog import query
from drivecat.cli.main import drivecat
from drivecat.cli.render import MAX_CELL, fit_columns, print_table

TRUTH = json.loads(
    (Path(__file__).resolve().parents[2] / "sample_logs" / "tiny" / "truth.json").read_text()
)


def cli(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(drivecat, list(args), input=input)


@pytest.mark.parametrize("width", [40, 80, 120])
def test_a_table_fits_the_terminal_and_says_what_it_left_out(demo_store: Path, width: int) -> None:
    table = query.run_query(demo_store, query.segments_sql("true"))
    buffer = io.StringIO()
    print_table(table, Console(file=buffer, width=width, force_terminal=True, color_system=None))
    lines = buffer.getvalue().splitlines()
    assert all(len(line) <= width for line in lines), lines
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    body = lines[: end + 1]
    header = body[1]
    shown = [name for name in table.column_names if f" {name} " in header]
    assert shown[0] == "drive_id"
    hidden = [name for name in table.column_names if name not in shown]
    text = " ".join(lines[len(body) :])  # the note, wrapped to the width
    assert hidden, "the demo's 13 columns cannot fit in 120 characters"
    assert all(name in text for name in hidden) and "--format csv" in text, text
    for seg in TRUTH["segments"]:  # the rows are the truth's, one line each
        row = next(line for line in body if f" {seg['seg_idx']} " in line)
        assert TRUTH["drive_id"] in row
        if "weather" in shown:
            assert f" {seg['weather']} " in row


def test_fit_columns_never_exceeds_the_width() -> None:
    names = ["a_long_name", "b", "c" * 50, "d"]
    rows = [["x" * 60, "y", "z", "w" * 3]]
    for width in range(8, 140):
        fit = fit_columns(names, rows, width)
        assert 1 + sum(w + 3 for w in fit.widths) <= max(width, 5)
        assert all(w <= MAX_CELL for w in fit.widths)
        assert sorted(fit.hidden + tuple(names[i] for i in fit.columns)) == sorted(names)
    everything = fit_columns(names, rows, None)
    assert everything.columns == (0, 1, 2, 3) and everything.widths == (60, 1, 50, 3)


def test_json_keeps_h3_cells_and_big_integers_exact(demo_store: Path) -> None:
    sql = "SELECT seg_idx, start_ns, h3_cell, h3_cells, pedestrian_count FROM segments"
    result = cli("catalog", "query", sql, "--store", str(demo_store), "--format", "json")
    assert result.exit_code == 0, result.output
    got = sorted(json.loads(result.stdout), key=lambda r: r["seg_idx"])
    assert len(got) == len(TRUTH["segments"])
    for row, seg in zip(got, TRUTH["segments"], strict=True):
        assert row["start_ns"] == str(seg["start_ns"])
        assert row["h3_cell"] == h3.int_to_str(seg["h3_cell"])
        assert sorted(row["h3_cells"]) == sorted(h3.int_to_str(c) for c in seg["h3_cells"])
        assert row["pedestrian_count"] == seg["pedestrian_count"]  # small ints stay numbers


def test_ndjson_is_one_object_per_line(demo_store: Path) -> None:
    sql = "SELECT seg_idx, weather, start_ns FROM segments ORDER BY seg_idx"
    result = cli("catalog", "query", sql, "--store", str(demo_store), "--format", "ndjson")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"seg_idx": s["seg_idx"], "weather": s["weather"], "start_ns": str(s["start_ns"])}
        for s in TRUTH["segments"]
    ]


def test_sql_from_stdin_and_from_a_file(demo_store: Path, tmp_path: Path) -> None:
    sql = "SELECT count(*) AS n FROM segments WHERE weather = 'rain'"
    want = [{"n": sum(s["weather"] == "rain" for s in TRUTH["segments"])}]
    piped = cli("catalog", "query", "-", "--store", str(demo_store), "--format", "json", input=sql)
    assert piped.exit_code == 0, piped.output
    assert json.loads(piped.stdout) == want
    (tmp_path / "q.sql").write_text(sql + ";\n")
    filed = cli(
        "catalog", "query", "--file", str(tmp_path / "q.sql"), "--store", str(demo_store),
        "--format", "json",
    )  # fmt: skip
    assert filed.exit_code == 0, filed.output
    assert json.loads(filed.stdout) == want
    both = cli("catalog", "query", sql, "--file", str(tmp_path / "q.sql"), "--store", "x")
    assert both.exit_code == 2 and "not both" in both.output
    neither = cli("catalog", "query", "--store", str(demo_store))
    assert neither.exit_code == 2 and "standard input" in neither.output
