"""File content hashing, shared by ingest (input fingerprints, output files) and the
catalog (rebuilds, checks)."""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content, read in 1 MiB blocks. OSError when it cannot be read
    (each stage turns that into its own error naming the file)."""
    digest = hashlib.sha256()
    buf = bytearray(_BLOCK)
    view = memoryview(buf)
    with Path(path).open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


__all__ = ["sha256_file"]
