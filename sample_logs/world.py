"""The simulated world of a sample drive, a pure function of the seed.

A grid city anchored at a real place; the ego car drives its streets in the right lane,
slowing for turns and sometimes stopping at intersections; pedestrians gather at corners
and crossings, walk the sidewalks and stand in plazas; cyclists and cars pass; the weather
changes and shows only through the car's own signals. Local metres are x east, y north on
a tangent plane at the city's anchor. Times are seconds since the drive's clock origin
(``World.origin_ns``, UTC nanoseconds).

The people and vehicles around the ego car are ``sample_logs.road_users``.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

# The contract message classes are data definitions generated from schemas/proto, not logic;
# nothing here imports drivecat.ingest.
from drivecat.schemas.messages import ObjectClass, WiperMode
from sample_logs.road_users import LANE_OFFSET_M, RoadUsers, Seen
from sample_logs.scene import View
from sample_logs.truth import solar_elevation_deg, time_of_day, weather_of

DETECTION_RANGE_M = 60.0
# The radius of the tangent plane; truth measures distances on the lat/lon the messages
# carry, so this only shapes where the streets fall.
EARTH_RADIUS_M = 6_371_008.8
_SIM_DT = 0.005
_ACCEL, _DECEL = 1.6, 2.2  # m/s^2, comfortable


@dataclass(frozen=True)
class City:
    name: str
    lat: float
    lon: float
    altitude_m: float
    cold_winters: bool


CITIES = (
    City("san_francisco", 37.7749, -122.4194, 16.0, False),
    City("pittsburgh", 40.4406, -79.9959, 223.0, True),
    City("munich", 48.1374, 11.5755, 519.0, True),
    City("phoenix", 33.4484, -112.0740, 331.0, False),
)


@dataclass(frozen=True)
class Identity:
    device_id: str
    device_version: str
    vehicle_id: str
    operator: str

    def as_metadata(self) -> dict[str, str]:
        return {
            "device_id": self.device_id,
            "device_version": self.device_version,
            "vehicle_id": self.vehicle_id,
            "operator": self.operator,
        }


@dataclass(frozen=True)
class Ego:
    """The ego car at one instant: local metres, heading (rad, CCW from east), m/s, rad/s."""

    x: float
    y: float
    heading: float
    speed: float
    yaw_rate: float
    accel: float
    lat: float
    lon: float


@dataclass(frozen=True)
class Signals:
    """What the car's own sensors say about the weather, as the State message carries it."""

    wipers: int
    rain_intensity: float
    fog_lights: bool
    headlights: bool
    outside_temp_c: float


@dataclass(frozen=True)
class _Piece:
    s0: float
    length: float
    x0: float
    y0: float
    h0: float
    k: float  # curvature, 1/m, positive turning left

    def pose(self, s: float) -> tuple[float, float, float]:
        ds = s - self.s0
        if self.k == 0.0:
            return self.x0 + ds * math.cos(self.h0), self.y0 + ds * math.sin(self.h0), self.h0
        h = self.h0 + self.k * ds
        x = self.x0 + (math.sin(h) - math.sin(self.h0)) / self.k
        y = self.y0 - (math.cos(h) - math.cos(self.h0)) / self.k
        return x, y, h


@dataclass(frozen=True)
class _Zone:
    """A stretch of the path with a speed limit; a stop zone holds the car for ``dwell`` s."""

    s_a: float
    s_b: float
    v_max: float
    dwell: float = 0.0


@dataclass(frozen=True)
class Conditions:
    """Conditions a drive is made to have instead of drawing them from its seed (fleets).

    ``light``: day, dawn_dusk or night for the whole drive. ``weather``: clear, rain or fog,
    held for the whole drive (the car's signals show it from the first second; a forced
    weather also puts the drive in a warm city, so that rain never reads as snow).
    ``device_version``: the recorder's software version. None keeps the seed's draw.
    """

    light: str | None = None
    weather: str | None = None
    device_version: str | None = None

    def __post_init__(self) -> None:
        if self.light not in (None, "day", "dawn_dusk", "night"):
            raise ValueError(f"Conditions: unknown light {self.light!r}")
        if self.weather not in (None, "clear", "rain", "fog"):
            raise ValueError(f"Conditions: unknown weather {self.weather!r}")


class World:
    """Everything about one simulated drive; deterministic from (seed, seconds, night,
    conditions). Without conditions the draws are exactly those of earlier releases."""

    def __init__(
        self,
        seed: int,
        seconds: float,
        night: bool = False,
        conditions: Conditions | None = None,
    ) -> None:
        self.seed = seed
        self.seconds = seconds
        forced = conditions or Conditions()
        self.forced = forced
        rng = np.random.default_rng([seed, 7])
        cold = bool(rng.random() < 0.25)
        if forced.weather is not None:
            cold = False
        cities = [c for c in CITIES if c.cold_winters] if cold else list(CITIES)
        self.city = cities[int(rng.integers(len(cities)))]
        self.cold = cold
        self.block_x = float(rng.uniform(200.0, 280.0))  # avenues: long blocks east-west
        self.block_y = float(rng.uniform(100.0, 150.0))  # streets every ~100-150 m
        light = "night" if night else forced.light
        self.origin_ns = _pick_start(rng, self.city, seconds, cold, light)
        n = int(rng.integers(10, 100))
        ops = ("jdoe", "asmith", "mgarcia", "lchen", "pkumar", "okeller")
        version = f"4.2.{int(rng.integers(10))}"
        self.identity = Identity(
            f"veh0{n:02d}",
            forced.device_version or version,
            f"car{n:03d}",
            ops[int(rng.integers(6))],
        )
        start = datetime.fromtimestamp(self.origin_ns // 1_000_000_000, tz=UTC)
        self.drive_id = f"{self.identity.device_id}_{start:%Y-%m-%dT%H%M%SZ}"
        self.night = night or light == "night"
        self._route(rng)
        self._simulate(rng)
        self._users = RoadUsers(seed, self.route_nodes, self.block_x, self.block_y, seconds)
        self._weather(rng)

    # ------------------------------------------------------------------ geometry

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        lat = self.city.lat + math.degrees(y / EARTH_RADIUS_M)
        lon = self.city.lon + math.degrees(
            x / (EARTH_RADIUS_M * math.cos(math.radians(self.city.lat)))
        )
        return lat, lon

    def intersections(self) -> list[tuple[float, float]]:
        """(lat, lon) of every intersection of the city area: the route's box plus two blocks."""
        i_s = [i for i, _ in self.route_nodes]
        j_s = [j for _, j in self.route_nodes]
        return [
            self.to_latlon(i * self.block_x, j * self.block_y)
            for j in range(min(j_s) - 2, max(j_s) + 3)
            for i in range(min(i_s) - 2, max(i_s) + 3)
        ]

    def _route(self, rng: np.random.Generator) -> None:
        node, d = (0, 0), (1, 0)
        nodes, dirs = [node], [d]
        length, need = self.block_x / 2, 14.0 * (self.seconds + 2) + 60.0
        while length < need or len(nodes) < 3:
            straight = 0.65 if d[1] == 0 else 0.35  # prefer the long avenues
            u = rng.random()
            if u >= straight:
                d = (-d[1], d[0]) if u < straight + (1 - straight) / 2 else (d[1], -d[0])
            node = (node[0] + d[0], node[1] + d[1])
            nodes.append(node)
            dirs.append(d)
            length += self.block_x if d[1] == 0 else self.block_y
        self.route_nodes = nodes
        pieces: list[_Piece] = []
        x, y, s = -self.block_x / 2, -LANE_OFFSET_M, 0.0
        self._node_s: list[tuple[float, float, float, bool]] = []  # (s_entry, s_a, s_b, turn)
        for k, (i, j) in enumerate(nodes[:-1]):
            d_in, d_out = dirs[k], dirs[k + 1]
            nx, ny = i * self.block_x, j * self.block_y
            along = (nx - x) * d_in[0] + (ny - y) * d_in[1]  # to the node's projection
            h_in = math.atan2(d_in[1], d_in[0])
            if d_in == d_out:
                self._node_s.append((s + along, s + along - 10, s + along + 10, False))
                continue
            left = d_in[0] * d_out[1] - d_in[1] * d_out[0] > 0
            rc = 9.0 if left else 5.0
            r_in, r_out = (d_in[1], -d_in[0]), (d_out[1], -d_out[0])
            cx = nx + LANE_OFFSET_M * (r_in[0] + r_out[0])
            cy = ny + LANE_OFFSET_M * (r_in[1] + r_out[1])
            t1 = (cx - rc * d_in[0], cy - rc * d_in[1])
            run = (t1[0] - x) * d_in[0] + (t1[1] - y) * d_in[1]
            pieces.append(_Piece(s, run, x, y, h_in, 0.0))
            arc = rc * math.pi / 2
            self._node_s.append((s + along, s + run, s + run + arc, True))
            pieces.append(_Piece(s + run, arc, t1[0], t1[1], h_in, (1 if left else -1) / rc))
            s += run + arc
            x, y = cx + rc * d_out[0], cy + rc * d_out[1]
        d_last = dirs[-1]
        pieces.append(_Piece(s, 1e6, x, y, math.atan2(d_last[1], d_last[0]), 0.0))
        self._pieces = pieces
        self._piece_s = [p.s0 for p in pieces]

    def _pose(self, s: float) -> tuple[float, float, float, float]:
        k = bisect.bisect_right(self._piece_s, s) - 1
        p = self._pieces[max(k, 0)]
        return (*p.pose(s), p.k)

    # ------------------------------------------------------------------ ego motion

    def _simulate(self, rng: np.random.Generator) -> None:
        zones: list[_Zone] = []
        cruise_at = [(0.0, float(rng.uniform(8.0, 13.0)))]
        for s_entry, s_a, s_b, turn in self._node_s:
            cruise_at.append((s_entry, float(rng.uniform(8.0, 13.0))))
            if rng.random() < 0.45:
                zones.append(_Zone(s_entry - 11.0, s_entry - 11.0, 0.0, float(rng.uniform(1, 4))))
            if turn:
                zones.append(_Zone(s_a, s_b, float(rng.uniform(3.5, 5.0))))
            elif rng.random() < 0.5:
                zones.append(_Zone(s_a, s_b, float(rng.uniform(6.0, 8.5))))
        cruise_s = [c[0] for c in cruise_at]
        n = int((self.seconds + 2) / _SIM_DT) + 1
        s_arr, v_arr = np.zeros(n), np.zeros(n)
        s, v = 0.0, float(rng.uniform(5.0, 10.0))
        k, hold_until = 0, -1.0
        for step in range(n):
            t = step * _SIM_DT
            s_arr[step], v_arr[step] = s, v
            if t < hold_until:  # standing at a stop line
                continue
            while k < len(zones) and not zones[k].dwell and s > zones[k].s_b:
                k += 1
            if k < len(zones) and zones[k].dwell and zones[k].s_a - s <= 0.05:
                if hold_until < 0:
                    hold_until, v = t + zones[k].dwell, 0.0
                    continue
                k, hold_until = k + 1, -1.0  # the stop is over
            ci = bisect.bisect_right(cruise_s, s) - 1
            allowed = cruise_at[max(ci, 0)][1]
            for z in zones[k : k + 3]:
                if s < z.s_a:
                    allowed = min(allowed, math.sqrt(z.v_max**2 + 2 * _DECEL * (z.s_a - s)))
                elif s <= z.s_b:
                    allowed = min(allowed, z.v_max)
            v = max(min(v + _ACCEL * _SIM_DT, allowed), v - 2 * _DECEL * _SIM_DT, 0.0)
            s += v * _SIM_DT
        self._s, self._v = s_arr, v_arr

    def ego(self, t: float) -> Ego:
        """The ego car at t seconds after the clock origin."""
        grid = t / _SIM_DT
        i = min(max(int(grid), 0), len(self._s) - 2)
        w = grid - i
        s = float(self._s[i] + (self._s[i + 1] - self._s[i]) * w)
        v = float(self._v[i] + (self._v[i + 1] - self._v[i]) * w)
        j = min(max(i - 20, 0), len(self._v) - 41)
        accel = float(self._v[j + 40] - self._v[j]) / (40 * _SIM_DT)
        x, y, h, curv = self._pose(s)
        lat, lon = self.to_latlon(x, y)
        return Ego(x, y, h, v, v * curv, accel, lat, lon)

    # ------------------------------------------------------------------ other road users

    def objects(self, t: float, ego: Ego, max_range: float = DETECTION_RANGE_M) -> list[Seen]:
        """True positions of every road user within ``max_range`` m of the ego car, by track id."""
        return self._users.objects(t, ego, max_range)

    def buildings(
        self, ego: Ego, max_range: float = 80.0
    ) -> list[tuple[float, float, float, float]]:
        """Nearby block interiors as ego-frame boxes (x_min, x_max, y_min, y_max), metres.

        The lidar takes axis-aligned boxes, so the heading is snapped to the nearest street
        direction: exact on straights, a little off during the few seconds of a turn.
        """
        quarter = round(ego.heading / (math.pi / 2)) % 4
        bi, bj = math.floor(ego.x / self.block_x), math.floor(ego.y / self.block_y)
        out = []
        for i in range(bi - 1, bi + 2):
            for j in range(bj - 1, bj + 2):
                x0, x1 = i * self.block_x + 10 - ego.x, (i + 1) * self.block_x - 10 - ego.x
                y0, y1 = j * self.block_y + 10 - ego.y, (j + 1) * self.block_y - 10 - ego.y
                # Rotating by -heading turns east/north boxes into forward/left boxes.
                box = [
                    (x0, x1, y0, y1),
                    (y0, y1, -x1, -x0),
                    (-x1, -x0, -y1, -y0),
                    (-y1, -y0, x0, x1),
                ]
                fx0, fx1, fy0, fy1 = box[quarter]
                gap_x = max(fx0, -fx1, 0.0)
                gap_y = max(fy0, -fy1, 0.0)
                if math.hypot(gap_x, gap_y) <= max_range:
                    out.append((fx0, fx1, fy0, fy1))
        return out

    def odometer(self, t: float) -> float:
        """Metres driven since the clock origin."""
        grid = t / _SIM_DT
        i = min(max(int(grid), 0), len(self._s) - 2)
        return float(self._s[i] + (self._s[i + 1] - self._s[i]) * (grid - i))

    # ------------------------------------------------------------------ weather and light

    def _weather(self, rng: np.random.Generator) -> None:
        follow = {
            "clear": (("rain", "fog", "drizzle"), (0.45, 0.3, 0.25)),
            "drizzle": (("rain", "clear"), (0.6, 0.4)),
            "rain": (("drizzle", "clear"), (0.3, 0.7)),
            "fog": (("clear", "drizzle"), (0.7, 0.3)),
        }
        levels = {
            "clear": (0.0, 0.04),
            "drizzle": (0.12, 0.22),
            "rain": (0.4, 0.85),
            "fog": (0.0, 0.05),
        }
        if self.cold:
            levels["rain"] = (0.25, 0.5)  # snow: wet enough for the rain sensor, not for wipers
        kind = str(rng.choice(["clear", "drizzle", "rain", "fog"], p=[0.4, 0.1, 0.3, 0.2]))
        t, spells = -float(rng.uniform(0, 20)), []
        while t < self.seconds + 2:
            spells.append((t, kind, float(rng.uniform(*levels[kind])), float(rng.uniform(0.5, 3))))
            t += float(rng.uniform(12, 40))
            names, p = follow[kind]
            kind = str(rng.choice(names, p=p))
        if self.forced.weather is not None:  # one spell kind, at a level drawn for it
            kind = self.forced.weather
            spells = [
                (t0, kind, float(rng.uniform(*levels[kind])), lag) for t0, _, _, lag in spells
            ]
            # A fog spell shows only after its lag: start it early enough to show at once.
            spells[0] = (min(spells[0][0], -spells[0][3] - 1.0), *spells[0][1:])
        self._spells = spells
        self._temp = float(rng.uniform(-5.0, 0.0)) if self.cold else float(rng.uniform(6.0, 24.0))
        self._wobble = rng.uniform(0, 2 * math.pi, size=3)

    def signals(self, t: float) -> Signals:
        """Vehicle weather signals at t: rain sensor with 4 s ramps, auto wipers, fog lights."""
        i = max(k for k, sp in enumerate(self._spells) if sp[0] <= t or k == 0)
        level = self._spells[i][2]
        if i + 1 < len(self._spells) and t > self._spells[i + 1][0] - 2.0:
            w = (t - (self._spells[i + 1][0] - 2.0)) / 4.0
            level += (self._spells[i + 1][2] - level) * w
        if i > 0 and t < self._spells[i][0] + 2.0:
            w = (t - (self._spells[i][0] - 2.0)) / 4.0
            level = self._spells[i - 1][2] + (self._spells[i][2] - self._spells[i - 1][2]) * w
        a, b, c = self._wobble
        rain = max(0.0, level + 0.012 * math.sin(1.7 * t + a) + 0.008 * math.sin(0.37 * t + b))
        wipers = (
            WiperMode.WIPER_OFF
            if rain < 0.08
            else WiperMode.WIPER_INTERMITTENT
            if rain < 0.33
            else WiperMode.WIPER_LOW
            if rain < 0.62
            else WiperMode.WIPER_HIGH
        )
        kind, lag = self._spells[i][1], self._spells[i][3]
        fog = kind == "fog" and t >= self._spells[i][0] + lag
        temp = round(self._temp + 0.3 * math.sin(t / 40 + c), 1)
        if self.cold:
            temp = min(temp, 0.5)
        dark = self.light(t) != "day"
        lights = self.night or dark or fog or wipers >= WiperMode.WIPER_LOW
        return Signals(int(wipers), round(rain, 3), fog, lights, temp)

    def light(self, t: float) -> str:
        """Time of day (day, dawn_dusk, night) at the city's anchor at t."""
        t_ns = self.origin_ns + int(t * 1e9)
        return time_of_day(solar_elevation_deg(self.city.lat, self.city.lon, t_ns))

    def view(self, t: float, facing_rear: bool = False) -> View:
        """What a camera on the ego car sees at t (weather by the contract rule on the signals)."""
        ego = self.ego(t)
        sig = self.signals(t)
        seen = self.objects(t, ego, max_range=50.0)

        def of(cls: ObjectClass) -> tuple[tuple[float, float], ...]:
            return tuple((o.x, o.y) for o in seen if o.object_class == cls)

        return View(
            weather=weather_of(sig.fog_lights, sig.outside_temp_c, sig.wipers, sig.rain_intensity),
            time_of_day=self.light(t),
            pedestrians=of(ObjectClass.PEDESTRIAN),
            cyclists=of(ObjectClass.CYCLIST),
            vehicles=of(ObjectClass.VEHICLE),
            facing_rear=facing_rear,
            headlights=sig.headlights,
            odometer_m=self.odometer(t),
        )


def _pick_start(
    rng: np.random.Generator, city: City, seconds: float, cold: bool, light: str | None
) -> int:
    """A UTC start (whole seconds, in ns) whose light at the city stays in one category:
    ``light`` when given, else one drawn."""
    want = light or str(rng.choice(["day", "dawn_dusk", "night"], p=[0.5, 0.25, 0.25]))
    month = int(rng.choice([11, 12, 1, 2, 3] if cold else list(range(1, 13))))
    base_s = int(datetime(2026, month, int(rng.integers(1, 29)), tzinfo=UTC).timestamp())
    ok = []
    for minute in range(0, 24 * 60, 5):
        t0 = base_s + minute * 60
        cats = {
            time_of_day(solar_elevation_deg(city.lat, city.lon, (t0 + dt) * 1_000_000_000))
            for dt in (0, int(seconds / 2) + 30, int(seconds) + 62)
        }
        if cats == {want}:
            ok.append(t0)
    if not ok:  # no such light that day (never at these latitudes): take noon
        ok = [base_s + 12 * 3600]
    return (int(rng.choice(ok)) + int(rng.integers(0, 60))) * 1_000_000_000
