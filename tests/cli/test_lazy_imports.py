"""The CLI imports a command's heavy logic only when that command runs.

Each case runs ``python -X importtime -m drivecat ...`` in a fresh interpreter and reads the
modules it imported from the interpreter's own report: the in-process test session has
imported everything already, so only a subprocess can tell.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from drivecat.catalog import db
from drivecat.catalog.export import DEFAULT_SPLIT
from drivecat.cli.export_cmd import SPLIT_HELP_DEFAULT
from drivecat.cli.main import drivecat

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("duckdb", "pyarrow", "av", "open3d")


def imported_modules(*args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Top-level names of every module the command imported, and the finished process."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "drivecat", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = set()
    for line in done.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package", the name indented by depth
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                modules.add(name)
    return modules, done


def test_schemas_check_imports_no_catalog_or_media_library() -> None:
    modules, done = imported_modules(
        "schemas", "check", "schemas/proto", "--lock", "schemas/schemas.lock"
    )
    assert done.returncode == 0, done.stdout
    assert "No schema changes" in done.stdout
    assert "drivecat.schemas.check" in modules  # the report does list what the command used
    assert {m.split(".")[0] for m in modules} & set(HEAVY) == set()


def test_catalog_query_imports_only_the_query_path(tmp_path: Path) -> None:
    db.connect(tmp_path).close()  # an empty catalog
    modules, done = imported_modules(
        "catalog", "query", "SELECT 41 + 1 AS answer", "--store", str(tmp_path), "--format", "csv"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["answer", "42"]
    assert "duckdb" in modules
    not_needed = {"av", "open3d", "rosbags"} | {
        f"drivecat.{m}" for m in ("catalog.export", "catalog.frames", "ingest", "ingest.run")
    }
    assert modules & not_needed == set()


def test_help_alone_imports_no_stage() -> None:
    modules, done = imported_modules("--help")
    assert done.returncode == 0
    assert {m.split(".")[0] for m in modules} & set(HEAVY) == set()
    assert not any(m.startswith(("drivecat.catalog", "drivecat.ingest")) for m in modules)


@pytest.mark.parametrize(
    ("command", "option", "values"),
    [
        (["catalog", "export"], "--format", "mcap|dataset"),
        (["catalog", "export"], "--image-format", "png|jpg"),
        (["catalog", "frame"], "--mode", "nearest|before"),
        (["schemas", "check"], "--allow", "none|compatible"),
        (["schemas", "check"], "--format", "text|json|github"),
    ],
)
def test_lazily_loaded_choices_show_in_help_and_are_enforced(
    command: list[str], option: str, values: str
) -> None:
    help_text = CliRunner().invoke(drivecat, [*command, "--help"]).output
    assert f"[{values}]" in help_text
    result = CliRunner().invoke(drivecat, [*command, option, "no-such-value"])
    assert result.exit_code == 2
    assert "'no-such-value' is not one of" in result.output


def test_the_split_default_in_help_is_the_librarys() -> None:
    assert ",".join(f"{name}={f:g}" for name, f in DEFAULT_SPLIT) == SPLIT_HELP_DEFAULT
    help_text = CliRunner().invoke(drivecat, ["catalog", "export", "--help"]).output
    assert f"[default: {SPLIT_HELP_DEFAULT}]" in " ".join(help_text.split())
