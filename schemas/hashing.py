"""The identity of a schema record: one hash over its name, encoding and bytes."""

from __future__ import annotations

import hashlib


def schema_sha256(name: str, encoding: str, data: bytes) -> str:
    """sha256 of ``name``, ``encoding`` and ``data``, each length-prefixed so no two collide."""
    digest = hashlib.sha256()
    for part in (name.encode(), encoding.encode(), data):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()
