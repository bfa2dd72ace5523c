"""The export formats: one table, format name -> the ``Exporter`` that writes it.

To add a format, write a module with a ``write`` function that satisfies :class:`Exporter`
and add one row to :data:`EXPORTERS`; ``catalog export --format`` lists the table's names
and summaries.
An exporter writes the matching time ranges into a temporary folder and reports a
:class:`~catalog.export.Written`; ``catalog.export`` does the rest (selection, lineage, the
``exports`` row, the atomic rename). Exporter modules are imported only when their format
is used: the dataset's pulls in PyAV, open3d and pyarrow's Parquet writer.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from drivecat.catalog.errors import CatalogError

if TYPE_CHECKING:
    import duckdb

    from drivecat.catalog.export import ExportOptions, ExportProgress, TimeRange, Written


class Exporter(Protocol):
    """Writes the ranges ``catalog export`` selected into ``folder`` (a fresh, empty
    temporary folder) and returns the counts and the store files it read.

    ``con`` is a read-only catalog connection. ``progress(done, total, unit)``, when given,
    is called as work completes. Bad options or unreadable store files raise CatalogError
    naming the option or the file.
    """

    def __call__(
        self,
        con: duckdb.DuckDBPyConnection,
        store: Path,
        ranges: list[TimeRange],
        options: ExportOptions,
        folder: Path,
        progress: ExportProgress | None = None,
    ) -> Written: ...


@dataclass(frozen=True)
class ExportFormatEntry:
    """One row of the table: what ``--help`` says, what the count counts, where it lives."""

    summary: str  # one line, for ``catalog export --help``
    unit: str  # what ``Written.sample_count`` counts: lineage's key and the CLI's word
    exporter: str  # "module:function" of its Exporter


EXPORTERS: dict[str, ExportFormatEntry] = {
    "mcap": ExportFormatEntry(
        "one MCAP per matching time range", "messages", "drivecat.catalog.export_mcap:write"
    ),
    "dataset": ExportFormatEntry(
        "samples, frames, clouds, labels",
        "samples",
        "drivecat.catalog.export_dataset:write",
    ),
}


def formats() -> tuple[str, ...]:
    """The format names, in table order."""
    return tuple(EXPORTERS)


def format_entry(name: str) -> ExportFormatEntry:
    """The table row of ``name``; CatalogError naming the known formats otherwise."""
    entry = EXPORTERS.get(name)
    if entry is None:
        known = ", ".join(EXPORTERS)
        raise CatalogError(f"--format {name!r}: unknown export format (one of {known})")
    return entry


def exporter_for(name: str) -> Exporter:
    """The Exporter of format ``name``, its module imported now."""
    module_name, _, attribute = format_entry(name).exporter.partition(":")
    found: Exporter = getattr(importlib.import_module(module_name), attribute)
    return found


__all__ = ["EXPORTERS", "ExportFormatEntry", "Exporter", "exporter_for", "format_entry", "formats"]
