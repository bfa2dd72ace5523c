"""Commands of the ``schemas`` group."""

from __future__ import annotations

from cli.main import schemas_group  # noqa: F401
