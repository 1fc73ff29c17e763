"""HLK-LD2410 24 GHz presence radar on a UART (256000 8N1): the PIR's second opinion.

Protocol (Hi-Link LD2410 serial communication protocol V1.02), all integers little-endian:

    command / ACK  FD FC FB FA | len u16 | command word u16 | value ...       | 04 03 02 01
                   an ACK carries command | 0x0100 and a u16 status (0 = success) first
    report         F4 F3 F2 F1 | len u16 | type (1 engineering, 2 basic) AA   | F8 F7 F6 F5
                   state u8, moving cm u16, moving energy u8, static cm u16, static energy
                   u8, detection cm u16, [engineering: max moving gate N, max static gate M,
                   N+1 moving gate energies, M+1 static gate energies, extra bytes], 55 00

Commands are only accepted in configuration mode (0x00FF ... 0x00FE); the radar does not
report while in it. The parser is incremental and bounded: it takes bytes in any split, skips
garbage, and after a bad length or tail it looks for the next header inside the bytes it
already has, so a frame that was cut short does not take the next one with it.

The radar draws ~0.4 W: on a solar node it is powered (en_pin) only for a confirmation window
after a PIR trigger (docs/energy.md).
"""
from time import sleep_ms, ticks_add, ticks_diff, ticks_ms

from micropython import const

_MAX_LEN = const(64)  # largest body we act on: the engineering report (35 bytes); longer = noise
_BUF = const(74)  # header 4 + length 2 + body _MAX_LEN + tail 4
_MAX_GATES = const(8)  # gates 0..8 of 0.75 m: the LD2410 reports at most 9 per kind
_RX_CHUNK = const(64)
_MAX_READS = const(16)  # per poll(): a babbling UART cannot keep the node in here
_POLL_MS = const(20)  # ~2 reports arrive per 100 ms; the UART buffer holds far more
_ACK_MS = const(300)  # the radar answers a command within ~50 ms
_SILENT = const(50)  # confidence when the radar sent nothing: the PIR alone decides (fail open)

CMD_CONFIG_ON = const(0x00FF)
CMD_CONFIG_OFF = const(0x00FE)
CMD_ENGINEERING_ON = const(0x0062)
CMD_ENGINEERING_OFF = const(0x0063)
CMD_FIRMWARE = const(0x00A0)

# target state
NONE = const(0)
MOVING = const(1)
STATIC = const(2)
BOTH = const(3)

_HDR_REPORT = b"\xf4\xf3\xf2\xf1"
_TAIL_REPORT = b"\xf8\xf7\xf6\xf5"
_HDR_CMD = b"\xfd\xfc\xfb\xfa"
_TAIL_CMD = b"\x04\x03\x02\x01"


class Parser:
    """Incremental LD2410 frame parser; results in attributes, counters only grow.

    Report: state, move_cm, move_energy, still_cm, still_energy, detect_cm, engineering,
    move_gates / still_gates (engineering: gate energies, n_move / n_still valid entries),
    peak (largest target energy since the caller last set it to 0), reports.
    Command or ACK: cmd (word), cmd_data[:cmd_len] (what follows the word), cmds.
    Errors: dropped (bytes skipped while looking for a header), bad (framed but malformed).
    """

    def __init__(self):
        self._b = bytearray(_BUF)
        self._n = 0
        self.reports = self.cmds = self.dropped = self.bad = 0
        self.state = self.move_cm = self.move_energy = 0
        self.still_cm = self.still_energy = self.detect_cm = 0
        self.engineering = False
        self.move_gates = bytearray(_MAX_GATES + 1)
        self.still_gates = bytearray(_MAX_GATES + 1)
        self.n_move = self.n_still = 0
        self.peak = 0
        self.cmd = 0
        self.cmd_data = bytearray(_MAX_LEN)
        self.cmd_len = 0

    def feed(self, data, n=-1):
        """Take the first n bytes of data (all if n < 0)."""
        if n < 0:
            n = len(data)
        for i in range(n):
            self._push(data[i])

    def _push(self, x):
        self._b[self._n] = x
        self._n += 1
        while self._n:  # after a skip, what is left may hold (or be) the next frame
            r = self._check()
            if r == 0:
                return
            if r > 0:
                self._take(r)
                self._n = 0
                return
            self._skip()

    def _check(self):
        """0: a frame may still come, -1: not a frame, else the length of a complete frame."""
        b = self._b
        n = self._n
        if b[0] == 0xF4:
            hdr = _HDR_REPORT
        elif b[0] == 0xFD:
            hdr = _HDR_CMD
        else:
            return -1
        for i in range(1, min(n, 4)):
            if b[i] != hdr[i]:
                return -1
        if n < 6:
            return 0
        ln = b[4] | (b[5] << 8)
        if ln < 2 or ln > _MAX_LEN:
            return -1
        if n < ln + 10:
            return 0
        tail = _TAIL_REPORT if hdr is _HDR_REPORT else _TAIL_CMD
        for i in range(4):
            if b[6 + ln + i] != tail[i]:
                return -1
        return ln + 10

    def _skip(self):
        """Drop the first byte and everything up to the next possible header start."""
        b = self._b
        n = self._n
        i = 1
        while i < n and b[i] != 0xF4 and b[i] != 0xFD:
            i += 1
        for j in range(n - i):  # in place: no slice objects
            b[j] = b[i + j]
        self._n = n - i
        self.dropped += i

    def _take(self, total):
        b = self._b
        ln = total - 10
        if b[0] == 0xFD:
            self.cmd = b[6] | (b[7] << 8)
            self.cmd_len = ln - 2
            for i in range(ln - 2):
                self.cmd_data[i] = b[8 + i]
            self.cmds += 1
        elif self._report(b, ln):
            self.reports += 1
        else:
            self.bad += 1

    def _report(self, b, ln):
        # body starts at 6: type, AA, 9 bytes of target data, [engineering], 55, 00
        kind = b[6]
        if ln < 13 or b[7] != 0xAA or b[4 + ln] != 0x55 or b[5 + ln] != 0x00:
            return False
        if kind == 1:
            if ln < 17:
                return False
            nm = b[17]
            ns = b[18]
            # the gate energies must fit the body (before 55 00) and our arrays
            if nm > _MAX_GATES or ns > _MAX_GATES or 13 + nm + 1 + ns + 1 > ln - 2:
                return False
            for i in range(nm + 1):
                self.move_gates[i] = b[19 + i]
            for i in range(ns + 1):
                self.still_gates[i] = b[20 + nm + i]
            self.n_move = nm + 1
            self.n_still = ns + 1
        elif kind != 2 or ln != 13:
            return False
        self.engineering = kind == 1
        st = self.state = b[8] & 3
        self.move_cm = b[9] | (b[10] << 8)
        self.move_energy = b[11]
        self.still_cm = b[12] | (b[13] << 8)
        self.still_energy = b[14]
        self.detect_cm = b[15] | (b[16] << 8)
        e = 0
        if st & MOVING:
            e = self.move_energy
        if st & STATIC and self.still_energy > e:
            e = self.still_energy
        if e > self.peak:
            self.peak = e
        return True


class Ld2410:
    """The radar behind the HAL `confirm` role, plus its configuration commands.

    uart: a machine.UART at 256000 baud with timeout=0 (readinto returns at once);
    en_pin: optional output powering the radar (high = on) only during confidence().
    """

    def __init__(self, uart, en_pin=None, window_ms=500, warmup_ms=1000):
        self._uart = uart
        self._en = en_pin
        self.window_ms = window_ms
        self.warmup_ms = warmup_ms  # from power-on to reliable reports (to be measured)
        self.parser = Parser()
        self._rx = bytearray(_RX_CHUNK)
        self._tx = bytearray(_BUF)
        self.silent = 0  # confirmation windows without a single report
        if en_pin is not None:
            en_pin.value(0)

    # --- HAL: confirm ---------------------------------------------------------------------

    def confidence(self):
        """Power the radar for one window; the strongest target energy seen (0..100).

        Blocks for warmup_ms + window_ms (the node's contract allows this one wait: it is the
        radar window). A radar that stays silent counts in `silent` and yields 50: the PIR
        alone decides rather than a dead radar hiding every presence.
        """
        p = self.parser
        if self._en is not None:
            self._en.value(1)
            self._wait(self.warmup_ms)  # power-up reports are not trusted
        try:
            p.peak = 0
            seen = p.reports
            self._wait(self.window_ms)
        finally:
            if self._en is not None:
                self._en.value(0)
        if p.reports == seen:
            self.silent += 1
            return _SILENT
        return p.peak

    # --- reports --------------------------------------------------------------------------

    def poll(self):
        """Parse whatever the UART holds now; the number of new reports."""
        p = self.parser
        before = p.reports
        for _ in range(_MAX_READS):
            n = self._uart.readinto(self._rx)
            if not n:
                break
            p.feed(self._rx, n)
        return p.reports - before

    # --- configuration --------------------------------------------------------------------

    def command(self, cmd, value=b"", timeout_ms=_ACK_MS):
        """Send one command frame and wait for its ACK; the ACK's bytes after the status
        (a memoryview into the parser, valid until the next poll). OSError on a timeout or
        a failure status."""
        n = len(value)
        if n > _MAX_LEN - 2:
            raise ValueError("command value too long")
        t = self._tx
        for i in range(4):
            t[i] = _HDR_CMD[i]
            t[8 + n + i] = _TAIL_CMD[i]
        t[4] = n + 2
        t[5] = 0
        t[6] = cmd & 0xFF
        t[7] = cmd >> 8
        for i in range(n):
            t[8 + i] = value[i]
        self._uart.write(memoryview(t)[:n + 12])
        p = self.parser
        seen = p.cmds
        end = ticks_add(ticks_ms(), timeout_ms)
        while True:
            self.poll()
            if p.cmds != seen and p.cmd == cmd | 0x0100 and p.cmd_len >= 2:
                status = p.cmd_data[0] | (p.cmd_data[1] << 8)
                if status:
                    raise OSError("LD2410 command 0x%04x failed (status %d)" % (cmd, status))
                return memoryview(p.cmd_data)[2:p.cmd_len]
            seen = p.cmds
            if ticks_diff(end, ticks_ms()) <= 0:
                raise OSError("LD2410: no ACK for command 0x%04x" % cmd)
            sleep_ms(5)

    def config_mode(self, on):
        """Enter (True) or leave configuration mode; entering returns the protocol version."""
        if not on:
            self.command(CMD_CONFIG_OFF)
            return 0
        ack = self.command(CMD_CONFIG_ON, b"\x01\x00")
        return ack[0] | (ack[1] << 8) if len(ack) >= 2 else 0

    def firmware(self):
        """Firmware version string as the vendor tool shows it, e.g. "V1.07.22091615"."""
        self.config_mode(True)
        try:
            a = self.command(CMD_FIRMWARE)
            if len(a) < 8:
                raise OSError("LD2410: short firmware ACK")
            minor = a[4] | (a[5] << 8) | (a[6] << 16) | (a[7] << 24)
            return "V%d.%02x.%08x" % (a[3], a[2], minor)
        finally:
            self.config_mode(False)

    def set_engineering(self, on):
        """Switch to engineering reports (per-gate energies) or back to basic ones."""
        self.config_mode(True)
        try:
            self.command(CMD_ENGINEERING_ON if on else CMD_ENGINEERING_OFF)
        finally:
            self.config_mode(False)

    def _wait(self, ms):
        end = ticks_add(ticks_ms(), ms)
        while ticks_diff(end, ticks_ms()) > 0:
            self.poll()
            sleep_ms(_POLL_MS)
        self.poll()
