"""Time and sleep: the board's tick source, the WELCOME-set wall clock, and how the node waits.

SoftClock plays the `clock` and `sleep` roles on boards that do not sleep (the real-time
virtual board): ticks from time.ticks_ms, waiting in select.poll. Seconds and milliseconds are
kept apart so every value stays a small int on 32-bit boards (unix time in ms needs 41 bits).
The accelerated virtual clock (hal/warp.py) and the real boards' sleep (hal/sleep.py) build on
it.
"""
from time import ticks_diff, ticks_ms


class SoftClock:
    deep_ms = 0  # shortest wait slept in deep sleep; 0: this board never deep-sleeps

    def __init__(self, now=ticks_ms):
        self.now = now  # the board's ticks in ms: every deadline of the node is in these
        self.synced = False
        self._s = 0  # unix time at tick _t (1970 + uptime until the first WELCOME)
        self._ms = 0
        self._t = now()

    def set(self, unix_s, unix_ms):
        """Take the gateway time (WELCOME; the LAN delay, a few ms, is not corrected); the
        seconds the clock moved, so timestamps taken before can be corrected."""
        was = self.at(self.now())[0]
        self._s = unix_s
        self._ms = unix_ms
        self._t = self.now()
        self.synced = True
        return unix_s - was

    def at(self, ticks):
        """(unix_s, ms) of a tick value from up to a few days before or after now."""
        # Move the reference tick forward on every read: ticks wrap (2**30 ms on the unix
        # port's 32-bit cousins, less on some boards) and ticks_diff is only valid within half
        # a period.
        t = self.now()
        ms = self._ms + ticks_diff(t, self._t)
        self._s += ms // 1000
        self._ms = ms % 1000
        self._t = t
        ms = self._ms + ticks_diff(ticks, t)
        return self._s + ms // 1000, ms % 1000  # floor division: right for past ticks too

    def wait(self, poller, ms, idle):
        """Wait up to ms for the link (idle: nothing is awaited); True if it has data."""
        for _ in poller.ipoll(ms if ms > 0 else 0):
            return True
        return False
