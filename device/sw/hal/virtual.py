"""Virtual drivers for the unix port: plausible, deterministic values for every sensor.

One `Sensors` object plays every polled sensor role of the node (method names are unique per
role, see sw/hal/__init__.py): a class per simulated chip would cost ~700 bytes of heap each.
The PIR has its own generator so that, for a seed, the presence schedule never depends on how
often the other sensors were read.
"""
import math
from time import ticks_add, ticks_diff, ticks_ms

from micropython import const

_MAX_GAP_MS = const(0x0FFFFFFF)  # ~3 days: every ticks_diff stays inside half a tick period
_NIGHT_MA = const(-12)  # quiescent drain of the node: the charge current without sun


def _xorshift(x):
    """Next state of a 32-bit xorshift generator: tiny, and the same on every port (the
    `random` module has one global stream that other code would disturb)."""
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    return x ^ ((x << 5) & 0xFFFFFFFF)


class Sensors:
    """Battery ADC, INA219-class power monitor, SHT3x-class climate sensor, radio RSSI,
    presence confirmation (stands in for a radar) and single-pixel IR thermometer."""

    def __init__(self, clock, seed, initial_mv, discharge_mv_per_h):
        self._clock = clock
        self._x = (seed & 0xFFFFFFFF) or 1  # zero is a fixed point of xorshift
        self._mv0 = initial_mv
        self._rate = discharge_mv_per_h
        self._t0 = ticks_ms()

    def _noise(self, n):
        """Uniform int in [-n, n]."""
        self._x = _xorshift(self._x)
        return self._x % (2 * n + 1) - n

    def _day(self):
        """Fraction of the UTC day, 0..1, from the (WELCOME-synced) clock."""
        return self._clock.at(ticks_ms())[0] % 86400 / 86400.0

    def read_mv(self):
        """Battery: loses discharge_mv_per_h, never below 2800 mV, +-2 mV ADC noise."""
        mv = int(self._mv0 - self._rate * ticks_diff(ticks_ms(), self._t0) / 3600000.0)
        return max(mv + self._noise(2), 2800)

    def read_power(self):
        """6 V panel: (solar_mv, charge_ma) follow a half sine between 06:00 and 18:00."""
        h = self._day() * 24
        sun = math.sin(math.pi * (h - 6) / 12) if 6 < h < 18 else 0.0
        if sun <= 0:
            return 0, _NIGHT_MA
        return max(int(6200 * sun) + self._noise(15), 0), int(260 * sun) + _NIGHT_MA

    def read_env(self):
        """(temperature_cc, humidity_half_pct): warm and dry at 15:00, cool and damp at 03:00."""
        phase = math.cos(2 * math.pi * (self._day() - 0.625))
        return 1200 + int(500 * phase) + self._noise(10), 150 - int(40 * phase) + self._noise(2)

    def rssi(self):
        return -64 + self._noise(3)

    def confidence(self):
        """Presence confirmation, 55..99 %."""
        return 77 + self._noise(22)

    def read_cc(self):
        """Peak scene temperature of a clothed person, 29..35 C."""
        return 3200 + self._noise(300)


class Pir:
    """PIR whose presences follow a seeded Poisson process: exponential gaps, fixed length.

    The schedule is anchored to boot and to the end of the previous presence, not to when the
    application looks, so a seed gives the same presences whatever the network did. Like the
    IRQ of a real PIR, a rising edge stays latched until edge() consumes it.
    """

    def __init__(self, seed, mean_interval_s, duration_s):
        self._x = (seed & 0xFFFFFFFF) or 1
        self._mean_ms = int(mean_interval_s * 1000)
        self._dur_ms = int(duration_s * 1000)
        self.holdoff_ms = 0
        self._end = ticks_ms()  # end of the previous presence: boot
        self._plan()

    def _plan(self):
        self._x = _xorshift(self._x)
        u = (self._x >> 8) / 16777216.0  # uniform in [0, 1)
        gap = int(-self._mean_ms * math.log(1.0 - u)) + self.holdoff_ms
        self._start = ticks_add(self._end, min(gap, _MAX_GAP_MS))
        self._end = ticks_add(self._start, self._dur_ms)
        self._latched = False  # the rising edge of this presence has not been seen

    def edge(self):
        """ticks_ms of a rising edge not reported yet, else None."""
        if not self._latched and ticks_diff(ticks_ms(), self._start) >= 0:
            self._latched = True
            return self._start
        return None

    def present(self):
        """Output level: True while someone is there."""
        if not self._latched:
            return False
        if ticks_diff(ticks_ms(), self._end) < 0:
            return True
        self._plan()  # the presence is over and was reported: schedule the next one
        return False

    def wake_ms(self):
        """ms until the output changes next (the node's loop sleeps at most that long)."""
        return ticks_diff(self._end if self._latched else self._start, ticks_ms())
