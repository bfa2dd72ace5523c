"""What a ROS 2 bag's ``metadata.yaml`` says it holds, checked against what was read.

A bag reader can come up short without failing: rosbags' ROS 2 reader, for one, skips a
topic whose QoS string in ``metadata.yaml`` differs from the one in its storage. The
declared counts (``topics_with_message_count``) are the bag's own word on how many messages
each topic has; any shortfall becomes a MISSING_MESSAGES problem with the count, so nothing
is lost silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from drivecat.ingest.source_types import ProblemKind, RawMessage, ReadProblem


def declared_counts(info: Mapping[str, Any]) -> dict[str, int] | None:
    """Messages per topic from ``rosbag2_bagfile_information``; a topic listed twice adds
    up. None when the metadata declares no topics at all (nothing to check against);
    entries without a name or a non-negative integer count are ignored."""
    entries = info.get("topics_with_message_count")
    if not isinstance(entries, list) or not entries:
        return None
    counts: dict[str, int] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        meta = entry.get("topic_metadata")
        name = meta.get("name") if isinstance(meta, Mapping) else None
        count = entry.get("message_count")
        if isinstance(name, str) and isinstance(count, int) and count >= 0:
            counts[name] = counts.get(name, 0) + count
    return counts


def counting(stream: Iterator[RawMessage], counted: Counter[str]) -> Iterator[RawMessage]:
    """``stream`` unchanged, counting messages per topic into ``counted`` as they pass."""
    for message in stream:
        counted[message[0].topic] += 1
        yield message


def shortfall(
    path: Path, declared: Mapping[str, int], counted: Mapping[str, int]
) -> list[ReadProblem]:
    """One MISSING_MESSAGES problem per topic that was read fewer times than declared.
    More messages than declared is not a loss, and is not reported."""
    problems = []
    for topic, want in sorted(declared.items()):
        got = counted.get(topic, 0)
        if got < want:
            detail = (
                f"{topic}: metadata.yaml declares {want} messages, {got} could be read; "
                f"{want - got} missing"
            )
            problems.append(
                ReadProblem(
                    path,
                    ProblemKind.MISSING_MESSAGES,
                    detail,
                    lost_messages=want - got,
                    topic=topic,
                )
            )
    return problems
