"""Virtual LD2410: a UART stand-in that speaks the radar's protocol from a scripted presence.

The real driver (sw/hal/ld2410.py) runs on top of it unchanged, so the unix port exercises the
same parser and command code as a board. Imported only by boards (and tests) that use it.

    script: ((start_ms, end_ms, distance_cm, energy, moving), ...), times from construction
"""
from time import ticks_diff, ticks_ms

from micropython import const

from .ld2410 import (CMD_CONFIG_OFF, CMD_CONFIG_ON, CMD_ENGINEERING_OFF, CMD_ENGINEERING_ON,
                     CMD_FIRMWARE, Parser)

_OUT_MAX = const(256)  # like a UART receive buffer: when full, the oldest bytes are lost
_CATCH_UP = const(4)  # reports generated at most per read after a long pause
_GATE_CM = const(75)  # default gate resolution: 0.75 m
_NOISE = const(4)  # gate energy where nothing is
_FIRMWARE = b"\x00\x01\x07\x01\x15\x16\x09\x22"  # type 0x0100, V1.07.22091615


class VirtualLd2410:
    """write() takes command frames and queues ACKs; readinto() delivers queued bytes plus one
    report per period_ms of the scripted presence (none while in configuration mode)."""

    def __init__(self, script, period_ms=100, now=ticks_ms):
        self._script = script
        self._period = period_ms
        self._now = now
        self._t0 = now()
        self._next = 0  # ms since t0 of the next report
        self._out = bytearray(_OUT_MAX)
        self._n = 0
        self._cmd = Parser()
        self._config = False
        self.engineering = False
        self.overruns = 0  # bytes lost because nobody read them in time
        self.written = 0

    # --- UART surface ---------------------------------------------------------------------

    def write(self, buf):
        self.written += len(buf)
        seen = self._cmd.cmds
        self._cmd.feed(buf)
        if self._cmd.cmds != seen:
            self._answer(self._cmd.cmd, self._cmd.cmd_data, self._cmd.cmd_len)
        return len(buf)

    def any(self):
        self._generate()
        return self._n

    def readinto(self, buf):
        self._generate()
        k = min(len(buf), self._n)
        if not k:
            return None  # like machine.UART with timeout=0 and nothing received
        out = self._out
        for i in range(k):
            buf[i] = out[i]
        for i in range(self._n - k):
            out[i] = out[k + i]
        self._n -= k
        return k

    # --- radar behaviour ------------------------------------------------------------------

    def target(self, t_ms):
        """(state, distance_cm, energy) of the script at t_ms after construction."""
        state = dist = energy = 0
        for start, end, d, e, moving in self._script:
            if start <= t_ms < end:
                state |= 1 if moving else 2
                if e > energy:
                    energy = e
                    dist = d
        return state, dist, energy

    def _generate(self):
        t = ticks_diff(self._now(), self._t0)
        if t < self._next:
            return
        missed = (t - self._next) // self._period
        if missed >= _CATCH_UP:  # nobody listened (radar unpowered or reader asleep)
            self._next += (missed - _CATCH_UP + 1) * self._period
        while self._next <= t:
            if not self._config:
                self._report(self._next)
            self._next += self._period

    def _report(self, t):
        state, dist, energy = self.target(t)
        mv_cm = dist if state & 1 else 0
        mv_e = energy if state & 1 else 0
        st_cm = dist if state & 2 else 0
        st_e = energy if state & 2 else 0
        body = bytearray(b"\x02\xaa") if not self.engineering else bytearray(b"\x01\xaa")
        body += bytes((state, mv_cm & 0xFF, mv_cm >> 8, mv_e, st_cm & 0xFF, st_cm >> 8, st_e,
                       dist & 0xFF, dist >> 8))
        if self.engineering:
            gate = dist // _GATE_CM if state else -1
            body += b"\x08\x08"
            for kind in (1, 2):
                for g in range(9):
                    body.append(energy if g == gate and state & kind else _NOISE)
            body += b"\x00\x00"  # light sensor, OUT pin (newer firmware appends them)
        body += b"\x55\x00"
        self._emit(b"\xf4\xf3\xf2\xf1", body, b"\xf8\xf7\xf6\xf5")

    def _answer(self, cmd, data, n):
        ok = True
        value = b""
        if cmd == CMD_CONFIG_ON:
            self._config = True
            value = b"\x01\x00\x40\x00"  # protocol version 1, buffer size 64
        elif cmd == CMD_CONFIG_OFF:
            self._config = False
        elif not self._config:
            return  # outside configuration mode the radar does not answer (assumed: the
            # protocol manual only says commands need it); the driver times out
        elif cmd == CMD_FIRMWARE:
            value = _FIRMWARE
        elif cmd in (CMD_ENGINEERING_ON, CMD_ENGINEERING_OFF):
            self.engineering = cmd == CMD_ENGINEERING_ON
        else:
            ok = False
        body = bytearray((cmd & 0xFF, (cmd >> 8) | 1, 0 if ok else 1, 0))
        body += value
        self._emit(b"\xfd\xfc\xfb\xfa", body, b"\x04\x03\x02\x01")

    def _emit(self, hdr, body, tail):
        frame = hdr + bytes((len(body) & 0xFF, len(body) >> 8)) + body + tail
        over = self._n + len(frame) - _OUT_MAX
        if over > 0:  # overrun: the oldest bytes are lost, as in a full UART FIFO
            self.overruns += over
            for i in range(self._n - over):
                self._out[i] = self._out[over + i]
            self._n -= over
        for i in range(len(frame)):
            self._out[self._n + i] = frame[i]
        self._n += len(frame)
