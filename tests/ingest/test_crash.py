"""kill -9 at any moment: no partial drive in the catalog, no broken file under a final name."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from mcap.reader import make_reader

from drivecat.ingest.run import IngestOptions, ingest_drive


def _check_store(store: Path) -> int:
    """Every catalogued drive is whole; every final .mcap opens with its summary."""
    catalog = store / "catalog.duckdb"
    count = 0
    if catalog.exists():  # it may have been killed before creating any table
        con = duckdb.connect(str(catalog), read_only=True)
        try:
            tables = {
                t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            }
            if "drives" in tables:
                count = con.execute("SELECT count(*) FROM drives").fetchone()[0]  # type: ignore[index]
                for path, sha in con.execute("SELECT path, sha256 FROM files").fetchall():
                    assert hashlib.sha256((store / path).read_bytes()).hexdigest() == sha
            else:  # created in one transaction: all tables or none
                assert not tables, tables
        finally:
            con.close()
    for path in (store / "drives").glob("[!.]*/*/[!.]*.mcap"):
        with open(path, "rb") as f:
            assert make_reader(f).get_summary() is not None, f"{path} is broken"
    return count


@pytest.mark.parametrize("delay", [0.9, 1.6, 2.4])
def test_kill_9_then_rerun_completes(small_drive: Path, tmp_path: Path, delay: float) -> None:
    store = tmp_path / "store"
    code = (
        "import sys; from pathlib import Path; from ingest.run import IngestOptions, ingest_drive;"
        "ingest_drive(Path(sys.argv[1]), IngestOptions(store=Path(sys.argv[2])))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(small_drive), str(store)])
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _check_store(store) in (0, 1) if store.exists() else True
    result = ingest_drive(small_drive, IngestOptions(store=store))
    assert result.status in ("ingested", "unchanged")
    assert _check_store(store) == 1
    leftovers = [p.name for p in (store / "drives").iterdir() if p.name.startswith(".")]
    assert leftovers == []
