"""The other road users of a sample drive: pedestrians, dogs, cyclists, parked and passing cars.

``RoadUsers`` places them at the intersections and along the blocks of the ego car's route
through a grid city, and answers where they are at a time. Deterministic from the seed: each
intersection and each block draws from its own generator, and is populated once however often
the route passes it. Local metres are x east, y north; times are seconds since the drive's
clock origin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

# A data definition generated from schemas/proto, not logic of the code under test.
from drivecat.schemas.messages import ObjectClass

LANE_OFFSET_M = 1.8  # cars, the ego car included, drive this far right of the centre line
_PED, _CAR = int(ObjectClass.PEDESTRIAN), int(ObjectClass.VEHICLE)


@dataclass(frozen=True)
class Seen:
    """One object relative to the ego car: ego frame metres (x forward, y left, z up)."""

    track_id: int
    object_class: int
    x: float
    y: float
    z: float


class _Agent(NamedTuple):
    """A road user: static (mode 0), back and forth over ``length`` m (1), or straight on (2)."""

    cls: int
    p: tuple[float, float]
    d: tuple[float, float] = (1.0, 0.0)
    speed: float = 0.0
    length: float = 0.0
    phase: float = 0.0
    mode: int = 0


class _Pose(Protocol):
    """Where the ego car is: local metres and heading (rad, CCW from east)."""

    @property
    def x(self) -> float: ...

    @property
    def y(self) -> float: ...

    @property
    def heading(self) -> float: ...


class RoadUsers:
    """Everyone on the streets around a route, deterministic from (seed, route, blocks).

    ``route_nodes`` are the grid intersections (i, j) the route passes, in order; a block is
    ``block_x`` by ``block_y`` m. Through traffic passes its chosen point during the first
    ``seconds`` of the drive.
    """

    def __init__(
        self,
        seed: int,
        route_nodes: list[tuple[int, int]],
        block_x: float,
        block_y: float,
        seconds: float,
    ) -> None:
        self.seed = seed
        self.route_nodes = route_nodes
        self.block_x, self.block_y = block_x, block_y
        self.seconds = seconds
        self._populate()

    def _populate(self) -> None:
        rows: list[_Agent] = []
        seen_nodes: set[tuple[int, int]] = set()
        seen_legs: set[tuple[tuple[int, int], tuple[int, int]]] = set()
        for a, b in zip(self.route_nodes, self.route_nodes[1:], strict=False):
            for node in (a, b):
                if node not in seen_nodes:
                    seen_nodes.add(node)
                    rows += self._corner_people(node)
            leg = (min(a, b), max(a, b))
            if leg not in seen_legs:
                seen_legs.add(leg)
                rows += self._block_users(leg)
        self._cls = np.array([r.cls for r in rows], dtype=np.int64)
        self._mode = np.array([r.mode for r in rows], dtype=np.int64)
        self._p0 = np.array([r.p for r in rows], dtype=np.float64).reshape(-1, 2)
        self._dir = np.array([r.d for r in rows], dtype=np.float64).reshape(-1, 2)
        self._speed = np.array([r.speed for r in rows], dtype=np.float64)
        self._len = np.array([r.length for r in rows], dtype=np.float64)
        self._phase = np.array([r.phase for r in rows], dtype=np.float64)
        self._track = 1000 + np.arange(len(rows), dtype=np.int64)

    def _node_rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *[k + 10_000 for k in key]])

    def _corner_people(self, node: tuple[int, int]) -> list[_Agent]:
        """Pedestrians at one intersection: standing at corners, waiting at the curb, crossing."""
        rng = self._node_rng(1, *node)
        nx, ny = node[0] * self.block_x, node[1] * self.block_y
        out: list[_Agent] = []
        busy = int(
            rng.choice([0, 1, 2, 3, 4, 5, 6, 8], p=[0.14, 0.14, 0.14, 0.14, 0.14, 0.12, 0.1, 0.08])
        )
        for _ in range(busy):
            sx, sy = (float(v) for v in rng.choice([-1.0, 1.0], size=2))
            kind, a, b = rng.random(), float(rng.uniform(8.5, 10.0)), float(rng.uniform(6.0, 6.6))
            if kind < 0.45:  # standing on a corner
                c = rng.uniform(7.0, 9.5, size=2)
                out.append(_Agent(_PED, (nx + sx * c[0], ny + sy * c[1])))
            elif kind < 0.7:  # waiting at the curb by a crosswalk, 6 m from the centre line
                p = (nx + sx * a, ny + sy * b) if rng.random() < 0.5 else (nx + sx * b, ny + sy * a)
                out.append(_Agent(_PED, p))
            else:  # walking back and forth over a crosswalk
                speed, phase = float(rng.uniform(1.1, 1.6)), float(rng.uniform(0, 28))
                if rng.random() < 0.5:
                    out.append(_Agent(_PED, (nx + sx * 9, ny - 7), (0, 1), speed, 14, phase, 1))
                else:
                    out.append(_Agent(_PED, (nx - 7, ny + sy * 9), (1, 0), speed, 14, phase, 1))
        return out

    def _block_users(self, leg: tuple[tuple[int, int], tuple[int, int]]) -> list[_Agent]:
        """Sidewalk walkers, dogs, plaza people, parked and passing cars, cyclists of one block."""
        rng = self._node_rng(2, *leg[0], *leg[1])
        (i0, j0), (i1, j1) = leg
        ax, ay = i0 * self.block_x, j0 * self.block_y
        length = math.hypot((i1 - i0) * self.block_x, (j1 - j0) * self.block_y)
        d = ((i1 - i0) * self.block_x / length, (j1 - j0) * self.block_y / length)

        def at(u: float, lateral: float) -> tuple[float, float]:
            return ax + d[0] * u - d[1] * lateral, ay + d[1] * u + d[0] * lateral

        def side() -> float:
            return float(rng.choice([-1.0, 1.0]))

        out: list[_Agent] = []
        for _ in range(int(rng.poisson(1.3))):
            s_, u = side(), float(rng.uniform(15, length - 45))
            speed, phase = float(rng.uniform(1.0, 1.6)), float(rng.uniform(0, 60))
            lateral = s_ * float(rng.uniform(7.5, 9.5))
            out.append(_Agent(_PED, at(u, lateral), d, speed, 30, phase, 1))
            if rng.random() < 0.2:  # walking a dog
                dog = at(u, lateral - s_ * 0.8)
                out.append(_Agent(int(ObjectClass.ANIMAL), dog, d, speed, 30, phase, 1))
        for _ in range(int(rng.integers(0, 3))):  # plaza people, never within 30 m of a street
            p = at(float(rng.uniform(0.35, 0.65)) * length, side() * float(rng.uniform(33, 45)))
            out.append(_Agent(_PED, p))
        for _ in range(int(rng.integers(0, 4))):  # parked cars
            out.append(_Agent(_CAR, at(float(rng.uniform(15, length - 15)), side() * 5.0), d))
        movers = [(_CAR, LANE_OFFSET_M, 7.0, 12.0)] * int(rng.integers(0, 3))
        if rng.random() < 0.5:
            movers.append((int(ObjectClass.CYCLIST), 4.5, 4.0, 6.5))
        for cls, lane, v_lo, v_hi in movers:  # through traffic, either way, in its right lane
            sgn, v = side(), float(rng.uniform(v_lo, v_hi))
            t_c = float(rng.uniform(0, self.seconds))  # when it passes its chosen point
            p = at(float(rng.uniform(0, length)), -sgn * lane)
            start = (p[0] - d[0] * sgn * v * t_c, p[1] - d[1] * sgn * v * t_c)
            out.append(_Agent(cls, start, (d[0] * sgn, d[1] * sgn), v, 0, 0, 2))
        return out

    def objects(self, t: float, ego: _Pose, max_range: float) -> list[Seen]:
        """True positions of every road user within ``max_range`` m of the ego car, by track id."""
        u = self._speed * t + self._phase
        span = np.maximum(2 * self._len, 1e-9)
        pp = np.mod(u, span)
        pp = np.where(pp > self._len, span - pp, pp)
        dist = np.where(self._mode == 1, pp, np.where(self._mode == 2, u, 0.0))
        pos = self._p0 + self._dir * dist[:, None]
        rx, ry = pos[:, 0] - ego.x, pos[:, 1] - ego.y
        c, s = math.cos(ego.heading), math.sin(ego.heading)
        fx, fy = rx * c + ry * s, -rx * s + ry * c
        near = np.flatnonzero(np.hypot(fx, fy) <= max_range)
        heights = {1: 0.9, 2: 0.9, 3: 0.75, 4: 0.3}
        return [
            Seen(
                int(self._track[i]),
                int(self._cls[i]),
                float(fx[i]),
                float(fy[i]),
                heights.get(int(self._cls[i]), 0.5),
            )
            for i in near
        ]
