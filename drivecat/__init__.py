"""drivecat: ingest, catalog, query and export robot and AV drive recordings.

This small package holds what every stage shares: the tool version and the root of the
exception hierarchy. The stages are its subpackages ``drivecat.ingest``, ``drivecat.catalog``
and ``drivecat.schemas``; ``drivecat.cli`` is the command line over them.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("drivecat")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"


class DrivecatError(Exception):
    """Base of every error drivecat raises on purpose.

    ``exit_code`` is what the CLI exits with: 2 for usage or input errors (the default),
    1 when a check or a job ran and found a problem.
    """

    exit_code: int = 2


__all__ = ["DrivecatError", "__version__"]
