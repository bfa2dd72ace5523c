"""Every kind of recording, read as one stream of raw messages in log-time order.

``open_source`` opens an MCAP file (indexed or not, chunked or not, truncated or not), a
ROS 1 ``.bag`` or a ROS 2 bag folder (MCAP or sqlite3 storage). A source yields
``RawMessage`` tuples whose ``data`` is exactly the recorded bytes, with the schema that
decodes them; ``merge`` interleaves several sources by log time, as a stream.

Times are integer nanoseconds in the recording's own time base (for bags: the record time
the recorder stamped, not the header stamp inside the message).

Damage the reader can step over (a crash that cut the file, a corrupt chunk, a broken
summary) never raises: the source recovers what it can and appends a ``ReadProblem`` to
``problems``. Input that is not a recording at all raises ``IngestError``, one line naming
the file.

This module is the facade. Which reader opens which input is one table,
``ingest.readers``; the readers live in ``ingest.mcap_source`` and ``ingest.bag_source``;
the records they yield in ``ingest.source_types``; ``merge`` in ``ingest.time_order``.
"""

from __future__ import annotations

from drivecat.ingest.mcap_source import MCAP_MAGIC, McapSource
from drivecat.ingest.readers import open_source
from drivecat.ingest.source_types import (
    Attachment,
    Channel,
    MetadataRecord,
    ProblemKind,
    RawMessage,
    ReadProblem,
    Schema,
    Source,
)
from drivecat.ingest.time_order import merge

__all__ = [
    "MCAP_MAGIC",
    "Attachment",
    "Channel",
    "McapSource",
    "MetadataRecord",
    "ProblemKind",
    "RawMessage",
    "ReadProblem",
    "Schema",
    "Source",
    "merge",
    "open_source",
]
