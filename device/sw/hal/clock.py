"""Wall clock kept from ticks_ms and set from the gateway's WELCOME (the virtual RTC).

Seconds and milliseconds are kept apart so every value stays a small int on 32-bit boards
(unix time in ms needs 41 bits). A board with a hardware RTC can set that from `set()` too.
"""
from time import ticks_diff, ticks_ms


class SoftClock:
    def __init__(self):
        self.synced = False
        self._s = 0  # unix time at tick _t (1970 + uptime until the first WELCOME)
        self._ms = 0
        self._t = ticks_ms()

    def set(self, unix_s, unix_ms):
        """Take the gateway time (WELCOME); the LAN delay (a few ms) is not corrected."""
        self._s = unix_s
        self._ms = unix_ms
        self._t = ticks_ms()
        self.synced = True

    def at(self, ticks):
        """(unix_s, ms) of a ticks_ms() value from up to a few days before or after now."""
        # Move the reference tick forward on every read: ticks_ms wraps (2**30 ms on the unix
        # port, less on some boards) and ticks_diff is only valid within half a period.
        t = ticks_ms()
        ms = self._ms + ticks_diff(t, self._t)
        self._s += ms // 1000
        self._ms = ms % 1000
        self._t = t
        ms = self._ms + ticks_diff(ticks, t)
        return self._s + ms // 1000, ms % 1000  # floor division: right for past ticks too
