"""What `pip install drivecat` puts into site-packages: one import name, and nothing else.

The wheel is built from the checkout here, and its contents are read with zipfile, not
with anything of drivecat's.
"""

from __future__ import annotations

import ast
import pickle
import re
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from drivecat.schemas.messages import ObjectList, State, WiperMode

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("drivecat-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_installs_one_import_name(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    assert wheel.read(top_level).decode().split() == ["drivecat"]
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"drivecat"}


def test_the_wheel_holds_every_stage_and_no_development_folder(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for module in (
        "drivecat/ingest/run.py",
        "drivecat/ingest/tags/base.py",
        "drivecat/catalog/db.py",
        "drivecat/schemas/check.py",
        "drivecat/schemas/generated/drivecat/vehicle_pb2.py",
        "drivecat/schemas/proto/drivecat/vehicle.proto",
        "drivecat/schemas/schemas.lock",
        "drivecat/cli/main.py",
    ):
        assert module in names
    assert not [n for n in names if "sample_logs" in n or n.startswith(("bench/", "tests/"))]


def test_console_scripts_point_into_drivecat(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    text = wheel.read(entry_points).decode()
    for script in ("drivecat", "ingest", "catalog", "schemas"):
        assert f"{script} = drivecat.cli.main:" in text


def test_contract_messages_name_modules_that_exist() -> None:
    for cls in (State, ObjectList):
        assert cls.__module__ in sys.modules, cls.__module__
    state = State(speed_mps=3.5, wipers=WiperMode.WIPER_LOW)
    assert pickle.loads(pickle.dumps(state)) == state


def test_python_dash_m_drivecat_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "drivecat", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "drivecat" in result.stdout


def _top_level_imports(folders: list[str]) -> set[str]:
    """Top-level names of every absolute import in the folders' Python files."""
    names = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            if "generated" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names


def _declared(*extras: str) -> set[str]:
    """Normalized distribution names in pyproject's dependencies and the given extras."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", s)[0]).lower() for s in specs}


def _undeclared(folders: list[str], declared: set[str]) -> dict[str, list[str]]:
    own = {"drivecat", "sample_logs", "bench", "tests", "__future__"}
    dists = packages_distributions()
    missing = {}
    for name in sorted(_top_level_imports(folders) - own - set(sys.stdlib_module_names)):
        provided_by = {re.sub(r"[-_.]+", "-", d).lower() for d in dists.get(name, [name])}
        if not provided_by & declared:
            missing[name] = sorted(provided_by)
    return missing


def test_every_library_the_package_imports_is_a_declared_dependency() -> None:
    # dask is imported only by `ingest run --workers/--scheduler`, behind a clear error.
    stages = ["ingest", "catalog", "schemas", "cli", "drivecat"]
    assert _undeclared(stages, _declared("distributed")) == {}


def test_every_library_the_checkout_imports_is_declared_for_development() -> None:
    assert _undeclared(["sample_logs", "bench", "tests"], _declared("test")) == {}


def test_sample_logs_imports_no_code_under_test() -> None:
    """Ground truth computed with drivecat's own logic could not catch its bugs: sample_logs
    may import only the generated contract message classes (data definitions)."""
    found = set()
    for path in (REPO / "sample_logs").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    assert {m for m in found if m.split(".")[0] == "drivecat"} == {"drivecat.schemas.messages"}
