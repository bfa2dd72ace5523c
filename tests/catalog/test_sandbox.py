"""SQL from users cannot write, read or change anything but the catalog's rows.

Each attack is a real reproduction: it runs through the CLI as a user would type it, and the
test then looks at the file system, not at drivecat's answer alone.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from drivecat.cli.main import catalog_group


@pytest.fixture
def store(small_and_sidecar_store: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(small_and_sidecar_store, copy)
    return copy


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(catalog_group, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout + result.stderr


def manifest(store: Path) -> Path:
    return next((store / "drives").glob("*/manifest.json"))


def test_a_stacked_where_cannot_write_over_a_manifest(store: Path, tmp_path: Path) -> None:
    target = manifest(store)
    before = snapshot(store)
    attack = f"1=1); COPY (SELECT 'owned') TO '{target}' (FORMAT csv); SELECT 1 WHERE (1"
    for command in (
        ["segments", "--store", str(store), "--where", attack],
        ["export", "--store", str(store), "--where", attack, "--format", "mcap",
         "--out", str(tmp_path / "out")],
    ):  # fmt: skip
        code, output = run(*command)
        assert code == 2
        assert "one SQL expression" in output and "Traceback" not in output
        assert len(output.strip().splitlines()) == 1
    assert snapshot(store) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT * FROM segments) TO '{victim}' (FORMAT csv)",
        "EXPORT DATABASE '{victim_dir}'",
        "ATTACH '{victim_dir}/other.duckdb' AS other (READ_WRITE)",
        "SET profiling_output = '{victim}'",
        "SELECT * FROM read_csv('{secret}')",
        "SELECT * FROM read_text('{secret}')",
        "INSTALL h3",
        "SET enable_external_access = true",
    ],
    ids=["copy", "export-database", "attach", "profiling", "read-csv", "read-text", "install",
         "re-enable"],
)  # fmt: skip
def test_catalog_query_cannot_touch_files(store: Path, tmp_path: Path, sql: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password\n")
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir()
    victim = victim_dir / "out.csv"
    before = snapshot(tmp_path)
    code, output = run(
        "query",
        "--store",
        str(store),
        sql.format(victim=victim, victim_dir=victim_dir, secret=secret),
    )
    assert code == 2, output
    assert output.startswith("Error: ") and "Traceback" not in output
    assert "password" not in output
    assert snapshot(tmp_path) == before


def test_ordinary_queries_and_h3_functions_still_work(store: Path) -> None:
    code, output = run(
        "query",
        "--store",
        str(store),
        "--format",
        "csv",
        "SELECT count(*) AS n, count(h3_cell_to_string(h3_cell)) AS cells FROM segments",
    )
    assert code == 0, output
    n, cells = output.splitlines()[1].split(",")
    assert int(n) > 0 and int(cells) == int(n)


def test_a_where_with_semicolons_inside_a_string_is_one_expression(store: Path) -> None:
    code, output = run("segments", "--store", str(store), "--where", "weather <> 'a;b'")
    assert code == 0, output


def test_reading_a_directory_is_an_explicit_opt_in(store: Path, tmp_path: Path) -> None:
    shared = tmp_path / "published"
    shared.mkdir()
    (shared / "rows.csv").write_text("a,b\n1,2\n3,4\n")
    sql = f"SELECT sum(a + b)::INTEGER AS s FROM read_csv('{shared}/rows.csv')"
    code, output = run("query", "--store", str(store), "--format", "csv", sql)
    assert code == 2 and output.startswith("Error: ")
    code, output = run(
        "query", "--store", str(store), "--allow-read", str(shared), "--format", "csv", sql
    )
    assert (code, output) == (0, "s\n10\n")
