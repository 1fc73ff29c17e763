"""Accelerated virtual clock: the node sleeps through simulated hours in an instant.

Plays the `clock` and `sleep` roles of a virtual board configured with "sim": {"warp": true}.
Ticks are the unix port's ticks plus a skew. When the node waits with nothing awaited (what a
real board would sleep through), the skew jumps by the whole wait at once. When it awaits an
answer (a WELCOME, an ACK), it waits in real time, but at most _AWAKE_REAL_MS: a gateway on
loopback answers within milliseconds, so the rest of a timeout passes at once too (all of it
while the simulated access point is down). A 14-hour night then takes seconds, and every
deadline of the firmware is kept in simulated time.

The energy of being awake is charged to the virtual supply here, where sleep and wake are
known: each radio session (frames sent between two sleeps) and the time spent awake waiting.
"""
from time import ticks_add, ticks_diff, ticks_ms

from micropython import const

from .clock import SoftClock
from .cell import ESP_ACTIVE_W, EXTRA_EVENT_J, REPORT_J

_AWAKE_REAL_MS = const(150)  # longest real wait for an answer; then the rest is skipped


# True for the type checker only (device/mypy.ini always_true): MicroPython folds `if 0:` away.
_TYPES = const(0)
if _TYPES:
    from typing import Any


class Warp(SoftClock):
    link: Any  # set by the virtual board: virtual.SimLink
    supply: Any  # virtual.Sensors

    def __init__(self):
        self._skew = 0
        SoftClock.__init__(self, self.now)
        self.link = None  # the board's link (virtual.SimLink): its frames are counted
        self.supply = None  # virtual.Sensors: what the radio and the awake time cost
        self._sent = 0  # link.sent at the last sleep
        self.slept_ms = 0  # simulated time skipped while asleep
        self.jumps = 0

    def now(self):
        return ticks_add(ticks_ms(), self._skew)

    def skip(self, ms):
        """Let ms of simulated time pass at once (a radar window, a sleep)."""
        self._skew += ms

    def wait(self, poller, ms, idle):
        if ms <= 0:
            for _ in poller.ipoll(0):
                return True
            return False
        if idle:
            for _ in poller.ipoll(0):
                return True
            n = self.link.sent - self._sent
            if n:  # the radio goes to sleep: the session's frames are charged
                self.supply.spend(REPORT_J + EXTRA_EVENT_J * (n - 1))
                self._sent = self.link.sent
            self._skew += ms
            self.slept_ms += ms
            self.jumps += 1
            return False
        if self.link.down():
            # the access point is down: whatever was sent went nowhere, nothing will answer
            self._skew += ms
            self.supply.spend(ESP_ACTIVE_W * ms / 1000)
            return False
        t = ticks_ms()
        ready = False
        for _ in poller.ipoll(ms if ms < _AWAKE_REAL_MS else _AWAKE_REAL_MS):
            ready = True
        waited = ticks_diff(ticks_ms(), t)
        if not ready and waited < ms:
            self._skew += ms - waited  # nothing came: the rest of the timeout passes at once
            waited = ms
        self.supply.spend(ESP_ACTIVE_W * waited / 1000)
        return ready
