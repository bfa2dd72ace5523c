"""A fleet of short synthetic drives whose conditions follow a profile: drift with known truth.

``fleet(out, profile, drives=6, seed=0, seconds=4)`` writes ``drives`` drives into
``out/drive_000``, ``out/drive_001``, ... and ``out/fleet.json`` (what each drive was made
to be). A :class:`Profile` says which device version records, how the drives split over
light (day, dawn_dusk, night) and weather (clear, rain, fog), and how many points each lidar
sweep has. Everything else (city, route, pedestrians, speed) is drawn from each drive's seed.

Conditions are dealt by quota, not drawn one drive at a time: a mix of 5 clear : 1 fog
over 6 drives gives exactly 5 clear drives and 1 foggy one, in an order shuffled by the
seed. So two fleets of one profile with different seeds have the same condition mix and
differ in everything else, which is what "drawn from the same distribution" must mean for
a handful of drives; sampling noise in 6 drives would otherwise be drift of its own.

:func:`planted` names what differs between two profiles by construction: the tags whose
mix differs and the lidar's points per sweep. ``python -m sample_logs.fleet --out DIR
--profile newer`` writes one of the :data:`PROFILES`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sample_logs.generate import generate
from sample_logs.world import Conditions

Mix = tuple[tuple[str, int], ...]
"""(value, weight) pairs: the share of drives that get each value."""


@dataclass(frozen=True)
class Profile:
    device_version: str
    light: Mix
    weather: Mix
    lidar_points: int


PROFILES: dict[str, Profile] = {
    # The fleet a model was trained on: by day in clear weather, with a dense lidar.
    "baseline": Profile("4.2.1", (("day", 1),), (("clear", 1),), 240),
    # A newer device version that drives at night and in the rain, with half the points.
    "newer": Profile("5.0.0", (("night", 1),), (("rain", 1),), 120),
}


def deal(mix: Mix, n: int, rng: np.random.Generator) -> list[str]:
    """``n`` values in the proportions of ``mix`` (largest remainder), shuffled by ``rng``."""
    total = sum(w for _, w in mix)
    if n < 0 or total <= 0 or any(w < 0 for _, w in mix):
        raise ValueError(f"deal: bad mix {mix} or count {n}")
    exact = [n * w / total for _, w in mix]
    counts = [int(e) for e in exact]
    by_remainder = sorted(range(len(mix)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    values = [v for (v, _), c in zip(mix, counts, strict=True) for _ in range(c)]
    return [values[i] for i in rng.permutation(len(values))]


def fleet(
    out: Path, profile: Profile, drives: int = 6, seed: int = 0, seconds: float = 4
) -> list[Path]:
    """Write ``drives`` drives of ``profile`` under ``out``; their folders, in order.

    Drive ``i`` has generator seed ``seed * 1000 + i``, so fleets with different seeds
    share no drive. ``out/fleet.json`` lists each drive's folder, drive_id and the
    conditions it was made with.
    """
    rng = np.random.default_rng([seed, 20])
    lights = deal(profile.light, drives, rng)
    weathers = deal(profile.weather, drives, rng)
    folders, rows = [], []
    for i in range(drives):
        folder = out / f"drive_{i:03d}"
        conditions = Conditions(lights[i], weathers[i], profile.device_version)
        generate(
            folder,
            seconds=seconds,
            seed=seed * 1000 + i,
            split_every=seconds + 1,
            lidar_points=profile.lidar_points,
            conditions=conditions,
        )
        truth = json.loads((folder / "truth.json").read_text())
        rows.append(
            {
                "folder": folder.name,
                "drive_id": truth["drive_id"],
                **asdict(conditions),
                "lidar_points": profile.lidar_points,
            }
        )
        folders.append(folder)
    doc: dict[str, Any] = {"profile": asdict(profile), "seed": seed, "drives": rows}
    (out / "fleet.json").write_text(json.dumps(doc, indent=1) + "\n")
    return folders


def planted(baseline: Profile, current: Profile) -> frozenset[str]:
    """What differs between two profiles by construction, as ``kind:what`` keys.

    - ``tag:time_of_day`` and ``tag:weather`` when their mixes differ;
    - ``lidar:points_per_sweep`` and ``lidar:bytes_per_message`` when the sweeps differ in
      size (a point is a fixed number of bytes);
    - when the light or the weather differ, what the generator makes of them downstream:
      ``video:frame_bytes`` and ``video:bytes_per_message`` (``sample_logs.scene`` paints
      night with lit windows and rain as fresh random streaks in every frame, which H.264
      cannot predict from the frame before) and ``vehicle:bytes_per_message`` (the State
      message's wipers, rain intensity, fog lights and headlights are left out of the
      protobuf bytes when off or zero, and rain, fog and night turn them on).

    The device version is how the two sides are chosen, not a drift.
    """
    out = set()

    def shares(mix: Mix) -> dict[str, float]:
        total = sum(w for _, w in mix)
        return {v: w / total for v, w in mix if w}

    light = shares(baseline.light) != shares(current.light)
    weather = shares(baseline.weather) != shares(current.weather)
    if light:
        out.add("tag:time_of_day")
    if weather:
        out.add("tag:weather")
    if light or weather:
        out |= {"video:frame_bytes", "video:bytes_per_message", "vehicle:bytes_per_message"}
    if baseline.lidar_points != current.lidar_points:
        out |= {"lidar:points_per_sweep", "lidar:bytes_per_message"}
    return frozenset(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sample_logs.fleet", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="folder for the drives")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="baseline")
    parser.add_argument("--drives", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args(argv)
    try:
        folders = fleet(args.out, PROFILES[args.profile], args.drives, args.seed, args.seconds)
    except ValueError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    for folder in folders:
        print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
