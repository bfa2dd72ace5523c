"""How the store names things on disk: topic folders and time labels.

Ingest writes these names and the catalog (exports, datasets) writes more of them, so the
rules live here, below both.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import quote, unquote

_MAX_SLUG = 200


def topic_slug(topic: str) -> str:
    """A filesystem-safe, reversible folder name for a topic.

    ``/`` becomes ``+``; everything outside ``[A-Za-z0-9_.-]`` is percent-encoded, so no
    slug contains a path separator; ``.`` and ``..`` alone are encoded too. A topic like
    ``/../../etc`` becomes ``+..+..+etc``, one plain name inside the drive's folder. A slug
    over 200 bytes is cut and given a hash suffix after ``~`` (the manifest maps it back).
    """
    slug = quote(topic, safe="/").replace("~", "%7E").replace("/", "+")
    if slug in ("", ".", ".."):
        slug = slug.replace(".", "%2E") or "%00"
    if len(slug.encode()) > _MAX_SLUG:
        digest = hashlib.sha256(topic.encode()).hexdigest()[:16]
        slug = f"{slug[: _MAX_SLUG - 17]}~{digest}"
    return slug


def topic_from_slug(slug: str) -> str:
    """The inverse of :func:`topic_slug` (for slugs that were not shortened)."""
    if slug == "%00":
        return ""
    return unquote(slug.replace("+", "/"))


def time_label(ns: int) -> str:
    """A compact UTC label for a file name: ``20260615T173000Z`` (with ``.fffffffff`` if needed)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    label = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y%m%dT%H%M%S")
    return f"{label}.{frac:09d}Z" if frac else f"{label}Z"


__all__ = ["time_label", "topic_from_slug", "topic_slug"]
