"""Forward events to MQTT through aiomqtt, reconnecting with backoff and jitter.

aiomqtt does not reconnect by itself: the client is re-entered in a loop. Messages wait in a
bounded in-memory queue; a message is removed only after its publish was acknowledged (QoS 1).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Any

import aiomqtt

from .metrics import GatewayMetrics

log = logging.getLogger("shorewatch.mqtt")

# Bounds memory while the broker is away: ~1 KB per detection -> ~10 MB.
MAX_QUEUE = 10_000


class LinkState(Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str
    port: int
    prefix: str = "shorewatch"
    site: str = "demo"
    gateway_id: str = "gw0"
    username: str | None = None
    password: str | None = None
    keepalive: int = 30


class Forwarder:
    """Publishes queued (topic, payload) pairs; ``run`` is the long-lived task."""

    def __init__(self, settings: MqttSettings, metrics: GatewayMetrics,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self._metrics = metrics
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._queue: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self.state = LinkState.DISCONNECTED

    def topic(self, *parts: str) -> str:
        s = self.settings
        return "/".join((s.prefix, s.site, *parts))

    def submit(self, topic: str, payload: dict[str, Any]) -> None:
        """Queue a JSON message; drops (and counts) when the queue is full. Never blocks."""
        if len(self._queue) >= MAX_QUEUE:
            self._metrics.mqtt_dropped.inc()
            return
        self._queue.append((topic, json.dumps(payload, separators=(",", ":")).encode()))
        self._metrics.mqtt_queue.set(len(self._queue))
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.5
        while True:
            self.state = LinkState.CONNECTING
            try:
                async with self._client() as client:
                    self.state = LinkState.CONNECTED
                    self._metrics.mqtt_connected.set(1)
                    log.info("connected to MQTT %s:%d", self.settings.host, self.settings.port)
                    await self._publish_state(client, "online")
                    backoff = 0.5
                    try:
                        await self._drain(client)
                    except asyncio.CancelledError:
                        await self._goodbye(client)
                        raise
            except aiomqtt.MqttError as exc:
                self._metrics.mqtt_connected.set(0)
                self._metrics.mqtt_reconnects.inc()
                self.state = LinkState.DISCONNECTED
                delay = backoff * (0.5 + self._rng.random())
                log.warning("MQTT %s:%d unavailable: %s; retrying in %.1f s",
                            self.settings.host, self.settings.port, exc, delay)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, 30.0)

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        will = aiomqtt.Will(self.topic("gateway", s.gateway_id, "state"),
                            b'{"state":"offline"}', qos=1, retain=True)
        return aiomqtt.Client(s.host, s.port, identifier=f"shorewatch-{s.site}-{s.gateway_id}",
                              username=s.username, password=s.password, keepalive=s.keepalive,
                              will=will)

    async def _publish_state(self, client: aiomqtt.Client, state: str) -> None:
        topic = self.topic("gateway", self.settings.gateway_id, "state")
        await client.publish(topic, json.dumps({"state": state}).encode(), qos=1, retain=True)

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            while self._queue:
                topic, payload = self._queue[0]
                await client.publish(topic, payload, qos=1)
                self._queue.popleft()
                self._metrics.mqtt_published.inc()
                self._metrics.mqtt_queue.set(len(self._queue))
            self._wake.clear()
            await self._wake.wait()

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        """On shutdown, replace the Last Will with a clean offline state (bounded wait)."""
        try:
            async with asyncio.timeout(1.0):
                await self._publish_state(client, "offline")
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.warning("could not publish offline state: %s", exc)
