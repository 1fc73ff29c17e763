"""The running gateway, in-process: a device registered over the admin API goes live, gets its
configuration pushed over UDP (encrypted, retried without an ACK), its CONFIG_ACK shows up in
status and metrics, and all of it survives a restart. Real Mosquitto as the MQTT destination."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiomqtt
import pytest

from gateway.admin_client import AdminClient
from gateway.config import AdminSettings
from gateway.devconfig import PushPolicy
from gateway.mqtt import MqttSettings
from gateway.service import Gateway, GatewaySettings
from gateway.sessions import SessionPolicy
from gateway.transports import UdpSettings
from protocol import (
    Ack,
    BootReason,
    ConfigAck,
    ConfigEntry,
    ConfigPush,
    ConfigStatus,
    Detection,
    DetectionKind,
    DeviceKeys,
    Direction,
    HardwareKind,
    Hello,
    Lifecycle,
    Message,
    ReplayWindow,
    Telemetry,
    Welcome,
    WelcomeFlag,
    encode_frame,
    open_frame,
    peek_header,
)
from protocol.schema import SCHEMA_FINGERPRINT
from shorewatch.peers import Mosquitto

pytestmark = pytest.mark.integration

STEP_S = 10.0
PSK = "dune-grass-and-gulls"
TEL = Telemetry(3650, 0, -1, 0, 255, -70, 5, 1, 100, 0)
DET = Detection(7, Lifecycle.NEW, DetectionKind.PERSON, 88, 1, 2, 3, 4, 3000, 1,
                1_795_680_000, 5)


@pytest.fixture(autouse=True)
async def loop_guard(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    """Fail the test if anything blocked the event loop (SQLite must run in a thread)."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = 0.5
    yield
    slow = [r.getMessage() for r in caplog.records
            if r.name == "asyncio" and "took" in r.getMessage()]
    assert not slow, f"the event loop was blocked: {slow}"


class Board(asyncio.DatagramProtocol):
    """The device side over UDP, speaking the CPython codec with the identity's key."""

    def __init__(self, identity: dict[str, Any], port: int) -> None:
        self.dev = identity["device_id"]
        self.keys = DeviceKeys.from_master(bytes.fromhex(identity["master_key"]))
        self.gateway = ("127.0.0.1", port)
        self.counter = 0
        self.down = ReplayWindow()
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.inbox.put_nowait(data)

    def send(self, msg: Message) -> None:
        assert self.transport is not None
        self.transport.sendto(encode_frame(msg, keys=self.keys, direction=Direction.UP,
                                           device_id=self.dev, counter=self.counter),
                              self.gateway)
        self.counter += 1

    async def receive(self) -> tuple[Message, bytes]:
        async with asyncio.timeout(STEP_S):
            frame = await self.inbox.get()
        header = peek_header(frame, Direction.DOWN)
        window = ReplayWindow() if header.long else self.down
        msg = open_frame(frame, header, self.keys, window, 8).message
        if header.long:
            self.down = window
        return msg, frame

    async def quiet(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        assert self.inbox.empty(), "the gateway sent something unexpected"


@contextlib.asynccontextmanager
async def running(settings: GatewaySettings) -> AsyncIterator[Gateway]:
    gateway = Gateway(settings)
    task = asyncio.create_task(gateway.run(), name="gateway")
    try:
        async with asyncio.timeout(STEP_S):
            await gateway.wait_ready()
        yield gateway
        assert not task.done(), "gateway stopped by itself"
    finally:
        gateway.stop()
        await asyncio.wait({task}, timeout=STEP_S)
        assert task.done(), "gateway did not stop"
        task.result()


@contextlib.asynccontextmanager
async def board(identity: dict[str, Any], port: int) -> AsyncIterator[Board]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: Board(identity, port), local_addr=("127.0.0.1", 0))
    try:
        yield proto
    finally:
        transport.close()


async def _api(sock: Path, token: str, method: str, path: str, body: Any = None) -> Any:
    client = AdminClient(socket_path=sock, token=token, timeout=STEP_S)
    return await asyncio.to_thread(client.call, method, path, body)


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


async def test_register_push_ack_restart(tmp_path: Path, mosquitto: Mosquitto,
                                         topic_prefix: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = tmp_path / "tokens"
    tokens.write_text("ops ops-secret-0123456789abcdef\n")
    tokens.chmod(0o600)
    token = "ops-secret-0123456789abcdef"
    sock = tmp_path / "admin.sock"
    settings = GatewaySettings(
        data_dir=tmp_path / "data", metrics_port=0, udp=(UdpSettings("127.0.0.1", 0),),
        mqtt=(MqttSettings(mosquitto.host, mosquitto.port, prefix=topic_prefix,
                           site="admin"),),
        admin=AdminSettings(socket=sock, token_file=tokens),
        sessions=SessionPolicy(stale_after_s=30, offline_after_s=60),
        config_push=PushPolicy(max_attempts=3, backoff_s=0.3, backoff_max_s=1.0))
    async with running(settings) as gw, aiomqtt.Client(mosquitto.host, mosquitto.port) as sub:
        await sub.subscribe(f"{topic_prefix}/admin/device/+/event/detection", qos=1)
        created = await _api(sock, token, "POST", "/v1/devices",
                             {"device_id": "5a17ad01", "name": "lifeguard-tower"})
        identity = created["identity"]
        assert identity["gateway"] == {"host": "127.0.0.1", "port": gw.udp_port}
        async with board(identity, gw.udp_port) as b:
            # Registered a moment ago, no restart: the HELLO is answered.
            b.send(Hello(1, 4, 0, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0x20,
                         SCHEMA_FINGERPRINT, b"boot-001"))
            welcome, _ = await b.receive()
            assert isinstance(welcome, Welcome) and welcome.flags == 0
            b.send(DET)
            ack, _ = await b.receive()
            assert ack == Ack(b.counter - 1, 4)
            async with asyncio.timeout(STEP_S):
                message = await anext(aiter(sub.messages))
            event = json.loads(bytes(cast(bytes, message.payload)))
            assert event["device"] == "5a17ad01" and event["kind"] == "person"

            answer = await _api(sock, token, "PUT", "/v1/devices/5a17ad01/config",
                                {"report_interval_s": 120, "wifi_ssid": "beach",
                                 "wifi_psk": PSK})
            assert answer["desired_version"] == 1
            # The device's next uplink carries the push back, encrypted (it has the PSK).
            b.send(TEL)
            push, raw = await b.receive()
            assert push == ConfigPush(1, (ConfigEntry(1, (120).to_bytes(2, "little")),
                                          ConfigEntry(7, b"beach"),
                                          ConfigEntry(8, PSK.encode())))
            assert raw[0] & 0x10 and PSK.encode() not in raw
            # No ACK: the next uplink within the backoff gets nothing, a later one a retry.
            b.send(TEL)
            await b.quiet(0.1)
            await asyncio.sleep(0.3)
            b.send(TEL)
            again, _ = await b.receive()
            assert again == push
            shown = await _api(sock, token, "GET", "/v1/devices/5a17ad01")
            assert shown["config"] | {"overrides": None, "desired": None} == {
                "desired_version": 1, "reported_version": 0, "pending": True, "push": "sent",
                "attempts": 2, "last_status": None, "bad_key": None, "overrides": None,
                "desired": None}
            assert shown["config"]["desired"]["wifi_psk"] == "<secret>"
            # A sensor node applies what it can and names the first key it did not.
            b.send(ConfigAck(1, ConfigStatus.PARTIAL, 7))
            await b.quiet(0.2)
            shown = await _api(sock, token, "GET", "/v1/devices/5a17ad01")
            assert shown["config"]["reported_version"] == 1
            assert shown["config"]["pending"] is False
            assert (shown["config"]["last_status"], shown["config"]["bad_key"]) == (
                "partial", "wifi_ssid")
            assert shown["state"] == "online"
            text = await asyncio.to_thread(_scrape, gw.metrics_port)
            dev = 'device="5a17ad01"'
            assert _sample(text, "shorewatch_device_config_version", dev) == 1
            assert _sample(text, "shorewatch_device_config_desired_version", dev) == 1
            assert _sample(text, "shorewatch_device_state", f'{dev},state="online"') == 1
            assert _sample(text, "shorewatch_device_state", f'{dev},state="stale"') == 0
            assert _sample(text, "shorewatch_config_push_total", 'outcome="retried"') == 1
            assert _sample(text, "shorewatch_config_push_total", 'outcome="partial"') == 1
    # Restart on the same data: desired and reported versions and last_seen were persisted.
    async with running(settings) as gw:
        shown = await _api(sock, token, "GET", "/v1/devices/5a17ad01")
        assert shown["state"] == "online" and shown["name"] == "lifeguard-tower"
        assert (shown["config"]["desired_version"], shown["config"]["reported_version"]) == (1, 1)
        assert shown["config"]["pending"] is False
        async with board(identity, gw.udp_port) as b:
            b.counter = 100
            b.send(Hello(1, 4, 0, HardwareKind.SENSOR_NODE, BootReason.DEEP_SLEEP, 0x20,
                         SCHEMA_FINGERPRINT, b"boot-002", 1))
            welcome, _ = await b.receive()
            assert isinstance(welcome, Welcome)
            assert welcome.config_version == 1
            assert not welcome.flags & WelcomeFlag.CONFIG_PENDING
            await b.quiet(0.2)
    for secret in (PSK, identity["master_key"]):
        assert secret not in caplog.text
    assert "config 1 pushed" in caplog.text  # the logs we searched did run
