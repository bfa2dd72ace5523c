"""A drive's attachments and metadata records, read back from the store for the exporters.

Ingest keeps them with the drive (``ingest.side_records``): each attachment's raw bytes in
``drives/<drive_id>/attachments/``, and both lists, in input order, in the drive's
``manifest.json`` (times exactly as recorded, which a BIGINT column cannot always hold).
The ``attachments`` table indexes the same records for SQL. The exporters read the
manifest's lists and the attachments folder; every attachment's bytes are checked against
the sha256 the manifest records before they go into an export.

A drive ingested before attachments were kept has neither list: it has none to export.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivecat.catalog import store as store_fs
from drivecat.catalog.errors import CatalogError
from drivecat.naming import ATTACHMENTS_DIR


@dataclass(frozen=True)
class StoredAttachment:
    """One attachment of a drive. ``path`` is relative to the store."""

    drive_id: str
    name: str
    media_type: str
    log_time_ns: int
    create_time_ns: int
    size: int  # bytes
    sha256: str
    path: str

    @property
    def file_name(self) -> str:
        return Path(self.path).name

    def read(self, store: Path) -> bytes:
        """The attachment's bytes. CatalogError naming the file when it is missing or its
        sha256 is not the one recorded at ingest."""
        path = Path(store) / self.path
        try:
            data = path.read_bytes()
        except OSError as err:
            raise CatalogError(f"{path}: cannot read attachment: {err.strerror}") from None
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise CatalogError(f"{path}: attachment changed since ingest (sha256 differs)")
        return data


@dataclass(frozen=True)
class StoredMetadata:
    """One metadata record of a drive's inputs."""

    name: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DriveRecords:
    """What a drive kept besides messages, in input order."""

    attachments: tuple[StoredAttachment, ...]
    metadata: tuple[StoredMetadata, ...]
    device: Mapping[str, str]  # the drive's own ``device`` record (its catalog identity)


def drive_records(store: Path, drive_id: str) -> DriveRecords:
    """The attachments and metadata records of ``drive_id`` from its manifest.

    CatalogError naming the manifest when it cannot be read, or when an attachment's path
    is not a file directly in the drive's attachments folder (a manifest edited by hand
    must not make an export read other files).
    """
    folder = store_fs.drive_dir(store, drive_id)
    manifest = store_fs.read_manifest(folder)
    attachments = tuple(_attachment(folder, drive_id, e) for e in manifest.get("attachments", []))
    metadata = tuple(
        StoredMetadata(str(m["name"]), {str(k): str(v) for k, v in m["metadata"].items()})
        for m in manifest.get("metadata", [])
    )
    device = {str(k): str(v) for k, v in (manifest.get("device") or {}).items()}
    return DriveRecords(attachments, metadata, device)


def _attachment(folder: Path, drive_id: str, entry: Mapping[str, Any]) -> StoredAttachment:
    relative = str(entry["path"])
    parts = relative.split("/")
    if len(parts) != 2 or parts[0] != ATTACHMENTS_DIR or parts[1] in ("", ".", ".."):
        raise CatalogError(
            f"{folder / store_fs.MANIFEST}: attachment path {relative!r} is not in "
            f"{ATTACHMENTS_DIR}/"
        )
    return StoredAttachment(
        drive_id=drive_id,
        name=str(entry["name"]),
        media_type=str(entry["media_type"]),
        log_time_ns=int(entry["log_time_ns"]),
        create_time_ns=int(entry["create_time_ns"]),
        size=int(entry["bytes"]),
        sha256=str(entry["sha256"]),
        path=f"drives/{drive_id}/{relative}",
    )


def lineage_entry(a: StoredAttachment, written_to: str) -> dict[str, Any]:
    """How an export's ``lineage.json`` lists an attachment it carries."""
    return {
        "drive_id": a.drive_id,
        "name": a.name,
        "media_type": a.media_type,
        "bytes": a.size,
        "sha256": a.sha256,
        "source": a.path,
        "path": written_to,
    }


__all__ = ["DriveRecords", "StoredAttachment", "StoredMetadata", "drive_records", "lineage_entry"]
