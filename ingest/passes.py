"""The single pass over a drive's merged message stream.

Each message is written to its topic's file as raw bytes; its topic's statistics are
updated; and only if some consumer needs it (a video or sensor index, a side-car video
waiting for its frame times, a tagger) is it decoded, once, and handed to all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.config import Config
from ingest.decode import DECODABLE, Decoders, stamp_ns
from ingest.drive import DriveInputs
from ingest.frameindex import FrameIndexer, QualityRow
from ingest.identity import DeviceIdentity
from ingest.roles import Role, role_for
from ingest.segments import SegmentBuilder
from ingest.sidecar import SidecarFeeder
from ingest.sources import Channel, RawMessage, Source
from ingest.split import OutputFile, Position, Splitter
from ingest.stats import TopicStats
from ingest.threads import prefetch

Handler = Callable[[RawMessage, Position, Any], None]


@dataclass
class _Topic:
    topic: str
    role: Role
    stats: TopicStats
    channel: Channel
    unknown_encoding: int = 0


@dataclass
class _ChannelPlan:
    topic: _Topic
    decoder: Callable[[bytes], Any] | None
    handlers: list[Handler] = field(default_factory=list)


class StopPass(Exception):
    """The pass was stopped on purpose (its inputs turned out to be ingested already)."""


class DrivePass:
    """State of one pass. ``run`` consumes the stream; ``rows`` builds the catalog rows."""

    def __init__(
        self,
        folder: Path,
        identity: DeviceIdentity,
        config: Config,
        inputs: DriveInputs,
        sources: list[Source],
    ) -> None:
        self.folder = folder
        self.identity = identity
        self.config = config
        self.splitter = Splitter(folder, config.chunk_ns, {"device": identity.as_metadata()})
        self.decoders = Decoders()
        self.topics: dict[str, _Topic] = {}
        self.plans: dict[int, _ChannelPlan] = {}
        self.frames: dict[str, FrameIndexer] = {}
        self.sensor_rows: list[dict[str, Any]] = []
        self.extra_quality: list[QualityRow] = []
        self.warnings: list[str] = []
        self.sidecars = {v.timestamps_topic: SidecarFeeder(v, self.process) for v in inputs.videos}
        self.segments: SegmentBuilder | None = None
        self.start_ns: int = 0
        self.end_ns: int = 0
        self.message_count = 0
        self.sources = sources
        self.files: list[OutputFile] = []

    # -- the pass -------------------------------------------------------------------------
    def run(
        self,
        stream: Iterable[RawMessage],
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        """Consume the stream. ``should_stop`` is polled now and then; True raises StopPass."""
        process = self.process
        try:
            for n, message in enumerate(prefetch(iter(stream))):
                process(message)
                if n % 2048 == 0:
                    if progress is not None:
                        progress(message.log_time_ns, self.message_count)
                    if should_stop is not None and should_stop():
                        raise StopPass
            for feeder in self.sidecars.values():
                self.extra_quality.extend(feeder.finish())
                self.warnings.extend(feeder.warnings)
            if self.segments is not None:
                self.warnings.extend(self.segments.warnings)
            self.files = self.splitter.close()
        except BaseException:
            self.splitter.abort()
            raise

    def process(self, message: RawMessage) -> None:
        if self.message_count == 0:
            self.start_ns = message.log_time_ns
            self.segments = SegmentBuilder(self.config, message.log_time_ns)
        plan = self.plans.get(id(message.channel))
        if plan is None:
            plan = self._plan(message.channel)
        self.message_count += 1
        if message.log_time_ns < self.start_ns:
            self.start_ns = message.log_time_ns
        if message.log_time_ns > self.end_ns:
            self.end_ns = message.log_time_ns
        position = self.splitter.write(message)
        plan.topic.stats.add(message.log_time_ns, len(message.data))
        if plan.handlers:
            decoded = plan.decoder(message.data) if plan.decoder is not None else None
            for handler in plan.handlers:
                handler(message, position, decoded)

    def _plan(self, channel: Channel) -> _ChannelPlan:
        topic = self.topics.get(channel.topic)
        if topic is None:
            schema_name = channel.schema.name if channel.schema else None
            role = role_for(channel.topic, schema_name, self.config.roles)
            topic = _Topic(channel.topic, role, TopicStats(channel.topic), channel)
            self.topics[channel.topic] = topic
        plan = _ChannelPlan(topic, None)
        if channel.message_encoding not in DECODABLE:
            plan.handlers.append(self._count_unknown)
            self.plans[id(channel)] = plan
            return plan
        role = topic.role
        if role is Role.VIDEO:
            plan.handlers.append(self._on_video)
        elif role in (Role.LIDAR, Role.IMAGE):
            plan.handlers.append(self._on_sensor)
        if channel.topic in self.sidecars:
            plan.handlers.append(self.sidecars[channel.topic].on_frame_time)
        if self.segments is not None and self.segments.wants(role, channel.topic):
            plan.handlers.append(self._on_tagged)
        if plan.handlers:
            plan.decoder = self.decoders.decoder(channel)
            if plan.decoder is None:
                self.warnings.append(
                    f"{channel.topic}: cannot decode its schema; not indexed or tagged"
                )
                plan.handlers = []
        self.plans[id(channel)] = plan
        return plan

    # -- handlers ---------------------------------------------------------------------------
    def _count_unknown(self, message: RawMessage, position: Position, decoded: Any) -> None:
        self.topics[message.channel.topic].unknown_encoding += 1

    def _on_video(self, message: RawMessage, position: Position, decoded: Any) -> None:
        if decoded is None:
            return
        topic = message.channel.topic
        indexer = self.frames.get(topic)
        if indexer is None:
            indexer = self.frames[topic] = FrameIndexer("", topic)
        data = decoded["data"] if isinstance(decoded, dict) else decoded.data
        fmt = decoded["format"] if isinstance(decoded, dict) else decoded.format
        indexer.add(message.log_time_ns, stamp_ns(decoded), fmt, bytes(data), position)

    def _on_sensor(self, message: RawMessage, position: Position, decoded: Any) -> None:
        self.sensor_rows.append(
            {
                "topic": message.channel.topic,
                "role": self.topics[message.channel.topic].role.value,
                "log_time_ns": message.log_time_ns,
                "capture_ns": stamp_ns(decoded) if decoded is not None else None,
                "file": position.file,
                "message_idx": position.message_idx,
            }
        )

    def _on_tagged(self, message: RawMessage, position: Position, decoded: Any) -> None:
        if decoded is not None and self.segments is not None:
            role = self.topics[message.channel.topic].role
            self.segments.on_message(role, message.channel.topic, message.log_time_ns, decoded)

    # -- results -----------------------------------------------------------------------------
    @property
    def recovered(self) -> bool:
        return any(p.kind == "truncated" for s in self.sources for p in s.problems)

    @property
    def status(self) -> str:
        return "recovered" if self.recovered else "complete"

    def lost_detail(self) -> str:
        problems = [p for s in self.sources for p in s.problems if p.kind == "truncated"]
        return "; ".join(f"{p.path.name}: {p.detail}" for p in problems)

    def quality_rows(self) -> list[QualityRow]:
        rows: list[QualityRow] = list(self.extra_quality)
        for indexer in self.frames.values():
            rows.extend(indexer.quality())
        for t in self.topics.values():
            s = t.stats
            s.finish()
            for gap in s.gaps:
                detail = f"no message for {(gap.end_ns - gap.start_ns) / 1e9:.3f} s"
                rows.append(QualityRow(t.topic, "gap", gap.start_ns, gap.end_ns, 1, detail))
            recorded = sum(src.out_of_order.get(t.topic, 0) for src in self.sources)
            if s.out_of_order or recorded:
                first = s.first_out_of_order_ns or s.start_ns or 0
                count = s.out_of_order + recorded
                detail = f"{count} messages recorded after a later message of the topic"
                rows.append(QualityRow(t.topic, "out_of_order", first, first, count, detail))
            if s.duplicates:
                first = s.first_duplicate_ns or 0
                detail = f"{s.duplicates} messages with the same log_time as the one before"
                rows.append(
                    QualityRow(t.topic, "duplicate_timestamp", first, first, s.duplicates, detail)
                )
            if t.unknown_encoding:
                enc = t.channel.message_encoding
                detail = f"encoding {enc!r} stored as is, not decoded or tagged"
                start, end = s.start_ns or 0, s.end_ns
                rows.append(
                    QualityRow(t.topic, "unknown_encoding", start, end, t.unknown_encoding, detail)
                )
        for source in self.sources:
            for p in source.problems:
                at = p.at_log_time_ns if p.at_log_time_ns is not None else self.end_ns
                rows.append(
                    QualityRow("", p.kind, at, at, p.lost_bytes, f"{p.path.name}: {p.detail}")
                )
        return rows
