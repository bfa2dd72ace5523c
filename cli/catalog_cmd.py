"""Commands of the ``catalog`` group."""

from __future__ import annotations

from cli.main import catalog_group  # noqa: F401
