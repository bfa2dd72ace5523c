"""``ingest_drive()``: the single pass over one drive, and its commit to the store and catalog.

One pass reads every input in log-time order, sends each message to its topic's writer as
raw bytes, indexes video frames and sensor messages, gathers topic statistics, and hands
decoded messages to the taggers. Then the drive's folder is moved into place and its rows
are committed to the catalog in one transaction.
"""

from __future__ import annotations

import errno
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from drivecat import DrivecatError, __version__
from drivecat.catalog import db, locks
from drivecat.catalog import store as store_fs
from drivecat.catalog.errors import CatalogError
from drivecat.ingest.config import Config, load_config
from drivecat.ingest.drive import DriveInputs, find_inputs, hash_inputs
from drivecat.ingest.drive_split import split_by_time
from drivecat.ingest.errors import IngestError
from drivecat.ingest.identity import UNKNOWN, DeviceIdentity, default_drive_id, resolve_identity
from drivecat.ingest.parallel import SingleProcessAgain
from drivecat.ingest.pass_result import PassResult
from drivecat.ingest.passes import DrivePass, StopPass
from drivecat.ingest.run_rows import build_manifest, build_rows, input_sizes
from drivecat.ingest.sources import Channel, Source, open_source

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class IngestOptions:
    store: Path
    config: Config = field(default_factory=Config)
    device: DeviceIdentity = field(default_factory=DeviceIdentity)
    drive_id: str | None = None
    force: bool = False
    # Processes that write output files (ingest.parallel); None: one per core. 1 keeps the
    # whole pass in this process.
    jobs: int | None = None

    @property
    def job_count(self) -> int:
        return max(1, self.jobs if self.jobs is not None else len(os.sched_getaffinity(0)))


@dataclass(frozen=True)
class IngestResult:
    """What happened to one drive. ``status``: ingested, replaced, unchanged or failed."""

    path: str
    status: str
    drive_id: str | None = None
    message_count: int = 0
    input_bytes: int = 0
    files: int = 0
    seconds: float = 0.0
    drive_status: str | None = None
    warnings: tuple[str, ...] = ()
    error: str | None = None
    # the full traceback of an unexpected failure (a bug, not bad input); not in as_dict
    traceback: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in self.__dict__.items()
            if k != "traceback"
        }


def failed(path: Path | str, err: BaseException) -> IngestResult:
    """The ``failed`` result of a drive whose ingest raised ``err``.

    A DrivecatError already names the file and the reason. Anything else is unexpected
    (a bug, or a library failing on input nobody foresaw): it still fails only this drive,
    with one line naming the path and the exception, and keeps its traceback for --debug.
    """
    if isinstance(err, DrivecatError):
        return IngestResult(str(path), "failed", error=str(err))
    reason = " ".join(str(err).split())
    name = type(err).__name__
    text = f"{path}: unexpected error: {name}: {reason}" if reason else f"{path}: {name}"
    tb = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return IngestResult(str(path), "failed", error=text, traceback=tb)


#: Errors that say the store cannot take more, whatever file was being written.
_STORE_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def _os_error(err: OSError, path: Path, store: Path) -> IngestError:
    """One line for an OSError met while ingesting ``path`` into ``store``: a full or
    read-only store names the store, other errors the file they name (else the input)."""
    reason = err.strerror or str(err)
    if err.errno in _STORE_FULL:
        return IngestError(f"{store}: cannot write drive of {path}: {reason}")
    return IngestError(f"{err.filename or path}: {reason}")


def _open_sources(inputs: DriveInputs) -> list[Source]:
    pool: dict[Channel, Channel] = {}  # a topic split across recordings stays one channel
    return [open_source(p, pool) for p in inputs.recordings]


def _warnings(result: PassResult) -> list[str]:
    out = []
    if result.identity.device_version == UNKNOWN:
        out.append("no device version found (flags, drive.json, MCAP metadata): marked 'unknown'")
    if result.recovered:
        out.append(f"truncated input recovered: {result.lost_detail}")
    out.extend(result.warnings)
    return out


class _Fingerprint:
    """Hashes the inputs on a thread while the pass runs; says early if they are known.

    ``known`` maps fingerprints to drive ids already in the catalog: a snapshot taken by
    whoever holds the catalog, so a worker never needs to open it.
    """

    def __init__(self, inputs: DriveInputs, known: Mapping[str, str], force: bool):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drivecat-hash")
        self._future = self._pool.submit(hash_inputs, inputs)
        self._known = known
        self._force = force

    def existing(self) -> str | None:
        """The drive already ingested from these inputs, once the hashes are in."""
        if not self._future.done() or self._force:
            return None
        return self._known.get(self._future.result().fingerprint)

    def result(self) -> DriveInputs:
        try:
            return self._future.result()
        finally:
            self._pool.shutdown()


@dataclass(frozen=True)
class Prepared:
    """A drive built in a temporary folder of the store, with its catalog rows, not yet
    installed. Picklable, so a worker can hand it to the process that owns the catalog."""

    path: str
    tmp: Path | None
    drive_id: str | None
    fingerprint: str
    rows: dict[str, pa.Table] = field(default_factory=dict)
    result: IngestResult | None = None


def prepare_drives(
    path: Path,
    options: IngestOptions,
    known: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> list[Prepared]:
    """The worker's half for everything at ``path``: usually one drive, several when its
    recordings are more than ``drive_gap_seconds`` apart (see ``ingest.drive_split``), in
    time order. Raises DrivecatError naming the file, leaving nothing behind."""
    found = find_inputs(Path(path), hash_files=False)
    parts = split_by_time(found, int(options.config.drive_gap_seconds * 1e9))
    prepared: list[Prepared] = []
    try:
        for k, part in enumerate(parts):
            prepared.append(prepare_drive(path, options, known, progress, part=(k, part)))
    except BaseException:
        for done in prepared:
            if done.tmp is not None:
                store_fs.shutil.rmtree(done.tmp, ignore_errors=True)
        raise
    return prepared


def prepare_drive(
    path: Path,
    options: IngestOptions,
    known: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    *,
    part: tuple[int, DriveInputs] | None = None,
) -> Prepared:
    """The worker's half: one pass over the drive into ``<store>/drives/.tmp-*``.

    ``part`` is (its index, its inputs) when ``path`` holds several drives (see
    ``prepare_drives``); otherwise every recording at ``path`` is one drive.
    Never opens the catalog. ``known`` (fingerprint -> drive id) lets a re-run stop early.
    Raises DrivecatError naming the file for bad input, leaving nothing behind.
    """
    try:
        return _prepare(path, options, known, progress, part)
    except OSError as err:  # disk full, permissions: whatever was half-written is gone
        raise _os_error(err, Path(path), Path(options.store)) from None


def _prepare(
    path: Path,
    options: IngestOptions,
    known: Mapping[str, str] | None,
    progress: Progress | None,
    part: tuple[int, DriveInputs] | None,
) -> Prepared:
    started = time.monotonic()
    store = Path(options.store)
    index, found = part if part is not None else (0, find_inputs(Path(path), hash_files=False))
    _check_named_drive_id(found, options)
    fingerprint = _Fingerprint(found, known or {}, options.force)
    tmp = store_fs.new_tmp_dir(store)
    try:
        passed: PassResult | None = _run_pass(
            tmp, found, options, progress, lambda: bool(fingerprint.existing())
        )
    except StopPass:
        passed = None
    except BaseException:
        store_fs.shutil.rmtree(tmp, ignore_errors=True)
        fingerprint.result()  # an unreadable input is the error to report, if there is one
        raise
    inputs = fingerprint.result()
    existing = fingerprint.existing()
    if passed is None or existing:
        store_fs.shutil.rmtree(tmp, ignore_errors=True)
        unchanged = IngestResult(str(path), "unchanged", drive_id=existing)
        return Prepared(str(path), None, existing, inputs.fingerprint, result=unchanged)
    drive_id, rows = _finish(store, tmp, passed, inputs, options, index)
    result = IngestResult(
        path=str(path),
        status="ingested",
        drive_id=drive_id,
        message_count=passed.message_count,
        input_bytes=sum(input_sizes(inputs).values()),
        files=len(passed.files),
        seconds=round(time.monotonic() - started, 3),
        drive_status=passed.status.value,
        warnings=(*found.skipped, *_warnings(passed)),
    )
    return Prepared(str(path), tmp, drive_id, inputs.fingerprint, rows, result)


def commit_prepared(
    con: duckdb.DuckDBPyConnection, store: Path, prepared: Prepared, force: bool
) -> IngestResult:
    """The catalog owner's half: move the drive into place and commit its rows at once.

    The caller holds the store's writer lock (:func:`commit_locked`). The fingerprint is
    checked again inside the commit's transaction: another ingest may have committed the
    same drive while this one ran its pass without the catalog.
    """
    assert prepared.result is not None
    if prepared.tmp is None or prepared.drive_id is None:
        return prepared.result
    drive_id = prepared.drive_id
    locks.release_folder(prepared.tmp)
    try:
        with db.transaction(con):
            same_inputs = con.execute(
                "SELECT drive_id FROM drives WHERE fingerprint = ? AND drive_id <> ? "
                "ORDER BY drive_id",
                [prepared.fingerprint, drive_id],
            ).fetchall()
            if same_inputs:  # --force with another drive id: a second copy, never a rename
                raise IngestError(
                    f"{prepared.path}: these inputs are already ingested as drive "
                    f"{same_inputs[0][0]}; --force replaces that drive under its own id, it "
                    f"does not copy it to {drive_id}"
                )
            known = db.drive_fingerprint(con, drive_id)
            if known == prepared.fingerprint and not force:  # committed meanwhile
                store_fs.shutil.rmtree(prepared.tmp, ignore_errors=True)
                return replace(prepared.result, status="unchanged")
            if known is not None and not force:
                raise IngestError(
                    f"{prepared.path}: drive {drive_id} is already in the catalog with other "
                    "inputs; use --force to replace it"
                )
            trash = store_fs.install(store, prepared.tmp, drive_id)
            db.write_drive_rows(con, prepared.rows)
    except BaseException:
        store_fs.shutil.rmtree(prepared.tmp, ignore_errors=True)
        raise
    if trash is not None:
        store_fs.shutil.rmtree(trash, ignore_errors=True)
    return replace(prepared.result, status="replaced" if known is not None else "ingested")


def commit_locked(
    store: Path, prepared: Prepared, force: bool, lock_wait_s: float | None = None
) -> IngestResult:
    """:func:`commit_prepared` under the store's writer lock, on a connection opened for
    the commit alone: readers and other ingests wait seconds, not a whole pass."""
    if prepared.tmp is None:
        assert prepared.result is not None
        return prepared.result
    try:
        with locks.store_lock(store, f"ingest commit of {prepared.drive_id}", lock_wait_s):
            con = db.connect(store)
            try:
                return commit_prepared(con, store, prepared, force)
            finally:
                con.close()
    except BaseException:
        store_fs.shutil.rmtree(prepared.tmp, ignore_errors=True)
        raise


def known_fingerprints(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    rows = con.execute("SELECT fingerprint, drive_id FROM drives").fetchall()
    return {str(fp): str(drive_id) for fp, drive_id in rows}


def sweep_and_snapshot(store: Path, lock_wait_s: float | None = None) -> dict[str, str]:
    """Clean up after interrupted runs and return the known fingerprints, holding the
    store's lock and the catalog only for that. Creates the store on first use."""
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise IngestError(f"{store}: cannot create the store: {err.strerror}") from None
    with locks.store_lock(store, "ingest sweep", lock_wait_s):
        con = db.connect(store)
        try:
            store_fs.sweep(store, con)
            return known_fingerprints(con)
        finally:
            con.close()


def ingest_drives(
    path: Path, options: IngestOptions, progress: Progress | None = None
) -> list[IngestResult]:
    """Ingest one offload folder or recording into ``options.store``: one drive, or one per
    group of recordings more than ``drive_gap_seconds`` apart; a result for each.

    Re-ingesting inputs with a fingerprint already in the catalog changes nothing, unless
    ``force``: then the drive is rebuilt and replaced atomically. Raises DrivecatError
    (naming the file) for input that cannot be ingested; nothing is then left behind.
    The catalog is opened twice, briefly: for the fingerprints before the pass, and for
    the commit after it; the pass itself runs without it.
    """
    store = Path(options.store)
    check_drive_id_option(options.drive_id)
    known = sweep_and_snapshot(store)
    prepared = prepare_drives(path, options, known, progress)
    return [commit_locked(store, p, options.force) for p in prepared]


def check_drive_id_option(drive_id: str | None) -> None:
    if drive_id is not None:
        try:
            store_fs.check_drive_id(drive_id)
        except CatalogError as err:
            raise IngestError(f"--drive-id: {err}") from None


def _check_named_drive_id(inputs: DriveInputs, options: IngestOptions) -> None:
    """A drive id the user chose (``--drive-id``, drive.json) must name a folder; checked
    before the pass, so that a bad one costs nothing and leaves nothing behind."""
    check_drive_id_option(options.drive_id)
    named = inputs.drive_json.get("drive_id")
    if not options.drive_id and named:  # _finish takes it as str(named)
        try:
            store_fs.check_drive_id(str(named))
        except CatalogError as err:
            raise IngestError(f"{inputs.root / 'drive.json'}: drive_id: {err}") from None


def ingest_drive(
    path: Path, options: IngestOptions, progress: Progress | None = None
) -> IngestResult:
    """``ingest_drives`` for a path that holds one drive: its result. When the recordings
    there make several drives, all are ingested and the first one's result is returned."""
    return ingest_drives(path, options, progress)[0]


def _run_pass(
    tmp: Path,
    inputs: DriveInputs,
    options: IngestOptions,
    progress: Progress | None,
    should_stop: Callable[[], bool],
) -> PassResult:
    jobs = options.job_count
    while True:
        sources = _open_sources(inputs)
        metadata = [s.metadata() for s in sources]
        identity = resolve_identity(options.device, inputs.drive_json, metadata)
        weigh = options.jobs is None  # the default: workers where the plan says they pay
        drive_pass = DrivePass(tmp, identity, options.config, inputs, sources, jobs, weigh)
        try:
            return drive_pass.run(drive_pass.messages(), progress, should_stop)
        except SingleProcessAgain:
            if jobs == 1:
                raise
            jobs = 1  # what the workers met needs the whole stream: read it in one process
            for entry in tmp.iterdir():
                if entry.name != locks.FOLDER_LOCK:
                    store_fs.shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _finish(
    store: Path,
    tmp: Path,
    passed: PassResult,
    inputs: DriveInputs,
    options: IngestOptions,
    index: int = 0,
) -> tuple[str, dict[str, pa.Table]]:
    """Name the drive, and write its rows and manifest into its folder (still temporary).

    A name given by the flags or ``drive.json`` names the first drive of a folder that
    holds several; the next ones are ``<name>_2``, ``<name>_3``... (default names differ
    by their start time already)."""
    try:
        given = options.drive_id or str(inputs.drive_json.get("drive_id") or "")
        if given and index:
            given = f"{given}_{index + 1}"
        drive_id = given or default_drive_id(passed.identity, passed.start_ns, inputs.fingerprint)
        store_fs.drive_dir(store, drive_id)  # validates the id before anything moves
        rows = build_rows(passed, drive_id, inputs, __version__)
        entries = store_fs.write_rows(tmp, rows)
        store_fs.write_manifest(tmp, build_manifest(passed, drive_id, inputs, entries))
    except BaseException:
        store_fs.shutil.rmtree(tmp, ignore_errors=True)
        raise
    return drive_id, rows


def ingest_many(
    paths: Sequence[Path], options: IngestOptions, progress: Progress | None = None
) -> Iterator[IngestResult]:
    """Ingest each path in turn. A drive that fails, for whatever reason, yields a ``failed``
    result (see :func:`failed`); the rest go on."""
    for path in paths:
        try:
            yield from ingest_drives(path, options, progress)
        except Exception as err:  # one drive's failure, expected or not, is that drive's
            yield failed(path, err)


def load_options(
    store: Path,
    config_path: Path | None,
    device: DeviceIdentity,
    force: bool,
    drive_id: str | None = None,
    jobs: int | None = None,
) -> IngestOptions:
    check_drive_id_option(drive_id)
    return IngestOptions(
        store=store,
        config=load_config(config_path, store),
        device=device,
        force=force,
        drive_id=drive_id,
        jobs=jobs,
    )
