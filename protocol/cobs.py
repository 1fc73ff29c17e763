"""COBS stream framing with a 0x00 delimiter and a bounded, resynchronising decoder."""

from __future__ import annotations

from .errors import CobsError, StreamError, StreamOverflow
from .limits import MAX_STREAM_FRAME


def cobs_encode(frame: bytes) -> bytes:
    """``COBS(frame) || 0x00``: 2 bytes of overhead below 254 bytes, one more per 254 after."""
    out = bytearray(b"\0")
    code_at = 0
    code = 1
    for byte in frame:
        if byte:
            out.append(byte)
            code += 1
        if not byte or code == 0xFF:
            out[code_at] = code
            code_at = len(out)
            out.append(0)
            code = 1
    out[code_at] = code
    out.append(0)
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Decode one COBS-encoded frame (without its delimiter)."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise CobsError(f"zero byte at offset {i}")
        end = i + code
        if end > n:
            raise CobsError(f"block at offset {i} runs {end - n} bytes past the end")
        out += data[i + 1 : end]
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    return bytes(out)


class StreamDecoder:
    """Incremental decoder: feed bytes, get frames and typed errors; survives any garbage."""

    __slots__ = ("_buf", "_discarding")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | StreamError]:
        out: list[bytes | StreamError] = []
        start = 0
        while start <= len(data):
            zero = data.find(b"\0", start)
            chunk = data[start:] if zero < 0 else data[start:zero]
            self._take(chunk, out)
            if zero < 0:
                break
            self._end_frame(out)
            start = zero + 1
        return out

    def _take(self, chunk: bytes, out: list[bytes | StreamError]) -> None:
        if self._discarding or not chunk:
            return
        if len(self._buf) + len(chunk) > MAX_STREAM_FRAME:
            self._buf.clear()
            self._discarding = True
            out.append(StreamOverflow(MAX_STREAM_FRAME))
            return
        self._buf += chunk

    def _end_frame(self, out: list[bytes | StreamError]) -> None:
        if self._discarding:
            self._discarding = False
            return
        if not self._buf:
            return
        data = bytes(self._buf)
        self._buf.clear()
        try:
            out.append(cobs_decode(data))
        except CobsError as exc:
            out.append(exc)

    @property
    def pending(self) -> int:
        """Bytes held while waiting for a delimiter."""
        return len(self._buf)
