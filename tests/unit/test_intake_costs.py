"""What the intake's per-frame and per-device savings must not change: counts and state.

The handler looks its labelled counters up once, and interns the strings every device of a
fleet shares (source host, hardware kind, firmware version, boot reason); ``gateway run`` picks
uvloop when it is installed, UDP sockets ask for a large receive buffer, /metrics is rendered
off the event loop, and telemetry alone does not force a group commit. These tests pin the
behaviour those shortcuts must keep.
"""

from __future__ import annotations

import asyncio
import builtins
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.cli import loop_factory
from gateway.core import Effects, FrameHandler
from gateway.errors import ConfigError
from gateway.http import MetricsServer
from gateway.metrics import GatewayMetrics
from gateway.registry import CounterRow, DeviceState, snapshot
from gateway.service import Committer
from gateway.transports import UDP_RCVBUF, _bind_udp
from protocol import (
    BootReason,
    DeviceKeys,
    Direction,
    HardwareKind,
    Hello,
    ReplayWindow,
    Telemetry,
    encode_frame,
)
from protocol.errors import REASONS
from protocol.schema import SCHEMA_FINGERPRINT

KEYS = {dev: DeviceKeys.from_master(bytes([dev]) * 32) for dev in (1, 2)}
NOW = 1_795_680_000.0
TEL = Telemetry(3700, 5000, -20, 1500, 120, -60, 100, 1, 300, 0)


def _handler() -> tuple[FrameHandler, dict[int, DeviceState], GatewayMetrics]:
    devices = {dev: DeviceState(device_id=dev, name=f"d{dev}", keys=keys, tag_len=8,
                                window=ReplayWindow(), down_next=0, down_reserved=256)
               for dev, keys in KEYS.items()}
    metrics = GatewayMetrics(lambda: list(devices.values()))
    return FrameHandler(devices, metrics, "gw"), devices, metrics


def _frame(dev: int, msg: Any, counter: int) -> bytes:
    return encode_frame(msg, keys=KEYS[dev], direction=Direction.UP, device_id=dev,
                        counter=counter)


def _hello(nonce: bytes) -> Hello:
    return Hello(1, 2, 3, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0, SCHEMA_FINGERPRINT,
                 nonce)


def _count(metrics: GatewayMetrics, name: str, label: str, value: str) -> float:
    sample = metrics.registry.get_sample_value(name, {label: value})
    return 0.0 if sample is None else sample


def test_accepted_and_rejected_counted_by_type_and_reason() -> None:
    handler, _, metrics = _handler()
    frames = [_frame(1, _hello(b"n1n1n1n1"), 0), _frame(1, TEL, 1), _frame(1, TEL, 2),
              _frame(1, TEL, 2),  # replayed
              b"\x00" * 10,  # bad_version
              _frame(1, TEL, 3)[:-1] + b"\x00"]  # bad_tag
    for f in frames:
        handler.handle(f, ("127.0.0.1", 5000), NOW)
    accepted = "shorewatch_frames_received_total"
    assert _count(metrics, accepted, "type", "hello") == 1
    assert _count(metrics, accepted, "type", "telemetry") == 2
    rejected = "shorewatch_frames_rejected_total"
    assert {r: _count(metrics, rejected, "reason", r) for r in REASONS if
            _count(metrics, rejected, "reason", r)} == {"replayed": 1, "bad_version": 1,
                                                       "bad_tag": 1}


def test_devices_share_one_copy_of_common_strings() -> None:
    handler, devices, _ = _handler()
    for dev in (1, 2):
        # A fresh string object per datagram, as the transports hand them over.
        host = "".join(["127.", "0.0.1"])
        handler.handle(_frame(dev, _hello(bytes([dev]) * 8), 0), (host, 6000 + dev), NOW)
    a, b = devices[1], devices[2]
    assert a.last_addr == ("127.0.0.1", 6001) and b.last_addr == ("127.0.0.1", 6002)
    assert a.last_addr is not None and b.last_addr is not None
    assert a.last_addr[0] is b.last_addr[0]
    assert (a.hw_kind, a.fw_version, a.boot_reason) == ("sensor_node", "1.2.3", "power_on")
    assert a.hw_kind is b.hw_kind and a.fw_version is b.fw_version
    assert a.boot_reason is b.boot_reason


def test_a_device_that_moves_is_answered_at_its_new_address() -> None:
    handler, devices, _ = _handler()
    handler.handle(_frame(1, _hello(b"abcdefgh"), 0), ("127.0.0.1", 7000), NOW)
    handler.handle(_frame(1, TEL, 1), ("127.0.0.2", 7001), NOW)
    assert devices[1].last_addr == ("127.0.0.2", 7001)


def test_loop_choice() -> None:
    assert loop_factory("asyncio") is None
    uvloop = pytest.importorskip("uvloop")
    assert loop_factory("auto") is uvloop.new_event_loop
    assert loop_factory("uvloop") is uvloop.new_event_loop
    factory = loop_factory("auto")
    assert factory is not None
    with asyncio.Runner(loop_factory=factory) as runner:
        assert runner.run(_loop_name()) == "Loop"


async def _loop_name() -> str:
    return type(asyncio.get_running_loop()).__name__


def test_loop_choice_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_uvloop(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "uvloop":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "uvloop", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    assert loop_factory("auto") is None  # falls back quietly
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        loop_factory("uvloop")


async def test_udp_socket_gets_a_large_receive_buffer() -> None:
    sock = await _bind_udp("127.0.0.1", 0)
    try:
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    finally:
        sock.close()
    cap, default = _sysctl("rmem_max"), _sysctl("rmem_default")
    # Linux doubles what it grants (bookkeeping) and caps the request at rmem_max.
    assert got >= min(UDP_RCVBUF, cap)
    assert got > default or cap <= default


def _sysctl(name: str) -> int:
    return int(Path(f"/proc/sys/net/core/{name}").read_text())


class _Blocking(Collector):
    """Renders only once the event loop has released it: it cannot if rendering blocks the loop."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.released: bool | None = None
        self.thread: int | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.thread = threading.get_ident()
        self.released = self.release.wait(5)
        yield GaugeMetricFamily("shorewatch_test_rendered", "rendered", value=1)


async def test_metrics_are_rendered_while_the_loop_keeps_running() -> None:
    registry = CollectorRegistry()
    blocking = _Blocking()
    registry.register(blocking)
    prepared: list[int] = []
    server = MetricsServer(registry, lambda: True, lambda: prepared.append(threading.get_ident()))
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(500):  # the loop runs while the collector waits for it
            if blocking.thread is not None:
                break
            await asyncio.sleep(0.01)
        blocking.release.set()
        response = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    finally:
        await server.close()
    assert blocking.released is True
    assert blocking.thread != threading.get_ident()
    assert prepared == [threading.get_ident()]  # session refresh on the loop, before rendering
    assert b"200 OK" in response and b"shorewatch_test_rendered 1.0" in response


class _CountingRegistry:
    def __init__(self) -> None:
        self.commits = 0
        self.rows: list[list[int]] = []  # device ids written, per commit

    def commit(self, rows: list[CounterRow], records: object) -> int:
        self.commits += 1
        self.rows.append(sorted(r.device_id for r in rows))
        return 0


def _welcomed_with_telemetry() -> tuple[FrameHandler, dict[int, DeviceState]]:
    """Both devices welcomed (committed) and one TELEMETRY each staged since."""
    handler, devices, _ = _handler()
    for dev in (1, 2):
        handler.handle(_frame(dev, _hello(bytes([dev]) * 8), 0), ("127.0.0.1", 5000), NOW)
        snapshot([devices[dev]]).show()
        effects = handler.handle(_frame(dev, TEL, 1), ("127.0.0.1", 5000), NOW)
        assert not effects  # nothing to queue: the device is dirty, its telemetry staged
        assert devices[dev].dirty and devices[dev].telemetry is None
    return handler, devices


async def test_a_reply_commits_at_once_with_its_device_only_telemetry_waits() -> None:
    _, devices = _welcomed_with_telemetry()
    registry = _CountingRegistry()
    sent: list[bytes] = []
    committer = Committer(registry, devices, GatewayMetrics(list),  # type: ignore[arg-type]
                          lambda frame, addr: sent.append(frame), lambda: None)
    task = asyncio.create_task(committer.run(idle_interval=3600))
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        assert registry.commits == 0  # telemetry alone waits for a reason to commit
        assert all(d.telemetry is None for d in devices.values())
        committer.submit(("127.0.0.1", 2), Effects(replies=[b"ack"], device=devices[2]))
        for _ in range(500):
            if sent:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert registry.rows == [[2]] and sent == [b"ack"]  # one transaction, the waiting device's
    assert devices[2].telemetry == TEL and not devices[2].dirty
    assert devices[1].telemetry is None and devices[1].dirty  # for the next full commit
    await committer.commit()  # full: every dirty device
    assert registry.rows == [[2], [1]] and devices[1].telemetry == TEL


async def test_telemetry_alone_commits_within_the_idle_interval() -> None:
    _, devices = _welcomed_with_telemetry()
    registry = _CountingRegistry()
    committer = Committer(registry, devices, GatewayMetrics(list),  # type: ignore[arg-type]
                          lambda frame, addr: None, lambda: None)
    task = asyncio.create_task(committer.run(idle_interval=0.05))
    try:
        for _ in range(500):
            if all(d.telemetry is not None for d in devices.values()):
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert registry.commits >= 1
    assert all(d.telemetry == TEL and not d.dirty for d in devices.values())
