"""COBS serial link (spec section 6) for LoRa-UART modems, RS-485 and USB: UdpLink's interface.

Frames travel as COBS(frame) || 0x00 over a byte stream: a machine.UART on a board, a tty path
(e.g. one side of a pseudo-terminal) on the unix port. The node uses it unchanged:
open(poller), send(frame) -> bool, recv() -> frame | None, close(), errors.

The tag profile is a property of the device (identity.json tag_len), not of the link: a
LoRa-UART node is provisioned with the lora profile (4-byte tags, every byte is air time), a
USB or RS-485 node may keep std. The codec gets tag_len from the identity either way.
"""
import io
import select

from micropython import const

from .. import cobs

_CHUNK = const(128)  # bytes per read: a UART's rxbuf is 256 by default, a downlink ~20-200
_QUEUE = const(4)  # decoded frames held for the node: a WELCOME + CONFIG_PUSH burst is 2
# Longest COBS block kept: the downlink cap of udp.py (the largest downlink this firmware acts
# on is a 174-byte CONFIG_PUSH) plus COBS overhead. Longer blocks count as overflows; a 1.2 KB
# buffer would not fit the 64 KB node's heap next to the codec.
_RX_CAP = const(258)
_TX_MAX = const(256)  # frames up to this size are encoded into the preallocated buffer
_MP_STREAM_POLL = const(3)  # ioctl request select.poll makes (py/stream.h)
_VTIME = const(5)  # c_cc indices on Linux (termios.h); MicroPython's termios has no names
_VMIN = const(6)


class SerialLink:
    """Byte-stream link to the gateway; `port` is a UART-like object (readinto / write, never
    blocking: timeout=0) or a tty path opened in open()."""

    def __init__(self, port):
        self._port = port
        self._stream = None
        self._file = None  # the file open() opened (closed by close()), else None
        self._dec = cobs.StreamDecoder(_RX_CAP)  # preallocated once
        self._rx = bytearray(_CHUNK)
        self._rxv = memoryview(self._rx)
        self._tx = bytearray(cobs.encoded_len(_TX_MAX))
        self._txv = memoryview(self._tx)
        self._q = []  # type: list[bytes]
        self._ready = _Ready()
        self._poller = None
        self._armed = False  # _ready registered with the poller
        self._broken = False  # the last write was cut: start the next frame with a delimiter
        self.errors = 0  # refused or cut writes, read errors, bad blocks
        self.cobs_errors = 0  # blocks that were not valid COBS (line noise)
        self.overflows = 0  # blocks longer than _RX_CAP (dropped whole)
        self.dropped = 0  # frames decoded while _QUEUE were already waiting

    def open(self, poller):
        """Open the port (a tty path: raw, non-blocking reads) and register it for POLLIN."""
        port = self._port
        if isinstance(port, str):
            try:
                f = open(port, "r+b")
            except OSError as e:
                raise OSError("cannot open serial port %s (%s)" % (port, e))
            _raw_tty(f)
            self._file = f
            port = f
        self._stream = port
        self._poller = poller
        self._dec.reset()
        poller.register(port, select.POLLIN)

    def close(self):
        """Unregister and close what open() opened (a UART stays the board's)."""
        if self._poller is not None:
            self._disarm()
            self._poller.unregister(self._stream)
            self._poller = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def send(self, frame):
        """Write COBS(frame) || 0x00; False if the port refused or cut it (the protocol
        retries, not us)."""
        n = len(frame)
        if n <= _TX_MAX:
            out = self._txv[:cobs.encode_into(frame, self._tx)]
        else:
            out = cobs.encode(frame)  # rare (thumbnails): one allocation
        try:
            if self._broken:
                # the peer holds the cut frame's head: end it, so this frame stands alone
                self._stream.write(b"\x00")  # type: ignore[union-attr]  # open() ran
                self._broken = False
            done = self._stream.write(out)  # type: ignore[union-attr]  # open() ran
        except OSError:
            self.errors += 1
            self._broken = True
            return False
        if done != len(out):
            # UART with a full TX buffer (None or a short count): the frame is lost
            self.errors += 1
            self._broken = True
            return False
        return True

    def recv(self):
        """The next decoded frame (maybe garbage that fails its tag later), or None."""
        q = self._q
        if not q:
            self._read()
        if not q:
            self._disarm()
            return None
        frame = q.pop(0)
        if q:
            self._arm()  # the node calls recv() once per poll event: wake it for the rest
        else:
            self._disarm()
        return frame

    # --- private ----------------------------------------------------------------------------

    def _read(self):
        try:
            n = self._stream.readinto(self._rx)  # type: ignore[union-attr]  # open() ran
        except OSError:
            # EIO: the other end of a pty went away; a UART does not raise here
            self.errors += 1
            return
        if not n:
            return  # None (UART, nothing there) or 0 (tty with VMIN 0)
        q = self._q
        for frame, reason in self._dec.feed(self._rxv[:n]):
            if frame is not None:
                if len(q) < _QUEUE:
                    q.append(frame)
                else:
                    self.dropped += 1
            else:
                self.errors += 1
                if reason == cobs.OVERFLOW:
                    self.overflows += 1
                else:
                    self.cobs_errors += 1

    def _arm(self):
        if not self._armed and self._poller is not None:
            self._poller.register(self._ready, select.POLLIN)
            self._armed = True

    def _disarm(self):
        if self._armed and self._poller is not None:
            self._poller.unregister(self._ready)
            self._armed = False


class _Ready(io.IOBase):
    """Always readable: registered with the node's poller only while decoded frames wait, so
    its poll returns at once (registered for good it would make the unix port's poll wake
    every millisecond)."""

    def ioctl(self, req, arg):
        if req == _MP_STREAM_POLL:
            return arg & select.POLLIN
        return -1


def _raw_tty(f):
    """Raw mode, and reads that return what is there (VMIN 0, VTIME 0) instead of blocking:
    the unix port's read of a tty loops until its buffer is full otherwise."""
    # unix port only (a board passes a UART): the board ports' stub sets have no termios
    import termios  # type: ignore[import-not-found, unused-ignore]

    fd = f.fileno()
    termios.setraw(fd)
    attr = termios.tcgetattr(fd)
    cc = attr[6]
    cc[_VTIME] = 0
    cc[_VMIN] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attr)

