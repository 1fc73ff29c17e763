"""The thermal camera board end to end, real parts only: the camera firmware in the MicroPython
unix port under a 128 KB heap (compiled to .mpy as a board holds it), the MLX90640's virtual
twin playing a recording from the night-beach simulator, the gateway as a process, a real
Mosquitto. Also bad provisioning of a camera board (exit code 2, one clear line).
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import aiomqtt
import pytest

from protocol import Direction, MessageType, ProtocolError, peek_header
from shorewatch.harness import GatewayProcess
from shorewatch.peers import CAMERA_HEAP, Mosquitto, VirtualBoard, build_firmware
from shorewatch.sim import ScenarioSpec, record
from shorewatch.sim.fleet import camera_config
from shorewatch.sim.targets import person

pytestmark = pytest.mark.integration

CAMERA = 0x5A17CA01
NIGHT_S = 8 * 3600  # 22:00 to 06:00
SCENE_S = 900.0  # the night's recording, played in a loop
HEAP_FLOOR = 12 * 1024  # free heap the camera keeps all night (measured ~20 KB)
BOARD_TIMEOUT_S = 600.0  # a hung board fails the test, never hangs the suite


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shorewatch", *map(str, args)],
                          capture_output=True, text=True, timeout=60, check=False)


def _register(data: Path, dev: int, out: Path, kind: str = "thermal_camera") -> dict[str, Any]:
    done = _cli("devices", "add", "--data-dir", data, f"{dev:08x}", "--hw-kind", kind,
                "--identity-out", out)
    assert done.returncode == 0, done.stderr
    identity: dict[str, Any] = json.loads(out.read_text())
    assert identity["hw_kind"] == kind
    return identity


def _walker(prefix: Path) -> Path:
    """40 s of an empty calm beach; one person walks across it 10 m out, 6 s to 20 s."""
    record(ScenarioSpec(seed=4, population="none", duration_s=30.0, fps=4.0, targets=(
        person("p1", "walking", [(6.0, -8.0, 10.0), (20.0, 8.0, 10.0)], contrast_k=4.5),)),
        prefix)
    return prefix


def _lines(console: Path, head: str) -> list[dict[str, Any]]:
    return [json.loads(line[len(head) + 1:]) for line in
            console.read_text(encoding="utf-8").splitlines() if line.startswith(head + " ")]


def _key(dev: int, e: dict[str, Any]) -> str:
    """The idempotency key the gateway derives from what the board printed."""
    return f"{dev:08x}-{e['event_id']:08x}-{e['lifecycle']}-{e['ts_s'] + e['ts_ms'] / 1000:.3f}"


def _camera_board(path: Path, identity: dict[str, Any], port: int,
                  config: dict[str, Any]) -> VirtualBoard:
    ident = dict(identity, board="virtual_camera", gateway={"host": "127.0.0.1", "port": port})
    board = VirtualBoard(path, heap=CAMERA_HEAP)
    VirtualBoard.prepare(path, ident, config)
    return board


def _assert_clean(console: Path, rc: int | None) -> str:
    text = console.read_text(encoding="utf-8")
    assert rc == 0, text[-3000:]
    assert "Traceback" not in text and "MemoryError" not in text, text[-3000:]
    stopped = [line for line in text.splitlines() if line.startswith("I app: stopped:")]
    assert len(stopped) == 1 and stopped[0].endswith(" 0 out of memory"), text[-3000:]
    return text


class AckDropper(asyncio.DatagramProtocol):
    """A UDP relay between the camera and the gateway that loses the first ACK it carries and
    records every uplink frame."""

    def __init__(self, gateway_port: int) -> None:
        self.gateway = ("127.0.0.1", gateway_port)
        self.board: tuple[str, int] | None = None
        self.uplinks: list[bytes] = []
        self.dropped = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if addr != self.gateway:
            self.board = addr
            self.uplinks.append(data)
            self.transport.sendto(data, self.gateway)
            return
        try:
            ack = peek_header(data, Direction.DOWN).mtype is MessageType.ACK
        except ProtocolError:
            ack = False
        if ack and not self.dropped:
            self.dropped += 1
            return
        if self.board is not None:
            self.transport.sendto(data, self.board)


async def _collect(mosquitto: Mosquitto, topic: str, ready: asyncio.Event,
                   out: list[dict[str, Any]], arrived: asyncio.Event) -> None:
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            out.append(json.loads(bytes(message.payload)))
            arrived.set()


async def test_camera_reports_a_walking_person_new_update_end_acked_to_mqtt(
        tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str) -> None:
    data = tmp_path / "gw"
    identity = _register(data, CAMERA, tmp_path / "camera.json")
    sock = tmp_path / "admin.sock"
    gw = GatewayProcess(data, mqtt=(mosquitto.host, mosquitto.port), prefix=topic_prefix,
                        site="cam", workdir=tmp_path / "gwrun",
                        extra_args=("--admin-socket", str(sock))).start()
    detections: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    relay_transport, relay = await loop.create_datagram_endpoint(
        lambda: AckDropper(gw.udp_port), local_addr=("127.0.0.1", 0))
    ready, arrived = asyncio.Event(), asyncio.Event()
    collector = asyncio.create_task(_collect(
        mosquitto, f"{topic_prefix}/cam/device/+/event/detection", ready, detections, arrived))
    try:
        # desired before the camera boots: pushed after its WELCOME, applied to the pipeline
        pushed = _cli("devices", "config", "set", "--socket", sock, f"{CAMERA:08x}",
                      "detection_sensitivity=60")
        assert pushed.returncode == 0, pushed.stderr
        await asyncio.wait_for(ready.wait(), 10)
        scene = await asyncio.to_thread(_walker, tmp_path / "walker")
        config = camera_config(scene, report_interval_s=1.0, speed=4.0, loop=False,
                               thumbnails=True)
        config["link"] = {"ack_timeout_s": 0.5, "max_retries": 3}
        board = _camera_board(tmp_path / "camera", identity,
                              relay_transport.get_extra_info("sockname")[1], config).start()
        assert board.proc is not None
        # the board stops by itself: recording played, every message ACKed
        rc = await asyncio.to_thread(board.proc.wait, BOARD_TIMEOUT_S)
        board.stop()
        text = _assert_clean(board.console, rc)

        events = _lines(board.console, "EVENT")
        expected = {_key(CAMERA, e) for e in events}
        async with asyncio.timeout(30):
            while {d["idempotency_key"] for d in detections} < expected:
                arrived.clear()
                await arrived.wait()
        metrics = gw.scrape()
    finally:
        collector.cancel()
        relay_transport.close()
        assert gw.stop() == 0

    # the walker: one event, new -> updates -> end (walked out of the frame), a person
    assert events[0]["lifecycle"] == "new" and events[-1]["lifecycle"] == "end", events
    assert {e["event_id"] for e in events} == {events[0]["event_id"]}
    assert events[0]["event_id"] >> 16 == 1  # boot_count << 16 | seq
    assert sum(e["lifecycle"] == "update" for e in events) >= 3
    for e in events:
        assert e["kind"] == "person" and e["count"] == 1, e
        x, y, w, h = e["box"]
        assert w >= 1 and h >= 1 and x + w <= 32 and y + h <= 24, e
        assert 1000 < e["peak_cc"] < 3500, e  # a clothed person on a summer night, in C/100
    assert "thumbnail" in events[0] and all("thumbnail" not in e for e in events[1:])
    # the first ACK was lost: one resend (new counter, same bytes), ACKed, published once
    assert relay.dropped == 1
    assert text.count("no ACK, resend") == 1
    assert text.count(" acked") == len(events)
    assert sorted(d["idempotency_key"] for d in detections) == sorted(expected)
    by_key = {d["idempotency_key"]: d for d in detections}
    for e in events:
        got = by_key[_key(CAMERA, e)]
        assert got["event_id"] == f"{CAMERA:08x}-{e['event_id']:08x}"
        assert (got["kind"], got["box"], got["count"]) == (e["kind"], e["box"], e["count"])
        assert got["score"] == e["confidence_pct"] / 100
        assert got["peak_temp_c"] == e["peak_cc"] / 100
    thumb = by_key[_key(CAMERA, events[0])]["thumbnail"]
    made = events[0]["thumbnail"]
    assert (thumb["width"], thumb["height"]) == (made["w"], made["h"])
    assert len(base64.b64decode(thumb["data"])) == made["bytes"]
    # a DETECTION with a thumbnail (longer than header 7 + core 20 + tag 8) travels encrypted,
    # the others in the clear: here the `new` and its resend
    headers = [(peek_header(f, Direction.UP), len(f)) for f in relay.uplinks]
    assert headers[0][0].mtype is MessageType.HELLO
    sent = [(h.encrypted, n) for h, n in headers if h.mtype is MessageType.DETECTION]
    assert all(encrypted == (n > 35) for encrypted, n in sent), sent
    assert sum(encrypted for encrypted, _ in sent) == 2
    # the gateway knows it as a camera, has its telemetry, and the push was applied
    info = [line for line in metrics.text.splitlines()
            if line.startswith("shorewatch_device_info{") and f'device="{CAMERA:08x}"' in line]
    assert len(info) == 1 and 'hw_kind="thermal_camera"' in info[0], info
    telemetry = _lines(board.console, "TELEMETRY")
    assert telemetry and metrics.value("shorewatch_device_battery_volts",
                                       f'device="{CAMERA:08x}"') > 3
    assert "I cam: sensitivity 60" in text
    # pushed settings are kept beside config.json, which stays as provisioned
    assert json.loads((tmp_path / "camera" / "pushed.json").read_text())[
        "detection_sensitivity"] == 60
    assert identity["master_key"] not in gw.log_text() + text  # keys never reach the logs


async def test_camera_board_runs_a_whole_night_in_a_128k_heap(
        tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str) -> None:
    """8 h of frames at 4 fps (a 15-minute busy scene played 32 times, 1000x real time)
    through the whole firmware and a real gateway: no MemoryError, the heap stays above the
    floor, every detection ACKed (or dropped from a full queue, and said so)."""
    data = tmp_path / "gw"
    identity = _register(data, CAMERA, tmp_path / "camera.json")
    gw = GatewayProcess(data, mqtt=(mosquitto.host, mosquitto.port), prefix=topic_prefix,
                        site="night", workdir=tmp_path / "gwrun").start()
    try:
        scene = tmp_path / "scene"
        await asyncio.to_thread(record, ScenarioSpec(
            seed=5, family="summer-dry-calm-near", duration_s=SCENE_S, fps=4.0), scene)
        frames = int(NIGHT_S * 4)
        config = camera_config(scene, report_interval_s=2.0, speed=1000.0, loop=True,
                               frames=frames)
        board = _camera_board(tmp_path / "camera", identity, gw.udp_port, config).start()
        assert board.proc is not None
        rc = await asyncio.to_thread(board.proc.wait, BOARD_TIMEOUT_S)
        board.stop()
    finally:
        assert gw.stop() == 0
    text = _assert_clean(board.console, rc)
    reports = _lines(board.console, "CAMERA")
    assert reports[-1]["frames"] == frames, reports[-1]
    assert reports[-1]["pending"] == 0
    heap = [r["heap_free"] for r in reports] + \
        [t["free_heap_64"] * 64 for t in _lines(board.console, "TELEMETRY")]
    assert len(heap) >= 4 and min(heap) >= HEAP_FLOOR, sorted(heap)[:5]
    events = _lines(board.console, "EVENT")
    assert len(events) > 1000  # a busy night: people, groups, a boat landing
    # an EVENT line is printed at a message's first send: every one was ACKed or dropped later
    dropped = text.count("queue full: event") - text.count("before its first send")
    assert text.count(" acked") + dropped == len(events)
    assert f"thermal: the recording ended after {frames} frames" in text


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(tmp_path_factory.mktemp("camera-build") / "fw")


@pytest.mark.parametrize(("name", "change", "needle"), [
    ("fps", {"camera": {"fps": 3}}, "camera.fps must be one of"),
    ("unknown-key", {"camera": {"zoom": 2}}, "camera.zoom: unknown key"),
    ("geometry", {"camera": {"geometry": {"row_range_m": [10.0] * 23}}},
     "camera.geometry.row_range_m must list 24 distances"),
    ("no-recording", {"thermal": None}, "thermal.recording is required"),
    ("missing-recording", {"thermal": {"recording": "nowhere.raw"}}, "nowhere.raw cannot be read"),
    ("cut-recording", {"cut": True}, "is not a whole number of 1536-byte frames"),
    ("speed", {"thermal": {"speed": 0}}, "thermal.speed must be a number"),
])
def test_bad_camera_provisioning_exits_2_with_one_clear_line(
        build: Path, tmp_path: Path, name: str, change: dict[str, Any], needle: str) -> None:
    raw = tmp_path / "rec.raw"
    raw.write_bytes(bytes(3 * 1536 + (100 if change.pop("cut", False) else 0)))
    config: dict[str, Any] = {"report_interval_s": 1, "run_for_s": 5,
                              "thermal": {"recording": str(raw)}}
    for key, value in change.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = {**config.get(key, {}), **value}
    board = tmp_path / name
    VirtualBoard.prepare(board, {
        "device_id": CAMERA, "master_key": "00" * 32, "tag_len": 8, "hw_kind": "thermal_camera",
        "board": "virtual_camera", "gateway": {"host": "127.0.0.1", "port": 9}}, config)
    vb = VirtualBoard(board, heap=CAMERA_HEAP, firmware=build)
    done = subprocess.run(vb.command(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("shorewatch: "), done.stderr
    assert needle in lines[0], lines[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert not (board / "counter").exists()  # nothing was sent
