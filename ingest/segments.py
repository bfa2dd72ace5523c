"""Segments: fixed time windows of a drive, their position, H3 cells and tag values.

Definitions are docs/tags.md's. Segment ``k`` covers ``log_time`` in
``[start_ns + k*S, min(start_ns + (k+1)*S, end_ns))``; its position is the GPS position at
its midpoint, linearly interpolated between the fixes around it (the nearest fix before
the first or after the last); ``h3_cell`` is that position's cell and ``h3_cells`` the
sorted distinct cells of the segment's fixes plus ``h3_cell`` (empty without GPS). In a
drive with GPS, a segment without a fix has no ``speed`` or ``distance_m`` (vehicle state
stands in for GPS only in drives without any).

The builder streams. It holds the open segment's tagger state and fixes, a one-second
reorder buffer of decoded messages (so slightly out-of-order input is put back in order),
and the closed segments still waiting for the first fix after their midpoint (each a few
values and its fixes). A segment closes when a message past its end arrives; messages for
a segment already closed are counted as late and dropped. Across a gap of the whole drive
(``on_gap``: no message for over ``drive_gap_seconds``) no empty segment is made and no
position is interpolated.

Positioning uses the first GPS topic that delivers a valid fix, unless ``[tags.position]
gps_topic`` names one; fixes with NavSatFix ``status.status < 0`` (no fix) or coordinates
out of range are skipped.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import h3.api.basic_int as h3

from drivecat.catalog.tables import SEGMENTS
from drivecat.ingest.config import Config
from drivecat.ingest.errors import IngestError
from drivecat.ingest.roles import Role
from drivecat.ingest.tags.base import (
    TAG_COLUMNS,
    Fix,
    SegmentContext,
    Tagger,
    as_float,
    load_taggers,
    tagger_config,
    tagger_topics,
    value_of,
)

#: How far back in log time a message may arrive and still be put in order.
REORDER_NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = tuple(c.name for c in SEGMENTS.columns)


def utc(ns: int) -> datetime:
    """Nanoseconds since the Unix epoch as an aware UTC datetime (truncated to microseconds)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def fix_position(decoded: Any) -> tuple[float, float] | None:
    """(lat, lon) of a decoded ``foxglove.LocationFix`` or ``sensor_msgs/NavSatFix`` (object
    or JSON dict); None for a no-fix status, a missing or non-finite or out-of-range value."""
    status = value_of(decoded, "status", None)
    if status is not None:
        code = as_float(value_of(status, "status", None))
        if code is not None and code < 0:  # NavSatStatus.STATUS_NO_FIX
            return None
    lat = as_float(value_of(decoded, "latitude", None))
    lon = as_float(value_of(decoded, "longitude", None))
    if lat is None or lon is None or not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    return lat, lon


def interpolate(before: Fix | None, after: Fix | None, t_ns: int) -> tuple[float, float] | None:
    """Position at ``t_ns`` between the fixes around it (``before.log_time_ns <= t_ns <
    after.log_time_ns``); the one that exists when only one does; None without either.
    Longitude is interpolated the short way across the antimeridian."""
    if before is None or after is None:
        nearest = before or after
        return None if nearest is None else (nearest.lat, nearest.lon)
    frac = (t_ns - before.log_time_ns) / (after.log_time_ns - before.log_time_ns)
    dlon = after.lon - before.lon
    if dlon > 180.0:
        dlon -= 360.0
    elif dlon < -180.0:
        dlon += 360.0
    lon = before.lon + frac * dlon
    lon = (lon + 180.0) % 360.0 - 180.0 if not -180.0 <= lon <= 180.0 else lon
    return before.lat + frac * (after.lat - before.lat), lon


def _tag_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class _Open:
    """The segment being filled."""

    idx: int
    start_ns: int
    end_ns: int  # nominal: start + S
    before: Fix | None  # the last fix before the segment
    fixes: list[Fix] = field(default_factory=list)


@dataclass
class _Closed:
    """A closed segment whose row is not out yet: it may wait for the fix after its midpoint."""

    idx: int
    start_ns: int
    end_ns: int
    mid_ns: int
    fixes: tuple[Fix, ...]
    before: Fix | None  # the last fix at or before the midpoint
    after: Fix | None  # the first fix after the midpoint, None until it arrives
    values: dict[str, Any]


class SegmentBuilder:
    """Cuts one drive's tagged messages into segments and produces their ``segments`` rows.

    ``start_ns`` is the drive's first ``log_time``. Feed ``on_message`` the decoded messages
    whose role is in ``roles`` (better: for which ``wants(role, topic)``), in log-time
    order; then ``finish`` once. Raises IngestError for an invalid segment length or H3
    resolution in ``config``.
    """

    def __init__(self, config: Config, start_ns: int, taggers: Sequence[Tagger] | None = None):
        where = config.source or "drivecat.toml"
        if config.segment_ns <= 0:
            raise IngestError(f"{where}: segment_seconds must be > 0, not {config.segment_seconds}")
        if not 0 <= config.h3_resolution <= 15:
            raise IngestError(f"{where}: h3_resolution must be 0..15, not {config.h3_resolution}")
        self.start_ns = start_ns
        self.segment_ns = config.segment_ns
        self.resolution = config.h3_resolution
        self.taggers = list(load_taggers(config) if taggers is None else taggers)
        self._feeds = [t for t in self.taggers if t.roles or tagger_topics(t)]
        self._context_only = [t for t in self.taggers if t not in self._feeds]
        self._routes: dict[tuple[Role, str], list[Tagger]] = {}
        self._gps_topic: str | None = tagger_config(config, "position").get("gps_topic")
        self._heap: list[tuple[int, int, Role, str, Any]] = []
        self._seq = 0
        self._latest_ns = start_ns
        self._open = _Open(0, start_ns, start_ns + self.segment_ns, None)
        self._pending: deque[_Closed] = deque()
        self._last_fix: Fix | None = None
        self._any_fix = False
        self._rows: list[dict[str, Any]] = []
        self._errors: dict[str, int] = {}
        self.late_messages = 0
        #: (tagger name, why its configuration did not apply), filled by finish()
        self.tagger_notes: list[tuple[str, str]] = []

    # -- what to feed -----------------------------------------------------------------------
    @property
    def roles(self) -> frozenset[Role]:
        """Roles to decode: the taggers', plus GPS and vehicle state for positioning and
        motion; ``other`` too when a tagger asks for topics by name (their role is unknown
        in advance: prefer ``wants``, which asks for exactly those topics)."""
        roles = {Role.GPS, Role.VEHICLE}
        for tagger in self.taggers:
            roles |= tagger.roles
            if tagger_topics(tagger):
                roles.add(Role.OTHER)
        return frozenset(roles)

    def wants(self, role: Role, topic: str) -> bool:
        """Whether a message of this role on this topic is needed (so must be decoded)."""
        return role is Role.GPS or bool(self._route(role, topic))

    def _route(self, role: Role, topic: str) -> list[Tagger]:
        found = self._routes.get((role, topic))
        if found is None:
            found = [t for t in self._feeds if role in t.roles or topic in tagger_topics(t)]
            self._routes[(role, topic)] = found
        return found

    @property
    def warnings(self) -> list[str]:
        """One line per kind of problem met so far (late messages, tagger failures)."""
        lines = [f"{text} ({n} times)" if n > 1 else text for text, n in self._errors.items()]
        if self.late_messages:
            lines.append(
                f"{self.late_messages} tagged messages arrived after their segment closed "
                "(more than 1 s out of log-time order); not tagged"
            )
        return lines

    # -- the stream -------------------------------------------------------------------------
    def on_message(self, role: Role, topic: str, log_time_ns: int, decoded: Any) -> None:
        """One decoded message; ``log_time_ns`` is its record time (ns since the epoch)."""
        if not self.wants(role, topic):
            return
        self._seq += 1
        heapq.heappush(self._heap, (log_time_ns, self._seq, role, topic, decoded))
        self._latest_ns = max(self._latest_ns, log_time_ns)
        horizon = self._latest_ns - REORDER_NS
        while self._heap and self._heap[0][0] <= horizon:
            t, _, r, tp, d = heapq.heappop(self._heap)
            self._process(r, tp, t, d)

    def _process(self, role: Role, topic: str, log_time_ns: int, decoded: Any) -> None:
        idx = max(0, (log_time_ns - self.start_ns) // self.segment_ns)
        if idx < self._open.idx:
            self.late_messages += 1
            return
        self._advance(idx)
        if role is Role.GPS:
            self._on_gps(topic, log_time_ns, decoded)
        for tagger in self._route(role, topic):
            try:
                tagger.on_message(role, topic, log_time_ns, decoded)
            except Exception as err:  # one odd message must not sink the drive
                self._note(f"tagger {tagger.name}: {topic}: {type(err).__name__}: {err}")

    def _on_gps(self, topic: str, log_time_ns: int, decoded: Any) -> None:
        if self._gps_topic is not None and topic != self._gps_topic:
            return
        position = fix_position(decoded)
        if position is None:
            return
        self._gps_topic = topic
        fix = Fix(log_time_ns, position[0], position[1])
        for closed in self._pending:
            if closed.after is None:  # every closed segment's midpoint is before this fix
                closed.after = fix
        fixes = self._open.fixes
        fixes.insert(bisect_right(fixes, log_time_ns, key=lambda f: f.log_time_ns), fix)
        if self._last_fix is None or log_time_ns >= self._last_fix.log_time_ns:
            self._last_fix = fix
        self._any_fix = True
        self._drain()

    def _note(self, text: str) -> None:
        self._errors[text] = self._errors.get(text, 0) + 1

    def on_gap(self, last_ns: int, next_ns: int) -> None:
        """The drive has no message at all between ``last_ns`` and ``next_ns`` (a gap over
        ``drive_gap_seconds`` inside one recording). The segment holding ``last_ns`` is
        closed; no segment is made for the empty windows between (so memory follows the
        data, not the span of its times), and no position is interpolated across: the
        segments before the gap keep the fixes before it, those after start afresh."""
        while self._heap:
            t, _, role, topic, decoded = heapq.heappop(self._heap)
            self._process(role, topic, t, decoded)
        idx = max(self._open.idx, (next_ns - self.start_ns) // self.segment_ns)
        if idx <= self._open.idx + 1:
            return  # the next message is in this segment or the next one: nothing to skip
        self._close(self._open, self._open.end_ns)
        self._drain(final=True)
        start = self.start_ns + idx * self.segment_ns
        self._last_fix = None
        self._open = _Open(idx, start, start + self.segment_ns, None)
        self._latest_ns = max(self._latest_ns, last_ns)

    # -- closing segments -------------------------------------------------------------------
    def _advance(self, idx: int) -> None:
        while self._open.idx < idx:
            seg = self._open
            self._close(seg, seg.end_ns)
            self._open = _Open(
                seg.idx + 1, seg.end_ns, seg.end_ns + self.segment_ns, self._last_fix
            )

    def _close(self, seg: _Open, end_ns: int) -> None:
        mid_ns = (seg.start_ns + end_ns) // 2
        fixes = tuple(seg.fixes)
        i = bisect_right(fixes, mid_ns, key=lambda f: f.log_time_ns)
        before = fixes[i - 1] if i > 0 else seg.before
        after = fixes[i] if i < len(fixes) else None
        closed = _Closed(seg.idx, seg.start_ns, end_ns, mid_ns, fixes, before, after, {})
        # Message-fed taggers are finished now, so they can take the next segment's
        # messages; the position they see may still change if no fix after mid has come.
        context = self._context(closed)
        for tagger in self._feeds:
            closed.values.update(self._finish(tagger, context))
        self._pending.append(closed)
        self._drain()

    def _context(self, closed: _Closed) -> SegmentContext:
        position = interpolate(closed.before, closed.after, closed.mid_ns)
        lat, lon = position if position is not None else (None, None)
        return SegmentContext(
            closed.idx, closed.start_ns, closed.end_ns, closed.mid_ns, lat, lon, closed.fixes
        )

    def _finish(self, tagger: Tagger, context: SegmentContext) -> Mapping[str, Any]:
        try:
            return dict(tagger.finish(context))
        except Exception as err:  # a plugin bug: its values are NULL for this segment
            self._note(f"tagger {tagger.name}: finish: {type(err).__name__}: {err}")
            return {}

    def _drain(self, final: bool = False) -> None:
        while self._pending and (final or self._pending[0].after is not None):
            self._emit(self._pending.popleft())

    def _emit(self, closed: _Closed) -> None:
        context = self._context(closed)
        values = dict(closed.values)
        for tagger in self._context_only:
            values.update(self._finish(tagger, context))
        cell = None
        cells = {h3.latlng_to_cell(f.lat, f.lon, self.resolution) for f in closed.fixes}
        if context.lat is not None and context.lon is not None:
            cell = h3.latlng_to_cell(context.lat, context.lon, self.resolution)
            cells.add(cell)
        row: dict[str, Any] = {
            "seg_idx": closed.idx,
            "start_ns": closed.start_ns,
            "end_ns": closed.end_ns,
            "start_time": utc(closed.start_ns),
            "end_time": utc(closed.end_ns),
            "lat": context.lat,
            "lon": context.lon,
            "h3_cell": cell,
            "h3_cells": sorted(cells),
            "_fixes": len(closed.fixes),
        }
        row.update({name: values.get(name) for name in TAG_COLUMNS})
        row["tags"] = {
            k: _tag_text(v) for k, v in values.items() if k not in TAG_COLUMNS and v is not None
        }
        self._rows.append(row)

    # -- the end ----------------------------------------------------------------------------
    def finish(self, end_ns: int, drive_id: str, device_version: str) -> list[dict[str, Any]]:
        """Every segment's row, in order, keyed by exactly the ``segments`` columns.

        ``end_ns`` is the drive's last ``log_time`` plus one. Call once, after the last
        message. A drive with no message after ``start_ns`` still has one segment.
        """
        while self._heap:
            t, _, role, topic, decoded = heapq.heappop(self._heap)
            self._process(role, topic, t, decoded)
        end_ns = max(end_ns, self._latest_ns + 1, self.start_ns + 1)
        self._advance((end_ns - 1 - self.start_ns) // self.segment_ns)
        self._close(self._open, min(self._open.end_ns, end_ns))
        self._drain(final=True)
        drive_has_gps = self._any_fix
        rows = []
        for row in self._rows:
            if not row.pop("_fixes") and drive_has_gps:
                # "Without GPS" means a drive without GPS (see ingest.tags.motion).
                row["speed"] = row["distance_m"] = None
            rows.append(
                {name: row.get(name) for name in _COLUMNS}
                | {"drive_id": drive_id, "device_version": device_version}
            )
        self._rows = []
        for tagger in self.taggers:
            notes = getattr(tagger, "notes", None)  # optional: see ingest.tags.intersection
            if callable(notes):
                self.tagger_notes.extend((tagger.name, str(text)) for text in notes())
        return rows
