"""The catalog and the files around it, against faults and tampering (issue 17).

Every case is met the way a user meets it, through the CLI, and checked on the file system:
what must survive is compared byte for byte, what must not appear is looked for. Read-only
folders and a full disk are real: the command runs in a user namespace (``unshare -rm``)
where a folder is bind-mounted read-only or a tiny tmpfs is mounted, because root ignores
file modes and a monkeypatched write would only test the patch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

from drivecat.catalog import journal, locks
from drivecat.catalog import store as store_fs
from drivecat.catalog.errors import CatalogBusyError
from drivecat.cli.main import drivecat
from drivecat.ingest.run import IngestOptions, ingest_drive
from drivecat.naming import drive_id_problem

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> Result:
    return CliRunner().invoke(drivecat, list(args))


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links not followed) with the sha256 of its bytes."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _one_line_error(result: Result, *parts: str) -> None:
    assert result.stderr.startswith("Error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    for part in parts:
        assert part in result.stderr, result.stderr


@pytest.fixture(scope="module")
def base_store(
    tmp_path_factory: pytest.TempPathFactory, small_drive: Path, sidecar_drive: Path
) -> Path:
    path = tmp_path_factory.mktemp("safety_store")
    for drive in (small_drive, sidecar_drive):
        assert ingest_drive(drive, IngestOptions(store=path)).status == "ingested"
    return path


@pytest.fixture
def store(base_store: Path, tmp_path: Path) -> Path:
    """A private copy of the two-drive store, to export from, damage or rebuild."""
    copy = tmp_path / "store"
    shutil.copytree(base_store, copy)
    return copy


def _drive_ids(store: Path) -> list[str]:
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT drive_id FROM drives ORDER BY 1").fetchall()]
    finally:
        con.close()


def _export(store: Path, out: Path, *extra: str) -> Result:
    return cli(
        "catalog", "export", "--store", str(store), "--where", "seg_idx = 0",
        "--format", "mcap", "--out", str(out), *extra,
    )  # fmt: skip


# ---------------------------------------------------------------------- the drive id rule


@pytest.mark.parametrize(
    ("drive_id", "ok"),
    [
        ("veh042_2026-06-15T173000Z", True),
        ("é" * 100, True),  # 200 bytes of UTF-8
        ("é" * 100 + "x", False),
        ("", False),
        (".", False),
        ("..", False),
        (".hidden", False),
        ("a/b", False),
        ("a\\b", False),
        ("a\x00b", False),
        ("line\nbreak", False),
        ("\udcff", False),  # not encodable as UTF-8
    ],
)
def test_drive_id_rule(drive_id: str, ok: bool) -> None:
    assert (drive_id_problem(drive_id) is None) is ok


@pytest.mark.parametrize("bad", ["x" * 256, "a\x00b", "../escape"])
def test_ingest_refuses_a_bad_drive_id_and_leaves_nothing(
    small_drive: Path, tmp_path: Path, bad: str
) -> None:
    # --drive-id: a usage error before anything is done
    store = tmp_path / "store"
    result = cli("ingest", "run", str(small_drive), "--store", str(store), "--drive-id", bad)
    assert result.exit_code == 2
    _one_line_error(result, "--drive-id: invalid drive id")
    assert not store.exists() or not list((store / "drives").glob("*"))
    # drive.json: that drive fails with one line naming the file, nothing left behind
    offload = tmp_path / "offload"
    shutil.copytree(small_drive, offload)
    (offload / "drive.json").write_text(json.dumps({"drive_id": bad}))
    result = cli("ingest", "run", str(offload), "--store", str(store))
    assert result.exit_code == 2  # every drive of the run failed on its input
    _one_line_error(result, f"{offload / 'drive.json'}: drive_id: invalid drive id")
    assert not (store / "drives").exists() or list((store / "drives").iterdir()) == []


# ---------------------------------------------------------------------- export --force, --out


def test_export_force_replaces_only_its_own_exports(store: Path, tmp_path: Path) -> None:
    # someone's folder, the store itself, a folder holding the store: never deleted
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    before_store = _tree(store)
    for out, reason in (
        (mine, "--force replaces only an export this store recorded"),
        (store, "--out must lie outside the store"),
        (store / "drives", "--out must lie outside the store"),
        (tmp_path, "--out must lie outside the store"),
    ):
        result = _export(store, out, "--force")
        assert result.exit_code == 2, result.output
        _one_line_error(result, reason)
    assert (mine / "thesis.tex").read_text() == "years of work"
    # a forged marker (an id this store never recorded) does not make a folder replaceable
    (mine / ".drivecat-export").write_text(json.dumps({"export_id": "0" * 32}))
    assert _export(store, mine, "--force").exit_code == 2
    assert (mine / "thesis.tex").exists()
    after = _tree(store)
    assert {k: v for k, v in after.items() if k in before_store} == before_store
    # a previous export is replaced; each is journaled as the catalog records it
    out = tmp_path / "out"
    first = json.loads(_export(store, out, "--json").stdout)
    second = json.loads(_export(store, out, "--force", "--json").stdout)
    assert json.loads((out / ".drivecat-export").read_text())["export_id"] == second["export_id"]
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT export_id, out, sample_count FROM exports ORDER BY created_at"
    ).fetchall()
    con.close()
    assert [r[0] for r in rows] == [first["export_id"], second["export_id"]]
    for export_id, out_path, count in rows:
        doc = json.loads((store / "journal" / "exports" / f"{export_id}.json").read_text())
        assert (doc["rows"][0]["out"], doc["rows"][0]["sample_count"]) == (out_path, count)


def test_killed_exports_are_swept_but_running_ones_are_not(store: Path, tmp_path: Path) -> None:
    parent = tmp_path / "exports"
    parent.mkdir()
    dead = parent / f".old.tmp-{'a' * 32}"  # a builder that was killed: its lock is free
    dead.mkdir()
    (dead / locks.FOLDER_LOCK).write_text("PID 1\n")
    (dead / "big.mcap").write_bytes(b"x" * 1000)
    legacy = parent / f".older.tmp-{'b' * 32}"  # an older drivecat's, unchanged for 2 h
    legacy.mkdir()
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    fresh = parent / f".new.tmp-{'c' * 32}"  # just made, not yet marked
    fresh.mkdir()
    running = parent / f".busy.tmp-{'d' * 32}"
    running.mkdir()
    not_ours = [parent / ".x.tmp-short", parent / f"x.tmp-{'e' * 32}", parent / ".keep"]
    for path in not_ours:
        path.mkdir()
    holder = subprocess.Popen(  # another process, building `running` right now
        [sys.executable, "-c", "import sys, time\nfrom drivecat.catalog import locks\n"
         f"locks.hold_folder({str(running)!r})\nprint('held', flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert _export(store, parent / "out").exit_code == 0
        left = sorted(p.name for p in parent.iterdir())
    finally:
        holder.kill()
        holder.wait()
    assert left == sorted(["out", fresh.name, running.name, *(p.name for p in not_ours)])


# ---------------------------------------------------------------------------- tampering


def test_tampered_catalog_rows_never_steer_reads_or_writes(store: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.mcap"
    shutil.copy(next((store / "drives").rglob("*.mcap")), secret)
    drive_id = _drive_ids(store)[0]
    con = duckdb.connect(str(store / "catalog.duckdb"))
    escape = f"drives/{drive_id}/../../../secret.mcap"
    con.execute("UPDATE files SET path = ? WHERE drive_id = ?", [escape, drive_id])
    con.close()
    result = _export(store, tmp_path / "out")
    assert result.exit_code == 2
    _one_line_error(result, "store file is outside")
    assert not (tmp_path / "out").exists()
    # a drive id that would name files outside --out
    con = duckdb.connect(str(store / "catalog.duckdb"))
    con.execute("UPDATE segments SET drive_id = '../../../evil' WHERE drive_id = ?", [drive_id])
    con.close()
    result = cli(
        "catalog", "export", "--store", str(store), "--where", "drive_id LIKE '%evil'",
        "--format", "mcap", "--out", str(tmp_path / "deep" / "out"),
    )  # fmt: skip
    assert result.exit_code == 2
    _one_line_error(result, "invalid drive id")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.mcap", "store"]


def test_rebuild_skips_damaged_drives_and_restores_the_journal(store: Path, tmp_path: Path) -> None:
    good, bad = _drive_ids(store)
    out = tmp_path / "out"
    exported = json.loads(_export(store, out, "--json").stdout)
    label = {
        "dataset": "rain", "sample_id": "s1", "frame": "f.png", "labeler": "ann",
        "class": "pedestrian", "box": [1.0, 2.0, 3.0, 4.0], "attributes": "{}",
        "imported_at": "2026-06-15T17:30:00+00:00",
    }  # fmt: skip
    journal.record_labels(store, [label])
    # one drive's rows were edited after ingest: its sha256 no longer matches the manifest
    segments = store / "drives" / bad / "catalog" / "segments.parquet"
    segments.write_bytes(segments.read_bytes()[:-1] + b"\0")
    (store / "catalog.duckdb").unlink()
    result = cli("catalog", "rebuild", "--store", str(store), "--json")
    assert result.exit_code == 1
    _one_line_error(result, f"{store / 'drives' / bad}: skipped", "differs from the manifest")
    report = json.loads(result.stdout)
    assert report["drives"] == [good] and report["exports"] == 1 and report["labels"] == 1
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT export_id, out FROM exports").fetchall() == [
        (exported["export_id"], str(out))
    ]
    assert con.execute("SELECT class, box FROM labels").fetchall() == [
        ("pedestrian", (1.0, 2.0, 3.0, 4.0))
    ]
    con.close()
    # the export is still replaceable: the rebuilt catalog knows it
    assert _export(store, out, "--force", "--where", "seg_idx = 1").exit_code == 0


def test_rebuild_refuses_manifest_paths_outside_the_drive(store: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.parquet"
    drive = store / "drives" / _drive_ids(store)[0]
    shutil.copy(drive / "catalog" / "topics.parquet", victim)
    manifest = json.loads((drive / "manifest.json").read_text())
    manifest["catalog"]["topics"]["path"] = "../../../victim.parquet"
    manifest["catalog"]["topics"]["sha256"] = hashlib.sha256(victim.read_bytes()).hexdigest()
    (drive / "manifest.json").write_text(json.dumps(manifest))
    result = cli("catalog", "rebuild", "--store", str(store))
    assert result.exit_code == 1
    _one_line_error(result, "skipped", "is outside")


def test_rebuild_refuses_a_store_without_drives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "not_a_store"
    store.mkdir()
    (store / "catalog.duckdb").write_bytes(b"precious")
    result = cli("catalog", "rebuild", "--store", str(store))
    assert result.exit_code == 2
    _one_line_error(result, "no drives/ folder here")
    assert (store / "catalog.duckdb").read_bytes() == b"precious"
    # an empty --store would have meant the current folder
    monkeypatch.chdir(tmp_path)
    for args in (["catalog", "rebuild"], ["ingest", "run", str(tmp_path)], ["catalog", "drives"]):
        result = cli(*args, "--store", "")
        assert result.exit_code == 2 and "must name the store folder" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_store"]


# ---------------------------------------------------------------------------- publish


def test_publish_touches_nothing_outside_parquet(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "pub"
    assert cli("catalog", "publish", "--store", str(store), "--parquet", str(out)).exit_code == 0
    outside = tmp_path / "outside"
    (outside / "folder").mkdir(parents=True)
    (outside / "file.parquet").write_bytes(b"keep")
    (outside / "folder" / "x").write_text("keep")
    state_path = out / "_published.json"
    good = state_path.read_text()
    drive_id = _drive_ids(store)[0]
    for tampered in (
        {drive_id: {"fingerprint": "x", "part": "../../../outside"}},
        {"../outside/file": {"fingerprint": "x", "part": "date=2026-01-01/device_version=1"}},
        {"gone": {"fingerprint": "x", "part": "date=2026-01-01/device_version=.."}},
        {"gone": "not an entry"},
    ):
        state_path.write_text(json.dumps(tampered))
        result = cli("catalog", "publish", "--store", str(store), "--parquet", str(out))
        assert result.exit_code == 2
        _one_line_error(result, str(state_path))
    state_path.write_text("{not json")
    result = cli("catalog", "publish", "--store", str(store), "--parquet", str(out))
    assert result.exit_code == 2
    _one_line_error(result, f"{state_path}: cannot read the publish state")
    # a table folder that is a link out of --parquet is neither written nor emptied
    state_path.write_text(good)
    shutil.rmtree(out / "topics")
    (out / "topics").symlink_to(outside, target_is_directory=True)
    state = json.loads(good)
    state[drive_id]["fingerprint"] = "changed"  # forces a rewrite of that drive
    state_path.write_text(json.dumps(state))
    result = cli("catalog", "publish", "--store", str(store), "--parquet", str(out))
    assert result.exit_code == 2
    _one_line_error(result, "outside --parquet")
    assert _tree(outside) == {
        "file.parquet": hashlib.sha256(b"keep").hexdigest(),
        "folder/x": hashlib.sha256(b"keep").hexdigest(),
    }


# ---------------------------------------------------------------------------- the store lock


def test_a_second_writer_waits_for_the_store_lock(store: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom drivecat.catalog import locks\n"
         f"with locks.store_lock({str(store)!r}, 'test holder'):\n"
         "    print('held', flush=True)\n    time.sleep(float(input()))"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CatalogBusyError, match=r"locked by another drivecat process \(PID"):
            store_fs.rebuild(store, lock_wait_s=0.3)
        holder.stdin.write("1.0\n")
        holder.stdin.flush()
        started = time.monotonic()
        report = store_fs.rebuild(store)  # waits for the holder, then runs
        assert time.monotonic() - started > 0.5
        assert len(report.drive_ids) == 2
    finally:
        holder.kill()
        holder.wait()


_PAUSED_INGEST = """
import sys, time
from pathlib import Path
from drivecat.ingest import run

real = run._run_pass
def paused(*args, **kwargs):
    Path(sys.argv[3]).touch()
    while not Path(sys.argv[4]).exists():
        time.sleep(0.05)
    return real(*args, **kwargs)
run._run_pass = paused
result = run.ingest_drive(Path(sys.argv[1]), run.IngestOptions(store=Path(sys.argv[2])))
print(result.status, result.drive_id)
"""


def test_ingest_holds_the_catalog_only_for_its_commit(
    small_drive: Path, sidecar_drive: Path, tmp_path: Path
) -> None:
    """Two real processes: an ingest paused in its pass does not block queries, a second
    ingest, or a rebuild; and its drive is committed into the rebuilt catalog."""
    store = tmp_path / "store"
    started, go = tmp_path / "started", tmp_path / "go"
    paused = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_INGEST, str(small_drive), str(store), str(started), str(go)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert paused.poll() is None and time.monotonic() < deadline, paused.communicate()
            time.sleep(0.05)
        drivecat_cli = [sys.executable, "-m", "drivecat"]
        t0 = time.monotonic()
        query = subprocess.run(
            [*drivecat_cli, "catalog", "query", "SELECT count(*) AS n FROM drives",
             "--store", str(store), "--format", "json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert query.returncode == 0, query.stderr
        assert time.monotonic() - t0 < 8  # no wait for a lock (it used to wait 10 s and fail)
        second = subprocess.run(
            [*drivecat_cli, "ingest", "run", str(sidecar_drive), "--store", str(store), "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout)[0]["status"] == "ingested"
        # a rebuild while the pass runs: the paused drive must still land in the catalog
        rebuild = subprocess.run(
            [*drivecat_cli, "catalog", "rebuild", "--store", str(store)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert rebuild.returncode == 0, rebuild.stderr
        go.touch()
        stdout, stderr = paused.communicate(timeout=120)
    finally:
        paused.kill()
        paused.wait()
    assert paused.returncode == 0, stderr
    status, small_id = stdout.split()
    assert status == "ingested"
    sidecar_id = json.loads(second.stdout)[0]["drive_id"]
    assert _drive_ids(store) == sorted([small_id, sidecar_id])  # nothing lost


# ---------------------------------------------------------------------- read-only and full


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(
    not _namespaces_work(), reason="needs unshare -rm (user and mount namespaces)"
)


def _confined(
    args: list[str], read_only: tuple[Path, ...] = (), tiny: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``drivecat ARGS`` with each ``read_only`` folder bind-mounted read-only and
    ``tiny`` a 256 KiB tmpfs; prints ``LEFT:`` and what ``tiny`` holds afterwards."""
    steps = []
    for folder in read_only:
        q = shlex.quote(str(folder))
        steps.append(f"mount --bind {q} {q} && mount -o remount,bind,ro {q}")
    if tiny is not None:
        steps.append(f"mount -t tmpfs -o size=256k tmpfs {shlex.quote(str(tiny))}")
    command = shlex.join([sys.executable, "-m", "drivecat", *args])
    left = f"; rc=$?; echo LEFT:$(ls -A {shlex.quote(str(tiny))})" if tiny else "; rc=$?"
    script = " && ".join([*steps, command]) + left + "; exit $rc"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=180, env=env
    )


def _confined_one_line(done: subprocess.CompletedProcess[str], *parts: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    for part in parts:
        assert part in lines[0], done.stderr


@needs_namespaces
def test_read_only_store_and_outputs_give_one_line(store: Path, tmp_path: Path) -> None:
    parent = tmp_path / "ro_parent"
    parent.mkdir()
    export = ["catalog", "export", "--store", str(store), "--where", "seg_idx = 0",
              "--format", "mcap"]  # fmt: skip
    done = _confined([*export, "--out", str(tmp_path / "out")], read_only=(store,))
    assert done.returncode == 2
    _confined_one_line(done, str(store / "journal"), "Read-only file system")
    assert not (tmp_path / "out").exists()
    done = _confined([*export, "--out", str(parent / "out")], read_only=(parent,))
    assert done.returncode == 2
    _confined_one_line(done, str(parent), "Read-only file system")
    done = _confined(["catalog", "rebuild", "--store", str(store)], read_only=(store,))
    assert done.returncode == 2
    _confined_one_line(done, str(store), "Read-only file system")
    done = _confined(
        ["catalog", "publish", "--store", str(store), "--parquet", str(parent / "pub")],
        read_only=(parent,),
    )
    assert done.returncode == 2
    _confined_one_line(done, str(parent / "pub"), "Read-only file system")


@needs_namespaces
def test_a_full_disk_gives_one_line_and_leaves_nothing(store: Path, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    done = _confined(
        ["catalog", "export", "--store", str(store), "--where", "true", "--format", "mcap",
         "--out", str(tiny / "out")],
        tiny=tiny,
    )  # fmt: skip
    assert done.returncode == 2
    _confined_one_line(done, str(tiny), "No space left on device")
    assert done.stdout.strip().splitlines()[-1] == "LEFT:"  # the temporary folder is gone
