"""The single pass over a drive's merged message stream.

Each message is written to its topic's file as raw bytes; its topic's statistics are
updated; and only if some consumer needs it (a video or sensor index, a side-car video
waiting for its frame times, a tagger) is it decoded, once, and handed to all of them.
"""

from __future__ import annotations

import gc
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from drivecat.ingest.clock import ClockFilter, Release
from drivecat.ingest.config import Config
from drivecat.ingest.decode import DECODABLE, UNDECODABLE, Decoders, Undecodable, stamp_ns
from drivecat.ingest.drive import DRIVE_JSON, DriveInputs
from drivecat.ingest.frameindex import FrameIndexer, opens_a_file
from drivecat.ingest.identity import DeviceIdentity
from drivecat.ingest.mcap_source import McapSource
from drivecat.ingest.parallel import (
    GC_THRESHOLDS,
    Outcome,
    Packed,
    SingleProcessAgain,
    Worker,
    input_kind,
    jobs_for,
    one_run,
    unpack,
)
from drivecat.ingest.pass_result import PassResult, PassTopic, QualityRow
from drivecat.ingest.pieces import PieceSource
from drivecat.ingest.roles import Role, role_for
from drivecat.ingest.segments import SegmentBuilder
from drivecat.ingest.side_records import (
    KeptAttachment,
    keep_attachments,
    keep_metadata,
    output_metadata,
)
from drivecat.ingest.sidecar import SidecarFeeder, check_topic
from drivecat.ingest.sources import Channel, RawMessage, Source, merge
from drivecat.ingest.split import Metadata, OutputFile, Position, Splitter
from drivecat.ingest.stats import TopicStats
from drivecat.ingest.threads import prefetch
from drivecat.naming import topic_slug
from drivecat.schemas.decoding import value_of
from drivecat.types import INDEXED_ROLES, LOSSES, SUSPECT, DriveStatus, ProblemKind, QualityKind

Handler = Callable[[RawMessage, Position, Any], None]
SensorRow = dict[str, Any]


def _video_payload(decoded: Any) -> tuple[str, bytes]:
    """(format, data) of a decoded CompressedVideo; a message without them is a quality
    row (unsupported codec), never a failed drive."""
    return str(value_of(decoded, "format") or ""), bytes(value_of(decoded, "data") or b"")


@dataclass
class _Topic:
    topic: str
    role: Role
    stats: TopicStats
    channel: Channel
    unknown_encoding: int = 0
    outliers: int = 0  # messages stored but left out of statistics and segments
    outlier_bytes: int = 0
    outlier_first_ns: int | None = None
    outlier_last_ns: int | None = None

    def add_outlier(self, log_time_ns: int, size: int) -> None:
        self.outliers += 1
        self.outlier_bytes += size
        first, last = self.outlier_first_ns, self.outlier_last_ns
        self.outlier_first_ns = log_time_ns if first is None else min(first, log_time_ns)
        self.outlier_last_ns = log_time_ns if last is None else max(last, log_time_ns)


@dataclass
class _ChannelPlan:
    topic: _Topic
    decoder: Callable[[bytes], Any] | None
    handlers: list[Handler] = field(default_factory=list)


# A message waiting in the clock filter: what the pass needs of it once it is let through.
_Held = tuple[RawMessage, Position, _ChannelPlan, Any]

# Drives of at least this many bytes of messages (uncompressed chunks) have their files
# written by worker processes (see ingest.parallel); for smaller ones, starting them costs
# more than they save.
PARALLEL_MIN_BYTES = 64 * 1024 * 1024


def may_parallel(sources: list[PieceSource], jobs: int) -> bool:
    """Whether worker processes may write the drive's files: ``jobs`` of 2 or more, at least
    PARALLEL_MIN_BYTES in the chunks, and not inside a Dask worker (whose cores are counted
    already). Cheap: the chunk index only."""
    if jobs < 2 or multiprocessing.current_process().daemon:
        return False
    size = sum(p.size for s in sources for p in s.pieces())
    return size >= PARALLEL_MIN_BYTES


def sensor_row(message: RawMessage, role: str, capture_ns: int | None, at: Position) -> SensorRow:
    """One ``sensor_index`` row (without the drive id)."""
    return {
        "topic": message.channel.topic,
        "role": role,
        "log_time_ns": message.log_time_ns,
        "capture_ns": capture_ns,
        "file": at.file,
        "message_idx": at.message_idx,
    }


def _piece_inputs(sources: list[Source]) -> tuple[list[PieceSource], list[str]] | None:
    """The files of ``sources`` that workers read in pieces, with their ``READERS`` kind;
    None unless every source is such a file, or (alone) a folder of them (``piece_parts``)."""
    files: list[Any] = []
    for source in sources:
        parts = getattr(source, "piece_parts", None)
        if parts is not None and len(sources) > 1:
            return None  # its declared counts are checked on the topics' totals
        files.extend(parts() if parts is not None else [source])
    kinds = [input_kind(f) for f in files]
    if not files or None in kinds:
        return None
    return files, cast(list[str], kinds)


class StopPass(Exception):
    """The pass was stopped on purpose (its inputs turned out to be ingested already)."""


class DrivePass:
    """State of one pass. ``run`` consumes the stream and returns its ``PassResult``."""

    def __init__(
        self,
        folder: Path,
        identity: DeviceIdentity,
        config: Config,
        inputs: DriveInputs,
        sources: list[Source],
        jobs: int = 1,
        weigh: bool = False,
    ) -> None:
        self.folder = folder
        self.identity = identity
        self.config = config
        self.root = inputs.root
        self.kept_metadata = keep_metadata(sources, inputs.root)
        self.kept_attachments: tuple[KeptAttachment, ...] = ()
        metadata = output_metadata(self.kept_metadata, identity.as_metadata())
        self.splitter = Splitter(folder, config.chunk_ns, metadata)
        self.decoders = Decoders()
        self.undecodable = Undecodable()
        self.topics: dict[str, _Topic] = {}
        self.plans: dict[int, _ChannelPlan] = {}
        self.frames: dict[str, FrameIndexer] = {}
        self.sensor_rows: list[dict[str, Any]] = []
        self.extra_quality: list[QualityRow] = []
        self.warnings: list[str] = []
        self.sidecars = {v.timestamps_topic: SidecarFeeder(v, self.process) for v in inputs.videos}
        self.video_topics = {f.video.topic: f for f in self.sidecars.values()}
        self.drive_json = inputs.root / DRIVE_JSON
        self.segments: SegmentBuilder | None = None  # made at the body's first message
        self._wants = SegmentBuilder(config, 0)  # which topics the taggers need
        self.clock: ClockFilter[_Held] = ClockFilter(int(config.drive_gap_seconds * 1e9))
        self.start_ns: int = 0  # of the drive's body: clock outliers are left out
        self.end_ns: int = 0
        self.message_count = 0  # every message stored
        self.body_count = 0  # those that are not clock outliers
        self.sources = sources
        self.files: list[OutputFile] = []
        self.recorded_out_of_order: Counter[str] = Counter()
        self._check_sidecar_topics()
        self.remote: dict[str, Role] = {}  # topics the workers write
        # the files the workers read in pieces (see ingest.pieces): the sources, or parts
        self.inputs: list[PieceSource] = []
        self.windows: list[tuple[int, int]] = []  # (window, the worker spooling it)
        self._unknown_tallies: dict[str, dict[int, list[int]]] = {}
        self.pool: dict[Channel, Channel] = {}
        self._progress: Callable[[int, int], None] | None = None
        self._should_stop: Callable[[], bool] | None = None
        self._polled = 0.0
        self.workers = self._start_workers(metadata, jobs, weigh)

    def _check_sidecar_topics(self) -> None:
        """Refuse, before any work, a side-car mapped onto a topic that an indexed MCAP
        declares (``_plan`` catches the others as their first message arrives)."""
        for source in self.sources:
            if self.video_topics and isinstance(source, McapSource) and source.indexed:
                for channel in source.declared_channels():
                    feeder = self.video_topics.get(channel.topic)
                    if feeder is not None:
                        check_topic(feeder.video, self.drive_json, channel.topic, source.path.name)

    def _start_workers(self, metadata: Metadata, jobs: int, weigh: bool) -> list[Worker]:
        """Hand the drive's output files to worker processes (see ingest.parallel): every
        topic the pass need not see (not video, side-car or tagged) is written, counted and
        indexed there, and the pass gets the rest of its messages from their spools. Only
        for inputs read in pieces, a drive that is one run of messages (no clock outliers
        or long gaps, by the index), and topics whose names make distinct folders."""
        found = _piece_inputs(self.sources)
        if found is None:
            return []
        pieced, kinds = found
        if not may_parallel(pieced, jobs) or not one_run(pieced, self.clock.gap_ns):
            return []
        channels: dict[str, list[Channel]] = {}
        for source in pieced:
            for channel in source.declared_channels():
                channels.setdefault(channel.topic, []).append(channel)
        if len({topic_slug(t) for t in channels}) < len(channels):
            return []  # two topics shortened to one name: named in stream order, by one process
        remote: dict[str, Role] = {}
        for topic, chans in channels.items():
            roles = {
                role_for(topic, c.schema.name if c.schema else None, self.config.roles)
                for c in chans
            }
            role = roles.pop()
            if (
                not roles  # every channel of the topic agrees
                and role is not Role.VIDEO
                and topic not in self.sidecars
                and topic not in self.video_topics
                and not self._wants.wants(role, topic)
            ):
                remote[topic] = role
        if not remote:
            return []
        made, windows = jobs_for(
            pieced,
            kinds,
            self.folder,
            self.config.chunk_ns,
            metadata,
            frozenset(remote),
            {t: r.value for t, r in remote.items() if r in INDEXED_ROLES},
            jobs,
            weigh,
        )
        if not made:  # one process is about as fast (``Plan.pays``)
            return []
        workers: list[Worker] = []
        try:
            for job in made:
                workers.append(Worker(job))
        except OSError:  # cannot start a process here: stay in one
            for worker in workers:
                worker.abort()
            return []
        self.remote = {t: r for t, r in remote.items()}
        self.inputs = pieced
        self.windows = windows
        self.pool = {c: c for chans in channels.values() for c in chans}
        # One run: every message is part of the drive's body, which starts at the first.
        first = min(p.start_ns for s in pieced for p in s.pieces() if sum(p.counts.values()))
        self.clock.body_start_ns = self.clock.body_end_ns = first
        self.segments = SegmentBuilder(self.config, first)
        self.start_ns = self.end_ns = first
        return workers

    # -- the pass -------------------------------------------------------------------------
    def run(
        self,
        stream: Iterable[RawMessage],
        progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> PassResult:
        """Consume the stream and return what the catalog needs of the drive.

        ``should_stop`` is polled now and then; True raises StopPass. Call once.
        """
        process = self.process
        self._progress, self._should_stop = progress, should_stop
        thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)  # see ingest.parallel
        try:
            for n, message in enumerate(prefetch(iter(stream))):
                process(message)
                if n % 2048 == 0:
                    if progress is not None:
                        progress(message.log_time_ns, self.message_count)
                    if should_stop is not None and should_stop():
                        raise StopPass
            for release in self.clock.finish():
                self._release(release)
            for feeder in self.sidecars.values():
                self.extra_quality.extend(feeder.finish())
                self.warnings.extend(feeder.warnings)
            if self.segments is not None:
                self.warnings.extend(self.segments.warnings)
            self.kept_attachments = keep_attachments(self.sources, self.folder, self.root)
            self.files = self.splitter.close()
            self._apply_renames(self.splitter.renames)
            for source in self.sources:
                self.recorded_out_of_order.update(source.out_of_order)
            outcomes = [worker.outcome(self._waiting) for worker in self.workers]
            if outcomes:
                self._add_workers(outcomes)
            for file in self.inputs:
                tallies = self._unknown_tallies.get(str(file.path))
                if tallies:
                    file.note_unknown(tallies)
            if self.workers:
                counted = Counter(
                    {t.topic: t.stats.count + t.outliers for t in self.topics.values()}
                )
                for source in self.sources:
                    settle = getattr(source, "settle", None)
                    if settle is not None:
                        settle(counted)
            # The same order whichever process wrote them:
            self.files.sort(key=lambda f: f.path)
            self.sensor_rows.sort(key=lambda r: (r["topic"], r["log_time_ns"]))
        except BaseException:
            for worker in self.workers:
                worker.abort()
            self.splitter.abort()
            raise
        finally:
            gc.set_threshold(*thresholds)
        return self._result()

    def messages(self) -> Iterator[RawMessage]:
        """The stream to ``run``: every message of the drive in time order; when workers
        read the drive, the pass's own messages, window after window, from their spools."""
        if not self.workers:
            return merge(self.sources)
        return (
            m
            for w, k in self.windows
            for m in self.workers[k].messages(w, self.pool, self._waiting)
        )

    def _waiting(self) -> None:
        """Called while the pass waits for a worker: progress, and a stop on request."""
        now = time.monotonic()
        if now - self._polled < 0.25:
            return
        self._polled = now
        if self._progress is not None:
            notes = [w.progress() for w in self.workers]
            self._progress(min(t for t, _ in notes), sum(n for _, n in notes))
        if self._should_stop is not None and self._should_stop():
            raise StopPass

    def _add_workers(self, outcomes: list[Outcome]) -> None:
        """What the workers report, added to what the pass saw itself: files, their
        topics' statistics in window order, sensor rows, read problems in piece order."""
        if any(d for o in outcomes for d in o.disagrees.values()):
            raise SingleProcessAgain("a chunk index misstates its chunk's times")
        parts: dict[str, list[tuple[int, TopicStats]]] = {}
        firsts: dict[str, tuple[int, Packed]] = {}
        for o in outcomes:
            self.files.extend(o.files)
            self.undecodable.merge(o.undecodable)
            self.message_count += o.count
            self.body_count += o.count
            for (topic, w), part in o.stats.items():
                parts.setdefault(topic, []).append((w, part))
            for topic, (t, packed) in o.firsts.items():
                if topic not in firsts or t < firsts[topic][0]:
                    firsts[topic] = (t, packed)
            for topic, role, log, capture, file, idx in o.rows:
                self.sensor_rows.append(
                    {
                        "topic": topic,
                        "role": role,
                        "log_time_ns": log,
                        "capture_ns": capture,
                        "file": file,
                        "message_idx": idx,
                    }  # fmt: skip
                )
        for topic in sorted(parts):
            stats = TopicStats(topic)
            for _, part in sorted(parts[topic], key=lambda item: item[0]):
                stats.then(part)
            channel = unpack(firsts[topic][1], self.pool)
            entry = self.topics[topic] = _Topic(topic, self.remote[topic], stats, channel)
            entry.unknown_encoding = sum(o.unknown_encoding.get(topic, 0) for o in outcomes)
            self.splitter.preset_slug(topic, topic_slug(topic))
            if stats.start_ns is not None and stats.start_ns < self.start_ns:
                self.start_ns = stats.start_ns
            self.end_ns = max(self.end_ns, stats.end_ns)
        for source in self.inputs:
            path = str(source.path)
            rank = {p.offset: k for k, p in enumerate(source.pieces())}
            found = [item for o in outcomes for item in o.problems.get(path, [])]
            found.sort(key=lambda item: rank.get(item[0], -1))
            source.problems.extend(problem for _, problem in found)
            for o in outcomes:
                self.recorded_out_of_order.update(o.recorded.get(path, Counter()))
                for cid, (count, size) in o.unknown.get(path, {}).items():
                    tally = self._unknown_tallies.setdefault(path, {}).setdefault(cid, [0, 0])
                    tally[0] += count
                    tally[1] += size

    def process(self, message: RawMessage) -> None:
        plan = self.plans.get(id(message.channel))
        if plan is None:
            plan = self._plan(message.channel)
        self.message_count += 1
        decoded = None
        if plan.handlers and plan.decoder is not None:
            decoded = self.undecodable.decode(
                plan.decoder, message.channel, message.log_time_ns, message.data
            )
        keyframe = None
        if plan.topic.role is Role.VIDEO:
            keyframe = decoded is not None and decoded is not UNDECODABLE
            keyframe = keyframe and opens_a_file(*_video_payload(decoded))
        position = self.splitter.write(message, keyframe)  # every message, outlier or not
        if self.clock.through(message.log_time_ns):
            self._body(message, position, plan, decoded, message.log_time_ns)
            return
        if self.workers:  # the index said one run, the messages say otherwise
            raise SingleProcessAgain(f"{message.channel.topic}: a message far from the rest")
        for release in self.clock.push(message.log_time_ns, (message, position, plan, decoded)):
            self._release(release)

    def _release(self, release: Release[_Held]) -> None:
        """A message the clock filter let through: a clock outlier is only counted; any
        other is part of the drive's body, its times, statistics, indexes and segments."""
        message, position, plan, decoded = release.item
        t = release.log_time_ns
        if release.outlier:
            plan.topic.add_outlier(t, len(message.data))
            return
        if self.segments is None:
            self.segments = SegmentBuilder(self.config, t)
            self.start_ns = self.end_ns = t
        elif release.gap_before is not None:
            self.segments.on_gap(*release.gap_before)
        self._body(message, position, plan, decoded, t)

    def _body(
        self, message: RawMessage, position: Position, plan: _ChannelPlan, decoded: Any, t: int
    ) -> None:
        """A message of the drive's body, let through the clock filter (see ``_release``)."""
        self.body_count += 1
        if t < self.start_ns:
            self.start_ns = t
        if t > self.end_ns:
            self.end_ns = t
        plan.topic.stats.add(t, len(message.data))
        if decoded is UNDECODABLE:  # stored and counted; no index or tagger sees it
            return
        for handler in plan.handlers:
            handler(message, position, decoded)

    def _plan(self, channel: Channel) -> _ChannelPlan:
        topic = self.topics.get(channel.topic)
        if topic is None:
            schema_name = channel.schema.name if channel.schema else None
            role = role_for(channel.topic, schema_name, self.config.roles)
            topic = _Topic(channel.topic, role, TopicStats(channel.topic), channel)
            self.topics[channel.topic] = topic
        feeder = self.video_topics.get(channel.topic)
        if feeder is not None and channel is not feeder.channel:
            check_topic(feeder.video, self.drive_json, channel.topic, "a recording")
        plan = _ChannelPlan(topic, None)
        if channel.message_encoding not in DECODABLE:
            plan.handlers.append(self._count_unknown)
            self.plans[id(channel)] = plan
            return plan
        role = topic.role
        if role is Role.VIDEO:
            plan.handlers.append(self._on_video)
        elif role in INDEXED_ROLES:
            plan.handlers.append(self._on_sensor)
        if channel.topic in self.sidecars:
            plan.handlers.append(self.sidecars[channel.topic].on_frame_time)
        if self._wants.wants(role, channel.topic):
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

    def _apply_renames(self, renames: dict[str, str]) -> None:
        """Rows made during the pass name a video file by its provisional name; give them
        the final one (known once the file's end was)."""
        if not renames:
            return
        for indexer in self.frames.values():
            for row in indexer.rows:
                row["file"] = renames.get(row["file"], row["file"])
        for row in self.sensor_rows:
            row["file"] = renames.get(row["file"], row["file"])

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
        fmt, data = _video_payload(decoded)
        indexer.add(message.log_time_ns, stamp_ns(decoded), fmt, data, position)

    def _on_sensor(self, message: RawMessage, position: Position, decoded: Any) -> None:
        role = self.topics[message.channel.topic].role.value
        capture = stamp_ns(decoded) if decoded is not None else None
        self.sensor_rows.append(sensor_row(message, role, capture, position))

    def _on_tagged(self, message: RawMessage, position: Position, decoded: Any) -> None:
        if decoded is not None and self.segments is not None:
            role = self.topics[message.channel.topic].role
            self.segments.on_message(role, message.channel.topic, message.log_time_ns, decoded)

    # -- results -----------------------------------------------------------------------------
    def _result(self) -> PassResult:
        """The finished pass as the catalog needs it (called once, at the end of ``run``).

        Status: recovered when an input was cut (read up to the cut), partial for any other
        loss or for messages kept that may be damaged (``types.SUSPECT``), empty without a
        message, else complete.
        """
        problems = [p for s in self.sources for p in s.problems]
        truncated = [p for p in problems if p.kind is ProblemKind.TRUNCATED]
        losses = [p for p in problems if p.kind in LOSSES]
        suspects = [p for p in problems if p.kind in SUSPECT]
        if truncated:
            status = DriveStatus.RECOVERED
        elif losses or suspects:
            status = DriveStatus.PARTIAL
        else:
            status = DriveStatus.COMPLETE if self.message_count else DriveStatus.EMPTY
        # Messages known lost: 0 when nothing was lost; the sum of the counts the inputs
        # give, a lower bound when some loss could not be counted; None when none could.
        counted = [p.lost_messages for p in losses if p.lost_messages is not None]
        lost_messages = sum(counted) if counted or not losses else None
        warnings = [
            f"{p.kind.replace('_', ' ')}: {p.path.name}: {p.detail}"
            for p in (*losses, *suspects)
            if p.kind is not ProblemKind.TRUNCATED
        ]
        if status is DriveStatus.EMPTY:
            warnings.append(
                "the inputs hold no message: drive marked 'empty', with no start or end time"
            )
        start_ns = self.start_ns if self.body_count else None
        end_ns = self.end_ns + 1 if self.body_count else None
        if self.clock.outliers:
            warnings.append(
                f"{self.clock.outliers} messages with clock outliers (log_time over "
                f"drive_gap_seconds away from the rest): stored, left out of the drive's "
                "times, statistics and segments"
            )
        quality = self._quality_rows()  # settles each topic's statistics first
        slugs = self.splitter.slugs
        topics = tuple(
            PassTopic(
                topic=t.topic,
                role=t.role,
                schema=t.channel.schema,
                encoding=t.channel.message_encoding,
                message_count=t.stats.count + t.outliers,
                bytes=t.stats.bytes + t.outlier_bytes,
                rate_hz=t.stats.rate_hz,
                start_ns=t.stats.start_ns,
                end_ns=t.stats.end_ns,
                slug=slugs.get(t.topic),
            )
            for t in sorted(self.topics.values(), key=lambda t: t.topic)
        )
        device_version = self.identity.device_version or "unknown"
        # drive_id is filled in once the drive is named (ingest.run_rows)
        segments = (
            self.segments.finish(end_ns, "", device_version)
            if self.segments is not None and end_ns is not None
            else []
        )
        for name, text in self.segments.tagger_notes if self.segments is not None else ():
            self.warnings.append(text)
            quality.append(
                QualityRow(
                    "", QualityKind.TAG_NOT_APPLICABLE, start_ns, end_ns, 1, f"{name}: {text}"
                )
            )
        return PassResult(
            identity=self.identity,
            start_ns=start_ns,
            end_ns=end_ns,
            message_count=self.message_count,
            status=status,
            lost_messages=lost_messages,
            lost_bytes=sum(p.lost_bytes for p in losses),
            lost_detail="; ".join(f"{p.path.name}: {p.detail}" for p in truncated),
            topics=topics,
            files=tuple(self.files),
            slugs=dict(slugs),
            frames=tuple(row for indexer in self.frames.values() for row in indexer.rows),
            sensor_rows=tuple(self.sensor_rows),
            quality=tuple(quality),
            segments=tuple(segments),
            warnings=(*warnings, *self.warnings, *self.undecodable.warnings()),
            attachments=self.kept_attachments,
            metadata=self.kept_metadata,
        )

    def _quality_rows(self) -> list[QualityRow]:
        rows: list[QualityRow] = [*self.extra_quality, *self.undecodable.quality()]
        for indexer in self.frames.values():
            rows.extend(indexer.quality())
        for t in sorted(self.topics.values(), key=lambda t: t.topic):
            s = t.stats
            s.finish()
            for gap in s.gaps:
                detail = f"no message for {(gap.end_ns - gap.start_ns) / 1e9:.3f} s"
                rows.append(
                    QualityRow(t.topic, QualityKind.GAP, gap.start_ns, gap.end_ns, 1, detail)
                )
            recorded = self.recorded_out_of_order.get(t.topic, 0)
            if s.out_of_order or recorded:
                first = s.first_out_of_order_ns or s.start_ns or 0
                count = s.out_of_order + recorded
                detail = f"{count} messages recorded after a later message of the topic"
                rows.append(
                    QualityRow(t.topic, QualityKind.OUT_OF_ORDER, first, first, count, detail)
                )
            if s.duplicates:
                first = s.first_duplicate_ns or 0
                detail = f"{s.duplicates} messages with the same log_time as the one before"
                kind = QualityKind.DUPLICATE_TIMESTAMP
                rows.append(QualityRow(t.topic, kind, first, first, s.duplicates, detail))
            if t.outliers:
                rows.append(_outlier_row(t))
            if t.unknown_encoding:
                enc = t.channel.message_encoding
                detail = f"encoding {enc!r} stored as is, not decoded or tagged"
                start, end = s.start_ns or 0, s.end_ns
                kind = QualityKind.UNKNOWN_ENCODING
                rows.append(QualityRow(t.topic, kind, start, end, t.unknown_encoding, detail))
        last = self.end_ns if self.message_count else None
        for source in self.sources:
            for p in source.problems:
                at = p.at_log_time_ns if p.at_log_time_ns is not None else last
                # missing_messages counts messages; the other problems count lost bytes
                lost = p.lost_messages if p.kind is ProblemKind.MISSING_MESSAGES else None
                detail = f"{p.path.name}: {p.detail}"
                kind = QualityKind(p.kind)
                rows.append(QualityRow(p.topic, kind, at, at, lost or p.lost_bytes, detail))
        return rows


_INT64_MAX = (1 << 63) - 1


def _outlier_row(t: _Topic) -> QualityRow:
    """The ``clock_outlier`` row of a topic. Its times are the outliers' own, unless they
    do not fit the catalog's BIGINT (2**63 ns and later): then the detail alone has them."""
    first, last = t.outlier_first_ns or 0, t.outlier_last_ns or 0
    detail = (
        f"{t.outliers} messages stamped far from the drive (log_time {first} to {last} ns): "
        "stored, left out of statistics and segments"
    )
    start = first if first <= _INT64_MAX else None
    end = last if last <= _INT64_MAX else None
    return QualityRow(t.topic, QualityKind.CLOCK_OUTLIER, start, end, t.outliers, detail)
