"""weather: the contract rule on each ``drivecat.vehicle.State``, then the segment's majority.

For each State message (thresholds from ``[tags.weather]``, defaults are the contract):
``fog`` if the fog lights are on; else ``snow`` if ``outside_temp_c <= snow_max_temp_c`` and
(wipers ``>= min_wiper`` or ``rain_intensity >= snow_rain``); else ``rain`` if wipers
``>= min_wiper`` or ``rain_intensity >= rain_rain``; else ``clear``. The segment takes the
most common value; a tie goes to the more severe (fog > snow > rain > clear). A segment
without a State message is ``unknown``.

Fields missing from a message take their proto3 defaults (off, 0), as the contract's
decoders would. Float fields are compared as decoded (float32 widened to float64).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from drivecat.ingest.config import Config
from drivecat.ingest.errors import IngestError
from drivecat.ingest.roles import Role
from drivecat.ingest.tags.base import SegmentContext, as_float, tagger_config, value_of
from drivecat.schemas.messages import WiperMode


class Weather(StrEnum):
    CLEAR = "clear"
    RAIN = "rain"
    SNOW = "snow"
    FOG = "fog"
    UNKNOWN = "unknown"


#: Most severe first: the tie-break order of docs/tags.md.
SEVERITY: tuple[Weather, ...] = (Weather.FOG, Weather.SNOW, Weather.RAIN, Weather.CLEAR)


def wiper_level(value: Any) -> int:
    """A ``WiperMode`` as its number: an int, or a name such as ``"WIPER_LOW"`` (JSON).

    Raises ValueError for a name that is not a WiperMode.
    """
    if value is None:
        return 0
    if isinstance(value, str):
        return int(WiperMode.Value(value))
    return int(value)


@dataclass(frozen=True)
class WeatherRule:
    """The thresholds of the per-message rule; the defaults are the contract's."""

    snow_max_temp_c: float = 1.0
    snow_rain: float = 0.2
    rain_rain: float = 0.3
    min_wiper: int = WiperMode.WIPER_LOW

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> WeatherRule:
        """Read ``[tags.weather]``; raises IngestError for a value of the wrong kind."""
        try:
            return cls(
                snow_max_temp_c=float(section.get("snow_max_temp_c", cls.snow_max_temp_c)),
                snow_rain=float(section.get("snow_rain", cls.snow_rain)),
                rain_rain=float(section.get("rain_rain", cls.rain_rain)),
                min_wiper=wiper_level(section.get("min_wiper", cls.min_wiper)),
            )
        except (TypeError, ValueError) as err:
            raise IngestError(f"drivecat.toml: [tags.weather]: invalid value: {err}") from None

    def classify(self, state: Any) -> Weather:
        """The weather one State message (protobuf object or JSON dict) says."""
        if bool(value_of(state, "fog_lights", False)):
            return Weather.FOG
        try:
            wipers_on = wiper_level(value_of(state, "wipers", 0)) >= self.min_wiper
        except ValueError:  # an unknown enum name: no evidence of wipers
            wipers_on = False
        rain = as_float(value_of(state, "rain_intensity", 0.0)) or 0.0
        temp = as_float(value_of(state, "outside_temp_c", 0.0))
        temp = 0.0 if temp is None else temp
        if temp <= self.snow_max_temp_c and (wipers_on or rain >= self.snow_rain):
            return Weather.SNOW
        if wipers_on or rain >= self.rain_rain:
            return Weather.RAIN
        return Weather.CLEAR


def majority(counts: Mapping[Weather, int]) -> Weather:
    """The most common value; ties go to the more severe; ``unknown`` when nothing counted."""
    best = max(SEVERITY, key=lambda w: (counts.get(w, 0), -SEVERITY.index(w)))
    return best if counts.get(best, 0) > 0 else Weather.UNKNOWN


class WeatherTagger:
    name: str = "weather"
    columns: tuple[str, ...] = ("weather",)
    roles: frozenset[Role] = frozenset({Role.VEHICLE})

    def __init__(self, config: Config) -> None:
        self.rule = WeatherRule.from_config(tagger_config(config, self.name))
        self._counts: Counter[Weather] = Counter()

    def on_message(self, role: Role, topic: str, log_time_ns: int, decoded: Any) -> None:
        self._counts[self.rule.classify(decoded)] += 1

    def finish(self, segment: SegmentContext) -> Mapping[str, Any]:
        weather = majority(self._counts)
        self._counts = Counter()
        return {"weather": weather.value}
