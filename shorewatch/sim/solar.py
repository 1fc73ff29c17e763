"""Sun and weather over a solar sensor node: irradiance by date, latitude and cloud, and the air.

The other half of the node's energy model (the cell and the cost of each operation are
``device/sw/hal/cell.py``, which runs on the device too). ``bench/energy.py`` simulates a
December from these minute series; a virtual board replays the same series from an
environment recording (``write_environment``) with its cell model on top, so the real firmware
meets the same weather as the bench. Figures and sources: ``docs/energy.md``.

Random numbers come from a 32-bit xorshift (not ``random``), so a seed gives the same weather
on every Python and the series can be reproduced anywhere.

Environment recording (little-endian), read by ``device/sw/hal/virtual.py``::

    header  4s magic "SWE1", u32 start (unix s, minute-aligned), u32 minutes, u16 step_s (60),
            u16 reserved (0)
    record  u16 irradiance on the panel (W/m2), i16 air temperature (centi-degC), per minute
"""

from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass
from pathlib import Path

LATITUDE = 50.95  # Calais
LONGITUDE = 1.86  # solar noon ~7 min before 12:00 UTC
PANEL_TILT = 60.0  # degrees, facing south: the winter optimum at this latitude
ALBEDO = 0.25  # sand in front of the panel
MINUTES_MAX = 62 * 1440  # longest recording written: two months of minutes (~360 KB)

ENV_FILE = "environment.bin"  # in the virtual board's directory
ENV_MAGIC = b"SWE1"
ENV_HEADER = struct.Struct("<4sIIHH")
ENV_RECORD = struct.Struct("<Hh")

# Daily sky state as a Markov chain: overcast, broken, clear; rows: today, columns: tomorrow,
# in % (persistent overcast spells and clear spells: tuned so that December averages ~1
# peak-sun-hour a day and the darkest week 0.2-0.3, the Calais figures of docs/energy.md).
_SKY_P = (80, 15, 5, 25, 45, 30, 10, 30, 60)
_SKY_K = (3, 10, 25, 55, 65, 95)  # % of clear-sky irradiance, lo and hi per state
_SKY_HOURLY = (15, 45, 15)  # +- % hourly variation
_SKY_DC = (1.0, 0.0, -2.0)  # K: clear winter nights are colder
_SKY_SWING = (1.0, 2.0, 3.5)  # K: day-night swing of the air
_MEAN_C = 6.5  # December air at the coast
_ANOMALY_SD_C = 1.8  # day-to-day temperature anomaly (AR(1), 0.7)


def xorshift(x: int) -> int:
    """Next state of a 32-bit xorshift generator."""
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    return x ^ ((x << 5) & 0xFFFFFFFF)


def clear_sky(doy: int, minute: int, lat: float = LATITUDE) -> float:
    """Irradiance (W/m2) under a clear sky on the south-facing panel, for day of year ``doy``
    (1 = 1 January) and minute of the UTC day: Meinel beam, 10 % diffuse, sand albedo."""
    b = 2 * math.pi * (doy - 81) / 364
    eot_min = 9.87 * math.sin(2 * b) - 7.53 * math.cos(b) - 1.5 * math.sin(b)
    decl = math.radians(23.45 * math.sin(2 * math.pi * (284 + doy) / 365))
    la = math.radians(lat)
    h = math.radians(15 * ((minute + 0.5) / 60 + LONGITUDE / 15 + eot_min / 60 - 12))
    sin_el = math.sin(la) * math.sin(decl) + math.cos(la) * math.cos(decl) * math.cos(h)
    if sin_el <= 0:
        return 0.0
    t = math.radians(PANEL_TILT)
    # a south-facing panel tilted t at latitude la sees the sun as a flat one at la - t
    cos_inc = (math.sin(decl) * math.sin(la - t)
               + math.cos(decl) * math.cos(la - t) * math.cos(h))
    elevation = math.degrees(math.asin(sin_el))
    air_mass = 1 / (sin_el + 0.50572 * (elevation + 6.07995) ** -1.6364)  # Kasten-Young
    dni = 1361 * 0.7 ** (air_mass ** 0.678)  # Meinel
    dhi = 0.1 * dni
    return float(dni * max(cos_inc, 0.0) + dhi * (1 + math.cos(t)) / 2
                 + ALBEDO * (dni * sin_el + dhi) * (1 - math.cos(t)) / 2)


class Weather:
    """Seeded weather, one day at a time: call ``next_day()`` before the first day."""

    def __init__(self, seed: int) -> None:
        self._x = (seed & 0xFFFFFFFF) or 1  # zero is a fixed point of xorshift
        self.sky = 0  # 0 overcast, 1 broken, 2 clear
        self.k = 0.0  # fraction of the clear-sky irradiance today
        self.mean_c = _MEAN_C
        self._anomaly = 0.0
        self._hourly: tuple[float, ...] = (1.0,) * 24

    def _u(self) -> float:
        """Uniform in [0, 1)."""
        self._x = xorshift(self._x)
        return (self._x >> 8) / 16777216.0

    def next_day(self) -> None:
        """Move to the next day: sky state, cloud factor, hourly variation, temperature."""
        u = self._u() * 100
        row = self.sky * 3
        s = 0
        while s < 2 and u >= _SKY_P[row + s]:
            u -= _SKY_P[row + s]
            s += 1
        self.sky = s
        lo, hi = _SKY_K[2 * s], _SKY_K[2 * s + 1]
        self.k = (lo + (hi - lo) * self._u()) / 100
        spread = _SKY_HOURLY[s] / 100
        self._hourly = tuple(max(0.0, 1 + (2 * self._u() - 1) * spread) for _ in range(24))
        # the sum of three uniforms stands in for a normal draw: same on every Python
        g = (self._u() + self._u() + self._u() - 1.5) * 2
        self._anomaly = 0.7 * self._anomaly + _ANOMALY_SD_C * g
        self.mean_c = _MEAN_C + self._anomaly + _SKY_DC[s]

    def factor(self, hour: int) -> float:
        """Fraction of the clear-sky irradiance reaching the panel in this hour (0..23)."""
        return self.k * self._hourly[hour]

    def temp_c(self, minute: int) -> float:
        """Air temperature (stands in for the cell's): coldest ~02:00 UTC, warmest ~14:00."""
        return self.mean_c + _SKY_SWING[self.sky] * math.cos(2 * math.pi * (minute / 60 - 14)
                                                             / 24)


@dataclass(frozen=True, slots=True)
class Environment:
    """Minute series from ``start_s``: panel irradiance, air temperature, sun above horizon."""

    start_s: int
    poa: tuple[float, ...]
    temp_c: tuple[float, ...]
    sun_up: tuple[bool, ...]

    @property
    def minutes(self) -> int:
        return len(self.poa)


def environment(start_s: int, minutes: int, seed: int, lat: float = LATITUDE) -> Environment:
    """The weather of ``minutes`` minutes from ``start_s`` (rounded down to the minute); the
    weather draws one day per UTC calendar day, from the day of ``start_s`` on."""
    if not 0 < minutes <= MINUTES_MAX:
        raise ValueError(f"minutes must be 1..{MINUTES_MAX}, got {minutes}")
    start = start_s - start_s % 60
    weather = Weather(seed)
    day = -1
    poa: list[float] = []
    temp: list[float] = []
    up: list[bool] = []
    for i in range(minutes):
        t = start + 60 * i
        if t // 86400 != day:
            weather.next_day()
            day = t // 86400
        tm = time.gmtime(t)
        minute = tm.tm_hour * 60 + tm.tm_min
        clear = clear_sky(tm.tm_yday, minute, lat)
        poa.append(clear * weather.factor(tm.tm_hour))
        temp.append(weather.temp_c(minute))
        up.append(clear > 0)
    return Environment(start, tuple(poa), tuple(temp), tuple(up))


def write_environment(path: Path, env: Environment) -> Path:
    """Write ``env`` as an environment recording (format in the module docstring)."""
    with path.open("wb") as f:
        f.write(ENV_HEADER.pack(ENV_MAGIC, env.start_s, env.minutes, 60, 0))
        for w, c in zip(env.poa, env.temp_c, strict=True):
            f.write(ENV_RECORD.pack(min(0xFFFF, round(w)), max(-32768, min(32767, round(c * 100)))))
    return path
