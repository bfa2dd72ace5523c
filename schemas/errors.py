from __future__ import annotations

from drivecat import DrivecatError


class SchemaError(DrivecatError):
    """A schema source could not be read or compiled."""
