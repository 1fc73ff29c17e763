"""The MLX90640's virtual twin: a thermal recording played back as the sensor delivers frames.

Same interface as the real driver (mlx90640.py): begin(), set_refresh(code), poll() -> subpage
or -1, due_ms(), `cc` (24 x 32 centi-degrees C, row-major), read_cc(), `ended`. The recording
is the format of docs/thermal-recordings.md (`shorewatch sim record` writes one): int16
little-endian centi-degrees, one 1536-byte frame after the other, no header.

Like the real sensor in chess mode, a frame arrives as two subpages, one refresh period apart
(the refresh rate set by set_refresh, times `speed`): poll() returns 0, then 1, and after
subpage 1 `cc` holds a whole frame. The simulator already rendered each subpage at its own read
time (tearing) and the power-up frames at the start of the recording, so after subpage 1 `cc`
holds what a real sensor's would. The frame is read straight into `cc` at subpage 1 (readinto:
no allocation, no second buffer), so between subpage 0 and 1 `cc` still holds the previous
frame where a real sensor has half of the new one; the application only reads whole frames.

Differences from a real sensor, on purpose: every frame of the recording is delivered, even to
an application that polls late (a real sensor overwrites its RAM; here the next subpage is due
a period after the late one, without a burst), so a run sees the same frames on a loaded
machine; and the recording may end (`ended`), or loop back to frame `loop_from` (one after the
recording's power-up frames), and `frames` may end it after that many frames (a night's worth
of frames from a short recording played in a loop).

Few attribute names on purpose: each new name is interned for good, in the heap on the unix
port (the camera board's 128 KB).
"""
import os
from array import array
from time import ticks_add, ticks_diff, ticks_us

from micropython import const

_PIXELS = const(768)
_FRAME_BYTES = const(1536)
_NOT_MEASURED = const(-32768)


class VirtualMlx90640:
    """Plays `path` back at `speed` x real time; at its end loops to `loop_from`, or stops."""

    def __init__(self, path, speed=1.0, loop=True, loop_from=0, frames=0):
        self.path = path
        self.speed = speed
        self.loop = loop
        self.loop_from = loop_from
        self.limit = frames  # frames to deliver in all (0: no limit), then the source ends
        self.cc = cc = array("h", range(_PIXELS))  # range: no 1.5 KB bytes() left as a hole
        for i in range(_PIXELS):
            cc[i] = _NOT_MEASURED
        self._f = None
        self.frames = 0  # frames read from the recording
        self.subpage = -1
        self.ended = False
        self._due = ticks_us()
        self.set_refresh(2)  # 2 Hz: the sensor's power-on default

    def begin(self):
        """Open the recording (OSError if it is missing or not whole frames)."""
        if self._f is not None:
            self._f.close()
        try:
            size = os.stat(self.path)[6]
        except OSError:
            raise OSError("%s cannot be read" % self.path)
        if size % _FRAME_BYTES or size // _FRAME_BYTES <= self.loop_from:
            raise OSError("%s: %d bytes is not a whole number of %d-byte frames past frame %d"
                          % (self.path, size, _FRAME_BYTES, self.loop_from))
        self._f = open(self.path, "rb")
        self.subpage = -1
        self.ended = False
        self._due = ticks_us()

    def set_refresh(self, code):
        """Refresh rate code 0..7: 0.5 * 2**code subpages per second (the driver's RATES_X10)."""
        self._period_us = int(2000000 / (1 << (code & 7)) / self.speed)

    def poll(self):
        """The next subpage if it is due (after subpage 1, `cc` holds the frame): 0 or 1;
        else -1."""
        if self._f is None:
            return -1
        now = ticks_us()
        late = ticks_diff(now, self._due)
        if late < 0:
            return -1
        sub = 1 if self.subpage == 0 else 0
        if sub == 1:
            if not self._next_frame():
                return -1
            self.frames += 1
        self.subpage = sub
        # behind by more than a period (a stall): the next one is due a period from now
        self._due = ticks_add(now if late > self._period_us else self._due, self._period_us)
        return sub

    def due_ms(self):
        """ms until the next subpage (0: due now); a minute once the recording ended."""
        if self._f is None:
            return 60000
        # rounded down: the last fraction of a ms is spent polling, so a sped-up recording
        # (periods under a ms) keeps its pace
        left = ticks_diff(self._due, ticks_us())
        return left // 1000 if left > 0 else 0

    def _next_frame(self):
        """The next frame of the recording into `cc`; False once the source ended."""
        f = self._f
        if f is None:
            return False
        if not self.limit or self.frames < self.limit:
            if f.readinto(self.cc) == _FRAME_BYTES:
                return True
            if self.loop:  # at the end (begin() checked there is no partial frame)
                f.seek(self.loop_from * _FRAME_BYTES)
                f.readinto(self.cc)
                return True
        self.ended = True
        f.close()
        self._f = None
        return False

    def read_cc(self):
        """HAL thermo role: the warmest pixel, centi-degrees C (-32768 before any frame)."""
        peak = _NOT_MEASURED
        for v in self.cc:
            if v > peak:
                peak = v
        return peak
