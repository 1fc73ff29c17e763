"""Hardware-in-the-loop rig: a gateway process, a real Mosquitto and the board under test.

With ``--port`` (or ``--serial-number``) the board is real: the firmware and its identity are
copied over the raw REPL and the board soft-resets into it. Without, the same scenarios run
against a virtual board (the unix port), and the header says so.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.rig import SITE, Rig, Timeouts
from hil.targets import BOARD_ARCH, HilError, RealTarget, Target, VirtualTarget, resolve_port
from shorewatch.peers import Mosquitto

NO_BOARD = "hil: no board given (--port); running the virtual-board variant"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware in the loop (hil/)")
    group.addoption("--port", default=None,
                    help="serial port of a real board (e.g. /dev/ttyACM0, or a pyserial URL)")
    group.addoption("--serial-number", default=None,
                    help="pick the real board by USB serial number instead of --port")
    group.addoption("--board", default="esp32c3_node", choices=sorted(BOARD_ARCH),
                    help="board definition of the real board (default esp32c3_node)")
    group.addoption("--gateway-host", default=None,
                    help="address of this host on the board's network; the gateway binds it "
                         "(default: the address of the default route)")
    group.addoption("--pir-timeout", type=float, default=180.0,
                    help="seconds a technician has to trigger the PIR (real board)")


def pytest_report_header(config: pytest.Config) -> str:
    port = config.getoption("--port") or config.getoption("--serial-number")
    if port:
        return f"hil: real board {config.getoption('--board')} on {port}"
    return NO_BOARD


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shorewatch", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def _default_host() -> str:
    """This host's address on the default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: only selects the route
        host: str = s.getsockname()[0]
        return host


def _wait_status(path: Path, proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        if proc.poll() is not None:
            log = path.with_name("gateway.log")
            raise HilError(f"gateway exited during start-up:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    raise HilError(f"gateway wrote no {path} within {timeout} s")


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A real Mosquitto for this session (the same broker tests/ uses)."""
    if not Mosquitto.available():
        pytest.fail("mosquitto is not installed: run `make test` (installs it) or "
                    "apt-get install mosquitto")
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def board(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Target]:
    """The board under test, not yet flashed: RealTarget with --port, VirtualTarget without."""
    config = request.config
    try:
        url = resolve_port(config.getoption("--port"), config.getoption("--serial-number"))
    except HilError as e:
        pytest.fail(str(e), pytrace=False)
    work = tmp_path_factory.mktemp("board")
    target: Target
    if url is None:
        target = VirtualTarget(work / "flash")
    else:
        if hasattr(config, "workerinput"):
            pytest.fail("one real board cannot serve several xdist workers: run hil without -n")
        try:
            target = RealTarget(url, config.getoption("--board"), work / "console.log")
        except HilError as e:
            pytest.fail(str(e), pytrace=False)
    yield target
    target.close()


@pytest.fixture(scope="session")
def rig(request: pytest.FixtureRequest, board: Target, mosquitto: Mosquitto,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """Gateway up, the board registered, flashed with its identity and booted."""
    config = request.config
    work = tmp_path_factory.mktemp("rig")
    real = board.kind == "real"
    host = (config.getoption("--gateway-host") or _default_host()) if real else "127.0.0.1"
    device = "5a17c3a1" if real else f"5a17{os.getpid() & 0xFFFF:04x}"
    prefix = f"hil-{os.getpid()}"
    data, status = work / "gw", work / "status.json"
    ident_path = work / "identity.json"
    added = _cli("devices", "add", "--data-dir", str(data), device, "--name", "hil",
                 "--identity-out", str(ident_path))
    assert added.returncode == 0, added.stderr
    log = (work / "gateway.log").open("w", encoding="utf-8")  # a pipe nobody reads would fill
    gateway = subprocess.Popen(
        [sys.executable, "-m", "shorewatch", "gateway", "run", "--data-dir", str(data),
         "--udp", f"{host}:0", "--metrics", "127.0.0.1:0",
         "--mqtt", f"{mosquitto.host}:{mosquitto.port}", "--prefix", prefix, "--site", SITE,
         "--status-file", str(status)],
        stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        ports = _wait_status(status, gateway, 30)
        identity = json.loads(ident_path.read_text())
        identity["gateway"] = {"host": host, "port": ports["udp_port"]}
        identity["board"] = config.getoption("--board") if real else "virtual"
        if real:
            cfg: dict[str, Any] = {"report_interval_s": 5}
            timeouts = Timeouts(hello=60, telemetry=60, pir=config.getoption("--pir-timeout"))
        else:
            cfg = {"report_interval_s": 0.5,
                   "pir": {"seed": 11, "mean_interval_s": 1.0, "duration_s": 0.3}}
            timeouts = Timeouts(hello=15, telemetry=10, pir=15)
        board.flash_and_boot(identity, cfg)
        yield Rig(board=board, device=device, metrics_port=ports["metrics_port"],
                  mosquitto=mosquitto, prefix=prefix, timeouts=timeouts, gateway=gateway)
    except HilError as e:
        pytest.fail(str(e), pytrace=False)
    finally:
        board.close()
        if gateway.poll() is None:
            gateway.send_signal(signal.SIGTERM)
            try:
                gateway.wait(20)
            except subprocess.TimeoutExpired:
                gateway.kill()
                gateway.wait(10)
        log.close()
