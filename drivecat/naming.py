"""How the store names things on disk: topic folders and time labels.

Ingest writes these names and the catalog (exports, datasets) writes more of them, so the
rules live here, below both.

A drive's folder holds the drive's own names (:data:`DRIVE_OWN_NAMES`, and hidden
``.``-names for temporary files) beside one folder per topic. Topic slugs never start with
a lowercase letter or ``.``, so no topic, whatever its name, can land on one of them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import quote, unquote

#: The drive's own names in its folder. Topic slugs start with ``+`` or ``=``, never with
#: a letter or ``.``, so a topic can never be given one of these (or a temporary ``.``-name).
MANIFEST_NAME = "manifest.json"
CATALOG_DIR = "catalog"
ATTACHMENTS_DIR = "attachments"
DRIVE_OWN_NAMES = frozenset({MANIFEST_NAME, CATALOG_DIR, ATTACHMENTS_DIR})
#: Temporary names (files being written, drives being built) start with this.
HIDDEN_PREFIX = "."

_MAX_SLUG = 200
# Topics that start with "/" (ROS and Foxglove convention) keep their old slug "+a+b"; any
# other topic gets this prefix, which ``quote`` never produces, so the two cannot meet.
_BARE_PREFIX = "="
_MAX_ATTACHMENT_NAME = 120


def topic_slug(topic: str) -> str:
    """A filesystem-safe, reversible folder name for a topic.

    ``/`` becomes ``+``; everything outside ``[A-Za-z0-9_.-]`` is percent-encoded, so no
    slug contains a path separator. A topic that does not start with ``/`` gets a ``=``
    prefix: ``/a/b`` is ``+a+b``, ``manifest.json`` is ``=manifest.json``, ``..`` is
    ``=..``; so every slug is one plain name inside the drive's folder, distinct from the
    drive's own names. A slug over 200 bytes is cut and given a hash suffix after ``~``
    (the manifest maps it back).
    """
    slug = quote(topic, safe="/").replace("~", "%7E").replace("/", "+")
    if not slug.startswith("+"):
        slug = _BARE_PREFIX + slug
    if len(slug.encode()) > _MAX_SLUG:
        digest = hashlib.sha256(topic.encode()).hexdigest()[:16]
        slug = f"{slug[: _MAX_SLUG - 17]}~{digest}"
    return slug


def topic_from_slug(slug: str) -> str:
    """The inverse of :func:`topic_slug` (for slugs that were not shortened).

    Slugs of stores written before the ``=`` prefix (a bare topic's slug was the topic
    itself, ``%00`` the empty topic) still read back as their topic.
    """
    if slug == "%00":
        return ""
    if slug.startswith(_BARE_PREFIX):
        slug = slug[len(_BARE_PREFIX) :]
    return unquote(slug.replace("+", "/"))


def is_topic_slug(name: str) -> bool:
    """Whether ``name`` in a drive's folder can be a topic's folder (written by this drivecat)."""
    return name.startswith(("+", _BARE_PREFIX))


def time_label(ns: int) -> str:
    """A compact UTC label for a file name: ``20260615T173000Z`` (with ``.fffffffff`` if needed)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    label = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y%m%dT%H%M%S")
    return f"{label}.{frac:09d}Z" if frac else f"{label}Z"


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


__all__ = [
    "ATTACHMENTS_DIR",
    "CATALOG_DIR",
    "DRIVE_OWN_NAMES",
    "HIDDEN_PREFIX",
    "MANIFEST_NAME",
    "MAX_DRIVE_ID_BYTES",
    "attachment_file_name",
    "drive_id_problem",
    "is_topic_slug",
    "slug_problem",
    "time_label",
    "topic_from_slug",
    "topic_slug",
]
