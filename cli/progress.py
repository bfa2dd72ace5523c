"""Progress for long work, as people expect it from command-line tools.

- It goes to standard error, never standard output: ``ingest run ... > log`` or ``| tee``
  keeps the results clean, and the progress stays on the terminal.
- It is shown only when standard error is a terminal, and never under ``--json`` or
  ``--quiet``.
- It is one line, redrawn in place and erased (:meth:`StatusLine.clear`) before any
  result or warning line is printed, so no line is glued to a stale frame.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO

ProgressFn = Callable[[int, int], None]

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
#: Erase the whole line and go back to its start (ANSI "erase in line", then CR).
_ERASE = "\r\x1b[2K"


class StatusLine:
    """One status line on a terminal stream, redrawn at most every ``interval_s``."""

    def __init__(self, stream: TextIO, interval_s: float = 0.1) -> None:
        self.stream = stream
        self.interval_s = interval_s
        self.started = time.monotonic()
        self._last = 0.0
        self._frame = 0
        self._shown = False

    def show(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        self._frame = (self._frame + 1) % len(_SPINNER)
        elapsed = int(now - self.started)
        clock = f"{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
        self.stream.write(f"{_ERASE}{_SPINNER[self._frame]} {text} {clock}")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the line (if drawn), so the next output starts on a clean line."""
        if self._shown:
            self.stream.write(_ERASE)
            self.stream.flush()
            self._shown = False


class DriveProgress:
    """The ingest status: ``progress(log_time_ns, messages)`` from the pass, and
    :meth:`clear` before the command prints a line."""

    def __init__(self, line: StatusLine) -> None:
        self.line = line

    def __call__(self, log_time_ns: int, messages: int) -> None:
        at = datetime.fromtimestamp(log_time_ns / 1e9, tz=UTC).strftime("%H:%M:%S")
        self.line.show(f"ingesting: {messages:,} messages, log time {at} UTC")

    def clear(self) -> None:
        self.line.clear()


def shows_progress(enabled: bool, stream: TextIO | None = None) -> bool:
    """Whether to draw progress: asked for, and the stream (stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return enabled and callable(isatty) and bool(isatty())


@contextmanager
def drive_progress(enabled: bool = True) -> Iterator[DriveProgress | None]:
    """Yields a :class:`DriveProgress` on a terminal's stderr, else None; the line is
    erased on the way out, whatever happened."""
    if not shows_progress(enabled):
        yield None
        return
    progress = DriveProgress(StatusLine(sys.stderr))
    try:
        yield progress
    finally:
        progress.clear()


def stderr_console() -> object:
    """A rich Console on standard error, for progress bars (rich defaults to stdout)."""
    from rich.console import Console

    return Console(stderr=True)
