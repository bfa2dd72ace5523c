"""``catalog verify``: the store's ``mcap doctor``. Re-check every drive folder against its
manifest, and the folders against the catalog.

For each drive folder (``<store>/drives/<drive_id>/``):

- every file its ``manifest.json`` lists (the MCAP files, the catalog rows, and anything
  else listed with a ``path`` and a ``sha256``, such as kept attachments) must exist, have
  the recorded size and sha256 (``missing``, ``changed``);
- every ``.mcap`` file must open with the mcap library's seeking reader and have a valid
  summary: a footer, a summary section and statistics (``unreadable``);
- no other file may be there (``extra``): drivecat writes nothing a manifest does not list.

And across the store: a drive in the catalog without its folder is ``missing``, a drive
folder the catalog does not know is ``not_in_catalog``, and a folder left by an interrupted
run (``.tmp-*``, ``.trash-*``) is ``extra``. Nothing is modified. Paths are relative to the
store; ``inputs`` in a manifest name files of the offload folder, not of the store, and are
not checked.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from drivecat.catalog import db
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.store import MANIFEST, drive_dir, drives_dir, read_manifest
from drivecat.files import sha256_file


class Finding(StrEnum):
    """What is wrong with one file or drive."""

    MISSING = "missing"  # listed (manifest or catalog) but not on disk
    CHANGED = "changed"  # size or sha256 differs from the manifest
    UNREADABLE = "unreadable"  # an MCAP that does not open with a valid summary
    EXTRA = "extra"  # on disk but listed nowhere
    BAD_MANIFEST = "bad_manifest"  # manifest.json missing or unreadable
    NOT_IN_CATALOG = "not_in_catalog"  # a complete drive folder the catalog does not list


@dataclass(frozen=True)
class Problem:
    finding: Finding
    path: str  # relative to the store
    detail: str

    def line(self) -> str:
        return f"{self.finding.value}: {self.path}: {self.detail}"


@dataclass(frozen=True)
class VerifyReport:
    store: Path
    drives: tuple[str, ...]
    files_checked: int
    bytes_checked: int
    problems: tuple[Problem, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "store": str(self.store),
            "drives": list(self.drives),
            "files_checked": self.files_checked,
            "bytes_checked": self.bytes_checked,
            "ok": self.ok,
            "problems": [
                {"finding": p.finding.value, "path": p.path, "detail": p.detail}
                for p in self.problems
            ],
        }


def listed_files(manifest: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every entry of a manifest that names a stored file: a dict with ``path`` and
    ``sha256``, wherever it is, except under ``inputs`` (files of the offload folder)."""

    def walk(value: Any) -> Iterator[dict[str, Any]]:
        if isinstance(value, dict):
            if isinstance(value.get("path"), str) and isinstance(value.get("sha256"), str):
                yield value
            for key, item in value.items():
                if key != "inputs":
                    yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    return walk(dict(manifest))


def mcap_summary_problem(path: Path) -> str | None:
    """Why ``path`` does not open as an MCAP with a valid summary, or None when it does."""
    from mcap.exceptions import McapError
    from mcap.reader import SeekingReader

    try:
        with path.open("rb") as stream:
            reader = SeekingReader(stream)
            summary = reader.get_summary()
            if summary is None:
                return "no summary section (the file was not closed properly)"
            if summary.statistics is None:
                return "the summary has no statistics record"
            # the header and footer are read and checked too; a summary that points
            # outside the file or at garbage fails above or here
            reader.get_header()
    except (McapError, OSError, ValueError, EOFError, KeyError, AssertionError) as err:
        return f"does not open as MCAP: {err or type(err).__name__}"
    return None


def verify_drive(store: Path, folder: Path) -> tuple[int, int, list[Problem]]:
    """Check one drive folder: (files checked, bytes hashed, problems)."""
    rel = folder.relative_to(store)
    try:
        manifest = read_manifest(folder)
    except CatalogError as err:
        reason = "no manifest.json" if not (folder / MANIFEST).exists() else str(err)
        return 0, 0, [Problem(Finding.BAD_MANIFEST, str(rel / MANIFEST), reason)]
    problems: list[Problem] = []
    expected: set[Path] = {folder / MANIFEST}
    checked = hashed = 0
    for entry in listed_files(manifest):
        path = folder / entry["path"]
        expected.add(path)
        shown = str(rel / entry["path"])
        if not path.is_file():
            problems.append(Problem(Finding.MISSING, shown, "listed in the manifest, not found"))
            continue
        checked += 1
        size = path.stat().st_size
        if isinstance(entry.get("bytes"), int) and size != entry["bytes"]:
            detail = f"{size} bytes, the manifest says {entry['bytes']}"
            problems.append(Problem(Finding.CHANGED, shown, detail))
            continue
        try:
            digest = sha256_file(path)
        except OSError as err:
            problems.append(Problem(Finding.UNREADABLE, shown, f"cannot read: {err}"))
            continue
        hashed += size
        if digest != entry["sha256"]:
            detail = f"sha256 {digest[:12]}..., the manifest says {entry['sha256'][:12]}..."
            problems.append(Problem(Finding.CHANGED, shown, detail))
        if path.suffix == ".mcap" and (why := mcap_summary_problem(path)) is not None:
            problems.append(Problem(Finding.UNREADABLE, shown, why))
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p not in expected):
        detail = "not listed in the manifest"
        problems.append(Problem(Finding.EXTRA, str(path.relative_to(store)), detail))
    return checked, hashed, problems


def _catalog_drives(store: Path) -> set[str] | None:
    if not db.catalog_path(store).exists():
        return None
    con = db.connect(store, read_only=True)
    try:
        return {str(r[0]) for r in con.execute("SELECT drive_id FROM drives").fetchall()}
    finally:
        con.close()


def verify(store: Path, drive_id: str | None = None) -> VerifyReport:
    """Check the store (or one drive of it). CatalogError when there is no store, or the
    drive is neither in the catalog nor on disk."""
    store = Path(store)
    root = drives_dir(store)
    if not root.is_dir() and not db.catalog_path(store).exists():
        raise CatalogError(f"{store}: not a drivecat store (no drives/ and no catalog.duckdb)")
    known = _catalog_drives(store)
    problems: list[Problem] = []
    if drive_id is not None:
        folder = drive_dir(store, drive_id)
        if not folder.is_dir() and (known is None or drive_id not in known):
            raise CatalogError(f"{store}: no drive {drive_id!r} in the catalog or on disk")
        folders = [folder] if folder.is_dir() else []
        names = {drive_id}
    else:
        entries = sorted(root.iterdir()) if root.is_dir() else []
        folders = [e for e in entries if e.is_dir() and not e.name.startswith(".")]
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir():
                what = "left by an interrupted run" if entry.is_dir() else "not a drive folder"
                problems.append(Problem(Finding.EXTRA, str(entry.relative_to(store)), what))
        names = {f.name for f in folders} | (known or set())
    checked = hashed = 0
    for name in sorted(names):
        folder = root / name
        if not folder.is_dir():
            problems.append(
                Problem(Finding.MISSING, str(folder.relative_to(store)), "in the catalog")
            )
            continue
        if known is not None and name not in known:
            problems.append(
                Problem(
                    Finding.NOT_IN_CATALOG,
                    str(folder.relative_to(store)),
                    "a drive folder the catalog does not list (`catalog rebuild` adds it)",
                )
            )
        n, size, found = verify_drive(store, folder)
        checked, hashed = checked + n, hashed + size
        problems.extend(found)
    return VerifyReport(store, tuple(sorted(names)), checked, hashed, tuple(problems))
