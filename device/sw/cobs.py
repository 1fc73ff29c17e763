"""COBS stream framing for byte links (spec section 6): encode, and a bounded incremental decoder.

Runs on MicroPython and CPython. No I/O: bytes in, frames and error reasons out.
"""
try:
    from micropython import const
except ImportError:  # CPython: const() is only a compiler hint
    def const(x):
        return x

MAX_FRAME_SIZE = const(1232)  # largest frame (spec section 1): never fragmented over IPv6 UDP
MAX_STREAM_FRAME = const(1237)  # COBS of MAX_FRAME_SIZE (1 code byte per 254), no delimiter
_RUN = const(254)  # longest run of non-zero bytes one code byte describes
_FULL = const(0xFF)  # code of a full run: no implied zero follows it

# Reasons shared with ProtoError.reason (spec section 8)
COBS = "cobs"
OVERFLOW = "overflow"


def encoded_len(n):
    """Worst-case COBS length of n bytes, delimiter excluded."""
    return n + (n + _RUN - 1) // _RUN if n else 1


def encode(frame):
    """COBS(frame) without the trailing 0x00 delimiter."""
    n = len(frame)
    out = bytearray(encoded_len(n))
    code_at = 0  # where the pending code byte goes
    o = 1
    code = 1
    for i in range(n):
        b = frame[i]
        if b:
            out[o] = b
            o += 1
            code += 1
            if code == _FULL and i + 1 < n:
                # full run in the middle: close it; no zero is implied by 0xFF
                out[code_at] = code
                code_at = o
                o += 1
                code = 1
        else:
            out[code_at] = code
            code_at = o
            o += 1
            code = 1
    out[code_at] = code
    return bytes(out[:o]) if o != len(out) else bytes(out)


def decode(data):
    """Decode one COBS block (no delimiter); None if a code points past the end."""
    buf = bytearray(data)
    n = _decode_in_place(buf, len(buf))
    if n < 0:
        return None
    return bytes(buf[:n])


class StreamDecoder:
    """Incremental decoder holding at most MAX_STREAM_FRAME bytes.

    feed() returns a list of (frame, None) and (None, reason) tuples in stream order; reasons are
    "cobs" (bad code, block dropped) and "overflow" (too long, rest discarded to the next 0x00).
    """

    def __init__(self):
        # preallocated once: the decoder never grows, whatever the line delivers
        self._buf = bytearray(MAX_STREAM_FRAME)
        self._n = 0
        self._skipping = False  # after an overflow, until the next delimiter

    def reset(self):
        """Drop anything held (e.g. after the link was reopened)."""
        self._n = 0
        self._skipping = False

    def feed(self, data):
        """Consume bytes; return the completed outputs (often an empty list)."""
        out = []
        buf = self._buf
        for b in data:
            if b == 0:
                self._end_block(out)
            elif self._skipping:
                continue
            elif self._n == MAX_STREAM_FRAME:
                # reported once, when it happens; the frame is lost either way
                self._n = 0
                self._skipping = True
                out.append((None, OVERFLOW))
            else:
                buf[self._n] = b
                self._n += 1
        return out

    def _end_block(self, out):
        n = self._n
        self._n = 0
        if self._skipping:
            self._skipping = False
            return
        if n == 0:
            return  # idle fill between frames
        m = _decode_in_place(self._buf, n)
        if m < 0:
            out.append((None, COBS))
        else:
            out.append((bytes(self._buf[:m]), None))


def _decode_in_place(buf, n):
    """Decode buf[:n] into buf[0:]; return the decoded length or -1 (output never overtakes input)."""
    i = 0
    o = 0
    while i < n:
        code = buf[i]
        if code == 0 or i + code > n:
            return -1
        i += 1
        for _ in range(code - 1):
            buf[o] = buf[i]
            o += 1
            i += 1
        if code != _FULL and i < n:
            buf[o] = 0
            o += 1
    return o
