"""The schema check: the ``schemas lock`` and ``schemas check`` commands and their report.

``lock_sources`` writes the canonical forms of some sources to a lock file;
``check_sources`` compares sources with a lock and returns a ``CheckResult``: every change,
classified ``breaking`` or ``compatible`` by ``schemas.diff`` (which states the rules), the
exit code that implies, and its text, JSON and GitHub renderings. The diff's public names are
importable from here too.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

from drivecat.schemas.diff import WHY, Change, Diff, Severity, diff_forms
from drivecat.schemas.sources import Location, load_sources, read_lock, write_lock


class Allow(Enum):
    """Which changes ``schemas check`` lets through: none, or the compatible ones."""

    NONE = "none"
    COMPATIBLE = "compatible"


class OutputFormat(Enum):
    TEXT = "text"
    JSON = "json"
    GITHUB = "github"


# --- the two commands -------------------------------------------------------------------------


def relock_command(
    sources: Sequence[str | Path], lock: str | Path, includes: Sequence[str | Path] = ()
) -> str:
    """The ``schemas lock`` command line that records the current state of ``sources``."""
    words = ["schemas", "lock", *map(str, sources)]
    for include in includes:
        words += ["-I", str(include)]
    return shlex.join([*words, "--lock", str(lock)])


class Locked(NamedTuple):
    lock: str
    types: int
    changed: bool


def lock_sources(
    sources: Sequence[str | Path], lock: str | Path, includes: Sequence[str | Path] = ()
) -> Locked:
    """Canonicalize ``sources`` and write them to ``lock``; bad input raises SchemaError."""
    found = load_sources(sources, includes)
    changed = write_lock(Path(lock), found.types)
    return Locked(str(lock), len(found.types), changed)


@dataclass(frozen=True)
class CheckResult:
    """What ``schemas check`` found, and the exit code it implies (0 pass, 1 fail)."""

    changes: tuple[Change, ...]
    unchecked: tuple[str, ...]
    checked: int
    allow: Allow
    lock: str
    relock: str

    @property
    def breaking(self) -> int:
        return sum(c.severity is Severity.BREAKING for c in self.changes)

    @property
    def exit_code(self) -> int:
        if not self.changes or (self.allow is Allow.COMPATIBLE and not self.breaking):
            return 0
        return 1

    def summary(self) -> str:
        """The closing line: how many changes, and what to do next."""
        n = len(self.changes)
        if not n:
            return f"No schema changes: {self.checked} types match {self.lock}."
        counted = f"{n} schema change{'s' if n != 1 else ''} ({self.breaking} breaking)"
        if self.exit_code == 0:
            return f"{counted}, allowed by --allow compatible. To record them, run: {self.relock}"
        return (
            f"{counted}. If the change is intended, agree it with the data consumers "
            f"and run: {self.relock}"
        )

    def lines(self) -> list[str]:
        notes = []
        if self.unchecked:
            shown = ", ".join(self.unchecked[:5]) + (", ..." if len(self.unchecked) > 5 else "")
            notes.append(
                f"Note: {len(self.unchecked)} locked types are not in these recordings "
                f"and were not checked: {shown}"
            )
        return [c.message for c in self.changes] + notes + [self.summary()]

    def github_lines(self) -> list[str]:
        """GitHub workflow commands: ``::error`` per change (``::warning`` when allowed)."""
        out = []
        for change in self.changes:
            allowed = self.allow is Allow.COMPATIBLE and change.severity is Severity.COMPATIBLE
            props = {"file": change.file, "line": change.line}
            props["title"] = f"{change.severity.value} schema change in {change.path}"
            fields = ",".join(f"{k}={_gh(str(v), True)}" for k, v in props.items() if v is not None)
            level = "warning" if allowed else "error"
            out.append(f"::{level} {fields}::{_gh(change.message, False)}")
        return out + self.lines()[len(self.changes) :]

    def as_json(self) -> dict[str, Any]:
        changes = [
            {**asdict(c), "severity": c.severity.value, "message": c.message} for c in self.changes
        ]
        compatible = len(self.changes) - self.breaking
        return {
            "changes": changes,
            "breaking": self.breaking,
            "compatible": compatible,
            "unchecked": list(self.unchecked),
            "checked": self.checked,
            "lock": self.lock,
            "exit_code": self.exit_code,
            "summary": self.summary(),
            "relock": self.relock,
        }

    def render(self, fmt: OutputFormat) -> str:
        if fmt is OutputFormat.JSON:
            return json.dumps(self.as_json(), indent=2, sort_keys=True)
        return "\n".join(self.github_lines() if fmt is OutputFormat.GITHUB else self.lines())


def _gh(text: str, prop: bool) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def check_sources(
    sources: Sequence[str | Path],
    lock: str | Path,
    includes: Sequence[str | Path] = (),
    allow: Allow = Allow.NONE,
) -> CheckResult:
    """Compare ``sources`` with ``lock``. Bad input (paths, protos, the lock) raises SchemaError."""
    relock = relock_command(sources, lock, includes)
    locked = read_lock(Path(lock), relock)
    found = load_sources(sources, includes)
    diff = diff_forms(locked, found.types, recorded_only=found.recorded_only)
    lock_file = Location(str(lock))
    changes = []
    for change in diff.changes:
        keys = [f"{change.type_name}.{change.new}", change.path, f"{change.new}", change.type_name]
        where = next((found.locations[k] for k in keys if k in found.locations), lock_file)
        changes.append(replace(change, file=where.file, line=where.line))
    checked = len(locked.keys() & found.types.keys())
    return CheckResult(tuple(changes), tuple(diff.unchecked), checked, allow, str(lock), relock)


__all__ = [
    "WHY",
    "Allow",
    "Change",
    "CheckResult",
    "Diff",
    "Locked",
    "OutputFormat",
    "Severity",
    "check_sources",
    "diff_forms",
    "lock_sources",
    "relock_command",
]
