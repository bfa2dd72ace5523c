"""How the store names things on disk: a drive's own entries, topic folders, time labels.

Ingest writes these names and the catalog (exports, datasets) writes more of them, so the
rules live here, below both.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import quote, unquote

_MAX_SLUG = 200
#: Longest drive id, in UTF-8 bytes: it names a folder (most file systems allow 255) and
#: is a prefix of export file names that add a time label or two.
MAX_DRIVE_ID_BYTES = 200


def drive_id_problem(drive_id: object) -> str | None:
    """Why ``drive_id`` cannot name a drive's folder, or None when it can.

    A drive id becomes ``<store>/drives/<drive_id>`` and a prefix of export file names, and
    it comes from users (``--drive-id``, drive.json) and from files anyone could edit
    (manifests, catalog rows, ``_published.json``). So it must be one plain, visible path
    component: no ``/``, ``\\``, NUL or other control character, not ``.`` or ``..``, not
    starting with ``.`` (the store's own temporary folders do), at most
    :data:`MAX_DRIVE_ID_BYTES` bytes of UTF-8. Every stage checks ids through this one rule.
    """
    if not isinstance(drive_id, str) or not drive_id:
        return "it is empty"
    if drive_id.startswith("."):
        return "it starts with '.'"
    bad = sorted({c for c in drive_id if c in "/\\" or ord(c) < 0x20 or ord(c) == 0x7F})
    if bad:
        return f"it contains {', '.join(repr(c) for c in bad)}"
    try:
        size = len(drive_id.encode("utf-8"))
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    if size > MAX_DRIVE_ID_BYTES:
        return f"it is {size} bytes long (at most {MAX_DRIVE_ID_BYTES})"
    return None


def slug_problem(slug: object) -> str | None:
    """Why ``slug`` (a topic folder name read back from a catalog or manifest) is not one
    plain path component, or None. :func:`topic_slug` never makes such a name; a tampered
    file can."""
    if not isinstance(slug, str) or slug in ("", ".", ".."):
        return "it is not a folder name"
    if any(c in "/\\" or ord(c) < 0x20 for c in slug) or len(slug.encode("utf-8", "replace")) > 255:
        return "it is not one plain folder name"
    return None


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
    "MAX_DRIVE_ID_BYTES",
    "drive_id_problem",
    "slug_problem",
    "ATTACHMENTS_DIR",
    "CATALOG_DIR",
    "DRIVE_OWN_NAMES",
    "MANIFEST",
    "attachment_file_name",
    "time_label",
    "topic_from_slug",
    "topic_slug",
]
