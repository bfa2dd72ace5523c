"""Advisory locks: one per store for its writers, one per temporary folder while it is built.

DuckDB lets one process write the catalog, but it does not order the work around it: an
ingest moves a drive folder into place and then commits its rows, a rebuild replaces the
whole catalog file, an export renames its folder and records it. Each of those takes
:func:`store_lock` (``fcntl.flock`` on ``<store>/.lock``) for the few seconds it needs, so
they never interleave, and a second writer waits for the first instead of failing.

A temporary folder that drivecat builds (``drives/.tmp-*``, an export's
``.<name>.tmp-<id>``) holds :data:`FOLDER_LOCK`, locked for as long as its builder runs.
A later run removes such a folder only when nobody holds that lock: the builder died.
``flock`` locks go away with their process, so a killed run never leaves one stuck.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from drivecat.catalog.errors import CatalogBusyError, CatalogError

STORE_LOCK = ".lock"
FOLDER_LOCK = ".drivecat-lock"

#: How long a writer waits for another to release the store, in seconds. Commits take
#: seconds; a rebuild of a large store can take minutes.
STORE_LOCK_WAIT_S = 600.0

_held_folders: dict[Path, IO[str]] = {}


def _try_lock(f: IO[str]) -> bool:
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return ""
    return f" ({text})" if text else ""


@contextmanager
def store_lock(store: Path, purpose: str, wait_s: float | None = None) -> Iterator[None]:
    """Hold the store's writer lock for the block; wait up to ``wait_s`` for it.

    ``purpose`` (e.g. "ingest commit") is written into the lock file so that a waiting
    writer can say who holds it. CatalogBusyError after the wait; CatalogError when the
    lock file cannot be created (a read-only store, say).
    """
    path = Path(store) / STORE_LOCK
    wait = STORE_LOCK_WAIT_S if wait_s is None else wait_s
    try:
        f = open(path, "a+")  # noqa: SIM115 - closed below
    except OSError as err:
        raise CatalogError(f"{path}: cannot lock the store: {err.strerror}") from None
    try:
        deadline = time.monotonic() + wait
        pause = 0.05
        while not _try_lock(f):
            if time.monotonic() + pause > deadline:
                raise CatalogBusyError(
                    f"{path}: the store is locked by another drivecat process{_holder(path)}; "
                    f"gave up after {wait:g} s, try again when it has finished"
                )
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        try:
            f.seek(0)
            f.truncate()
            f.write(f"PID {os.getpid()}, {purpose}")
            f.flush()
        except OSError:
            pass  # the note is for people; the lock itself is held
        yield
    finally:
        f.close()  # releases the lock


def hold_folder(folder: Path) -> None:
    """Mark ``folder`` as being built by this process until :func:`release_folder`."""
    path = Path(folder) / FOLDER_LOCK
    f = open(path, "w")  # noqa: SIM115 - kept open while the folder is built
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    f.write(f"PID {os.getpid()}\n")
    f.flush()
    _held_folders[Path(folder)] = f


def release_folder(folder: Path) -> None:
    """Drop the mark of :func:`hold_folder` (whichever process set it) before the folder
    is renamed into place, so the lock file never reaches a final name."""
    f = _held_folders.pop(Path(folder), None)
    (Path(folder) / FOLDER_LOCK).unlink(missing_ok=True)
    if f is not None:
        f.close()


def folder_abandoned(folder: Path, unmarked_after_s: float = 3600.0) -> bool:
    """Whether a temporary folder's builder is gone, so the folder may be removed.

    A folder with the lock file is abandoned when nobody holds the lock. A folder without
    it was made by an older drivecat, or is a second old (made, not yet marked): it counts
    as abandoned once it has not changed for ``unmarked_after_s``.
    """
    path = Path(folder) / FOLDER_LOCK
    try:
        f = open(path)  # noqa: SIM115 - closed below
    except FileNotFoundError:
        try:
            age = time.time() - Path(folder).stat().st_mtime
        except OSError:
            return False
        return age > unmarked_after_s
    except OSError:
        return False
    try:
        return _try_lock(f)
    finally:
        f.close()


__all__ = [
    "FOLDER_LOCK",
    "STORE_LOCK",
    "STORE_LOCK_WAIT_S",
    "folder_abandoned",
    "hold_folder",
    "release_folder",
    "store_lock",
]
