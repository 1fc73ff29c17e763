"""Virtual drivers for the unix port: deterministic values for every sensor.

One `Sensors` object plays every sensor role of the node, the PIR included (method names are
unique per role, see sw/hal/__init__.py), and the supply they measure: a class per simulated
chip would cost ~700 bytes of heap each. The battery ADC and the INA219 report from the cell
model (hal/cell.py) under the sun of an environment recording (shorewatch/sim/solar.py),
drained by the node's operations: radar windows and PIR wakes here, radio sessions and awake
time in the accelerated clock (hal/warp.py). `SimLink` is the UDP link with the simulated
access point's outages.
"""
import math
from time import ticks_add, ticks_diff

from micropython import const

from . import cell
from .udp import UdpLink

# True for the type checker only (device/mypy.ini always_true): MicroPython folds `if 0:` away.
_TYPES = const(0)
if _TYPES:
    from typing import Any

ENV_HDR = const(16)  # environment recording: header, then one record per minute
ENV_REC = const(4)  # u16 W/m2, i16 centi-degC

_MAX_GAP_MS = const(0x0FFFFFFF)  # ~3 days: every ticks_diff stays inside half a tick period
_AWAKE_MA = const(27)  # the node's draw while it measures (~0.1 W at 3.7 V)
_PANEL_MV = const(6200)  # a "6 V" panel in full sun; 0 at night
_WARMUP_MS = const(1000)  # cell.RADAR_WARMUP_S


class Sensors:
    """Battery ADC, INA219-class power monitor, SHT3x-class climate sensor, radio RSSI,
    presence confirmation (stands in for a radar), single-pixel IR thermometer, PIR, and the
    supply they measure: the cell model (hal/cell.py) stepped a minute at a time against the
    simulated wall clock, charged by the sun of the environment recording and drained by the
    idle draw and what the node spends (spend()). State in small ints: a float kept in an
    attribute is an object in the heap.

    env: path of the environment recording (shorewatch/sim/solar.py: irradiance and air
    temperature per minute); outside it, or without one, the world is dark and 10 degC.
    start_s: unix time of the simulated world at boot; 0 follows the node's own clock (set by
    the WELCOME), so a real-time board sees the real time of day. brownouts counts the times
    the cell fell to the brown-out voltage (the node would reset there: not modelled).

    Built by the virtual board (sw/boards/virtual.py make()): the setup is boot code, and a
    module's code leaves the heap only with the module."""

    # What make() sets, for the type checker only (bare annotations compile to no code).
    _clock: Any
    _x: int
    _start: int
    _t0: int
    _skip: Any  # the warp clock's skip(ms), or None
    window_ms: int
    holdoff_ms: int
    _rec: bytearray
    _env: Any  # the environment recording (a file), or None
    _env_t: int
    _env_n: int
    t: int
    poa: int
    temp_cc: int
    p_in_mw: int
    _used_mj: int
    spent_mj: int
    brownouts: int
    _low: bool
    _idle_mj: int
    cell: cell.Cell
    _px: int
    _mean_ms: int
    _dur_ms: int
    edges: int
    _end: Any  # ticks
    _on: Any  # ticks
    _latched: bool

    def spend(self, j):
        """Charge an operation of the node (joules) to the cell."""
        mj = int(j * 1000)
        self._used_mj += mj
        self.spent_mj += mj

    def world_s(self):
        """Unix time of the simulated world now."""
        c = self._clock
        if self._start:
            return self._start + ticks_diff(c.now(), self._t0) // 1000
        return c.at(c.now())[0]

    def advance(self):
        """Step the model to now. A jump of more than two days (the wall clock set by the
        first WELCOME) moves it there with the cell as it is."""
        t_s = self.world_s()
        if t_s - self.t > 172800:
            self.t = t_s - t_s % 60
            self._sample()
        while self.t + 60 <= t_s:
            self.p_in_mw = self.cell.step(self.poa, self.temp_cc / 100, 60,
                                          self._idle_mj + self._used_mj)
            self._used_mj = 0
            self.t += 60
            self._sample()
            low = self.cell.soc(self.temp_cc / 100) * 100 <= cell.BROWNOUT_PCT
            if low and not self._low:
                self.brownouts += 1
            self._low = low

    def _sample(self):
        # sun and air of the minute starting at self.t, from the environment recording
        i = (self.t - self._env_t) // 60
        if self._env is None or not 0 <= i < self._env_n:
            self.poa = 0
            self.temp_cc = 1000
            return
        self._env.seek(ENV_HDR + ENV_REC * i)
        self._env.readinto(self._rec)
        r = self._rec
        self.poa = r[0] | r[1] << 8
        t = r[2] | r[3] << 8
        self.temp_cc = t - 0x10000 if t & 0x8000 else t

    def _noise(self, n):
        """Uniform int in [-n, n]."""
        self._x = _xorshift(self._x)
        return self._x % (2 * n + 1) - n

    def read_mv(self):
        """Battery: the cell model's reading, +-10 mV of ADC noise after averaging."""
        self.advance()
        return max(self.cell.reading_mv(self.temp_cc / 100, self.p_in_mw, self._noise(10)), 2800)

    def read_power(self):
        """(solar_mv, charge_ma): panel voltage from the irradiance, net current into the cell."""
        self.advance()
        if self.poa <= 1:
            return 0, -_AWAKE_MA
        mv = min(_PANEL_MV, 4000 + 11 * self.poa)  # open-circuit knee at low light
        return mv + self._noise(15), self.p_in_mw * 10 // 37 - _AWAKE_MA  # at ~3.7 V

    def read_env(self):
        """(temperature_cc, humidity_half_pct): the model's air; damper when colder."""
        t = self.temp_cc
        return t + self._noise(10), min(200, 170 - 3 * t // 100) + self._noise(2)

    def rssi(self):
        return -64 + self._noise(3)

    def confidence(self):
        """Presence confirmation, 55..99 %; the radar's warm-up and window are charged."""
        self.spend((cell.RADAR_W + cell.ESP_ACTIVE_W)
                   * (cell.RADAR_WARMUP_S + self.window_ms / 1000))
        if self._skip is not None:
            self._skip(_WARMUP_MS + self.window_ms)
        return 77 + self._noise(22)

    def read_cc(self):
        """Peak scene temperature of a clothed person, 29..35 C."""
        return 3200 + self._noise(300)


    # --- PIR --------------------------------------------------------------------------------
    # Presences follow a seeded Poisson process: exponential gaps, fixed length, from their own
    # generator, so a seed gives the same schedule however often the other sensors are read.
    # The schedule is anchored to boot and to the end of the previous presence, not to when the
    # application looks, so it does not depend on what the network did either. Like the IRQ of
    # a real PIR, a rising edge stays latched until edge() consumes it; each edge costs a wake.

    def _plan(self):
        self._px = _xorshift(self._px)
        u = (self._px >> 8) / 16777216.0  # uniform in [0, 1)
        gap = int(-self._mean_ms * math.log(1.0 - u)) + self.holdoff_ms
        self._on = ticks_add(self._end, min(gap, _MAX_GAP_MS))
        self._end = ticks_add(self._on, self._dur_ms)
        self._latched = False  # the rising edge of this presence has not been seen

    def edge(self):
        """ticks of a rising edge not reported yet, else None."""
        if not self._latched and ticks_diff(self._clock.now(), self._on) >= 0:
            self._latched = True
            self.edges += 1
            self.spend(cell.WAKE_J)
            return self._on
        return None

    def present(self):
        """Output level: True while someone is there."""
        if not self._latched:
            return False
        if ticks_diff(self._clock.now(), self._end) < 0:
            return True
        self._plan()  # the presence is over and was reported: schedule the next one
        return False

    def wake_ms(self):
        """ms until the output changes next (the node's loop sleeps at most that long)."""
        return ticks_diff(self._end if self._latched else self._on, self._clock.now())


def _xorshift(x):
    """Next state of a 32-bit xorshift generator: tiny, and the same on every port (the
    `random` module has one global stream that other code would disturb)."""
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    return x ^ ((x << 5) & 0xFFFFFFFF)


class SimLink(UdpLink):
    """The UDP link with the simulated access point: down during the configured outages
    (seconds of simulated time since boot, [from, to) pairs in one flat tuple), and a count of
    the frames sent for the radio's energy."""

    def __init__(self, host, port, clock, outages):
        UdpLink.__init__(self, host, port)
        self.supply = None  # the board's Sensors: summarised when the link closes
        self._clock = clock
        self._t0 = clock.now()
        self._outages = outages
        self.sent = 0
        self.lost = 0  # frames sent into an outage

    def down(self):
        """True while the access point is down."""
        t = ticks_diff(self._clock.now(), self._t0) // 1000
        o = self._outages
        for i in range(0, len(o), 2):
            if o[i] <= t < o[i + 1]:
                return True
        return False

    def send(self, frame):
        self.sent += 1
        if self.down():
            self.lost += 1
            return False  # the frame goes nowhere
        return UdpLink.send(self, frame)

    def close(self):
        """Close the link; the simulated world's summary line for benches and tests."""
        UdpLink.close(self)
        s = self.supply
        if s is not None:
            s.advance()
            print("I sim: brownouts %d, spent %d J, soc %d%%, frames %d, lost %d"
                  % (s.brownouts, s.spent_mj // 1000, int(s.cell.soc(s.temp_cc / 100) * 100),
                     self.sent, self.lost))
            self.supply = None
