"""MQTT destinations: each publishes the durable outbox from its own cursor through aiomqtt.

aiomqtt does not reconnect by itself: the client is re-entered in a loop with exponential
backoff and jitter. A row's cursor advances only after its QoS 1 publish was acknowledged, so
delivery is at-least-once; per-device order is the outbox order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from dataclasses import dataclass, field
from enum import Enum

import aiomqtt

from .metrics import GatewayMetrics
from .outbox import Outbox

log = logging.getLogger("shorewatch.mqtt")

# Rows read per database round trip; bounds memory and keeps the cursor moving.
FETCH_BATCH = 200
# Poll the outbox at least this often even without a wake-up (belt and braces).
IDLE_POLL_S = 1.0


class LinkState(Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"


@dataclass(frozen=True, slots=True)
class TlsSettings:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str
    port: int
    prefix: str = "shorewatch"
    site: str = "demo"
    gateway_id: str = "gw0"
    name: str = "default"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TlsSettings | None = None
    # MQTT filters on the topic below <prefix>/<site>/, e.g. "device/+/event/detection".
    topics: tuple[str, ...] = ("#",)
    keepalive: int = 30


def _stop_if_cancelled() -> None:
    """Stop a task that was asked to stop even if the request got lost on the way: aiomqtt
    awaits ``asyncio.wait_for``, which on Python 3.11 swallows a cancellation that races the
    awaited future completing, and a forwarder that missed it would keep the gateway from
    shutting down."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT filter semantics: ``+`` matches one level, a final ``#`` the rest (or nothing)."""
    want = pattern.split("/")
    have = topic.split("/")
    for i, part in enumerate(want):
        if part == "#":
            return i == len(want) - 1
        if i >= len(have) or (part not in ("+", have[i])):
            return False
    return len(want) == len(have)


class Forwarder:
    """One destination. ``run`` is its long-lived task; ``wake`` signals new outbox rows."""

    def __init__(self, settings: MqttSettings, outbox: Outbox, metrics: GatewayMetrics,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self._outbox = outbox
        self._metrics = metrics
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._wake = asyncio.Event()
        self.state = LinkState.DISCONNECTED
        self.cursor = 0
        self.connected = asyncio.Event()

    @property
    def name(self) -> str:
        return self.settings.name

    def topic(self, *parts: str) -> str:
        s = self.settings
        return "/".join((s.prefix, s.site, *parts))

    def wake(self) -> None:
        self._wake.set()

    def wants(self, topic: str) -> bool:
        return any(topic_matches(f, topic) for f in self.settings.topics)

    async def run(self) -> None:
        self.cursor = await asyncio.to_thread(self._outbox.cursor, self.name)
        backoff = 0.5
        while True:
            _stop_if_cancelled()
            self.state = LinkState.CONNECTING
            try:
                async with self._client() as client:
                    self._up()
                    await self._publish_state(client, "online")
                    backoff = 0.5
                    try:
                        await self._drain(client)
                    except asyncio.CancelledError:
                        await self._goodbye(client)
                        raise
            except aiomqtt.MqttError as exc:
                self._down()
                delay = backoff * (0.5 + self._rng.random())
                log.warning("MQTT %s (%s:%d) unavailable: %s; retrying in %.1f s", self.name,
                            self.settings.host, self.settings.port, exc, delay)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, 30.0)

    def _up(self) -> None:
        self.state = LinkState.CONNECTED
        self.connected.set()
        self._metrics.mqtt_connected.labels(self.name).set(1)
        log.info("MQTT %s connected to %s:%d", self.name, self.settings.host, self.settings.port)

    def _down(self) -> None:
        self.state = LinkState.DISCONNECTED
        self.connected.clear()
        self._metrics.mqtt_connected.labels(self.name).set(0)
        self._metrics.mqtt_reconnects.labels(self.name).inc()

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        will = aiomqtt.Will(self.topic("gateway", s.gateway_id, "state"),
                            b'{"state":"offline"}', qos=1, retain=True)
        tls_context = None
        if s.tls is not None:
            tls_context = ssl.create_default_context(cafile=s.tls.ca_file)
            if s.tls.cert_file:
                tls_context.load_cert_chain(s.tls.cert_file, s.tls.key_file)
        return aiomqtt.Client(
            s.host, s.port, identifier=f"shorewatch-{s.site}-{s.gateway_id}-{s.name}",
            username=s.username, password=s.password, keepalive=s.keepalive, will=will,
            tls_context=tls_context, clean_session=True)

    async def _publish_state(self, client: aiomqtt.Client, state: str) -> None:
        topic = self.topic("gateway", self.settings.gateway_id, "state")
        await client.publish(topic, json.dumps({"state": state}).encode(), qos=1, retain=True)

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            _stop_if_cancelled()
            self._wake.clear()
            rows = await asyncio.to_thread(self._outbox.fetch, self.cursor, FETCH_BATCH)
            for row in rows:
                if self.wants(row.topic):
                    started = time.monotonic()
                    await client.publish(self.topic(row.topic), row.payload, qos=1)
                    self._metrics.mqtt_publish_seconds.labels(self.name).observe(
                        time.monotonic() - started)
                    self._metrics.mqtt_published.labels(self.name).inc()
                self.cursor = row.id
            if rows:
                await asyncio.to_thread(self._outbox.advance, self.name, self.cursor)
                continue
            try:
                async with asyncio.timeout(IDLE_POLL_S):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        """On shutdown, replace the Last Will with a clean offline state (bounded wait)."""
        try:
            async with asyncio.timeout(1.0):
                await self._publish_state(client, "offline")
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.warning("could not publish offline state to %s: %s", self.name, exc)
