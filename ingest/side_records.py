"""What a drive keeps besides messages: its recordings' attachments and metadata records.

Every attachment of every input is written, as its raw bytes, to
``<drive>/attachments/<nnnn>_<safe name>`` (``naming.attachment_file_name``: the index
counts the drive's attachments in input order, then file order; the name can never leave
the folder). Every metadata record of every input is kept in input order, repeated names
included. Both are listed in the manifest and the ``attachments`` table (``run_rows``), and
the metadata records go into every output MCAP file (``split``).

Inputs are taken in the order the drive lists them (``DriveInputs.recordings``, sorted);
``source`` is an input's path relative to the drive's root, as the manifest's ``inputs``
name it (a ROS 2 bag folder by its folder).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from drivecat.ingest.errors import IngestError
from drivecat.ingest.source_types import Source
from drivecat.naming import ATTACHMENTS_DIR, attachment_file_name


@dataclass(frozen=True)
class KeptAttachment:
    """One attachment as stored. ``path`` is relative to the drive's folder."""

    name: str
    media_type: str
    log_time_ns: int
    create_time_ns: int
    bytes: int
    sha256: str
    path: str
    source: str


@dataclass(frozen=True)
class KeptMetadata:
    """One metadata record of an input, as recorded."""

    name: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    source: str = ""


def source_name(source: Source, root: Path) -> str:
    """An input's path relative to the drive's root (POSIX), or its name if outside it."""
    path = Path(source.path)
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def keep_metadata(sources: Sequence[Source], root: Path) -> tuple[KeptMetadata, ...]:
    """Every metadata record of every source, in input order, then file order."""
    return tuple(
        KeptMetadata(record.name, dict(record.metadata), source_name(source, root))
        for source in sources
        for record in source.metadata_records()
    )


def keep_attachments(
    sources: Sequence[Source], drive_dir: Path, root: Path
) -> tuple[KeptAttachment, ...]:
    """Write every attachment of every source under ``drive_dir/attachments``; each file is
    written under a temporary name and renamed once complete. One attachment is in memory
    at a time. Raises IngestError naming the folder when it cannot be written."""
    folder = drive_dir / ATTACHMENTS_DIR
    kept: list[KeptAttachment] = []
    for source in sources:
        for attachment in source.attachments():
            if not kept:
                folder.mkdir(exist_ok=True)
            name = attachment_file_name(len(kept), attachment.name)
            final = folder / name
            partial = folder / f".{name}.partial"
            try:
                partial.write_bytes(attachment.data)
                os.replace(partial, final)
            except OSError as err:
                raise IngestError(f"{final}: cannot write attachment: {err.strerror}") from None
            kept.append(
                KeptAttachment(
                    name=attachment.name,
                    media_type=attachment.media_type,
                    log_time_ns=attachment.log_time_ns,
                    create_time_ns=attachment.create_time_ns,
                    bytes=len(attachment.data),
                    sha256=hashlib.sha256(attachment.data).hexdigest(),
                    path=f"{ATTACHMENTS_DIR}/{name}",
                    source=source_name(source, root),
                )
            )
    return tuple(kept)


def output_metadata(
    kept: Sequence[KeptMetadata], device: Mapping[str, str]
) -> list[tuple[str, Mapping[str, str]]]:
    """The metadata records of every output file: the inputs' records in order, then the
    drive's own ``device`` record last, so a reader that keeps the last record of a name
    gets the identity the catalog holds (flags and ``drive.json`` may override a
    recording's own ``device`` record, which is kept before it as recorded)."""
    return [*((k.name, dict(k.metadata)) for k in kept), ("device", dict(device))]


__all__ = [
    "KeptAttachment",
    "KeptMetadata",
    "keep_attachments",
    "keep_metadata",
    "output_metadata",
    "source_name",
]
