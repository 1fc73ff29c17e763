"""The gateway under a real notification socket, and the unit file under systemd's own checker.

The gateway runs as a process with NOTIFY_SOCKET and WATCHDOG_USEC set, two MQTT destinations:
one on the Mosquitto fixture, one whose port refuses connections until the test opens it (then
a relay to the same Mosquitto). READY=1 must wait for that second destination although the UDP
listener already answers frames; WATCHDOG=1 then arrives every second; SIGTERM gives STOPPING=1
and exit status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.registry import Registry
from protocol import (
    BootReason,
    DeviceKeys,
    Direction,
    HardwareKind,
    Hello,
    ReplayWindow,
    Welcome,
    encode_frame,
    open_frame,
    peek_header,
)
from protocol.schema import SCHEMA_FINGERPRINT
from shorewatch.peers import Mosquitto

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "shorewatch-gateway.service"
DEV = 0x5A17D001
PASSWORD = "relay-password-not-in-logs"


class Events:
    """One ordered record of what the test observed, from every source."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self.changed = asyncio.Event()

    def add(self, kind: str, value: Any = None) -> None:
        self.items.append((kind, value))
        self.changed.set()

    def index(self, kind: str, match: str = "") -> int | None:
        for i, (k, v) in enumerate(self.items):
            if k == kind and (not match or match in str(v)):
                return i
        return None

    async def wait_for(self, kind: str, match: str = "", within: float = 30.0) -> int:
        async with asyncio.timeout(within):
            while (i := self.index(kind, match)) is None:
                self.changed.clear()
                await self.changed.wait()
        return i

    def notifications(self, after: int = -1) -> list[list[str]]:
        """Notifications recorded after position ``after`` of ``items``."""
        return [v for k, v in self.items[after + 1:] if k == "notify"]


async def _read_notifications(sock: socket.socket, events: Events) -> None:
    loop = asyncio.get_running_loop()
    while True:
        data = await loop.sock_recv(sock, 4096)
        events.add("notify", data.decode().split("\n"))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def _late_broker(mosquitto: Mosquitto, events: Events
                       ) -> AsyncIterator[tuple[int, asyncio.Event]]:
    """(port, open): the port refuses connections (bound, not listening) until ``open`` is set,
    then relays each connection to Mosquitto."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    opened = asyncio.Event()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        events.add("relayed")
        up_reader, up_writer = await asyncio.open_connection(mosquitto.host, mosquitto.port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def serve() -> None:
        await opened.wait()
        server = await asyncio.start_server(relay, sock=sock)
        async with server:
            await server.serve_forever()

    task = asyncio.create_task(serve())
    try:
        yield sock.getsockname()[1], opened
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


def _config(tmp_path: Path, mosquitto: Mosquitto, late_port: int, prefix: str) -> Path:
    password = tmp_path / "late-password"
    password.write_text(PASSWORD + "\n")
    password.chmod(0o600)
    config = tmp_path / "gateway.toml"
    config.write_text(f"""\
[gateway]
id = "gw-notify"
site = "systemd"
prefix = "{prefix}"
data_dir = "data"

[[udp]]
listen = "127.0.0.1:0"

[metrics]
listen = "127.0.0.1:0"

[[mqtt]]
name = "direct"
host = "{mosquitto.host}"
port = {mosquitto.port}

[[mqtt]]
name = "late"
host = "127.0.0.1"
port = {late_port}
username = "gw-notify"
password_file = "late-password"
""")
    return config


async def _hello_gets_welcome(port: int, key: bytes) -> Welcome:
    keys = DeviceKeys.from_master(key)
    hello = Hello(0, 1, 0, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0x19,
                  SCHEMA_FINGERPRINT, b"12345678")
    frame = encode_frame(hello, keys=keys, direction=Direction.UP, device_id=DEV, counter=1)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await loop.sock_sendall(sock, frame)
        async with asyncio.timeout(10):
            reply = await loop.sock_recv(sock, 2048)
    message = open_frame(reply, peek_header(reply, Direction.DOWN), keys, ReplayWindow(),
                         8).message
    assert isinstance(message, Welcome)
    return message


async def _poll(check: Callable[[], Any], within: float, what: str) -> Any:
    """``check()`` (file reads, in a thread) until it returns something other than None."""
    deadline = time.monotonic() + within
    while (value := await asyncio.to_thread(check)) is None:
        assert time.monotonic() < deadline, f"no {what} within {within} s"
        await asyncio.sleep(0.05)
    return value


def _ports(path: Path, proc: asyncio.subprocess.Process) -> dict[str, int] | None:
    assert proc.returncode is None, "gateway exited during start-up"
    return json.loads(path.read_text()) if path.exists() else None


def _logged(path: Path, pattern: str) -> bool | None:
    return True if re.search(pattern, path.read_text()) else None


async def test_ready_waits_for_every_destination_then_watchdog_then_stopping(
        tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str) -> None:
    key = secrets.token_bytes(32)
    registry = Registry(tmp_path / "data" / "registry.sqlite3")
    registry.add(DEV, key, name="notify-test")
    registry.close()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.setblocking(False)
    events = Events()
    reader = asyncio.create_task(_read_notifications(notify, events))
    status_file, log_file = tmp_path / "status.json", tmp_path / "gateway.log"
    async with _late_broker(mosquitto, events) as (late_port, open_late):
        config = _config(tmp_path, mosquitto, late_port, topic_prefix)
        env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"),
               "WATCHDOG_USEC": "2000000"}
        with log_file.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "shorewatch", "gateway", "run", "--config", str(config),
                "--status-file", str(status_file), env=env, stdout=log, stderr=log)
        try:
            ports = await _poll(lambda: _ports(status_file, proc), 30, "status file")
            # The listener answers frames and one destination is up, but "late" refused us.
            welcome = await _hello_gets_welcome(ports["udp_port"], key)
            events.add("welcome", welcome)
            await events.wait_for("notify", "MQTT 1/2 up (late down)")
            refused = rf"MQTT late \(127\.0\.0\.1:{late_port}\) unavailable"
            await _poll(lambda: _logged(log_file, refused), 30, "refused connection")
            await events.wait_for("notify", "EXTEND_TIMEOUT_USEC=3000000")  # healthy, serving
            assert events.index("notify", "READY=1") is None

            open_late.set()
            ready = await events.wait_for("notify", "READY=1")
            welcomed, relayed = events.index("welcome"), events.index("relayed")
            assert welcomed is not None and relayed is not None and welcomed < relayed < ready
            assert events.items[ready][1] == ["READY=1", "STATUS=1 device, MQTT 2/2 up"]

            async with asyncio.timeout(10):
                while sum(m == ["WATCHDOG=1"] for m in events.notifications(ready)) < 3:
                    events.changed.clear()
                    await events.changed.wait()
            assert not any("EXTEND_TIMEOUT_USEC" in f for m in events.notifications(ready)
                           for f in m)

            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                code = await proc.wait()
            assert code == 0, log_file.read_text()
            await events.wait_for("notify", "STOPPING=1", within=5)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            reader.cancel()
            notify.close()
    stopping = events.index("notify", "STOPPING=1")
    assert stopping is not None and stopping > ready
    output = log_file.read_text()
    assert output.index("SIGTERM: stopping") < output.index("state flushed")
    assert PASSWORD not in output  # the secret never reaches the logs
    assert "Traceback" not in output


# --- the unit file ---------------------------------------------------------------------------

REQUIRED = {
    "Type": ["notify"], "NotifyAccess": ["main"], "WatchdogSec": ["30"],
    "Restart": ["on-failure"], "RestartPreventExitStatus": ["2"], "DynamicUser": ["yes"],
    "StateDirectory": ["shorewatch"], "ConfigurationDirectory": ["shorewatch"],
    "ProtectSystem": ["strict"], "ProtectHome": ["yes"], "PrivateTmp": ["yes"],
    "NoNewPrivileges": ["yes"], "CapabilityBoundingSet": [""],
    "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"],
    "SupplementaryGroups": ["dialout"], "DeviceAllow": ["char-ttyUSB rw", "char-ttyACM rw"],
    "SystemCallFilter": ["@system-service", "~@privileged @resources"],
}


def _service_section(text: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            name, _, value = line.partition("=")
            values.setdefault(name.strip(), []).append(value.strip())
    return values


def test_unit_file_has_the_required_directives() -> None:
    """Holds without systemd installed; systemd-analyze below checks that systemd agrees."""
    service = _service_section(UNIT.read_text())
    for name, expected in REQUIRED.items():
        assert service.get(name) == expected, name
    (exec_start,) = service["ExecStart"]
    assert exec_start.split()[1:] == ["gateway", "run", "--config",
                                      "/etc/shorewatch/gateway.toml"]
    assert "RestartSec" in service


def _analyzable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's installed ``shorewatch`` (verify
    insists the binary exists; /opt/shorewatch/bin is where deploy/README.md installs it)."""
    binary = Path(sys.executable).with_name("shorewatch")
    assert binary.exists(), binary
    text = UNIT.read_text()
    assert "ExecStart=/opt/shorewatch/bin/shorewatch " in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace("ExecStart=/opt/shorewatch/bin/shorewatch ",
                                 f"ExecStart={binary} "))
    return copy


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is not installed: run `make system-deps` "
                    "(apt-get install --no-install-recommends systemd)")
    return found


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    result = subprocess.run([_systemd_analyze(), "verify", str(_analyzable_copy(tmp_path))],
                            capture_output=True, text=True, timeout=60, check=False)
    # Unknown keys and unparsable values are only warnings: any output is a failure here.
    assert result.returncode == 0 and not result.stdout and not result.stderr, (
        result.stdout + result.stderr)


def test_systemd_analyze_security_rates_the_unit_ok(tmp_path: Path) -> None:
    result = subprocess.run(
        [_systemd_analyze(), "security", "--offline=true", "--threshold=20", "--no-pager",
         str(_analyzable_copy(tmp_path))],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    exposure = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert exposure is not None, result.stdout
    assert float(exposure.group(1)) <= 2.0, result.stdout  # "OK"; 1.7 when written
