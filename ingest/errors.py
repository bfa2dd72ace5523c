from __future__ import annotations

from drivecat import DrivecatError


class IngestError(DrivecatError):
    """An input could not be ingested. The message names the file and the reason."""
