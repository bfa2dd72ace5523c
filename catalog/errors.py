from __future__ import annotations

from drivecat import DrivecatError


class CatalogError(DrivecatError):
    """The catalog or the store could not be read or written as asked."""
