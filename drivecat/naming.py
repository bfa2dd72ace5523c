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


__all__ = [
    "ATTACHMENTS_DIR",
    "CATALOG_DIR",
    "DRIVE_OWN_NAMES",
    "HIDDEN_PREFIX",
    "MANIFEST_NAME",
    "is_topic_slug",
    "time_label",
    "topic_from_slug",
    "topic_slug",
]
