"""How the store names things on disk: a drive's own entries, topic folders, time labels.

Ingest writes these names and the catalog (exports, datasets) writes more of them, so the
rules live here, below both.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import quote, unquote

_MAX_SLUG = 200
_MAX_ATTACHMENT_NAME = 120

# A drive's folder holds its topic folders beside these entries of its own. A topic slug
# is never one of them (``topic_slug`` escapes it), so no topic can write into them.
MANIFEST = "manifest.json"
CATALOG_DIR = "catalog"  # the drive's catalog rows, <table>.parquet
ATTACHMENTS_DIR = "attachments"  # the raw bytes of the recordings' attachments
DRIVE_OWN_NAMES = frozenset({MANIFEST, CATALOG_DIR, ATTACHMENTS_DIR})


def topic_slug(topic: str) -> str:
    """A filesystem-safe, reversible folder name for a topic.

    ``/`` becomes ``+``; everything outside ``[A-Za-z0-9_.-]`` is percent-encoded, so no
    slug contains a path separator; ``.`` and ``..`` alone are encoded too. A topic like
    ``/../../etc`` becomes ``+..+..+etc``, one plain name inside the drive's folder. A slug
    over 200 bytes is cut and given a hash suffix after ``~`` (the manifest maps it back).
    A slug that would be one of the drive's own names (``DRIVE_OWN_NAMES``, compared
    without case, for case-insensitive file systems) has its first character
    percent-encoded: topic ``attachments`` gets the folder ``%61ttachments``.
    """
    slug = quote(topic, safe="/").replace("~", "%7E").replace("/", "+")
    if slug in ("", ".", ".."):
        slug = slug.replace(".", "%2E") or "%00"
    if slug.lower() in DRIVE_OWN_NAMES:
        slug = f"%{ord(slug[0]):02X}{slug[1:]}"
    if len(slug.encode()) > _MAX_SLUG:
        digest = hashlib.sha256(topic.encode()).hexdigest()[:16]
        slug = f"{slug[: _MAX_SLUG - 17]}~{digest}"
    return slug


def topic_from_slug(slug: str) -> str:
    """The inverse of :func:`topic_slug` (for slugs that were not shortened)."""
    if slug == "%00":
        return ""
    return unquote(slug.replace("+", "/"))


def attachment_file_name(index: int, name: str) -> str:
    """The file name of a drive's ``index``-th attachment (0-based), from its recorded name.

    ``<nnnn>_<name>``: the name percent-encoded outside ``[A-Za-z0-9_.-]`` (so no path
    separator, NUL or ``..`` survives) and cut to 120 bytes; the index prefix keeps names
    unique and in recording order, and makes the result never ``.`` or ``..``. The
    manifest and the catalog keep the recorded name itself.
    """
    if index < 0:
        raise ValueError("an attachment index is never negative")
    safe = quote(name.encode(errors="backslashreplace"), safe="").replace("~", "%7E")[
        :_MAX_ATTACHMENT_NAME
    ]
    return f"{index:04d}_{safe}"


def time_label(ns: int) -> str:
    """A compact UTC label for a file name: ``20260615T173000Z`` (with ``.fffffffff`` if needed)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    label = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y%m%dT%H%M%S")
    return f"{label}.{frac:09d}Z" if frac else f"{label}Z"


__all__ = [
    "ATTACHMENTS_DIR",
    "CATALOG_DIR",
    "DRIVE_OWN_NAMES",
    "MANIFEST",
    "attachment_file_name",
    "time_label",
    "topic_from_slug",
    "topic_slug",
]
