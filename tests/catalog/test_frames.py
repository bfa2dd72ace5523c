"""frame_at and iter_frames against the generator's barcodes, and against PyAV on real videos.

Ground truth is ``truth.json`` (every frame's capture time and keyframe flag) and the
barcode drawn into every picture; real videos are checked against PyAV decoding the
original file directly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import av
import duckdb
import numpy as np
import pytest
from mcap_protobuf.writer import Writer as ProtobufWriter

from drivecat.catalog import db
from drivecat.catalog import frames as frames_module
from drivecat.catalog.errors import CatalogError
from drivecat.catalog.frames import Mode, VideoReader, frame_at, iter_frames, write_png
from drivecat.ingest.run import IngestOptions, ingest_drive
from drivecat.schemas.messages import FrameTime
from sample_logs.camera import read_barcode

FRONT = "/camera/front/video"
REAR = "/camera/rear/video"
REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "video"


def _truth(drive: Path) -> dict[str, Any]:
    return json.loads((drive / "truth.json").read_text())


def _frames(truth: dict[str, Any], topic: str) -> list[dict[str, Any]]:
    return list(truth["videos"][topic]["frames"])


def _nearest(times: np.ndarray, t: int) -> int:
    """Truth: the index of the closest time; a tie goes to the earlier frame."""
    dist = np.abs(times - t)
    return int(np.flatnonzero(dist == dist.min())[0])


def _keyframe_before(frames: list[dict[str, Any]], i: int) -> int:
    return max(f["index"] for f in frames[: i + 1] if f["keyframe"])


def _gop(frames: list[dict[str, Any]]) -> int:
    keys = [f["index"] for f in frames if f["keyframe"]] + [len(frames)]
    return max(b - a for a, b in zip(keys, keys[1:], strict=False))


@pytest.fixture
def store(small_and_sidecar_store: Path) -> Path:
    return small_and_sidecar_store


CAMERAS = [("small", FRONT), ("sidecar", FRONT), ("sidecar", REAR)]


@pytest.fixture(scope="module")
def drives(small_drive: Path, sidecar_drive: Path) -> dict[str, Path]:
    return {"small": small_drive, "sidecar": sidecar_drive}


@pytest.mark.parametrize(("drive", "topic"), CAMERAS, ids=["front", "sidecar-front", "rear"])
def test_the_index_has_the_truth_keyframes_and_capture_times(
    store: Path, drives: dict[str, Path], drive: str, topic: str
) -> None:
    truth = _truth(drives[drive])
    frames = _frames(truth, topic)
    with VideoReader(store, truth["drive_id"], topic) as reader:
        rows = [reader.row(f["index"]) for f in frames]
    assert [r.time_ns for r in rows] == [f["capture_ns"] for f in frames]
    assert [r.is_keyframe for r in rows] == [f["keyframe"] for f in frames]
    assert [r.keyframe_idx for r in rows] == [_keyframe_before(frames, i) for i in range(len(rows))]


@pytest.mark.parametrize(("drive", "topic"), CAMERAS, ids=["front", "sidecar-front", "rear"])
def test_random_times_decode_the_truth_nearest_frame(
    store: Path, drives: dict[str, Path], drive: str, topic: str
) -> None:
    truth = _truth(drives[drive])
    frames = _frames(truth, topic)
    times = np.array([f["capture_ns"] for f in frames], dtype=np.int64)
    rng = np.random.default_rng(4)
    picks = list(rng.integers(times[0] - 10_000_000, times[-1] + 10_000_000, 8))
    picks += [int(times[0]), int(times[-1]), int(times[len(times) // 2])]
    for t in picks:
        want = _nearest(times, int(t))
        got = frame_at(store, truth["drive_id"], topic, int(t))
        assert got.row.frame_idx == want
        assert read_barcode(got.image) == want
        assert got.image.shape == (360, 640, 3) and got.image.dtype == np.uint8
        assert got.decoded == want - _keyframe_before(frames, want) + 1 <= _gop(frames)


def test_no_gop_is_split_across_store_files(store: Path, small_drive: Path) -> None:
    """Video files rotate at keyframes, so the frames just after each file boundary decode
    from their own file: the keyframe they need is that file's first message."""
    truth = _truth(small_drive)
    frames = _frames(truth, FRONT)
    with VideoReader(store, truth["drive_id"], FRONT) as reader:
        rows = [reader.row(f["index"]) for f in frames]
    assert len({r.file for r in rows}) >= 2, "the drive's video should span several files"
    assert all(r.keyframe_idx is not None and rows[r.keyframe_idx].file == r.file for r in rows)
    firsts = [r for r in rows if r.message_idx == 0]
    assert all(frames[r.frame_idx]["keyframe"] for r in firsts)
    for row in firsts[1:]:
        after = rows[min(row.frame_idx + 3, len(rows) - 1)]
        got = frame_at(store, truth["drive_id"], FRONT, frames[after.frame_idx]["capture_ns"])
        assert read_barcode(got.image) == after.frame_idx
        assert got.decoded == after.frame_idx - row.frame_idx + 1


def test_before_takes_the_last_frame_at_or_before(store: Path, small_drive: Path) -> None:
    truth = _truth(small_drive)
    times = np.array([f["capture_ns"] for f in _frames(truth, FRONT)], dtype=np.int64)
    rng = np.random.default_rng(5)
    for t in [*rng.integers(times[0], times[-1], 4), times[7], times[8] - 1]:
        want = int(np.flatnonzero(times <= t)[-1])
        got = frame_at(store, truth["drive_id"], FRONT, int(t), mode="before")
        assert (got.row.frame_idx, read_barcode(got.image)) == (want, want)


def test_a_time_halfway_between_frames_takes_the_earlier(store: Path, small_drive: Path) -> None:
    truth = _truth(small_drive)
    times = [f["capture_ns"] for f in _frames(truth, FRONT)]
    with VideoReader(store, truth["drive_id"], FRONT) as reader:
        for i in range(0, len(times) - 1, 37):
            mid = times[i] + (times[i + 1] - times[i]) // 2
            want = i if (mid - times[i]) <= (times[i + 1] - mid) else i + 1
            assert reader.find(mid, Mode.NEAREST).frame_idx == want
            assert reader.find(times[i + 1] - 1, "before").frame_idx == i
            assert reader.find(times[i], "nearest").frame_idx == i


def test_iter_frames_walks_forward_with_one_decoder(store: Path, sidecar_drive: Path) -> None:
    truth = _truth(sidecar_drive)
    frames = _frames(truth, REAR)
    results = list(iter_frames(store, truth["drive_id"], REAR, range(len(frames))))
    assert [read_barcode(r.image) for r in results] == list(range(len(frames)))
    assert sum(r.decoded for r in results) == len(frames)  # nothing decoded twice


def test_iter_frames_restarts_only_behind_or_past_the_next_keyframe(
    store: Path, small_drive: Path
) -> None:
    truth = _truth(small_drive)
    frames = _frames(truth, FRONT)
    keys = [f["index"] for f in frames if f["keyframe"]]
    k1, k2 = keys[1], keys[2]
    wanted = [3, 3, 7, k1 - 1, k1 + 2, k2 + 5, len(frames) - 1, 2]
    got = list(iter_frames(store, truth["drive_id"], FRONT, wanted))
    assert [read_barcode(r.image) for r in got] == wanted
    last = len(frames) - 1
    expected = [
        4,  # from keyframe 0
        0,  # the same frame again
        4,  # forward in the same GOP
        k1 - 1 - 7,  # forward to the end of the GOP
        3,  # past keyframe k1: restart there
        6,  # past keyframe k2: restart there, not through the GOP between
        last - _keyframe_before(frames, last) + 1,
        3,  # behind: restart from keyframe 0
    ]
    assert [r.decoded for r in got] == expected


def test_errors_are_one_line_catalog_errors(store: Path, small_drive: Path) -> None:
    truth = _truth(small_drive)
    drive_id = truth["drive_id"]
    first = _frames(truth, FRONT)[0]["capture_ns"]
    cases = [
        (("nope", FRONT, first), "no drive 'nope' in the catalog"),
        ((drive_id, "/camera/side", first), f"drive {drive_id} has no topic '/camera/side'"),
        ((drive_id, "/lidar/top/points", first), "has no video frames (role lidar)"),
        ((drive_id, FRONT, first - 10**9), "is outside the video"),
        ((drive_id, FRONT, first + 3600 * 10**9), "is outside the video"),
    ]
    for args, message in cases:
        with pytest.raises(CatalogError, match=message.replace("(", r"\(").replace(")", r"\)")):
            frame_at(store, *args)
    with pytest.raises(CatalogError, match="no frame at or before"):
        frame_at(store, drive_id, FRONT, first - 1, mode="before")
    with pytest.raises(CatalogError, match="no frame 100000"):
        list(iter_frames(store, drive_id, FRONT, [1, 100000]))
    with pytest.raises(CatalogError, match="no catalog here"):
        frame_at(store / "elsewhere", drive_id, FRONT, first)


def test_a_missing_store_file_names_the_file(
    store: Path, small_drive: Path, tmp_path: Path
) -> None:
    truth = _truth(small_drive)
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    last = _frames(truth, FRONT)[-1]
    con = duckdb.connect(str(copy / "catalog.duckdb"), read_only=True)
    (file,) = con.execute(
        "SELECT file FROM frames WHERE drive_id = ? AND topic = ? AND frame_idx = ?",
        [truth["drive_id"], FRONT, last["index"]],
    ).fetchone()
    con.close()
    (copy / file).unlink()
    with pytest.raises(CatalogError, match=r"\.mcap: cannot open store file"):
        frame_at(copy, truth["drive_id"], FRONT, last["capture_ns"])
    # Frames held by the other files still decode: only the files of the range are read.
    first = _frames(truth, FRONT)[0]
    assert read_barcode(frame_at(copy, truth["drive_id"], FRONT, first["capture_ns"]).image) == 0


def _synthetic(tmp_path: Path, rows: list[tuple[int, int, int | None, bool, int | None]]) -> Path:
    """A catalog of one drive 'd' whose /cam frames are (frame_idx, log, capture, key, kf)."""
    con = db.connect(tmp_path)
    con.execute("INSERT INTO drives (drive_id) VALUES ('d')")
    for idx, log, capture, key, kf in rows:
        con.execute(
            "INSERT INTO frames (drive_id, topic, frame_idx, log_time_ns, capture_ns, "
            "is_keyframe, keyframe_idx, file, message_idx, codec) "
            "VALUES ('d', '/cam', ?, ?, ?, ?, ?, 'x.mcap', ?, 'h264')",
            [idx, log, capture, key, kf, idx],
        )
    con.close()
    return tmp_path


def test_the_time_base_and_an_unsorted_index(tmp_path: Path) -> None:
    # Capture time where there is one (0 counts as none), else log time; times out of order
    # and repeated ones are searched by time, and a repeated time means its first frame.
    rows = [
        (0, 1000, 0, True, 0),
        (1, 2000, None, False, 0),
        (2, 9000, 4000, False, 0),
        (3, 3100, 3000, False, 0),
        (4, 5000, 4000, False, 0),
        (5, 6000, None, False, None),
    ]
    store = _synthetic(tmp_path, rows)
    with VideoReader(store, "d", "/cam") as reader:
        assert [reader.row(i).time_ns for i in range(6)] == [1000, 2000, 4000, 3000, 4000, 6000]
        picks = {t: reader.find(t, "nearest").frame_idx for t in (900, 1500, 2600, 3900, 5000)}
        assert picks == {900: 0, 1500: 0, 2600: 3, 3900: 2, 5000: 2}
        assert reader.find(3999, "before").frame_idx == 3
        assert reader.find(4000, "before").frame_idx == 2
        with pytest.raises(CatalogError, match="frame 5 has no keyframe before it"):
            reader.decode(5)


def test_png_round_trip(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 256, (36, 64, 3), dtype=np.uint8)
    out = tmp_path / "f.png"
    write_png(image, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with av.open(str(out)) as container:
        back = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.array_equal(back, image)
    with pytest.raises(CatalogError, match="cannot write the PNG"):
        write_png(image, tmp_path / "missing" / "f.png")


# ---------------------------------------------------------------------------- real videos

T0_NS = 1_700_000_000_000_000_000
PERIOD_NS = 30_000_000
OFFSET_NS = 123_457  # frame times off any round number


def _decode_order_pictures(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """Frame i = the picture of the i-th access unit in decode order, decoded by PyAV from
    the original file with the container's own decoder."""
    pictures: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        count = 0
        for packet in container.demux(container.streams.video[0]):
            if packet.size:
                packet.pts = count  # a raw stream has no times: number the units
                count += 1
            for picture in packet.decode():
                if picture.pts in wanted:
                    pictures[int(picture.pts)] = picture.to_ndarray(format="rgb24")
    return pictures


def _unit_count(path: Path) -> int:
    if path.suffix == ".mp4":
        with av.open(str(path)) as container:
            return sum(1 for p in container.demux(video=0) if p.size)
    parser = av.CodecContext.create("h264", "r")
    data = path.read_bytes()
    return len(parser.parse(data)) + len(parser.parse(None))


def _real_drive(root: Path, video: Path, drive_id: str) -> tuple[Path, int]:
    """An offload folder: the video, a recording with its frame times, and drive.json."""
    folder = root / drive_id
    folder.mkdir()
    shutil.copy(video, folder / video.name)
    count = _unit_count(video)
    topic = "/camera/real/video"
    with open(folder / "rec.mcap", "wb") as f:
        writer = ProtobufWriter(f)
        for i in range(count):
            t = T0_NS + OFFSET_NS + i * PERIOD_NS
            message = FrameTime(frame_index=i)
            message.timestamp.FromNanoseconds(t)
            writer.write_message(f"{topic}/frame_times", message, log_time=t + 2000, publish_time=t)
        writer.finish()
    doc = {"drive_id": drive_id, "device_id": "cam", "device_version": "1.0.0"}
    doc["videos"] = [{"file": video.name, "topic": topic}]
    (folder / "drive.json").write_text(json.dumps(doc))
    return folder, count


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/data/real is not here")
@pytest.mark.parametrize("name", ["gopro_karma.mp4", "isaac_compressed.h264"])
def test_real_sidecar_frames_equal_pyav_on_the_original(tmp_path: Path, name: str) -> None:
    video = REAL / name
    drive_id = "real_" + video.stem
    folder, count = _real_drive(tmp_path, video, drive_id)
    store = tmp_path / "store"
    assert ingest_drive(folder, IngestOptions(store=store)).status == "ingested"
    rng = np.random.default_rng(6)
    wanted = sorted({0, count - 1, *(int(i) for i in rng.integers(0, count, 4))})
    truth = _decode_order_pictures(video, set(wanted))
    for i in wanted:
        t = T0_NS + OFFSET_NS + i * PERIOD_NS
        if count > 1:  # one frame alone has no interval to be near within
            t += int(rng.integers(-PERIOD_NS // 3, PERIOD_NS // 3))
        got = frame_at(store, drive_id, "/camera/real/video", t)
        assert got.row.frame_idx == i
        assert got.image.shape == truth[i].shape
        assert np.array_equal(got.image, truth[i]), f"frame {i} differs"
        assert got.decoded <= 8  # the GoPro's GOP; the Isaac clip is one frame


def test_a_changed_catalog_is_read_again_not_served_from_the_cache(tmp_path: Path) -> None:
    # One-off calls reuse a frame index while the catalog file is unchanged; a commit that
    # changes the frames must be seen by the next call.
    rows: list[tuple[int, int, int | None, bool, int | None]] = [
        (0, 1000, None, True, 0),
        (1, 2000, None, False, 0),
    ]
    store = _synthetic(tmp_path, rows)
    with VideoReader(store, "d", "/cam") as reader:
        assert reader.find(1900).frame_idx == 1
    con = db.connect(store)
    con.execute("UPDATE frames SET log_time_ns = 5000 WHERE frame_idx = 1")
    con.close()
    with VideoReader(store, "d", "/cam") as reader:
        assert reader.find(1900).frame_idx == 0
        assert reader.row(1).log_time_ns == 5000


def test_indexed_reads_equal_the_mcap_reader(store: Path) -> None:
    # StoreFiles.indexed reads messages by the message index; the mcap library's own reader
    # of every store file (video: mostly uncompressed chunks; others compressed) is the truth.
    from mcap.reader import make_reader

    from drivecat.catalog.store_files import StoreFiles

    paths = sorted(p.relative_to(store).as_posix() for p in store.glob("drives/*/*/*.mcap"))
    compressions = set()
    with StoreFiles(store) as files:
        for path in paths:
            with open(store / path, "rb") as f:
                reader = make_reader(f)
                summary = reader.get_summary()
                assert summary is not None
                compressions |= {c.compression for c in summary.chunk_indexes}
                topic = next(iter(summary.channels.values())).topic
                truth = [
                    (m.log_time, m.data)
                    for _, _, m in reader.iter_messages(topics=[topic], log_time_order=False)
                ]
            if not truth:
                continue
            lo, hi = truth[len(truth) // 3][0], truth[2 * len(truth) // 3][0]
            got = [(t, d) for _, _, t, d in files.indexed(path, topic, lo, hi)]
            assert got == [(t, d) for t, d in truth if lo <= t <= hi], path
    assert len(paths) > 3 and "" in compressions and compressions - {""}


def test_a_connection_is_served_from_the_cache_only_when_it_cannot_hide_changes(
    tmp_path: Path,
) -> None:
    # A read-only connection to the store's catalog shares the one-off calls' cache (no
    # uncommitted changes of its own, no other writer while it is open). A read-write
    # connection is always asked: inside a transaction it sees its own changes, which the
    # catalog file does not show yet.
    rows: list[tuple[int, int, int | None, bool, int | None]] = [
        (0, 1000, None, True, 0),
        (1, 2000, None, False, 0),
    ]
    store = _synthetic(tmp_path, rows)
    with VideoReader(store, "d", "/cam") as reader:  # fills the cache
        assert reader.find(1900).frame_idx == 1
    con = db.connect(store)
    con.begin()
    con.execute("UPDATE frames SET log_time_ns = 5000 WHERE frame_idx = 1")
    with VideoReader(store, "d", "/cam", con) as reader:
        assert reader.find(1900).frame_idx == 0
    con.rollback()
    con.close()
    read_only = db.connect(store, read_only=True)
    with VideoReader(store, "d", "/cam", read_only) as reader:
        assert reader.find(1900).frame_idx == 1
        assert reader.row(1).log_time_ns == 2000
    read_only.close()
    # A read-only connection to another catalog is asked, not served this store's index.
    other = _synthetic(tmp_path / "other", [(0, 1000, None, True, 0), (1, 1800, None, False, 0)])
    elsewhere = db.connect(other, read_only=True)
    with VideoReader(store, "d", "/cam", elsewhere) as reader:
        assert reader.row(1).log_time_ns == 1800
    elsewhere.close()


def test_a_new_process_reads_the_saved_index_without_opening_duckdb(
    store: Path, small_drive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "store"
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns(frames_module.CACHE_DIR))
    truth = _truth(small_drive)
    frames = _frames(truth, FRONT)
    want = len(frames) // 3
    t = frames[want]["capture_ns"]
    frames_module.clear_index_cache()
    first = frame_at(copy, truth["drive_id"], FRONT, t)  # opens the catalog, saves the index
    assert len(list((copy / frames_module.CACHE_DIR / "frames").glob("*.npy"))) == 1
    frames_module.clear_index_cache()  # as a new process would start

    def opened(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the catalog was opened")

    monkeypatch.setattr(db, "connect", opened)
    again = frame_at(copy, truth["drive_id"], FRONT, t)
    assert again.row == first.row
    assert read_barcode(again.image) == want and np.array_equal(again.image, first.image)


def test_a_saved_index_is_used_only_at_the_catalog_it_was_saved_at(tmp_path: Path) -> None:
    rows: list[tuple[int, int, int | None, bool, int | None]] = [
        (0, 1000, None, True, 0),
        (1, 2000, None, False, 0),
    ]
    store = _synthetic(tmp_path, rows)
    frames_module.clear_index_cache()
    with VideoReader(store, "d", "/cam") as reader:
        assert reader.row(1).log_time_ns == 2000
    (saved,) = (store / frames_module.CACHE_DIR / "frames").glob("*.npy")
    con = db.connect(store)
    con.execute("UPDATE frames SET log_time_ns = 5000 WHERE frame_idx = 1")
    con.close()
    frames_module.clear_index_cache()
    with VideoReader(store, "d", "/cam") as reader:
        assert reader.row(1).log_time_ns == 5000  # the catalog, not the stale file
    for damaged in (b"not an npy file", b"\x93NUMPY\x01\x00\xff\x7f{'descr': (", b""):
        saved.write_bytes(damaged)  # passed over: the catalog is asked
        frames_module.clear_index_cache()
        with VideoReader(store, "d", "/cam") as reader:
            assert reader.row(1).log_time_ns == 5000


def test_the_saved_index_takes_any_stamp_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # inode numbers of 2**63 and more (NFS, FUSE) and negative times are stamps too
    store = _synthetic(tmp_path, [(0, 1000, None, True, 0), (1, 2000, None, False, 0)])
    real = frames_module._catalog_stamp

    def odd(path: str) -> tuple[object, ...]:
        return tuple((2**64 - 1, -5, *part[2:]) if part else None for part in real(path))

    monkeypatch.setattr(frames_module, "_catalog_stamp", odd)
    frames_module.clear_index_cache()
    with VideoReader(store, "d", "/cam") as reader:
        assert reader.row(1).log_time_ns == 2000
    frames_module.clear_index_cache()
    monkeypatch.setattr(db, "connect", lambda *a, **k: pytest.fail("the catalog was opened"))
    with VideoReader(store, "d", "/cam") as reader:
        assert reader.row(1).log_time_ns == 2000
    assert [p.suffix for p in (store / frames_module.CACHE_DIR / "frames").iterdir()] == [".npy"]
