"""The gateway service: intake, group commit, MQTT destinations and metrics in one event loop."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from .core import Address, Effects, FrameHandler
from .http import MetricsServer
from .metrics import GatewayMetrics
from .mqtt import Forwarder, LinkState, MqttSettings
from .outbox import Outbox
from .registry import DeviceState, Registry, apply_reservations, snapshot

log = logging.getLogger("shorewatch.gateway")


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    max_rows: int = 100_000
    max_age_s: float = 7 * 86400.0
    trim_interval_s: float = 5.0


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    data_dir: Path
    mqtt: tuple[MqttSettings, ...]
    gateway_id: str = "gw0"
    udp_host: str = "127.0.0.1"
    udp_port: int = 4700
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    # Window state of frames without effects (telemetry) reaches the disk at least this often;
    # frames with effects (replies, events) are committed at once, before the effects.
    flush_interval_s: float = 0.2
    outbox: OutboxLimits = field(default_factory=OutboxLimits)

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "registry.sqlite3"


class Committer:
    """Group commit: counter state and outbox rows reach SQLite before replies and events leave.

    Frames accepted while a commit runs join the next one, so the batch grows with the load.
    """

    def __init__(self, registry: Registry, devices: dict[int, DeviceState],
                 metrics: GatewayMetrics, send: Callable[[bytes, Address], None],
                 published: Callable[[], None]) -> None:
        self._registry = registry
        self._devices = devices
        self._metrics = metrics
        self._send = send
        self._published = published
        self._pending: list[tuple[Address, Effects]] = []
        self._wake = asyncio.Event()

    def submit(self, source: Address, effects: Effects) -> None:
        self._pending.append((source, effects))
        self._wake.set()

    async def run(self, idle_interval: float) -> None:
        while True:
            try:
                async with asyncio.timeout(idle_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            await self.commit()

    async def commit(self) -> None:
        batch, self._pending = self._pending, []
        rows = snapshot(list(self._devices.values()))
        records = [r for _, e in batch for r in e.records]
        if not rows and not records and not batch:
            return
        started = time.monotonic()
        try:
            await asyncio.to_thread(self._registry.commit, rows, records)
        except sqlite3.Error as exc:
            # Nothing is released: devices get no ACK and retransmit; nothing is lost.
            self._metrics.commit_errors.inc()
            for s in rows:
                dev = self._devices.get(s.device_id)
                if dev is not None:
                    dev.dirty = True
            log.error("commit failed, %d replies withheld: %s (disk full or read-only?)",
                      len(batch), exc)
            return
        self._metrics.commit_seconds.observe(time.monotonic() - started)
        apply_reservations(self._devices, rows)
        for source, effects in batch:
            for reply in effects.replies:
                self._send(reply, source)
        if records:
            self._published()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, handler: FrameHandler, committer: Committer) -> None:
        self._handler = handler
        self._committer = committer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        source = (addr[0], addr[1])
        effects = self._handler.handle(data, source)
        if effects:
            self._committer.submit(source, effects)

    def send(self, frame: bytes, addr: Address) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(frame, addr)

    def error_received(self, exc: Exception) -> None:
        log.warning("UDP socket error: %s", exc)


class Gateway:
    """One gateway instance. ``run`` returns after ``stop()`` with state flushed."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.devices: dict[int, DeviceState] = {}
        self.metrics = GatewayMetrics(lambda: list(self.devices.values()))
        self.forwarders: list[Forwarder] = []
        self._udp: _Udp | None = None
        self._stop = asyncio.Event()
        self.udp_port = 0
        self.metrics_port = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self, ready: Callable[[Gateway], None] | None = None) -> None:
        s = self.settings
        registry = await asyncio.to_thread(Registry, s.registry_path)
        try:
            self.devices = await asyncio.to_thread(registry.load)
            outbox = Outbox(registry)
            self.forwarders = [Forwarder(m, outbox, self.metrics) for m in s.mqtt]
            handler = FrameHandler(self.devices, self.metrics, s.gateway_id)
            committer = Committer(registry, self.devices, self.metrics, self._send,
                                  self._wake_forwarders)
            udp = self._udp = _Udp(handler, committer)
            await committer.commit()  # reserve downlink counters before the first reply
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                lambda: udp, local_addr=(s.udp_host, s.udp_port))
            self.udp_port = transport.get_extra_info("sockname")[1]
            http = MetricsServer(self.metrics.registry, self._healthy)
            self.metrics_port = await http.start(s.metrics_host, s.metrics_port)
            try:
                await self._serve(committer, outbox, ready)
            finally:
                transport.close()  # stop intake first, then persist what it produced
                await http.close()
                await committer.commit()
        finally:
            await asyncio.to_thread(registry.close)
        log.info("gateway stopped, state flushed")

    async def _serve(self, committer: Committer, outbox: Outbox,
                     ready: Callable[[Gateway], None] | None) -> None:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(f.run(), name=f"mqtt-{f.name}") for f in self.forwarders]
            tasks.append(tg.create_task(committer.run(self.settings.flush_interval_s),
                                        name="commit"))
            tasks.append(tg.create_task(self._trim_loop(outbox), name="outbox-trim"))
            log.info("gateway up: %d devices, udp %s:%d, metrics %s:%d, %d MQTT destinations",
                     len(self.devices), self.settings.udp_host, self.udp_port,
                     self.settings.metrics_host, self.metrics_port, len(self.forwarders))
            if ready is not None:
                ready(self)
            await self._stop.wait()
            for task in tasks:
                task.cancel()

    def _send(self, frame: bytes, addr: Address) -> None:
        if self._udp is not None:
            self._udp.send(frame, addr)

    def _healthy(self) -> bool:
        return all(f.state is LinkState.CONNECTED for f in self.forwarders)

    def _wake_forwarders(self) -> None:
        for f in self.forwarders:
            f.wake()

    async def _trim_loop(self, outbox: Outbox) -> None:
        limits = self.settings.outbox
        names = [f.name for f in self.forwarders]
        while True:
            await asyncio.sleep(limits.trim_interval_s)
            try:
                dropped = await asyncio.to_thread(outbox.trim, names, limits.max_rows,
                                                  limits.max_age_s, time.time())
            except sqlite3.Error as exc:
                log.error("outbox trim failed: %s", exc)
                continue
            for name, count in dropped.items():
                log.warning("outbox bound reached: %d events dropped for %s", count, name)
