from __future__ import annotations

from drivecat import DrivecatError


class CatalogError(DrivecatError):
    """The catalog or the store could not be read or written as asked."""


class CatalogBusyError(CatalogError):
    """Another process holds the catalog's lock (DuckDB allows one writing process)."""
