"""catalog report: one self-contained page, opened in headless Chromium.

The browser test is skipped when no ``chromium`` is installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from drivecat.catalog.report import ReportOptions, write_report
from tests.conftest import Fleets

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NEWER = "device_version = '5.0.0'"


def _catalog_cells(store: Path, where: str) -> set[str]:
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        rows = con.execute(f"SELECT DISTINCT h3_cell FROM segments WHERE {where}").fetchall()
    finally:
        con.close()
    return {f"{c:x}" for (c,) in rows}  # an H3 index's string is its hex


@pytest.fixture(scope="module")
def report(fleet_store: Fleets, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    summary = write_report(
        fleet_store.store,
        out,
        ReportOptions(where=NEWER, baseline="device_version = '4.2.1'", thumbnails=2),
    )
    return out, summary


def test_the_page_is_self_contained(report: tuple[Path, dict], fleet_store: Fleets) -> None:
    out, summary = report
    page = out.read_text()
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=['\"]?https?:", page)
    assert page.count('<script type="text/javascript">') >= 1  # plotly, inlined
    assert set(summary["cells"]) == _catalog_cells(fleet_store.store, NEWER)
    for section in ("id='map'", "id='coverage'", "id='timeline'", "id='drift'", "id='frames'"):
        assert section in page
    assert summary["thumbnails"] == 1  # one condition (rain at night) was driven
    assert page.count("<img src='data:image/png;base64,") == 1
    drive = fleet_store.drive_ids["newer"]
    assert any(d in page for d in drive)
    assert summary["drift_flagged"] and "tag:weather" in summary["drift_flagged"]
    assert summary["gaps"] == 5 * 3 * 2 - 1


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_chromium_draws_the_catalogs_cells_without_console_errors(
    report: tuple[Path, dict], fleet_store: Fleets, tmp_path: Path
) -> None:
    out, _ = report
    # The console check can fail: a page with an error shows in the same log.
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom'); nope();</script></body></html>")
    seen = _console(_chromium(tmp_path / "p0", "--dump-dom", bad.as_uri()).stderr)
    assert any("boom" in line for line in seen) and any("nope" in line for line in seen)

    dom = _chromium(tmp_path / "p1", "--virtual-time-budget=5000", "--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []
    drawn = re.findall(r'data-h3-cell="([0-9a-f]+)"', dom.stdout)
    assert sorted(drawn) == sorted(_catalog_cells(fleet_store.store, NEWER))
    assert re.search(r"class=\"[^\"]*js-plotly-plot", dom.stdout)

    shot = tmp_path / "report.png"
    snap = _chromium(
        tmp_path / "p2", f"--screenshot={shot}", "--window-size=1400,2000", out.as_uri()
    )
    assert snap.returncode == 0 and _console(snap.stderr) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
