"""Tables for people: a result that fits the terminal.

On a terminal the table never wraps a cell: a cell longer than :data:`MAX_CELL` characters
is cut with an ellipsis, and the columns that do not fit the width are left out (the
leftmost columns first in, so put what matters first). A note under the table says what
was cut and how to see all of it. In a pipe (no terminal width) every column is shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from drivecat.catalog.query import to_records

_MAX_ROWS = 200
#: The widest a cell is shown on a terminal, in characters.
MAX_CELL = 32
#: What rich's default box adds per column (a border and one space of padding each side).
_COLUMN_FRAME = 3
#: Where to see everything; the note under a cut table says it.
SEE_ALL = "--format csv, json or ndjson (or --out FILE) shows every column in full"


@dataclass(frozen=True)
class Fit:
    """Which columns to show (indexes into the result's columns) and how wide each is."""

    columns: tuple[int, ...]
    widths: tuple[int, ...]
    hidden: tuple[str, ...]
    cut_cells: bool


def fit_columns(names: list[str], rows: list[list[str]], width: int | None) -> Fit:
    """Choose the columns that fit ``width`` characters, left to right (None: all).

    A column's width is its longest cell, at most :data:`MAX_CELL` when ``width`` is set,
    and never less than its header. A column that does not fit is skipped and the next
    ones are still tried; the first column is always shown, cut down to fit if need be.
    """
    natural = [max([len(n)] + [len(r[i]) for r in rows]) for i, n in enumerate(names)]
    if width is None:
        return Fit(tuple(range(len(names))), tuple(natural), (), False)
    capped = [
        max(min(w, MAX_CELL), min(len(n), MAX_CELL)) for w, n in zip(natural, names, strict=True)
    ]
    used = 1  # the table's left border
    columns: list[int] = []
    widths: list[int] = []
    for i, w in enumerate(capped):
        if used + w + _COLUMN_FRAME <= width:
            columns.append(i)
            widths.append(w)
            used += w + _COLUMN_FRAME
        elif not columns and i == 0:
            w = max(width - 1 - _COLUMN_FRAME, 1)
            columns.append(0)
            widths.append(w)
            used += w + _COLUMN_FRAME
    hidden = tuple(n for i, n in enumerate(names) if i not in columns)
    cut = any(natural[i] > w for i, w in zip(columns, widths, strict=True))
    return Fit(tuple(columns), tuple(widths), hidden, cut)


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, str) and len(value) >= 25 and value[10] == "T":
        # An ISO time (to_records made it one): shown to the millisecond, the Z for UTC.
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            return value
        if at.utcoffset() is not None and not at.utcoffset():
            return at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    return str(value)


def print_table(table: pa.Table, console: Console | None = None) -> None:
    """Print ``table`` for people; on a terminal it fits the console's width."""
    if console is None:
        console = Console()
    width = console.width if console.is_terminal else None
    if console.width >= 1000:  # an explicit "as wide as it needs" console (--out)
        width = None
    records = to_records(table.slice(0, _MAX_ROWS))
    rows = [[_cell(v) for v in r.values()] for r in records]
    fit = fit_columns(table.column_names, rows, width)
    view = Table(show_header=True, header_style="bold")
    for i, w in zip(fit.columns, fit.widths, strict=True):
        view.add_column(
            table.column_names[i], no_wrap=True, overflow="ellipsis", min_width=w, max_width=w
        )
    for row in rows:
        view.add_row(*(row[i] for i in fit.columns))
    console.print(view, soft_wrap=width is None)
    note = _note(table.num_rows, len(records), fit)
    console.print(note, soft_wrap=width is None, highlight=False, markup=False)


def _note(total: int, shown: int, fit: Fit) -> str:
    notes = []
    if total > shown:
        notes.append(f"showing {shown}")
    if fit.hidden:
        notes.append(f"{len(fit.hidden)} columns not shown: {', '.join(fit.hidden)}")
    if fit.cut_cells:
        notes.append("long cells cut")
    rows = f"{total} row" if total == 1 else f"{total} rows"
    if not notes:
        return rows
    return f"{rows} ({'; '.join(notes)}); {SEE_ALL}"
