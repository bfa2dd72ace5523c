"""Tables for people: a result that fits the terminal."""

from __future__ import annotations

import json

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from drivecat.catalog.query import to_records

_MAX_ROWS = 200


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def print_table(table: pa.Table, console: Console | None = None) -> None:
    """A table that fits a terminal; in a pipe, columns keep their natural width."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=1000)
    view = Table(show_header=True, header_style="bold")
    for name in table.column_names:
        view.add_column(name, overflow="fold")
    records = to_records(table.slice(0, _MAX_ROWS))
    for row in records:
        view.add_row(*(_cell(v) for v in row.values()))
    console.print(view)
    more = table.num_rows - len(records)
    suffix = f" (showing {len(records)}; use --format csv or --out for all)" if more > 0 else ""
    console.print(f"{table.num_rows} rows{suffix}")
