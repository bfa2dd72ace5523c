"""What only the catalog would know, journaled in the store: export and label records.

The drive tables can be rebuilt from the drive folders, but an export run or an imported
label exists nowhere else. So each is also written to the store, one JSON file per record
(or per label import), atomically, when it is recorded:
```
<store>/journal/exports/<export_id>.json   one exports row
<store>/journal/labels/<batch_id>.json      the labels rows of one import
```
``catalog rebuild`` reads them back (:func:`read_exports`, :func:`read_labels`). Values are
stored as JSON: times as ISO 8601 strings, which :func:`rows_table` turns back into the
table's Arrow types.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from drivecat.catalog.errors import CatalogError
from drivecat.catalog.tables import EXPORTS, LABELS, Table

JOURNAL = "journal"
_ID = re.compile(r"^[0-9a-f]{32}$")


def journal_dir(store: Path, table: Table) -> Path:
    return Path(store) / JOURNAL / table.name


def valid_id(record_id: object) -> bool:
    """Export and batch ids are uuid4 hex: they name files, so nothing else is accepted."""
    return isinstance(record_id, str) and bool(_ID.match(record_id))


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary name, flushed to disk, then renamed:
    a reader sees the old file or the whole new one, and a crash leaves no torn record."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _write(store: Path, table: Table, record_id: str, rows: list[Mapping[str, Any]]) -> Path:
    folder = journal_dir(store, table)
    path = folder / f"{record_id}.json"
    body = [{c: _jsonable(r.get(c)) for c in table.names} for r in rows]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"table": table.name, "rows": body}, indent=1) + "\n")
    except OSError as err:
        raise CatalogError(
            f"{path}: cannot journal the {table.name} record: {err.strerror}"
        ) from None
    return path


def record_export(store: Path, row: Mapping[str, Any]) -> Path:
    """Journal one ``exports`` row (a mapping by column name); return the file."""
    export_id = row.get("export_id")
    if not valid_id(export_id):
        raise CatalogError(f"invalid export id {export_id!r}")
    return _write(store, EXPORTS, str(export_id), [row])


def record_labels(store: Path, rows: Iterable[Mapping[str, Any]], key: str | None = None) -> Path:
    """Journal ``labels`` rows; return the file. Rows journaled under the same ``key``
    replace the earlier ones, as a re-import replaces them in the catalog (a labeler's
    boxes of one dataset, or one tag of theirs); without a key they are a new batch."""
    batch = uuid.uuid4().hex if key is None else hashlib.sha256(key.encode()).hexdigest()[:32]
    return _write(store, LABELS, batch, list(rows))


def forget_export(store: Path, export_id: str) -> None:
    """Remove an export's record when recording it in the catalog failed after all."""
    if valid_id(export_id):
        (journal_dir(store, EXPORTS) / f"{export_id}.json").unlink(missing_ok=True)


@dataclass
class Journaled:
    """The rows read back, and one line for each journal file that could not be read."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _read(store: Path, table: Table) -> Journaled:
    found = Journaled()
    folder = journal_dir(store, table)
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        if not valid_id(path.stem):
            found.problems.append(f"{path}: not a journal file name; skipped")
            continue
        try:
            doc = json.loads(path.read_text())
            rows = doc["rows"]
            if doc.get("table") != table.name or not isinstance(rows, list):
                raise ValueError(f"not a {table.name} record")
            for r in rows:
                if not isinstance(r, dict):
                    raise ValueError("a row is not an object")
                found.rows.append({c: r.get(c) for c in table.names})
        except (OSError, ValueError, KeyError, TypeError) as err:
            found.problems.append(f"{path}: cannot read journal record: {err}; skipped")
    return found


def read_exports(store: Path) -> Journaled:
    found = _read(store, EXPORTS)
    good = []
    for r in found.rows:
        if valid_id(r["export_id"]):
            good.append(r)
        else:
            found.problems.append(f"{journal_dir(store, EXPORTS)}: bad export id; skipped")
    found.rows = good
    return found


def read_labels(store: Path) -> Journaled:
    return _read(store, LABELS)


def exported_to(store: Path, export_id: str) -> str | None:
    """The ``out`` that the journal records for ``export_id``, or None when it has none."""
    if not valid_id(export_id):
        return None
    path = journal_dir(store, EXPORTS) / f"{export_id}.json"
    try:
        rows = json.loads(path.read_text())["rows"]
        return str(rows[0]["out"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def rows_table(table: Table, rows: list[dict[str, Any]]) -> pa.Table:
    """Journal rows as an Arrow table of ``table``'s schema (ISO times parsed back)."""
    schema = table.arrow_schema
    columns = {}
    for f in schema:
        values = [r.get(f.name) for r in rows]
        if pa.types.is_timestamp(f.type):
            values = [datetime.fromisoformat(v) if isinstance(v, str) else v for v in values]
        columns[f.name] = pa.array(values, type=f.type)
    return pa.table(columns, schema=schema)


__all__ = [
    "JOURNAL",
    "Journaled",
    "exported_to",
    "forget_export",
    "journal_dir",
    "read_exports",
    "read_labels",
    "record_export",
    "record_labels",
    "rows_table",
    "valid_id",
    "write_atomic",
]
