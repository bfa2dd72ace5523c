"""CRC-32 at memory speed: ISA-L's (python-isal), the same checksum as zlib's.

zlib's ``crc32`` runs at about 4 GB/s on this machine, ISA-L's at about 22 GB/s. An ingest
checks the CRC of every input chunk, and the mcap library's ``Writer`` computes a chunk CRC
and a data-section CRC over every byte it writes: on the bench drive, in one process, that
was a fifth of all CPU time (5.4 to 5.8 CPU-seconds with zlib's, 4.4 with ISA-L's).

``crc32`` is ISA-L's where the ``isal`` wheel is installed, else zlib's. ``install`` hands
it to the mcap library's writer, which calls ``zlib.crc32`` through its module's ``zlib``:
it gets a stand-in module whose ``crc32`` is this one and whose every other name is
zlib's. Only the speed changes; every checksum is the same (tests/ingest/test_crc.py).
"""

from __future__ import annotations

import types
import zlib
from typing import Any

try:
    from isal.isal_zlib import crc32
except ImportError:  # no wheel for this platform: zlib's
    from zlib import crc32

__all__ = ["crc32", "install"]


class _Zlib(types.ModuleType):
    """zlib, with a faster ``crc32``."""

    def __getattr__(self, name: str) -> Any:
        return getattr(zlib, name)


def install() -> None:
    """Give the mcap library's writer this ``crc32`` (once; safe to call again)."""
    import mcap.writer

    if isinstance(mcap.writer.zlib, _Zlib):
        return
    stand_in = _Zlib("zlib")
    stand_in.crc32 = crc32  # type: ignore[attr-defined]
    mcap.writer.zlib = stand_in  # type: ignore[attr-defined]
