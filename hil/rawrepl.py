"""MicroPython raw REPL over a serial port: run code, write and read files, soft-reset.

Layered like mpremote: timed reads with explicit terminators, then the raw-REPL step (Ctrl-A,
code, Ctrl-D, ``OK<stdout>\\x04<stderr>\\x04>``), then file operations. Every read has a
deadline and a terminator; nothing writes, sleeps and hopes.
"""

from __future__ import annotations

import binascii
import hashlib
import time
from typing import Protocol

BANNER = b"raw REPL; CTRL-B to exit\r\n>"
SOFT_REBOOT = b"soft reboot\r\n"
_CHUNK = 256  # bytes per file-write statement: small enough for a 64 KB heap to parse
_MAX_REPLY = 1 << 20  # a console reply longer than this is not the one we wait for


class RawReplError(RuntimeError):
    """The board did not answer as the raw-REPL protocol says it must."""


class RemoteError(RawReplError):
    """Code run on the board raised; the message is the board's traceback."""


class SerialLike(Protocol):
    """The part of ``serial.Serial`` used here (``serial_for_url`` returns one)."""

    timeout: float | None

    def write(self, data: bytes, /) -> int | None: ...
    def read(self, size: int = 1, /) -> bytes: ...
    def reset_input_buffer(self) -> None: ...


def read_until(port: SerialLike, terminator: bytes, timeout: float,
               limit: int = _MAX_REPLY) -> bytes:
    """Bytes up to and including ``terminator``; RawReplError with what did arrive on timeout.

    Reads one byte at a time so nothing after the terminator is consumed; bounded by the
    deadline and by ``limit`` bytes.
    """
    data = bytearray()
    deadline = time.monotonic() + timeout
    port.timeout = 0.05
    while not data.endswith(terminator):
        if time.monotonic() > deadline:
            tail = bytes(data[-200:])
            raise RawReplError(f"no {terminator!r} within {timeout} s; got {tail!r}")
        if len(data) > limit:
            raise RawReplError(f"no {terminator!r} in {limit} bytes; got {bytes(data[-200:])!r}")
        data += port.read(1)
    return bytes(data)


def _read_exact(port: SerialLike, n: int, timeout: float) -> bytes:
    data = bytearray()
    deadline = time.monotonic() + timeout
    port.timeout = 0.05
    while len(data) < n:
        if time.monotonic() > deadline:
            raise RawReplError(f"{n} bytes not received within {timeout} s; got {bytes(data)!r}")
        data += port.read(n - len(data))
    return bytes(data)


class RawRepl:
    """One board's raw REPL; ``enter()`` first, ``leave()`` back to the friendly REPL."""

    def __init__(self, port: SerialLike, *, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self.paste: bool | None = None  # raw-paste support, learnt on first use

    def enter(self) -> None:
        """Interrupt whatever runs (main.py too) and switch to the raw REPL."""
        self.port.write(b"\r\x03\x03")  # Ctrl-C twice: stop a running program
        self.port.write(b"\r\x01")  # Ctrl-A: raw REPL (re-entering prints the banner again)
        read_until(self.port, BANNER, self.timeout)
        self.port.reset_input_buffer()

    def leave(self) -> None:
        """Back to the friendly REPL (Ctrl-B), as main.py only runs after a friendly-mode reset."""
        self.port.write(b"\x02")
        read_until(self.port, b">>> ", self.timeout)

    def soft_reset(self) -> bytes:
        """Soft-reset from the friendly REPL so boot.py and main.py run; returns the echo.

        In raw-REPL mode a soft reset does not run main.py, hence ``leave()`` first. (Not testable
        on the unix port: there Ctrl-D ends the process.)
        """
        self.leave()
        self.port.write(b"\x04")
        return read_until(self.port, SOFT_REBOOT, self.timeout)

    def exec(self, code: str | bytes, timeout: float | None = None) -> bytes:
        """Run ``code``; its stdout, or RemoteError with the board's traceback.

        Uses raw-paste mode (flow-controlled by the board) when the board supports it, so a
        board on a plain UART without flow control does not drop code bytes.
        """
        raw = code.encode() if isinstance(code, str) else code
        limit = self.timeout if timeout is None else timeout
        if self.paste is not False and self._paste_write(raw, limit):
            pass
        else:
            self.port.write(raw)
            self.port.write(b"\x04")
            ok = read_until(self.port, b"OK", limit)
            if ok != b"OK":  # the echo of a raw REPL is empty: anything else is an error
                raise RawReplError(f"expected OK after the code, got {ok[-200:]!r}")
        out = read_until(self.port, b"\x04", limit)[:-1]
        err = read_until(self.port, b"\x04", limit)[:-1]
        read_until(self.port, b">", limit)
        if err:
            raise RemoteError(err.decode(errors="replace").strip())
        return out

    def _paste_write(self, raw: bytes, limit: float) -> bool:
        """Send ``raw`` in raw-paste mode; False (nothing sent) if the board lacks it."""
        self.port.write(b"\x05A\x01")
        answer = _read_exact(self.port, 2, limit)
        if answer == b"R\x00":  # understood, not supported: still in the raw REPL
            self.paste = False
            return False
        if answer != b"R\x01":  # an old board echoes the banner ("raw REPL; ...>") instead
            read_until(self.port, BANNER[2:], limit)
            self.paste = False
            return False
        self.paste = True
        increment = int.from_bytes(_read_exact(self.port, 2, limit), "little")
        window, sent = increment, 0
        while sent < len(raw):
            while window == 0 or self._pending():
                flag = _read_exact(self.port, 1, limit)
                if flag == b"\x01":
                    window += increment
                elif flag == b"\x04":  # the board aborted (e.g. out of memory while compiling)
                    self.port.write(b"\x04")
                    raise RawReplError("board ended the raw paste early")
                else:
                    raise RawReplError(f"unexpected {flag!r} during raw paste")
            chunk = raw[sent:sent + window]
            self.port.write(chunk)
            sent += len(chunk)
            window -= len(chunk)
        self.port.write(b"\x04")
        read_until(self.port, b"\x04", limit)  # the board has compiled it and starts running
        return True

    def _pending(self) -> bool:
        waiting = getattr(self.port, "in_waiting", 0)
        return isinstance(waiting, int) and waiting > 0

    def eval_str(self, expr: str) -> str:
        """``print(expr)`` on the board, stripped."""
        return self.exec(f"print({expr})").decode().strip()

    def mkdir(self, path: str) -> None:
        """Create a directory; an existing one is fine (EEXIST = 17)."""
        self.exec(f"import os\ntry:\n os.mkdir({path!r})\nexcept OSError as e:\n"
                  " if e.args[0] != 17: raise\n")

    def write_file(self, path: str, data: bytes) -> None:
        """Write ``path`` on the board, then check size and SHA-256 of what landed there."""
        tmp = path + ".part"
        self.exec(f"_f = open({tmp!r}, 'wb')\n_w = _f.write")
        for i in range(0, len(data), _CHUNK):
            self.exec(f"_w({bytes(data[i:i + _CHUNK])!r})")
        self.exec(f"_f.close()\ndel _f, _w\nimport os\nos.rename({tmp!r}, {path!r})")
        got = self.sha256(path)
        want = hashlib.sha256(data).hexdigest()
        if got != want:
            raise RawReplError(f"{path}: written {want[:16]}..., board holds {got[:16]}...")

    def read_file(self, path: str) -> bytes:
        """The file's bytes, sent hex-encoded (the console may not be 8-bit clean)."""
        out = self.exec(
            f"import binascii\nwith open({path!r}, 'rb') as _f:\n while True:\n"
            f"  _b = _f.read({_CHUNK})\n  if not _b: break\n"
            "  print(binascii.hexlify(_b).decode())\n")
        return binascii.unhexlify(b"".join(out.split()))

    def sha256(self, path: str) -> str:
        """Hex SHA-256 of a file, computed on the board."""
        return self.exec(
            f"import hashlib, binascii\n_h = hashlib.sha256()\nwith open({path!r}, 'rb') as _f:\n"
            f" while True:\n  _b = _f.read({_CHUNK})\n  if not _b: break\n  _h.update(_b)\n"
            "print(binascii.hexlify(_h.digest()).decode())\n").decode().strip()
