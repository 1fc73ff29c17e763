"""COBS stream framing for byte links (spec section 6): encode, and a bounded incremental decoder.

Runs on MicroPython and CPython. No I/O: bytes in, frames and error reasons out.
"""
try:
    from micropython import const
except ImportError:  # CPython: const() is only a compiler hint
    def const(x):  # type: ignore[misc]  # the stub's generic signature, same behaviour
        return x

# Same values as in proto.py; repeated so that this module imports on its own.
MAX_FRAME_SIZE = const(1232)  # largest frame (spec section 1): never fragmented over IPv6 UDP
MAX_STREAM_FRAME = const(1237)  # COBS of MAX_FRAME_SIZE (1 code byte per 254), no delimiter
_RUN = const(254)  # longest run of non-zero bytes one code byte describes
_FULL = const(0xFF)  # code of a full run: no implied zero follows it

# Reasons shared with ProtoError.reason (spec section 8)
COBS = "cobs"
OVERFLOW = "overflow"


def encoded_len(n):
    """Largest length of COBS(frame) || 0x00 for an n-byte frame (zero bytes cost nothing)."""
    return n + n // _RUN + 2


def encode(frame):
    """COBS(frame) || 0x00, ready for the wire."""
    out = bytearray(encoded_len(len(frame)))
    n = encode_into(frame, out)
    return bytes(memoryview(out)[:n])


def encode_into(frame, out):
    """Write COBS(frame) || 0x00 into out (at least encoded_len(len(frame)) bytes); return
    the length. With one preallocated buffer a sender never allocates per frame.

    A run is closed as soon as it holds 254 bytes, even at the very end (then a final 0x01
    code follows): this keeps the overhead at most 2 + len // 254 bytes (spec section 6).
    """
    code_at = 0  # where the pending code byte goes
    o = 1
    code = 1
    for b in frame:
        if b:
            out[o] = b
            o += 1
            code += 1
        if not b or code == _FULL:
            out[code_at] = code
            code_at = o
            o += 1
            code = 1
    out[code_at] = code
    out[o] = 0  # delimiter
    return o + 1


def decode(data):
    """Decode one COBS block given without its delimiter; None if it is not valid COBS."""
    buf = bytearray(data)
    n = _decode_in_place(buf, len(buf))
    if n < 0:
        return None
    return bytes(memoryview(buf)[:n])


class StreamDecoder:
    """Incremental decoder holding at most MAX_STREAM_FRAME bytes.

    feed() returns a list of (frame, None) and (None, reason) tuples in stream order; reasons are
    "cobs" (bad code, block dropped) and "overflow" (too long, rest discarded to the next 0x00).
    cap: a receiver that acts on shorter frames only may hold less (the device's serial link).
    """

    def __init__(self, cap=MAX_STREAM_FRAME):
        # preallocated once: the decoder never grows, whatever the line delivers
        self._cap = cap
        self._buf = bytearray(cap)
        self._view = memoryview(self._buf)  # frames leave as one copy of a slice of it
        self._n = 0
        self._skipping = False  # after an overflow, until the next delimiter

    def reset(self):
        """Drop anything held (e.g. after the link was reopened)."""
        self._n = 0
        self._skipping = False

    def feed(self, data):
        """Consume bytes; return the completed outputs (often an empty list)."""
        out = []  # type: list[tuple[bytes | None, str | None]]
        buf = self._buf
        for b in data:
            if b == 0:
                self._end_block(out)
            elif self._skipping:
                continue
            elif self._n == self._cap:
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
            out.append((bytes(self._view[:m]), None))


def _decode_in_place(buf, n):
    """Decode buf[:n] into buf itself; the decoded length, or -1 if a code points past the end.

    In place is safe: the output never overtakes the input.
    """
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
