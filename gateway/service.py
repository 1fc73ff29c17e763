"""The gateway service: UDP intake, registry flushing, MQTT forwarding and metrics in one loop."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from .core import Address, DetectionEvent, FrameHandler, detection_payload
from .http import MetricsServer
from .metrics import GatewayMetrics
from .mqtt import Forwarder, LinkState, MqttSettings
from .registry import DeviceState, Registry, apply_reservations, snapshot

log = logging.getLogger("shorewatch.gateway")


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    data_dir: Path
    mqtt: MqttSettings
    udp_host: str = "127.0.0.1"
    udp_port: int = 4700
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    # Counter state reaches the disk at least this often (and whenever a reservation runs low).
    flush_interval_s: float = 0.2
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "registry.sqlite3"


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, handler: FrameHandler) -> None:
        self._handler = handler
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        for reply in self._handler.handle(data, (addr[0], addr[1])):
            assert self.transport is not None
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.warning("UDP socket error: %s", exc)


class Gateway:
    """One gateway instance. ``run`` returns after ``stop()`` with state flushed."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.devices: dict[int, DeviceState] = {}
        self.metrics = GatewayMetrics(lambda: list(self.devices.values()))
        self.forwarder = Forwarder(settings.mqtt, self.metrics)
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
            await self._flush(registry)  # reserve downlink counters before the first reply
            handler = FrameHandler(self.devices, self.metrics, self._forward)
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(handler), local_addr=(s.udp_host, s.udp_port))
            self.udp_port = transport.get_extra_info("sockname")[1]
            http = MetricsServer(self.metrics.registry, self._healthy)
            self.metrics_port = await http.start(s.metrics_host, s.metrics_port)
            try:
                await self._serve(registry, ready)
            finally:
                transport.close()  # stop intake first, then persist what it produced
                await http.close()
                await self._flush(registry)
        finally:
            await asyncio.to_thread(registry.close)
        log.info("gateway stopped, state flushed")

    async def _serve(self, registry: Registry, ready: Callable[[Gateway], None] | None) -> None:
        async with asyncio.TaskGroup() as tg:
            mqtt = tg.create_task(self.forwarder.run(), name="mqtt")
            flush = tg.create_task(self._flush_loop(registry), name="flush")
            log.info("gateway up: %d devices, udp %s:%d, metrics %s:%d", len(self.devices),
                     self.settings.udp_host, self.udp_port, self.settings.metrics_host,
                     self.metrics_port)
            if ready is not None:
                ready(self)
            await self._stop.wait()
            flush.cancel()
            mqtt.cancel()

    def _healthy(self) -> bool:
        return self.forwarder.state is LinkState.CONNECTED

    def _forward(self, event: DetectionEvent) -> None:
        topic = self.forwarder.topic("device", f"{event.device_id:08x}", "event", "detection")
        self.forwarder.submit(topic, detection_payload(event, self.settings.mqtt.gateway_id))

    async def _flush(self, registry: Registry) -> None:
        rows = snapshot(list(self.devices.values()))
        if rows:
            await asyncio.to_thread(registry.write, rows)
            apply_reservations(self.devices, rows)

    async def _flush_loop(self, registry: Registry) -> None:
        while True:
            await asyncio.sleep(self.settings.flush_interval_s)
            try:
                await self._flush(registry)
            except sqlite3.Error as exc:
                # Keep serving: unpersisted reservations are simply not used (replies deferred).
                log.error("cannot persist counter state: %s (disk full or read-only?)", exc)
