"""End to end on loopback: real Mosquitto, the gateway as a process, MicroPython boards.

Three virtual boards report through the gateway; the test checks that every detection a board
printed arrives on an MQTT subscription with the same content, that /metrics shows each board's
battery, and that forged, replayed and unknown-device frames are rejected and counted while the
legitimate boards carry on.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, cast

import aiomqtt
import pytest

from protocol import DeviceKeys, Direction, Telemetry, encode_frame
from shorewatch.peers import Mosquitto, VirtualBoard

pytestmark = pytest.mark.integration

BOARDS = (0x5A17E001, 0x5A17E002, 0x5A17E003)
RUN_FOR_S = 10.0


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shorewatch", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def _wait_file(path: Path, proc: subprocess.Popen[Any], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        assert proc.poll() is None, "gateway exited during start-up"
        time.sleep(0.05)
    raise AssertionError(f"{path} not written within {timeout} s")


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        body: bytes = resp.read()
    return body.decode()


def _sample(text: str, name: str, labels: str) -> float | None:
    prefix = f"{name}{{{labels}}} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return None


class Relay(asyncio.DatagramProtocol):
    """A UDP relay in front of the gateway for one board: it records what the board sends."""

    def __init__(self, gateway_port: int) -> None:
        self.gateway = ("127.0.0.1", gateway_port)
        self.captured: list[bytes] = []
        self.board: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if addr == self.gateway:
            if self.board is not None:
                self.transport.sendto(data, self.board)
            return
        self.board = addr
        self.captured.append(data)
        self.transport.sendto(data, self.gateway)


@pytest.fixture
def gateway_proc(tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str):
    """(start, data_dir, status_file): register devices in data_dir, then call start()."""
    data = tmp_path / "gw"
    status = tmp_path / "status.json"
    procs: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shorewatch", "gateway", "run", "--data-dir", str(data),
             "--udp", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
             "--mqtt", f"{mosquitto.host}:{mosquitto.port}", "--prefix", topic_prefix,
             "--site", "e2e", "--status-file", str(status)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        return proc

    yield start, data, status
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def _collect(mosquitto: Mosquitto, topic: str, ready: asyncio.Event,
                   out: list[dict[str, Any]], stop: asyncio.Event) -> None:
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            out.append(json.loads(bytes(message.payload)))
            if stop.is_set():
                return


def _events(console: Path) -> list[dict[str, Any]]:
    lines = console.read_text(encoding="utf-8").splitlines()
    return [json.loads(line[len("EVENT "):]) for line in lines if line.startswith("EVENT ")]


def _key(dev: int, e: dict[str, Any]) -> str:
    """The idempotency key the gateway must derive from what the board printed."""
    ts = e["ts_s"] + e["ts_ms"] / 1000
    return f"{dev:08x}-{e['event_id']:08x}-{e['lifecycle']}-{ts:.3f}"


def _last_telemetry(console: Path) -> dict[str, Any]:
    lines = console.read_text(encoding="utf-8").splitlines()
    tel = [json.loads(line[len("TELEMETRY "):]) for line in lines if line.startswith("TELEMETRY ")]
    assert tel, f"{console} printed no telemetry"
    return tel[-1]


async def test_boards_report_through_gateway_to_mqtt_and_metrics(
        tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str, gateway_proc) -> None:
    start, data, status_file = gateway_proc
    # Register the boards (and one device whose key the test holds, to replay its frames).
    attacker = 0x5A17E0FF
    for dev in (*BOARDS, attacker):
        result = _cli("devices", "add", "--data-dir", str(data), f"{dev:08x}",
                      "--identity-out", str(tmp_path / f"{dev:08x}.json"),
                      "--gateway", "127.0.0.1:9")
        assert result.returncode == 0, result.stderr
    proc = start()
    status = _wait_file(status_file, proc, 30)
    gw_port, metrics_port = status["udp_port"], status["metrics_port"]

    detections: list[dict[str, Any]] = []
    ready, stop = asyncio.Event(), asyncio.Event()
    collector = asyncio.create_task(_collect(
        mosquitto, f"{topic_prefix}/e2e/device/+/event/detection", ready, detections, stop))
    await asyncio.wait_for(ready.wait(), 10)

    loop = asyncio.get_running_loop()
    relay_transport, relay = await loop.create_datagram_endpoint(
        lambda: Relay(gw_port), local_addr=("127.0.0.1", 0))
    relay_port = relay_transport.get_extra_info("sockname")[1]

    boards = []
    for i, dev in enumerate(BOARDS):
        identity = json.loads((tmp_path / f"{dev:08x}.json").read_text())
        identity["gateway"]["port"] = relay_port if i == 0 else gw_port
        board = VirtualBoard(tmp_path / f"board-{dev:08x}")
        VirtualBoard.prepare(board.board_dir, identity, {
            "report_interval_s": 0.5, "run_for_s": RUN_FOR_S,
            "pir": {"seed": 7 + i, "mean_interval_s": 1.5, "duration_s": 0.6}})
        boards.append(board.start())

    # Attacks while the boards run.
    sock_tr, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                     remote_addr=("127.0.0.1", gw_port))
    await asyncio.sleep(3)
    assert relay.captured, "board 0 sent nothing through the relay"
    for frame in relay.captured[:5]:
        sock_tr.sendto(frame)  # replays of real, already accepted frames
    forged = bytearray(relay.captured[-1])
    forged[-1] ^= 0x80
    sock_tr.sendto(bytes(forged))
    key = bytes.fromhex(json.loads((tmp_path / f"{attacker:08x}.json").read_text())["master_key"])
    stranger = encode_frame(Telemetry(1, 2, 3, 4, 5, 6, 7, 8, 9, 0),
                            keys=DeviceKeys.from_master(key), direction=Direction.UP,
                            device_id=0x0BADBEEF, counter=1)
    sock_tr.sendto(stranger)
    sock_tr.sendto(b"\x00garbage")

    deadline = time.monotonic() + RUN_FOR_S + 20
    for board in boards:
        assert board.proc is not None
        board.proc.wait(max(1.0, deadline - time.monotonic()))
        assert board.proc.returncode == 0, board.console.read_text()[-2000:]
        board.stop()

    sent = {dev: _events(b.console) for dev, b in zip(BOARDS, boards, strict=True)}
    assert all(sent.values()), {f"{d:08x}": len(e) for d, e in sent.items()}
    expected_keys = {_key(dev, e) for dev, events in sent.items() for e in events}
    while time.monotonic() < deadline:
        if {d["idempotency_key"] for d in detections} >= expected_keys:
            break
        await asyncio.sleep(0.1)
    stop.set()
    collector.cancel()
    relay_transport.close()
    sock_tr.close()

    by_key = {d["idempotency_key"]: d for d in detections}
    assert set(by_key) == expected_keys
    for dev, events in sent.items():
        for e in events:
            got = by_key[_key(dev, e)]
            assert got["device"] == f"{dev:08x}"
            assert got["event_id"] == f"{dev:08x}-{e['event_id']:08x}"
            assert got["kind"] == e["kind"]
            assert got["score"] == e["confidence_pct"] / 100
            assert got["count"] == e["count"]
            assert got["peak_temp_c"] == e["peak_cc"] / 100
            assert got["box"] == e["box"]
    for dev in BOARDS:
        seqs = [d["seq"] for d in detections if d["device"] == f"{dev:08x}"]
        assert seqs == sorted(seqs)

    metrics = _scrape(metrics_port)
    for dev, board in zip(BOARDS, boards, strict=True):
        battery = _sample(metrics, "shorewatch_device_battery_volts", f'device="{dev:08x}"')
        assert battery == _last_telemetry(board.console)["battery_mv"] / 1000
    for reason in ("replayed", "bad_tag", "unknown_device", "bad_version"):
        count = _sample(metrics, "shorewatch_frames_rejected_total", f'reason="{reason}"')
        assert count is not None and count >= 1, (reason, count)
    replayed = _sample(metrics, "shorewatch_frames_rejected_total", 'reason="replayed"')
    assert replayed == 5
    # Board 0 kept reporting after the attacks: more telemetry was accepted than before them.
    telemetry = _sample(metrics, "shorewatch_frames_received_total", 'type="telemetry"')
    assert telemetry is not None and telemetry >= 3 * (RUN_FOR_S / 0.5) * 0.6

    assert proc.poll() is None, "gateway crashed"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "state flushed" in out
    for dev in BOARDS:
        key_hex = json.loads((tmp_path / f"{dev:08x}.json").read_text())["master_key"]
        assert key_hex not in out  # keys never reach the logs


def test_metrics_exposition_passes_promtool(tmp_path: Path, mosquitto: Mosquitto,
                                            topic_prefix: str, gateway_proc) -> None:
    """The exposition (names, units, types) is checked by Prometheus' own linter."""
    start, data, status_file = gateway_proc
    assert _cli("devices", "add", "--data-dir", str(data), "00000042", "--identity-out",
                str(tmp_path / "id.json")).returncode == 0
    proc = start()
    status = _wait_file(status_file, proc, 30)
    text = _scrape(status["metrics_port"])
    assert "shorewatch_frames_rejected_total" in text
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(20) == 0
