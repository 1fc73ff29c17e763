"""Sleep between wake-ups on a real board: light sleep, or deep sleep with RTC memory.

Plays the `sleep` role (sw/hal/__init__.py) on the node boards; the virtual boards pass time in
SoftClock / Warp instead. The node asks for a wait and says whether anything is awaited:

- awaited (a WELCOME, an ACK): the radio stays up and the wait is a poll of the link, in
  slices of _SLICE_MS, because the PIR's interrupt does not end a poll;
- nothing awaited, at least deep_ms long, on a board with RTC memory: deep sleep. The node
  packs its state (sw/app/retain.py), deep() keeps it in RTC memory with the RTC's time and
  powers down; the PIR pin and the timer wake the chip, which boots again and finds the state
  in retained();
- nothing awaited, shorter, or no deep sleep on this board: light sleep (RAM and state kept;
  WiFi association is not kept by every port: a datagram that arrives then is lost and the
  protocol resends it).

The PIR pin wakes either sleep at its next edge: the level opposite to the one it has now (a
presence in progress wakes the node when it ends). machine and esp32 come from the board (the
unit tests pass stand-ins: tests/device/sleep_runner.py). Not run on hardware yet.
"""
import struct
import time

from micropython import const

_SLICE_MS = const(200)  # an awaited wait looks at the PIR at least this often
_LIGHT_MIN_MS = const(20)  # shorter idle waits are not worth a light sleep
_MAGIC = b"SWK1"
_HEAD = "<4sQH"  # magic, RTC time of the sleep (ms), length of the node's image
_HEAD_SIZE = const(14)


class MachineSleep:
    """machine: the machine module; pir: the board's PinPir (its pin wakes the chip);
    deep_ms: the shortest idle wait slept in deep sleep (0: light sleep only, as on a board
    without RTC memory); esp32: the esp32 module where the port has one (ext0 wake);
    rtc_ms: the RTC's time in ms, which runs on through deep sleep (ticks do not)."""

    def __init__(self, machine, pir, deep_ms=0, esp32=None, rtc_ms=None):
        self._m = machine
        self._pir = pir
        self._rtc_ms = rtc_ms or _rtc_ms
        self.deep_ms = deep_ms
        self._esp32 = esp32
        self.sleeps = 0  # light sleeps taken

    def wait(self, poller, ms, idle):
        """Wait up to ms; True if the link has data."""
        if idle and ms >= _LIGHT_MIN_MS:
            self._wake_on_pir(self._m.SLEEP if hasattr(self._m, "SLEEP") else None)
            self._m.lightsleep(ms)
            self.sleeps += 1
            return False
        for _ in poller.ipoll(max(0, min(ms, _SLICE_MS))):
            return True
        return False

    def deep(self, ms, data):
        """Keep data in RTC memory and deep-sleep ms; the board comes back through a reset."""
        head = struct.pack(_HEAD, _MAGIC, self._rtc_ms(), len(data))
        self._m.RTC().memory(head + data)
        self._wake_on_pir(getattr(self._m, "DEEPSLEEP", None))
        self._m.deepsleep(ms)

    def retained(self):
        """(data, ms slept) kept by deep() if this boot is its wake, else None."""
        m = self._m
        if m.reset_cause() != getattr(m, "DEEPSLEEP_RESET", -1):
            return None
        mem = m.RTC().memory()
        if len(mem) < _HEAD_SIZE:
            return None
        magic, t, n = struct.unpack_from(_HEAD, mem)
        if magic != _MAGIC or len(mem) < _HEAD_SIZE + n:
            return None
        slept = self._rtc_ms() - t
        return bytes(memoryview(mem)[_HEAD_SIZE:_HEAD_SIZE + n]), max(0, slept)

    def _wake_on_pir(self, mode):
        pin = self._pir.pin
        e = self._esp32
        if e is not None and hasattr(e, "wake_on_ext0"):
            # ESP32, ESP32-S3: an RTC pin, at the level opposite to the one it has now (a
            # presence in progress wakes the node when it ends)
            e.wake_on_ext0(pin, 0 if pin.value() else 1)
        elif mode is not None:
            # other ports (ESP32-C3 GPIO wake, RP2): the PIR's interrupt, both edges, as a
            # wake source (its handler keeps only rising edges)
            pin.irq(self._pir.irq, trigger=pin.IRQ_RISING | pin.IRQ_FALLING, wake=mode)


def _rtc_ms():
    # the RTC keeps counting through deep sleep on the ESP32 (time.time_ns)
    return time.time_ns() // 1000000
