"""Random access to video frames: ``frame_at`` against two baselines, on a 10-minute drive.

    python -m bench.frames [--seconds 600] [--n 12] [--work /tmp/drivecat-bench]   (repo root)

1. Generates a drive (15 fps front camera, small lidar sweeps), once, cached, and ingests it.
2. Picks ``--n`` random times (fixed seed) and the frame truth.json says is nearest to each.
3. drivecat, five ways, on the same targets:
   - ``frame_at`` as a one-off call with no connection (``cold``): its frame index comes
     from the process's cache while the catalog file is unchanged, and the store file is
     opened, read by its message index and decoded from the keyframe;
   - the same with the process's cache emptied first, as the first call of a process is
     (``first_call``): the index saved in the store's ``.cache`` by an earlier call is read
     (no DuckDB);
   - the same with the saved index removed too, as the first call ever is
     (``first_ever``): the catalog is opened read-only, without the UDFs, and the index
     saved (timed in a pass of its own: DuckDB's threads wind down after it, slowing
     whatever runs next);
   - ``frame_at`` with an open catalog connection (``con``);
   - one ``VideoReader`` kept open: index loaded once, decoder reused (``warm``).
   Every picture's barcode is checked against truth, and the frames fed to the decoder are
   counted (the target: never more than one GOP).
4. Baseline ``from_start``: decode every access unit from the start of the video to the
   target (units already in memory, so only decoding is timed; the same decoder settings).
5. Baseline ``container_seek``: the same access units muxed into an ``.mp4`` without
   re-encoding; PyAV ``container.seek(pts, backward=True, any_frame=False)`` to the keyframe,
   then decode forward to the target's pts (container opened once); ``container_seek_cold``
   opens the mp4 for each access, as a one-off call would.
The ways run interleaved, target by target, in an order rotated from one target to the
next: the machine is shared and noisy.
6. ``breakdown``: a separate interleaved pass that times the phases of a one-off
   ``frame_at`` (index, read, decode, rgb, other) and of ``container_seek`` (seek, demux,
   decode, rgb), median ms per access, wall and the thread's CPU time.
Prints JSON: per-access median and mean wall ms and median CPU ms of each way, the ratios
baseline / drivecat of means (``ratios``), of medians (``median_ratios``) and of CPU medians
(``cpu_median_ratios``), and the breakdown.
Targets: from_start / frame_at >= 20; container_seek / frame_at_cold >= 1 and
frame_at_cold / frame_at_con >= 1 (medians); frames decoded per access <= GOP.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from foxglove_schemas_protobuf.CompressedVideo_pb2 import CompressedVideo
from mcap.reader import make_reader

from bench.cache import generated
from drivecat.catalog import db
from drivecat.catalog import frames as frames_module
from drivecat.catalog.frames import VideoReader, clear_index_cache, frame_at
from drivecat.ingest.run import IngestOptions, ingest_drive
from sample_logs.camera import read_barcode

TOPIC = "/camera/front/video"
FPS = 15


def prepare(work: Path, seconds: int, seed: int = 11) -> tuple[Path, Path, dict[str, Any]]:
    """The generated drive, its store, and its truth (all cached under ``work``)."""
    drive = generated(
        work / f"frames_drive_{seconds}s",
        seconds=seconds,
        seed=seed,
        split_every=60,
        lidar_points=500,
    )
    truth: dict[str, Any] = json.loads((drive / "truth.json").read_text())
    store = work / f"frames_store_{seconds}s"
    con = db.connect(store)
    known = con.execute("SELECT 1 FROM drives WHERE drive_id = ?", [truth["drive_id"]]).fetchone()
    con.close()
    if not known:
        t0 = time.perf_counter()
        ingest_drive(drive, IngestOptions(store=store))
        print(f"ingested into {store} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return drive, store, truth


def access_units(store: Path, drive_id: str) -> list[bytes]:
    """Every access unit of the topic, in order, read from the store files with mcap."""
    con = db.connect(store, read_only=True)
    files = [
        r[0]
        for r in con.execute(
            "SELECT path FROM files WHERE drive_id = ? AND topic = ? ORDER BY start_ns",
            [drive_id, TOPIC],
        ).fetchall()
    ]
    con.close()
    units = []
    for file in files:
        with open(store / file, "rb") as f:
            for _, _, message in make_reader(f).iter_messages(topics=[TOPIC]):
                units.append(CompressedVideo.FromString(message.data).data)
    return units


def decode_from_start(units: list[bytes], target: int) -> tuple[np.ndarray, int]:
    """The baseline: a fresh decoder fed from unit 0 until the target's picture is out."""
    ctx = av.CodecContext.create("h264", "r")
    for i, unit in enumerate(units[: target + 1]):
        packet = av.Packet(unit)
        packet.pts = i
        for picture in ctx.decode(packet):
            if picture.pts == target:
                return picture.to_ndarray(format="rgb24"), i + 1
    for picture in ctx.decode(None):
        if picture.pts == target:
            return picture.to_ndarray(format="rgb24"), target + 1
    raise RuntimeError(f"frame {target} did not decode from the start")


def mux_mp4(units: list[bytes], work: Path) -> Path:
    """The same bitstream in an MP4 (no re-encoding): pts = frame number at 15 fps."""
    raw, mp4 = work / "frames_bench.h264", work / "frames_bench.mp4"
    raw.write_bytes(b"".join(units))
    with av.open(str(raw), format="h264") as src, av.open(str(mp4), "w", format="mp4") as out:
        template = src.streams.video[0]
        stream = out.add_stream_from_template(template)
        stream.time_base = Fraction(1, FPS)
        count = 0
        for packet in src.demux(template):
            if not packet.size:
                continue
            packet.stream = stream
            packet.time_base = Fraction(1, FPS)
            packet.pts = packet.dts = count
            packet.duration = 1
            out.mux(packet)
            count += 1
    if count != len(units):
        raise RuntimeError(f"{mp4}: muxed {count} packets for {len(units)} access units")
    return mp4


class ContainerSeek:
    """The baseline: PyAV's own seek in an MP4, then decode forward to the target pts."""

    def __init__(self, path: Path, pts: list[int] | None = None) -> None:
        self.container = av.open(str(path))
        self.stream = self.container.streams.video[0]
        # Each frame's pts in decode order: demuxed once, or given (a one-off open).
        self.pts = pts or [int(p.pts or 0) for p in self.container.demux(self.stream) if p.size]

    def frame(self, target: int) -> tuple[np.ndarray, int]:
        want = self.pts[target]
        self.container.seek(want, backward=True, any_frame=False, stream=self.stream)
        for n, picture in enumerate(self.container.decode(self.stream), start=1):
            if picture.pts == want:
                return picture.to_ndarray(format="rgb24"), n
        raise RuntimeError(f"frame {target} not reached after seeking")


Fetch = Callable[[int, int], tuple[np.ndarray, int]]


def timed(targets: list[int], ways: dict[str, Fetch]) -> dict[str, Any]:
    """Time each way's ``fetch(k, target)`` per target, the ways interleaved target by
    target (the machine is shared: a slow moment hits every way alike) and their order
    rotated from one target to the next (no way always runs right after the same other
    one, with its caches); check each picture's barcode. Wall time is what a caller waits;
    the thread's CPU time is the work, far less disturbed by other processes (decoding
    runs on the calling thread: slice threads are idle on single-slice streams)."""
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    decoded: dict[str, list[int]] = {name: [] for name in ways}
    wrong = dict.fromkeys(ways, 0)
    names = list(ways)
    for k, target in enumerate(targets):
        turn = k % len(names)
        for name in names[turn:] + names[:turn]:
            t0, c0 = time.perf_counter(), time.thread_time()
            image, n = ways[name](k, target)
            cpu[name].append(time.thread_time() - c0)
            seconds[name].append(time.perf_counter() - t0)
            decoded[name].append(n)
            wrong[name] += read_barcode(image) != target
    out = {}
    for name in ways:
        print(f"{name}: median {statistics.median(seconds[name]) * 1e3:.1f} ms", file=sys.stderr)
        out[name] = {
            "median_ms": round(statistics.median(seconds[name]) * 1e3, 2),
            "mean_ms": round(statistics.mean(seconds[name]) * 1e3, 2),
            "cpu_median_ms": round(statistics.median(cpu[name]) * 1e3, 2),
            "max_decoded": max(decoded[name]),
            "mean_decoded": round(statistics.mean(decoded[name]), 1),
            "wrong_frames": wrong[name],
        }
    return out


def breakdown(
    store: Path, drive_id: str, picks: list[int], seek: ContainerSeek, targets: list[int]
) -> dict[str, Any]:
    """Where a one-off ``frame_at`` and a ``container_seek`` spend their time: median ms
    per access of each phase, wall and thread CPU, the two interleaved as in :func:`timed`.

    frame_at's phases are timed by wrapping its reader's steps (a separate pass: the
    wrappers cost a little): ``index`` (the cached frame index and the catalog's stamp),
    ``read`` (path check, open, summary, message index, the access units' span,
    protobuf), ``decode`` (the decoder's own calls), ``rgb``, and ``other`` (finding the
    frame, setting up and closing the reader, Python between the steps).
    """
    acc: dict[str, list[float]] = {}

    def add(label: str, wall: float, work: float) -> None:
        acc.setdefault(f"{label}_ms", []).append(wall)
        acc.setdefault(f"{label}_cpu_ms", []).append(work)

    def wrap(owner: Any, attr: str, label: str) -> Callable[[], None]:
        original = getattr(owner, attr)

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                phase[label][0] += time.perf_counter() - t0
                phase[label][1] += time.thread_time() - c0

        setattr(owner, attr, timed_call)
        return lambda: setattr(owner, attr, original)

    phase: dict[str, list[float]] = {}
    undo = [
        wrap(frames_module, "_cached_index", "index"),
        wrap(VideoReader, "_read_span", "read"),
        wrap(VideoReader, "_take", "decode"),
        wrap(VideoReader, "_to_rgb", "rgb"),
    ]
    try:
        for k, (pick, target) in enumerate(zip(picks, targets, strict=True)):
            for way in ("frame_at", "container") if k % 2 else ("container", "frame_at"):
                if way == "container":
                    for label, ms in container_phases(seek, target).items():
                        add(f"container_{label}", *ms)
                    continue
                phase.update({p: [0.0, 0.0] for p in ("index", "read", "decode", "rgb")})
                t0, c0 = time.perf_counter(), time.thread_time()
                frame_at(store, drive_id, TOPIC, pick)
                wall, work = time.perf_counter() - t0, time.thread_time() - c0
                for label, (w, c) in phase.items():
                    add(f"frame_at_{label}", w, c)
                add(
                    "frame_at_other",
                    wall - sum(w for w, _ in phase.values()),
                    work - sum(c for _, c in phase.values()),
                )
                add("frame_at_total", wall, work)
    finally:
        for restore in undo:
            restore()
    return {k: round(statistics.median(v) * 1e3, 3) for k, v in acc.items()}


def container_phases(seek: ContainerSeek, target: int) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds of each phase of one ``ContainerSeek.frame``, done step by step:
    ``seek``, ``demux`` (packets read from the mp4), ``decode``, ``rgb``."""
    want = seek.pts[target]
    spent = {p: [0.0, 0.0] for p in ("seek", "demux", "decode", "rgb")}

    def step(label: str, t0: float, c0: float) -> tuple[float, float]:
        t1, c1 = time.perf_counter(), time.thread_time()
        spent[label][0] += t1 - t0
        spent[label][1] += c1 - c0
        return t1, c1

    t, c = time.perf_counter(), time.thread_time()
    seek.container.seek(want, backward=True, any_frame=False, stream=seek.stream)
    t, c = step("seek", t, c)
    picture = None
    packets = seek.container.demux(seek.stream)
    while picture is None:
        packet = next(packets)
        t, c = step("demux", t, c)
        for decoded in packet.decode():
            if decoded.pts == want:
                picture = decoded
        t, c = step("decode", t, c)
    image = picture.to_ndarray(format="rgb24")
    step("rgb", t, c)
    if read_barcode(image) != target:
        raise RuntimeError(f"container seek: frame {target} decoded wrong")
    spent["total"] = [sum(v[0] for v in spent.values()), sum(v[1] for v in spent.values())]
    return {label: (w, c) for label, (w, c) in spent.items()}


def run(work: Path, seconds: int, n: int) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    _, store, truth = prepare(work, seconds)
    drive_id = truth["drive_id"]
    frames = truth["videos"][TOPIC]["frames"]
    times = np.array([f["capture_ns"] for f in frames], dtype=np.int64)
    keys = [f["index"] for f in frames if f["keyframe"]] + [len(frames)]
    gop = max(b - a for a, b in zip(keys, keys[1:], strict=False))
    rng = np.random.default_rng(3)
    picks = [int(t) for t in rng.integers(times[0], times[-1], n)]
    targets = [int(np.argmin(np.abs(times - t))) for t in picks]
    units = access_units(store, drive_id)

    def cold(k: int, target: int) -> tuple[np.ndarray, int]:
        result = frame_at(store, drive_id, TOPIC, picks[k])
        return result.image, result.decoded

    def uncached(k: int, target: int) -> tuple[np.ndarray, int]:
        clear_index_cache()  # the first call of a process: the index saved in the store
        result = frame_at(store, drive_id, TOPIC, picks[k])
        return result.image, result.decoded

    def never_saved(k: int, target: int) -> tuple[np.ndarray, int]:
        clear_index_cache()  # the first call ever: DuckDB is opened and the index saved
        shutil.rmtree(store / frames_module.CACHE_DIR, ignore_errors=True)
        result = frame_at(store, drive_id, TOPIC, picks[k])
        return result.image, result.decoded

    con = db.connect(store, read_only=True)

    def with_con(k: int, target: int) -> tuple[np.ndarray, int]:
        result = frame_at(store, drive_id, TOPIC, picks[k], con=con)
        return result.image, result.decoded

    reader = VideoReader(store, drive_id, TOPIC, con)

    def warm(k: int, target: int) -> tuple[np.ndarray, int]:
        result = reader.decode(reader.find(picks[k]).frame_idx)
        return result.image, result.decoded

    mp4 = mux_mp4(units, work)
    seek = ContainerSeek(mp4)

    def seek_cold(k: int, target: int) -> tuple[np.ndarray, int]:
        one = ContainerSeek(mp4, seek.pts)  # PyAV one-off: open the mp4, seek, decode
        try:
            return one.frame(target)
        finally:
            one.container.close()

    out: dict[str, Any] = {
        "video": {"seconds": seconds, "frames": len(frames), "fps": FPS, "gop": gop},
        "accesses": n,
        **timed(
            targets,
            {
                "frame_at_cold": cold,
                "frame_at_con": with_con,
                "reader_warm": warm,
                "container_seek": lambda k, t: seek.frame(t),
                "container_seek_cold": seek_cold,
            },
        ),
        # Apart: DuckDB, opened and closed by each first call, keeps a core busy for a few
        # ms after it (its threads wind down), which would slow whichever way came next.
        **timed(targets, {"frame_at_first_call": uncached}),
        **timed(targets, {"frame_at_first_ever": never_saved}),
        **timed(targets, {"from_start": lambda k, t: decode_from_start(units, t)}),
    }
    out["breakdown"] = breakdown(store, drive_id, picks, seek, targets)
    reader.close()
    con.close()
    base = {k: out[k]["mean_ms"] for k in ("from_start", "container_seek", "container_seek_cold")}
    out["ratios"] = {
        f"{b}/{d}": round(base[b] / out[d]["mean_ms"], 2)
        for b in base
        for d in (
            "frame_at_cold",
            "frame_at_first_call",
            "frame_at_first_ever",
            "frame_at_con",
            "reader_warm",
        )
    }
    medians = {
        f"{b}/{d}": round(out[b]["median_ms"] / out[d]["median_ms"], 2)
        for b in ("container_seek", "container_seek_cold", "frame_at_cold")
        for d in ("frame_at_cold", "frame_at_con")
        if b != d
    }
    out["median_ratios"] = medians
    out["cpu_median_ratios"] = {
        f"{b}/{d}": round(out[b]["cpu_median_ms"] / out[d]["cpu_median_ms"], 2)
        for b in ("container_seek", "container_seek_cold")
        for d in ("frame_at_cold", "frame_at_con")
    }
    out["targets"] = {
        "from_start/frame_at_cold >= 20": out["ratios"]["from_start/frame_at_cold"] >= 20,
        "container_seek/frame_at_cold >= 1 (medians)": medians["container_seek/frame_at_cold"] >= 1,
        "frame_at_cold/frame_at_con >= 1 (medians)": medians["frame_at_cold/frame_at_con"] >= 1,
        "max decoded per access <= GOP": max(
            out[d]["max_decoded"] for d in ("frame_at_cold", "frame_at_con", "reader_warm")
        )
        <= gop,
    }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.frames", description=__doc__)
    parser.add_argument("--seconds", type=int, default=600, help="drive length (default 600)")
    parser.add_argument("--n", type=int, default=12, help="random accesses (default 12)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/drivecat-bench"))
    args = parser.parse_args(argv)
    print(json.dumps(run(args.work, args.seconds, args.n), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
