"""The virtual camera's supply and climate: a small stand-in for battery ADC, power monitor,
climate sensor and radio (the camera reads them for TELEMETRY only).

The sensor node's simulated world (sw/hal/virtual.py, sw/hal/cell.py) models the cell, the sun
and the node's own energy use; the camera's 128 KB heap has no room for that model next to the
pipeline's buffers, and the camera's energy is not what it is tested on. Here: a battery that
loses `drain_mv_per_h`, a 6 V panel on a half sine between 06:00 and 18:00 UTC, a daily
temperature swing, all with a little seeded noise.
"""
import math
from time import ticks_diff, ticks_ms


class Supply:
    """battery | power | env | radio roles; the node sets holdoff_ms and window_ms on the
    pir and confirm roles, which a camera does not have: this object takes and ignores them."""

    def __init__(self, clock, seed, initial_mv, drain_mv_per_h):
        self._clock = clock
        self._x = (seed & 0xFFFFFFFF) or 1  # zero is a fixed point of xorshift
        self._mv0 = initial_mv
        self._drain = drain_mv_per_h
        self._t0 = ticks_ms()
        self.holdoff_ms = 0
        self.window_ms = 0

    def _noise(self, n):
        """Uniform int in [-n, n] (32-bit xorshift, as sw/hal/virtual.py's _xorshift: that module
        is the node's whole simulated world, too big to load for four lines)."""
        x = self._x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self._x = x
        return x % (2 * n + 1) - n

    def _day(self):
        return self._clock.at(ticks_ms())[0] % 86400 / 86400.0

    def read_mv(self):
        mv = int(self._mv0 - self._drain * ticks_diff(ticks_ms(), self._t0) / 3600000.0)
        return max(mv + self._noise(2), 2800)

    def read_power(self):
        """(solar_mv, charge_ma): the panel by day, the quiescent drain by night."""
        h = self._day() * 24
        sun = math.sin(math.pi * (h - 6) / 12) if 6 < h < 18 else 0.0
        if sun <= 0:
            return 0, -60
        return max(int(6200 * sun) + self._noise(15), 0), int(400 * sun) - 60

    def read_env(self):
        """(temperature_cc, humidity_half_pct): warm and dry at 15:00, cool and damp at 03:00."""
        phase = math.cos(2 * math.pi * (self._day() - 0.625))
        return 1200 + int(500 * phase) + self._noise(10), 150 - int(40 * phase) + self._noise(2)

    def rssi(self):
        return -64 + self._noise(3)
