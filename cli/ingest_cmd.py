"""Commands of the ``ingest`` group."""

from __future__ import annotations

from cli.main import ingest_group  # noqa: F401
