"""The exact video frame at a time t: lookup and decoding (PyAV).

Time base: a frame's time is its capture time (``frames.capture_ns``, the message's own
``timestamp``) where it has one, else its ``log_time_ns``. A capture time of 0 counts as
none: it is what a proto3 ``CompressedVideo`` without a timestamp decodes to.

Lookup is a binary search (``numpy.searchsorted``, in Python) over the times of every frame
of one (drive, topic), fetched from the catalog. A frame number is never computed from a
frame rate. Decoding starts at the frame's ``keyframe_idx`` and feeds the access units, read
through the message index of only the store files that hold them (``catalog.mcap_index``:
one read for the span of the keyframe..target messages), into one PyAV decoder up to the
target; only that picture is converted to RGB. The picture returned is the one decoded from
the target's own access unit (packets carry their position as pts, which survives any
reordering).

Frames are addressed by ``frame_idx``, their 0-based position in decode order (the order of
the messages). ``align(reference_topic, camera_topic, tolerance_ms)``, the DuckDB table
macro that pairs other sensors' messages with frames, lives in ``catalog.align``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
from foxglove_schemas_protobuf.CompressedVideo_pb2 import CompressedVideo

from drivecat.catalog.errors import CatalogError
from drivecat.catalog.store_files import StoreFiles

# Re-exported: catalog.db imports register_macros from this module.
from drivecat.schemas.decoding import DecoderCache, value_of
from drivecat.types import Codec

if TYPE_CHECKING:
    import av

# Per thread and video (store, drive, topic): the RGB reformatter and a spare decoder per
# codec, kept across readers of that video. Never shared between videos: a decoder keeps
# state of its stream (reordering delay) past a flush, and a reformatter its scaler's
# colour space and range.
_KEPT = threading.local()
_KEPT_MAX = 4


def _kept(key: tuple[str, str, str]) -> dict[str, Any]:
    videos: dict[tuple[str, str, str], dict[str, Any]] = _KEPT.__dict__.setdefault("videos", {})
    found = videos.get(key)
    if found is None:
        if len(videos) >= _KEPT_MAX:
            videos.pop(next(iter(videos)))
        found = videos[key] = {"decoders": {}, "rgb": None}
    return found


# Access units read from a store file per mcap query: bounds memory on long forward runs.
_READ_BATCH = 64


class Mode(StrEnum):
    """Which frame a time selects."""

    NEAREST = "nearest"  # the frame whose time is closest; a tie goes to the earlier one
    BEFORE = "before"  # the last frame whose time is <= t


@dataclass(frozen=True)
class Frame:
    """One row of the ``frames`` table. ``file`` is relative to the store."""

    drive_id: str
    topic: str
    frame_idx: int
    log_time_ns: int
    capture_ns: int | None
    is_keyframe: bool
    keyframe_idx: int | None
    file: str
    message_idx: int
    codec: str

    @property
    def time_ns(self) -> int:
        """The frame's time: capture time where it has one, else log time (ns, Unix epoch)."""
        return self.capture_ns if self.capture_ns else self.log_time_ns


@dataclass(frozen=True, eq=False)
class FrameResult:
    """A decoded frame: its row, its picture, and how many access units this access fed to
    the decoder (0 when an earlier access had already produced it)."""

    row: Frame
    image: np.ndarray  # (height, width, 3) uint8 RGB
    decoded: int


class _Index:
    """Every frame of one (drive, topic), in frame_idx order, as arrays."""

    def __init__(self, drive_id: str, topic: str, cols: dict[str, np.ndarray]) -> None:
        self.drive_id, self.topic = drive_id, topic
        self.frame_idx = cols["frame_idx"].astype(np.int64)
        self.log_time = cols["log_time_ns"].astype(np.int64)
        self.capture = cols["capture_ns"].astype(np.int64)  # 0: none
        self.time = np.where(self.capture != 0, self.capture, self.log_time)
        self.is_keyframe = cols["is_keyframe"].astype(bool)
        self.keyframe_idx = cols["keyframe_idx"].astype(np.int64)  # -1: none
        self.file = cols["file"]
        self.message_idx = cols["message_idx"].astype(np.int64)
        self.codec = cols["codec"]
        # Sorted unique times and, for each, the first position holding it: frame times
        # normally increase, but a backwards or repeated time must not break the search.
        order = np.argsort(self.time, kind="stable")
        self.sorted_time, first = np.unique(self.time[order], return_index=True)
        self.sorted_pos = order[first]
        gaps = np.diff(self.sorted_time)
        self.slack_ns = int(np.median(gaps)) if gaps.size else 0

    def __len__(self) -> int:
        return int(self.frame_idx.size)

    def row(self, pos: int) -> Frame:
        kf = int(self.keyframe_idx[pos])
        return Frame(
            drive_id=self.drive_id,
            topic=self.topic,
            frame_idx=int(self.frame_idx[pos]),
            log_time_ns=int(self.log_time[pos]),
            capture_ns=int(self.capture[pos]) or None,
            is_keyframe=bool(self.is_keyframe[pos]),
            keyframe_idx=None if kf < 0 else kf,
            file=str(self.file[pos]),
            message_idx=int(self.message_idx[pos]),
            codec=str(self.codec[pos]),
        )

    def position(self, frame_idx: int) -> int:
        pos = int(np.searchsorted(self.frame_idx, frame_idx))
        if pos >= len(self) or self.frame_idx[pos] != frame_idx:
            raise CatalogError(
                f"{self.topic} of drive {self.drive_id}: no frame {frame_idx} "
                f"(frames 0..{len(self) - 1})"
            )
        return pos

    def find(self, t_ns: int, mode: Mode) -> int:
        """Position of the frame ``t_ns`` selects: a binary search over the frames' times.

        CatalogError when t is before the first frame (``before``), or further outside
        [first, last] frame time than the median interval between frames (both modes).
        """
        times = self.sorted_time
        first, last = int(times[0]), int(times[-1])
        if t_ns < first - self.slack_ns or t_ns > last + self.slack_ns:
            raise CatalogError(
                f"{self.topic} of drive {self.drive_id}: time {t_ns} ns is outside the video "
                f"({first}..{last} ns)"
            )
        i = int(np.searchsorted(times, t_ns, side="right"))  # times[i - 1] <= t < times[i]
        if mode is Mode.BEFORE:
            if i == 0:
                raise CatalogError(
                    f"{self.topic} of drive {self.drive_id}: no frame at or before {t_ns} ns "
                    f"(the first is at {first} ns)"
                )
            return int(self.sorted_pos[i - 1])
        if i == 0:
            return int(self.sorted_pos[0])
        if i == times.size or t_ns - times[i - 1] <= times[i] - t_ns:
            return int(self.sorted_pos[i - 1])
        return int(self.sorted_pos[i])


def load_index(con: duckdb.DuckDBPyConnection, drive_id: str, topic: str) -> _Index:
    """The frames of one (drive, topic). CatalogError for an unknown drive or topic, or a
    topic without frames (not a video, or none indexed)."""
    cols = con.execute(
        "SELECT frame_idx, log_time_ns, coalesce(capture_ns, 0) AS capture_ns, is_keyframe, "
        "coalesce(keyframe_idx, -1) AS keyframe_idx, file, message_idx, codec "
        "FROM frames WHERE drive_id = ? AND topic = ? ORDER BY frame_idx",
        [drive_id, topic],
    ).fetchnumpy()
    if len(cols["frame_idx"]):
        return _Index(drive_id, topic, cols)
    if not con.execute("SELECT 1 FROM drives WHERE drive_id = ?", [drive_id]).fetchone():
        raise CatalogError(f"no drive {drive_id!r} in the catalog")
    found = con.execute(
        "SELECT role FROM topics WHERE drive_id = ? AND topic = ?", [drive_id, topic]
    ).fetchone()
    if found is None:
        raise CatalogError(f"drive {drive_id} has no topic {topic!r}")
    raise CatalogError(f"{topic} of drive {drive_id} has no video frames (role {found[0]})")


# Frame indexes loaded without a caller's connection, by (catalog, drive, topic): opening
# DuckDB costs 13 ms or more whatever the query (an in-memory database as much), more than
# PyAV's whole seek-and-decode. An entry is used only while the catalog file and its WAL
# are unchanged (inode, size, mtime, ctime): any commit changes one of them.
_INDEXES: dict[tuple[str, str, str], tuple[tuple[object, ...], _Index]] = {}
_INDEXES_MAX = 16


def clear_index_cache() -> None:
    """Forget the frame indexes cached in this process (the next call without a connection
    reads the one saved in the store, if it is current, else opens DuckDB)."""
    _INDEXES.clear()


def _catalog_stamp(path: str) -> tuple[object, ...]:
    """(inode, size, mtime, ctime) of the catalog file and of its WAL (None: no such file).
    Each is opened to be stat'ed: on NFS that revalidates the attributes, as DuckDB's open
    would, instead of taking the client's cached ones."""
    stamp: list[object] = []
    for file in (path, path + ".wal"):
        try:
            fd = os.open(file, os.O_RDONLY)
        except FileNotFoundError:
            stamp.append(None)
            continue
        except OSError:  # no permission to open: the plain attributes
            st = os.stat(file)
        else:
            try:
                st = os.fstat(fd)
            finally:
                os.close(fd)
        stamp.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(stamp)


def _cached_index(
    store: Path, drive_id: str, topic: str, con: duckdb.DuckDBPyConnection | None = None
) -> _Index:
    """The frame index of (drive, topic), from the cache while the catalog is unchanged,
    else through ``con`` or a plain read-only connection (no UDFs: only columns are read).

    A caller's connection shares the cache when it is a read-only connection to this
    store's catalog: it cannot hold uncommitted changes of its own, and while it is open
    no other process can write the file. Any other connection is always queried.
    """
    from drivecat.catalog import db

    # abspath, not resolve(): the stamp holds the inode, so no symlink walk is needed.
    path = os.path.abspath(os.path.join(store, db.CATALOG_NAME))
    if con is not None and not _reads_only(con, path):
        return load_index(con, drive_id, topic)
    key = (path, drive_id, topic)
    stamp = _catalog_stamp(path)
    found = _INDEXES.get(key)
    if found is not None and found[0] == stamp and stamp[0] is not None:
        return found[1]
    saved = _saved_path(store, drive_id, topic)
    index = _load_saved(saved, stamp, drive_id, topic) if stamp[0] is not None else None
    if index is None:
        if con is not None:
            index = load_index(con, drive_id, topic)
        else:
            with db.connect(store, read_only=True, functions=False) as fresh:
                index = load_index(fresh, drive_id, topic)
        if stamp[0] is not None and _catalog_stamp(path) == stamp:
            _save(saved, stamp, index)
    if len(_INDEXES) >= _INDEXES_MAX:
        _INDEXES.pop(next(iter(_INDEXES)))
    _INDEXES[key] = (stamp, index)
    return index


# The frame indexes also outlive the process, in the store's cache folder, stamped like
# the in-process cache: the first call of a process then opens no DuckDB at all (opening
# it costs 11 to 14 ms, an in-memory database as much: more than PyAV's whole seek). A
# file whose stamp is not the catalog's is ignored; where the store cannot be written,
# nothing is saved. One .npy file holds five arrays in turn: the stamp (as text, with the
# layout's version), [drive_id, topic], the distinct file names and codecs, and the frames
# as one structured array, with a code for each frame's file and codec (an .npz, a zip of
# 13 arrays, took 1.5 ms to load; file names as fixed-width text in every row, 3 ms).
CACHE_DIR = ".cache"
_SAVED_LAYOUT = 1
_NUMBERS = ("frame_idx", "log_time_ns", "capture_ns", "keyframe_idx", "message_idx")


def _saved_path(store: Path, drive_id: str, topic: str) -> Path:
    name = hashlib.sha256(f"{drive_id}\0{topic}".encode()).hexdigest()[:32]
    return Path(store) / CACHE_DIR / "frames" / f"{name}.npy"


def _stamp_text(stamp: tuple[object, ...]) -> np.ndarray:
    return np.array([repr((_SAVED_LAYOUT, stamp))])


def _load_saved(saved: Path, stamp: tuple[object, ...], drive_id: str, topic: str) -> _Index | None:
    """The index saved at ``saved``, if it was saved at this catalog ``stamp``; None for any
    other file (gone, damaged, cut short, another layout: the catalog is asked instead)."""
    try:
        with open(saved, "rb") as f:
            if np.load(f, allow_pickle=False).tolist() != _stamp_text(stamp).tolist():
                return None
            if np.load(f, allow_pickle=False).tolist() != [drive_id, topic]:
                return None
            files, codecs, frames = (np.load(f, allow_pickle=False) for _ in range(3))
        cols = {name: frames[name] for name in (*_NUMBERS, "is_keyframe")}
        cols["file"] = files.astype(object)[frames["file"]]
        cols["codec"] = codecs.astype(object)[frames["codec"]]
        return _Index(drive_id, topic, cols)
    except Exception:  # numpy parsing a damaged header raises more than ValueError
        return None


def _save(saved: Path, stamp: tuple[object, ...], index: _Index) -> None:
    """Save ``index`` at ``saved`` (a temporary file of its own, then renamed); nothing
    where that fails (a read-only store): the index is only a copy of the catalog's."""
    files, file_code = np.unique(index.file.astype(str), return_inverse=True)
    codecs, codec_code = np.unique(index.codec.astype(str), return_inverse=True)
    frames = np.empty(
        len(index),
        dtype=[(name, np.int64) for name in _NUMBERS]
        + [("is_keyframe", np.bool_), ("file", np.int32), ("codec", np.int32)],
    )
    for name, values in zip(
        _NUMBERS,
        (index.frame_idx, index.log_time, index.capture, index.keyframe_idx, index.message_idx),
        strict=True,
    ):
        frames[name] = values
    frames["is_keyframe"], frames["file"], frames["codec"] = (
        index.is_keyframe,
        file_code,
        codec_code,
    )
    arrays = (_stamp_text(stamp), np.array([index.drive_id, index.topic]), files, codecs, frames)
    try:
        saved.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=saved.parent, prefix=f".{saved.name}.", suffix=".partial")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            for array in arrays:
                np.save(f, array, allow_pickle=False)
        os.replace(tmp, saved)
    except Exception:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# Per connection: the file of its current database and whether it is read-only (asked
# once: the query costs about 0.3 ms, as much as decoding half a frame).
_CONNECTIONS: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, tuple[str | None, bool]] = (
    weakref.WeakKeyDictionary()
)


def _reads_only(con: duckdb.DuckDBPyConnection, catalog: str) -> bool:
    """Whether ``con`` is a read-only connection whose current database is ``catalog``."""
    found = _CONNECTIONS.get(con)
    if found is None:
        row = con.execute(
            "SELECT path, readonly FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
        found = _CONNECTIONS[con] = (row[0], bool(row[1])) if row else (None, False)
    where, read_only = found
    if not read_only or not where:
        return False
    try:
        return os.path.samefile(where, catalog)
    except OSError:
        return False


class VideoReader:
    """One video topic of one drive: its frame index and one open decoder.

    Successive :meth:`decode` calls reuse the decoder: a target ahead of the decoder in the
    same GOP continues forward; a target behind it, or past the next keyframe, restarts
    from the target's keyframe. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        store: Path,
        drive_id: str,
        topic: str,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> None:
        self.store = Path(store)
        self.index = _cached_index(self.store, drive_id, topic, con)
        self._files = StoreFiles(self.store)
        self._key = (os.path.abspath(self.store), drive_id, topic)
        self._decoders = DecoderCache()  # for video recorded as ROS messages
        self._ctx: av.VideoCodecContext | None = None
        self._next = 0  # position of the next access unit to feed
        self._drained = True  # True: the decoder must restart at a keyframe
        self._pending: dict[int, av.VideoFrame] = {}
        self._packets: Iterator[tuple[int, bytes]] = iter(())
        self._packets_end = -1  # last position the packet iterator yields
        self._last: FrameResult | None = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._files.close()
        self._pending.clear()
        if self._ctx is not None:
            self._ctx.flush_buffers()
            _kept(self._key)["decoders"][self._ctx.name] = self._ctx
        self._ctx = None

    def find(self, t_ns: int, mode: Mode | str = Mode.NEAREST) -> Frame:
        """The frame ``t_ns`` selects (see :meth:`_Index.find`), without decoding it."""
        return self.index.row(self.index.find(int(t_ns), Mode(mode)))

    def row(self, frame_idx: int) -> Frame:
        return self.index.row(self.index.position(frame_idx))

    def decode(self, frame_idx: int, *, read_until: int | None = None) -> FrameResult:
        """Decode frame ``frame_idx`` exactly. ``read_until``: a later frame_idx the caller
        will ask for next without a restart, so reads can run ahead to it.

        CatalogError when the frame has no keyframe before it, a store file is missing or
        disagrees with the catalog, or the access units do not decode to the frame.
        """
        pos = self.index.position(frame_idx)
        horizon = pos if read_until is None else max(pos, self.index.position(read_until))
        if self._last is not None and self._last.row.frame_idx == frame_idx:
            return FrameResult(self._last.row, self._last.image, 0)
        row = self.index.row(pos)
        if row.keyframe_idx is None:
            raise CatalogError(
                f"{row.topic} of drive {row.drive_id}: frame {frame_idx} has no keyframe "
                "before it and cannot be decoded"
            )
        decoded = 0
        if pos not in self._pending:
            decoded = self._feed_to(pos, self.index.position(row.keyframe_idx), horizon)
        picture = self._pending.pop(pos, None)
        if picture is None:
            raise CatalogError(
                f"{self.store / row.file}: frame {frame_idx} did not decode from keyframe "
                f"{row.keyframe_idx}"
            )
        self._last = FrameResult(row, self._to_rgb(picture), decoded)
        return self._last

    def _to_rgb(self, picture: av.VideoFrame) -> np.ndarray:
        # One reformatter per video, kept across readers: it keeps its scaler context, and
        # a new one costs 3 to 7 ms at 640x360, as much as decoding half a GOP.
        kept = _kept(self._key)
        rgb = kept["rgb"]
        if rgb is None:
            from av.video.reformatter import VideoReformatter

            rgb = kept["rgb"] = VideoReformatter()
        # One thread: swscale's default (auto) wakes worker threads for a 0.1 ms conversion
        # and waits for them, which on a busy machine costs more than the conversion (same
        # pixels either way).
        image: np.ndarray = rgb.reformat(picture, format="rgb24", threads=1).to_ndarray()
        return image

    # -- decoding --------------------------------------------------------------------------
    def _feed_to(self, pos: int, keyframe_pos: int, horizon: int) -> int:
        """Feed access units until ``pos``'s picture is out; return how many were fed."""
        ctx = self._decoder(str(self.index.codec[pos]))
        if self._drained or pos < self._next or keyframe_pos > self._next:
            ctx.flush_buffers()  # drop references and buffered pictures: a clean restart
            self._pending.clear()
            self._drained = False
            self._next = keyframe_pos
            self._packets, self._packets_end = self._read(keyframe_pos, horizon), horizon
        elif horizon > self._packets_end:
            self._packets, self._packets_end = self._read(self._next, horizon), horizon
        fed = 0
        try:
            while pos not in self._pending:
                if self._next > self._packets_end:
                    # The decoder holds pictures back (reordering delay): drain it. It must
                    # then restart at a keyframe, which is fine: the caller reads no further.
                    self._drained = True
                    self._take(ctx, None, pos)
                    break
                at, data = next(self._packets)
                self._take(ctx, self._packet(data, at), pos)
                self._next = at + 1
                fed += 1
        except BaseException:
            self._drained = True  # a failed read or decode leaves the decoder unusable
            raise
        return fed

    def _decoder(self, codec: str) -> av.VideoCodecContext:
        import av

        try:
            name = Codec(codec).ffmpeg_name
        except ValueError:
            raise CatalogError(f"{self.index.topic}: cannot decode video codec {codec!r}") from None
        if self._ctx is None or self._ctx.name != name:
            # A decoder left by an earlier reader of this thread, if any: a new one is opened
            # (threads, tables) on its first packet, about 1 ms; restarts flush it anyway.
            spare: dict[str, Any] = _kept(self._key)["decoders"]
            self._ctx = spare.pop(name, None) or av.CodecContext.create(name, "r")  # type: ignore[assignment]
            self._drained = True
        assert self._ctx is not None
        return self._ctx

    @staticmethod
    def _packet(data: bytes, pts: int) -> av.Packet:
        import av

        packet = av.Packet(data)
        packet.pts = pts
        return packet

    def _take(self, ctx: av.VideoCodecContext, packet: av.Packet | None, pos: int) -> None:
        import av

        try:
            pictures = ctx.decode(packet)
        except av.FFmpegError as err:
            row = self.index.row(pos)
            raise CatalogError(
                f"{self.store / row.file}: cannot decode frame {row.frame_idx}: {err}"
            ) from None
        for picture in pictures:
            # Pictures before the target are never asked for again by a forward walk.
            if picture.pts is not None and picture.pts >= pos:
                self._pending[int(picture.pts)] = picture

    # -- reading ---------------------------------------------------------------------------
    def _read(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """(position, access unit) for positions start..end, file by file, in batches."""
        files = self.index.file
        pos = start
        while pos <= end:
            stop = pos
            while stop < end and stop - pos + 1 < _READ_BATCH and files[stop + 1] == files[pos]:
                stop += 1
            units = self._read_span(pos, stop)
            yield from zip(range(pos, stop + 1), units, strict=True)
            pos = stop + 1

    def _read_span(self, first: int, last: int) -> list[bytes]:
        """The access units of positions first..last, which all lie in one store file.

        Messages are matched to rows by log_time; rows that share a log_time take the
        messages with that time in file order, ranked by their message_idx.
        """
        ix = self.index
        file = str(ix.file[first])
        times = ix.log_time[first : last + 1]
        by_time: dict[int, list[bytes]] = {}
        # Only the messages in [first, last]'s times, by the message index: a target's GOP is
        # a few dozen messages of a chunk that holds hundreds.
        for schema, channel, log_time, data in self._files.indexed(
            file, ix.topic, int(times.min()), int(times.max())
        ):
            by_time.setdefault(log_time, []).append(
                self._video_data(schema, channel.message_encoding, data)
            )
        units = []
        for pos in range(first, last + 1):
            found = by_time.get(int(ix.log_time[pos]), [])
            rank = self._rank(pos) if len(found) > 1 else 0
            if rank >= len(found):
                raise CatalogError(
                    f"{self.store / file}: no message for frame {ix.frame_idx[pos]} at log time "
                    f"{ix.log_time[pos]}; the catalog and the store disagree"
                )
            units.append(found[rank])
        return units

    def _video_data(self, schema: Any, encoding: str, data: bytes) -> bytes:
        """The access unit of one CompressedVideo message, whatever its encoding."""
        if encoding == "protobuf":
            return CompressedVideo.FromString(data).data  # the common case, without lookups
        decoder = self._decoders.decoder(
            encoding,
            schema.name if schema else "",
            schema.encoding if schema else "",
            schema.data if schema else b"",
        )
        if decoder is None:
            raise CatalogError(f"{self.index.topic}: cannot decode its video ({encoding})")
        decoded = decoder(data)
        return bytes(value_of(decoded, "data") or b"")

    def _rank(self, pos: int) -> int:
        """How many frames in pos's file share its log_time and come before it."""
        ix = self.index
        same = (ix.file == ix.file[pos]) & (ix.log_time == ix.log_time[pos])
        return int(np.count_nonzero(same & (ix.message_idx < ix.message_idx[pos])))


def frame_at(
    store: Path,
    drive_id: str,
    topic: str,
    t_ns: int,
    mode: Mode | str = Mode.NEAREST,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
) -> FrameResult:
    """The exact frame of ``topic`` in ``drive_id`` at ``t_ns`` (ns since the Unix epoch, in
    the frames' time base: capture time, else log time), decoded to RGB.

    ``mode``: ``nearest`` (closest frame; a tie goes to the earlier) or ``before`` (last
    frame at or before t). Decodes from the frame's keyframe, reading only the store files
    that hold [keyframe, target]. CatalogError (one line) for a missing catalog, an unknown
    drive or topic, a time outside the video, a frame with no keyframe before it, or a store
    file that is missing or disagrees with the catalog. ``con``: an open catalog connection
    to use instead of opening the store's catalog read-only.
    """
    with VideoReader(store, drive_id, topic, con) as reader:
        row = reader.find(t_ns, mode)
        return reader.decode(row.frame_idx)


def iter_frames(
    store: Path,
    drive_id: str,
    topic: str,
    frame_indices: Iterable[int],
    *,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Iterator[FrameResult]:
    """Decode frames ``frame_indices`` (sorted ascending for efficiency) in that order with
    one open decoder: it runs forward to a target in the same GOP, and restarts from a
    keyframe only for a target behind it or past the next keyframe. Reads run ahead over
    each forward run. Errors as :func:`frame_at`; an unknown frame_idx is a CatalogError.
    """
    targets = [int(i) for i in frame_indices]
    with VideoReader(store, drive_id, topic, con) as reader:
        ends = _run_ends(reader.index, [reader.index.position(i) for i in targets])
        for frame_idx, end in zip(targets, ends, strict=True):
            yield reader.decode(frame_idx, read_until=end)


def _run_ends(index: _Index, positions: list[int]) -> list[int]:
    """For each target, the frame_idx of the last target the decoder reaches without a
    restart: the next target continues a run when it lies ahead in the same GOP."""
    ends = [int(index.frame_idx[p]) for p in positions]
    for j in range(len(positions) - 2, -1, -1):
        here, after = positions[j], positions[j + 1]
        kf = int(index.keyframe_idx[after])
        kf_pos = index.position(kf) if kf >= 0 else after + 1
        if after > here and kf_pos <= here:
            ends[j] = ends[j + 1]
    return ends


def save_frame_at(
    store: Path,
    drive_id: str,
    topic: str,
    t_ns: int,
    out: Path,
    mode: Mode | str = Mode.NEAREST,
) -> FrameResult:
    """:func:`frame_at`, written to ``out`` as a PNG (errors as there and :func:`write_png`)."""
    result = frame_at(store, drive_id, topic, t_ns, mode)
    write_png(result.image, out)
    return result


def write_png(image: np.ndarray, out: Path) -> None:
    """Write an RGB uint8 (height, width, 3) image as a PNG, atomically (PyAV's encoder).

    CatalogError naming the file when it cannot be written.
    """
    import av

    out = Path(out)
    height, width = image.shape[:2]
    ctx = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "rgb24"  # type: ignore[attr-defined]
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    data = b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)])
    tmp = out.with_name(f".{out.name}.partial")
    try:
        tmp.write_bytes(data)
        tmp.replace(out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CatalogError(f"{out}: cannot write the PNG: {err.strerror}") from None
