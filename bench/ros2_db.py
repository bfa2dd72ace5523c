"""Read speed of one ROS 2 ``.db3``: ``Ros2DbSource`` (sqlite3, in slices) against
``RosbagSource`` (rosbags' storage reader), and what finding the slices costs.

    python -m bench.ros2_db [FILE.db3 ...] [--make MB] [--repeat N]

With no file, the biggest real db3 of ../shared/data/real. ``--make MB`` also writes a
generated bag of about that many MB (a 200 Hz small topic and a 10 Hz ~200 KB topic, with
rosbags' writer) to a temporary folder and measures it too.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from drivecat.ingest.bag_source import RosbagSource
from drivecat.ingest.ros2_db import Ros2DbSource

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "ros2"


def _best(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    times, out = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def _make(folder: Path, megabytes: int) -> Path:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    rng = random.Random(1)
    with Writer(folder, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        small = writer.add_connection("/imu", "std_msgs/msg/String", typestore=store)
        big = writer.add_connection("/cloud", "std_msgs/msg/String", typestore=store)
        t, written = 1_700_000_000_000_000_000, 0
        while written < megabytes << 20:
            for k in range(20):
                writer.write(small, t + k * 5_000_000, rng.randbytes(120))
            data = rng.randbytes(200_000)
            writer.write(big, t, data)
            written += len(data) + 20 * 120
            t += 100_000_000
    (db3,) = folder.glob("*.db3")
    return db3


def _rosbags(db3: Path) -> int:
    return sum(len(m.data) for m in RosbagSource(db3.parent, [db3], ros1=False).messages())


def _ours(db3: Path) -> int:
    return sum(len(m.data) for m in Ros2DbSource(db3).messages())


def _pieces(db3: Path) -> int:
    return len(Ros2DbSource(db3).pieces())


def _one_topic(db3: Path) -> int:
    source = Ros2DbSource(db3)
    counts: dict[int, int] = {}
    for p in source.pieces():
        for tid, n in p.counts.items():
            counts[tid] = counts.get(tid, 0) + n
    rare = min(counts, key=lambda tid: counts[tid])  # the topic of fewest messages
    keep = frozenset({rare})
    return sum(len(m.data) for m in source.messages_in(source.pieces(), keep, lambda p: True))


def measure(db3: Path, repeat: int) -> None:
    size = db3.stat().st_size / 1e6
    print(f"{db3.name}: {size:.1f} MB")
    base, total = _best(lambda: _rosbags(db3), repeat)
    print(f"  RosbagSource          {base * 1e3:8.1f} ms  {size / base:7.1f} MB/s")
    for name, fn in (
        ("Ros2DbSource", _ours),
        ("  pieces pass alone", _pieces),
        ("  one topic via pieces", _one_topic),
    ):
        took, out = _best(lambda fn=fn: fn(db3), repeat)  # type: ignore[misc]
        if fn is _ours:
            assert out == total, "different bytes read"
        print(f"  {name:<22}{took * 1e3:8.1f} ms  {took / base:5.2f}x RosbagSource")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--make", type=int, default=0, metavar="MB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = args.files or [max(REAL.glob("*/*.db3"), key=lambda p: p.stat().st_size)]
    with tempfile.TemporaryDirectory() as tmp:
        if args.make:
            files.append(_make(Path(tmp) / "made", args.make))
        for db3 in files:
            measure(db3, args.repeat)


if __name__ == "__main__":
    main()
