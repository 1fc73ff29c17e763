"""Device links on real peers: a pseudo-terminal as the serial port, UDP on IPv6 loopback, and
mDNS browsed with a real zeroconf browser on 127.0.0.1.

The gateway runs in-process (real registry, real Mosquitto as its MQTT destination); the device
side is this test, speaking the protocol with the CPython codec.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tty
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import serial
from zeroconf import ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from gateway.core import Address
from gateway.mdns import SERVICE_TYPE, MdnsSettings
from gateway.metrics import GatewayMetrics
from gateway.mqtt import MqttSettings
from gateway.registry import Registry
from gateway.service import Gateway, GatewaySettings
from gateway.transports import Link, PortState, SerialLink, SerialSettings, UdpSettings
from protocol import (
    BootReason,
    DeviceKeys,
    Direction,
    HardwareKind,
    Hello,
    Message,
    ReplayWindow,
    StreamDecoder,
    Telemetry,
    Welcome,
    cobs_encode,
    encode_frame,
    open_frame,
    peek_header,
)
from protocol.limits import MAX_STREAM_FRAME
from protocol.schema import SCHEMA_FINGERPRINT
from shorewatch.peers import Mosquitto

pytestmark = pytest.mark.integration

DEV = 0x5A17D001
KEY = bytes(range(32))
KEYS = DeviceKeys.from_master(KEY)
TEL = Telemetry(3700, 5000, -20, 1500, 120, -60, 100, 1, 300, 0)
# Generous: two shared cores; a healthy run takes well under a second per step.
STEP_S = 10.0
FAST_RETRY = {"retry_initial_s": 0.02, "retry_max_s": 0.1}


def hello(nonce: bytes) -> Hello:
    return Hello(0, 1, 0, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0x19, SCHEMA_FINGERPRINT,
                 nonce)


def up(msg: Message, counter: int) -> bytes:
    return encode_frame(msg, keys=KEYS, direction=Direction.UP, device_id=DEV, counter=counter)


@pytest.fixture(autouse=True)
async def loop_guard(caplog: pytest.LogCaptureFixture) -> AsyncIterator[None]:
    """Fail a test whose loop ran a callback for too long, or was called from a wrong thread."""
    loop = asyncio.get_running_loop()
    loop.set_debug(True)  # also raises on loop calls from other threads
    loop.slow_callback_duration = 0.5
    yield
    slow = [r.getMessage() for r in caplog.records
            if r.name == "asyncio" and "took" in r.getMessage()]
    assert not slow, f"the event loop was blocked: {slow}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    registry = Registry(tmp_path / "data" / "registry.sqlite3")
    try:
        registry.add(DEV, KEY, name="pty-node")
    finally:
        registry.close()
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path, mosquitto: Mosquitto,
             topic_prefix: str) -> Callable[..., GatewaySettings]:
    def make(**kw: Any) -> GatewaySettings:
        mqtt = MqttSettings(mosquitto.host, mosquitto.port, prefix=topic_prefix, site="links",
                            gateway_id=kw.get("gateway_id", "gw0"))
        base: dict[str, Any] = {"data_dir": data_dir, "mqtt": (mqtt,), "metrics_port": 0,
                                "udp": (UdpSettings("127.0.0.1", 0),)}
        return GatewaySettings(**{**base, **kw})
    return make


@contextlib.asynccontextmanager
async def running(settings: GatewaySettings) -> AsyncIterator[Gateway]:
    """The gateway in this event loop, from READY until stopped (it must stop cleanly)."""
    gateway = Gateway(settings)
    up_event = asyncio.Event()
    task = asyncio.create_task(gateway.run(lambda _gw: up_event.set()), name="gateway")
    waiter = asyncio.create_task(up_event.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, timeout=STEP_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            raise AssertionError("gateway returned during start-up")
        assert waiter in done, f"gateway not ready within {STEP_S} s"
        yield gateway
        assert not task.done(), "gateway stopped by itself"
    finally:
        waiter.cancel()
        gateway.stop()
        await asyncio.wait({task}, timeout=STEP_S)
        if not task.done():
            stuck = "\n".join(f"{t.get_name()}: {_awaiting(t)}"
                              for t in asyncio.all_tasks() if not t.done())
            task.cancel()
            raise AssertionError(f"gateway did not stop within {STEP_S} s; tasks:\n{stuck}")
        task.result()


def _awaiting(task: asyncio.Task[Any]) -> str:
    """Where a task is suspended, innermost last (for a shutdown that hangs)."""
    where = []
    coro: Any = task.get_coro()
    for _ in range(20):
        frame = getattr(coro, "cr_frame", None)
        if frame is None:
            break
        where.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None)
    return " > ".join(where) + f" ({coro!r}, cancelling={task.cancelling()})"


class Pty:
    """The device end of a pseudo-terminal; the gateway opens ``path`` like /dev/ttyUSB0."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        # Raw before the gateway opens it: no echo or line editing of early bytes. The slave
        # stays open here so the master does not hang up while the gateway reopens.
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        os.set_blocking(self.master, False)
        self.decoder = StreamDecoder()
        self.frames: asyncio.Queue[bytes] = asyncio.Queue()
        self.down = ReplayWindow()
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except BlockingIOError:
            return
        for item in self.decoder.feed(data):
            assert isinstance(item, bytes), f"gateway sent a broken stream: {item}"
            self.frames.put_nowait(item)

    async def write(self, data: bytes, *, chunk: int = 4096, pause: float = 0.0) -> None:
        view = memoryview(data)
        async with asyncio.timeout(STEP_S):
            while view:
                try:
                    n = os.write(self.master, view[:chunk])
                except BlockingIOError:  # the tty buffer is full until the gateway reads
                    await asyncio.sleep(0.005)
                    continue
                view = view[n:]
                if pause:
                    await asyncio.sleep(pause)

    async def reply(self) -> Message:
        """The next downlink frame, authenticated with the device's keys."""
        async with asyncio.timeout(STEP_S):
            frame = await self.frames.get()
        header = peek_header(frame, Direction.DOWN)
        return open_frame(frame, header, KEYS, self.down, 8).message

    def close(self) -> None:
        """Like pulling the USB cable: the path disappears and the gateway's reads fail."""
        self._loop.remove_reader(self.master)
        os.close(self.master)
        os.close(self._slave)


@pytest.fixture
async def pty() -> AsyncIterator[Pty]:
    p = Pty()
    yield p
    with contextlib.suppress(OSError):
        p.close()


async def until(check: Callable[[], bool], what: str, poll: float = 0.01) -> None:
    """Poll a condition that has no event of its own (metrics, retry counters), bounded."""
    for _ in range(int(STEP_S / poll)):
        if check():
            return
        await asyncio.sleep(poll)
    raise AssertionError(f"{what} (after {STEP_S} s)")


def sample(gw: Gateway, name: str, **labels: str) -> float:
    value = gw.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_serial_pty_hello_welcome_telemetry_and_stream_errors(
        pty: Pty, settings: Callable[..., GatewaySettings]) -> None:
    async with running(settings(serial=(SerialSettings(pty.path),))) as gw:
        link = gw.serial[0]
        async with asyncio.timeout(STEP_S):
            await link.opened.wait()
        assert sample(gw, "shorewatch_serial_port_open", port=pty.path) == 1

        # Idle fill, a COBS block running past its delimiter, then HELLO one byte per write.
        await pty.write(b"\0\0" + b"\x07abc\0")
        await pty.write(cobs_encode(up(hello(b"pty-hell"), 1)), chunk=1, pause=0.002)
        welcome = await pty.reply()
        assert isinstance(welcome, Welcome)
        assert welcome.nonce == b"pty-hell"

        # An overlong run without a delimiter, then telemetry right behind it in one write.
        await pty.write(b"\x01" * (MAX_STREAM_FRAME + 100) + b"\0" + cobs_encode(up(TEL, 2)))
        await until(lambda: gw.devices[DEV].telemetry == TEL, "telemetry not applied")

        state = gw.devices[DEV]
        assert state.fw_version == "0.1.0" and state.last_addr == (f"serial:{pty.path}", 0)
        assert sample(gw, "shorewatch_frames_rejected_total", reason="cobs") == 1
        assert sample(gw, "shorewatch_frames_rejected_total", reason="overflow") == 1
        assert sample(gw, "shorewatch_frames_received_total", type="hello") == 1
        assert sample(gw, "shorewatch_frames_received_total", type="telemetry") == 1
        assert pty.frames.empty()  # telemetry gets no reply
    assert sample(gw, "shorewatch_serial_port_open", port=pty.path) == 0


def _records(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def test_serial_port_missing_unplugged_and_back(
        tmp_path: Path, settings: Callable[..., GatewaySettings],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shorewatch")
    by_id = tmp_path / "ttyUSB0"  # a udev-style symlink, re-pointed on replug
    async with running(settings(serial=(SerialSettings(str(by_id), **FAST_RETRY),))) as gw:
        link = gw.serial[0]
        await until(lambda: link.failures >= 3, "no retries while the port is missing")
        missing = _records(caplog, f"port {by_id} is missing")
        assert len(missing) == 1, missing
        assert "is the device plugged in?" in missing[0]

        first = Pty()
        by_id.symlink_to(first.path)
        async with asyncio.timeout(STEP_S):
            await link.opened.wait()
        await first.write(cobs_encode(up(hello(b"plugged1"), 1)))
        assert (await first.reply()).nonce == b"plugged1"  # type: ignore[attr-defined]

        first.close()  # unplug
        await until(lambda: link.state is PortState.RETRYING and link.failures >= 3,
                    "the lost port was not retried")
        lost = _records(caplog, f"port {by_id} was lost")
        assert len(lost) == 1, lost
        assert "was the device unplugged?" in lost[0]
        assert len(_records(caplog, f"port {by_id} is missing")) == 1  # not repeated

        second = Pty()
        by_id.unlink()
        by_id.symlink_to(second.path)
        try:
            async with asyncio.timeout(STEP_S):
                await link.opened.wait()
            await second.write(cobs_encode(up(hello(b"plugged2"), 2)))
            assert (await second.reply()).nonce == b"plugged2"  # type: ignore[attr-defined]
        finally:
            second.close()
        assert _records(caplog, f"port {by_id} is back after")


async def test_serial_port_busy_names_the_cause(pty: Pty,
                                                caplog: pytest.LogCaptureFixture) -> None:
    holder = await asyncio.to_thread(serial.serial_for_url, pty.path, exclusive=True)
    metrics = GatewayMetrics(list)
    frames: list[tuple[bytes, Address]] = []

    def deliver(frame: bytes, source: Address, link: Link) -> None:
        frames.append((frame, source))

    link = SerialLink(SerialSettings(pty.path, **FAST_RETRY), deliver, metrics)
    task = asyncio.create_task(link.run())
    try:
        await until(lambda: link.failures >= 3, "no retries while the port is busy")
        busy = _records(caplog, f"port {pty.path} is busy (is another program using it?)")
        assert len(busy) == 1, busy
        await asyncio.to_thread(holder.close)
        async with asyncio.timeout(STEP_S):
            await link.opened.wait()
        await pty.write(cobs_encode(b"\x42"))
        await until(lambda: bool(frames), "frame not delivered after the port was freed")
        assert frames == [(b"\x42", (f"serial:{pty.path}", 0))]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if holder.is_open:
            holder.close()
    assert link.state is PortState.CLOSED


def _require_ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        pytest.fail(f"IPv6 loopback (::1) is unavailable here ({exc}): the IPv6 listener cannot "
                    "be tested. Enable it: sysctl -w net.ipv6.conf.lo.disable_ipv6=0")


async def _udp_round_trip(family: socket.AddressFamily, server: tuple[str, int],
                          frame: bytes) -> tuple[bytes, tuple[Any, ...]]:
    loop = asyncio.get_running_loop()
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind((server[0], 0))
        await loop.sock_sendto(sock, frame, server)
        async with asyncio.timeout(STEP_S):
            data, addr = await loop.sock_recvfrom(sock, 2048)
    return data, addr


async def test_udp_ipv6_and_ipv4_listeners_reply_on_their_own_socket(
        settings: Callable[..., GatewaySettings]) -> None:
    _require_ipv6_loopback()
    listeners = (UdpSettings("::1", 0), UdpSettings("127.0.0.1", 0))
    async with running(settings(udp=listeners)) as gw:
        v6, v4 = gw.udp[0].address, gw.udp[1].address
        assert v6[0] == "::1" and v4[0] == "127.0.0.1"
        assert gw.udp_port == v6[1]
        down = ReplayWindow()
        for counter, (family, server) in enumerate(
                ((socket.AF_INET6, v6), (socket.AF_INET, v4)), start=1):
            nonce = f"udp-{counter:04d}".encode()
            data, addr = await _udp_round_trip(family, server, up(hello(nonce), counter))
            assert (addr[0], addr[1]) == server  # the reply left from the listener it reached
            welcome = open_frame(data, peek_header(data, Direction.DOWN), KEYS, down, 8).message
            assert isinstance(welcome, Welcome) and welcome.nonce == nonce
        assert gw.devices[DEV].last_addr is not None
        assert gw.devices[DEV].last_addr[0] == "127.0.0.1"
        assert sample(gw, "shorewatch_frames_received_total", type="hello") == 2


async def test_mdns_advertisement_is_browsed_resolved_and_withdrawn(
        settings: Callable[..., GatewaySettings]) -> None:
    instance = f"Shorewatch test {uuid.uuid4().hex[:8]}"
    name = f"{instance}.{SERVICE_TYPE}"
    mdns = MdnsSettings(interfaces=("127.0.0.1",), instance=instance,
                        admin_url="http://127.0.0.1:8080/")
    browser_zc = AsyncZeroconf(interfaces=["127.0.0.1"])
    events: asyncio.Queue[tuple[str, ServiceStateChange]] = asyncio.Queue()

    def on_change(zeroconf: Zeroconf, service_type: str, name: str,
                  state_change: ServiceStateChange) -> None:
        events.put_nowait((name, state_change))

    async def seen(change: ServiceStateChange) -> None:
        async with asyncio.timeout(STEP_S):
            while await events.get() != (name, change):
                pass

    browser = AsyncServiceBrowser(browser_zc.zeroconf, SERVICE_TYPE, handlers=[on_change])
    try:
        async with running(settings(mdns=mdns, gateway_id="gw-mdns")) as gw:
            assert gw.mdns is not None and gw.mdns.registered.is_set()  # before READY
            await seen(ServiceStateChange.Added)
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            assert await info.async_request(browser_zc.zeroconf, 3000), "not resolved"
            assert info.port == gw.udp_port
            assert info.parsed_addresses() == ["127.0.0.1"]
            assert info.decoded_properties == {
                "proto": "1", "site": "links", "gateway": "gw-mdns",
                "metrics": f"http://127.0.0.1:{gw.metrics_port}/metrics",
                "admin": "http://127.0.0.1:8080/",
            }
        await seen(ServiceStateChange.Removed)  # goodbye packets at shutdown
    finally:
        await browser.async_cancel()
        await browser_zc.async_close()


async def test_mdns_failure_is_reported_and_the_gateway_serves_without_it(
        settings: Callable[..., GatewaySettings], caplog: pytest.LogCaptureFixture) -> None:
    # 192.0.2.1 (TEST-NET-1) is not an address of this host: zeroconf cannot bind to it.
    mdns = MdnsSettings(interfaces=("192.0.2.1",))
    async with running(settings(mdns=mdns)) as gw:
        assert gw.mdns is None
        errors = _records(caplog, "mDNS: cannot advertise")
        assert len(errors) == 1 and "set [mdns] interfaces" in errors[0], errors
        data, _ = await _udp_round_trip(socket.AF_INET, gw.udp[0].address,
                                        up(hello(b"no-mdns!"), 1))
        assert peek_header(data, Direction.DOWN).device_id == DEV
