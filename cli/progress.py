"""A progress display for long work: on a terminal only, never under --json or in a pipe."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

ProgressFn = Callable[[int, int], None]


@contextmanager
def drive_progress(enabled: bool = True) -> Iterator[ProgressFn | None]:
    """Yields a callback ``(log_time_ns, messages)`` that updates a live status line."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task("reading", total=None)

        def update(log_time_ns: int, messages: int) -> None:
            at = datetime.fromtimestamp(log_time_ns / 1e9, tz=UTC).strftime("%H:%M:%S")
            bar.update(task, description=f"ingesting: {messages:,} messages, log time {at} UTC")

        yield update
