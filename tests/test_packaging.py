"""What `pip install drivecat` puts into site-packages: one import name, and nothing else.

The wheel is built from the checkout here, and its contents are read with zipfile, not
with anything of drivecat's.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import zipfile
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
