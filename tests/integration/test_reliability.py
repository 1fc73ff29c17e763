"""Delivery through crashes: the broker and the gateway killed mid-stream, and a destination down.

Simulated devices (shorewatch.loadgen) stream detections and retransmit each one, with a fresh
counter, until the gateway ACKs it, as the firmware does. Subscribers keep a persistent MQTT
session (clean_session=False on a broker that saves every change), so what they assert is the
gateway's delivery, not a race between their reconnect and the gateway's.

What is asserted, per device:

- *delivered*: every detection the device got an ACK for reaches the subscriber (in these runs
  every detection is ACKed in the end, so all of them);
- *nothing invented, duplicates only as copies*: every event carries the idempotency key of a
  detection the device observed, with that detection's content; a key may arrive several times
  (re-publication after a crash, or a retransmission the gateway accepted again), and a gateway
  sequence number ``seq`` never stands for two different keys (no sequence reuse after a crash);
- *order*: taking only the first arrival of each key, the device's events arrive in the order the
  device observed them, and their ``seq`` strictly increases. (The devices here send one
  detection at a time, stop-and-wait, so observation order is also the order the gateway
  accepted them; later copies of an earlier key may arrive after newer keys.)
- *no replay after restart*: every frame the gateway had committed before SIGKILL (all frames of a
  device up to its last ACKed counter) is re-sent to the restarted gateway and is rejected as
  ``replayed`` or ``too_old``, none accepted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from gateway.mqtt import LinkState, MqttSettings
from gateway.service import Gateway, GatewaySettings
from shorewatch.harness import GatewayProcess, Metrics
from shorewatch.loadgen import (
    LoadGenerator,
    LoadProfile,
    SimDevice,
    make_fleet,
    register_fleet,
    udp_socket_stats,
)
from shorewatch.peers import Mosquitto

pytestmark = pytest.mark.integration

DEVICES = 12
STREAM_S = 8.0
# ~80 detections/s over the fleet, one in flight per device.
PROFILE = LoadProfile(telemetry_interval_s=0.3, detection_interval_s=0.15, max_in_flight=1,
                      ack_timeout_s=0.3, max_ack_timeout_s=1.0, record_frames=True, sockets=2)
# Bounds for waits that normally take well under a second (a forwarder's reconnect backoff can
# reach ~12 s after a long outage).
DELIVERY_TIMEOUT_S = 60.0


class Subscriber:
    """Collects detection events in arrival order, reconnecting with its persistent session."""

    def __init__(self, broker: Mosquitto, topic: str, client_id: str) -> None:
        self.broker = broker
        self.topic = topic
        self.client_id = client_id
        self.received: list[dict[str, Any]] = []
        self.connects = 0
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        deadline = time.monotonic() + 300  # cancelled long before; bounded all the same
        while time.monotonic() < deadline:
            try:
                async with aiomqtt.Client(self.broker.host, self.broker.port,
                                          identifier=self.client_id,
                                          clean_session=False) as client:
                    await client.subscribe(self.topic, qos=1)
                    self.connects += 1
                    self.subscribed.set()
                    async for message in client.messages:
                        self.received.append(json.loads(bytes(message.payload)))
            except aiomqtt.MqttError:
                self.subscribed.clear()
                await asyncio.sleep(0.05)

    def keys(self) -> set[str]:
        return {e["idempotency_key"] for e in self.received}

    async def wait_for(self, keys: set[str], within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while not keys <= self.keys():
            missing = len(keys - self.keys())
            assert time.monotonic() < deadline, f"{self.client_id}: {missing} events missing"
            await asyncio.sleep(0.1)


async def _prepare_session(broker: Mosquitto, client_id: str, topic: str) -> None:
    """Create the subscriber's persistent session and have the broker save it to disk."""
    async with aiomqtt.Client(broker.host, broker.port, identifier=client_id,
                              clean_session=False) as client:
        await client.subscribe(topic, qos=1)
    await asyncio.to_thread(broker.stop)  # a clean stop writes the session to disk
    await asyncio.to_thread(broker.restart)


def check_delivery(devices: list[SimDevice], received: list[dict[str, Any]]) -> int:
    """The module docstring's delivery, copy and order rules; returns the number of copies."""
    sent = {d.key: d for dev in devices for d in dev.detections}
    acked = {k for k, d in sent.items() if d.acked_counter is not None}
    arrived = {e["idempotency_key"] for e in received}
    assert arrived <= set(sent), f"events nobody observed: {sorted(arrived - set(sent))[:5]}"
    assert acked <= arrived, f"{len(acked - arrived)} acknowledged detections never delivered"
    seq_key: dict[tuple[str, int], str] = {}
    for e in received:
        d = sent[e["idempotency_key"]]
        assert (e["device"], e["event_id"], e["lifecycle"], e["time"]) == (
            f"{d.device_id:08x}", f"{d.device_id:08x}-{d.event_id:08x}",
            d.lifecycle.name.lower(), d.ts_s + d.ts_ms / 1000), e
        assert seq_key.setdefault((e["device"], e["seq"]), e["idempotency_key"]) == \
            e["idempotency_key"], f"seq {e['seq']} of {e['device']} names two events"
    for dev in devices:
        firsts: list[dict[str, Any]] = []
        seen: set[str] = set()
        for e in received:
            if e["device"] == f"{dev.device_id:08x}" and e["idempotency_key"] not in seen:
                seen.add(e["idempotency_key"])
                firsts.append(e)
        assert [e["idempotency_key"] for e in firsts] == [d.key for d in dev.detections]
        seqs = [e["seq"] for e in firsts]
        assert all(a < b for a, b in itertools.pairwise(seqs)), seqs
    return len(received) - len(arrived)


async def _quiet(gw: GatewayProcess, within_s: float = 20.0) -> Metrics:
    """Metrics once the gateway's socket is drained and two scrapes agree."""
    deadline = time.monotonic() + within_s
    last = None
    while time.monotonic() < deadline:
        stats = udp_socket_stats(gw.udp_port)
        m = await asyncio.to_thread(gw.scrape)
        key = (m.total("shorewatch_frames_received_total"),
               m.total("shorewatch_frames_rejected_total"))
        if stats is not None and stats.rx_queue == 0 and key == last:
            return m
        last = key
        await asyncio.sleep(0.2)
    raise AssertionError("the gateway did not settle")


@dataclass
class Life:
    """One gateway process: when it was started, and the first uplink counter of each device
    sent while it was surely up (after start returned) and surely up no more (at the kill)."""

    started_at: float
    first: dict[int, int]
    end: dict[int, int] | None = None


class Lives:
    """The gateway's successive processes, to tell which frames each one had committed."""

    def __init__(self, gw: GatewayProcess, devices: list[SimDevice]) -> None:
        self.gw = gw
        self.devices = devices
        self.lives: list[Life] = []

    def _counters(self) -> dict[int, int]:
        return {d.device_id: d.counter for d in self.devices}

    async def start(self) -> None:
        started = time.monotonic()
        await asyncio.to_thread(self.gw.start)
        self.lives.append(Life(started, self._counters()))

    async def kill(self) -> None:
        kernel = udp_socket_stats(self.gw.udp_port)
        # Nothing dropped at the socket: every frame sent before an ACKed one was handled first.
        assert kernel is not None and kernel.drops == 0
        self.lives[-1].end = self._counters()
        await asyncio.to_thread(self.gw.kill)

    def accepted_frames(self) -> list[bytes]:
        """Frames the gateway must refuse from now on: those a killed process had committed
        (sent while it was up, at or below a counter it ACKed, since the ACK left after the
        commit that covered them) and every frame the running process received."""
        frames = []
        for i, life in enumerate(self.lives):
            until = self.lives[i + 1].started_at if i + 1 < len(self.lives) else math.inf
            for dev in self.devices:
                first = life.first[dev.device_id]
                if life.end is None:
                    frames.extend(f for c, f in dev.frames or [] if c >= first)
                    continue
                acked = [d.acked_counter for d in dev.detections if d.acked_counter is not None
                         and d.acked_at is not None and life.started_at <= d.acked_at < until]
                last = min(max(acked, default=-1), life.end[dev.device_id] - 1)
                frames.extend(f for c, f in dev.frames or [] if first <= c <= last)
        return frames


async def test_broker_and_gateway_killed_mid_stream(tmp_path: Path, topic_prefix: str) -> None:
    broker = Mosquitto(tmp_path / "mq", persistence=True).start()
    topic = f"{topic_prefix}/rel/device/+/event/detection"
    fleet = make_fleet(DEVICES, seed=41)
    register_fleet(tmp_path / "gw" / "registry.sqlite3", fleet)
    gw = GatewayProcess(tmp_path / "gw", mqtt=(broker.host, broker.port), prefix=topic_prefix,
                        site="rel", workdir=tmp_path / "run")
    sub = Subscriber(broker, topic, f"{topic_prefix}-sub")
    sub_task: asyncio.Task[None] | None = None
    try:
        await _prepare_session(broker, sub.client_id, topic)
        sub_task = asyncio.create_task(sub.run())
        await asyncio.wait_for(sub.subscribed.wait(), 10)
        async with LoadGenerator(fleet, ("127.0.0.1", 0), PROFILE, seed=7) as lg:
            lives = Lives(gw, lg.devices)
            await lives.start()
            lg.target = ("127.0.0.1", gw.udp_port)
            assert await lg.connect(timeout_s=10) == DEVICES
            stream = asyncio.create_task(lg.run(STREAM_S))
            # 1. The gateway dies while it publishes to a live broker (re-publication).
            await asyncio.sleep(1.5)
            await lives.kill()
            acked_at_kill = lg.stats.events["acked"]
            await asyncio.sleep(0.8)  # devices retransmit into the void meanwhile
            await lives.start()
            # 2. The broker dies; during its outage the gateway dies too, its backlog on disk.
            await asyncio.sleep(1.2)
            await asyncio.to_thread(broker.kill)
            await asyncio.sleep(1.0)
            await lives.kill()
            await asyncio.sleep(1.0)
            await asyncio.to_thread(broker.restart)
            await asyncio.sleep(0.3)
            await lives.start()
            acked_at_restart = lg.stats.events["acked"]
            await stream
            assert await lg.drain(timeout_s=30), f"{lg.pending()} detections never acked"
        assert 0 < acked_at_kill <= acked_at_restart < lg.stats.events["acked"], \
            "the kills did not happen in the middle of the stream"
        # Devices did retransmit what the dead gateway never acknowledged.
        assert lg.stats.events["retransmissions"] > 0
        everything = {d.key for dev in lg.devices for d in dev.detections}
        await sub.wait_for(everything, DELIVERY_TIMEOUT_S)
        copies = check_delivery(lg.devices, sub.received)
        assert sub.connects >= 2  # it lived through the broker's death
        assert gw.starts == 3

        # The restarted gateway refuses every frame the killed ones had committed.
        committed = lives.accepted_frames()
        before = await _quiet(gw)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, frame in enumerate(committed):
                s.sendto(frame, ("127.0.0.1", gw.udp_port))
                if i % 64 == 63:
                    await asyncio.sleep(0.002)  # well under the socket buffer
        after = await _quiet(gw)
        kernel = udp_socket_stats(gw.udp_port)
        assert kernel is not None and kernel.drops == 0
        delta = {r: v - before.by_label("shorewatch_frames_rejected_total", "reason")[r]
                 for r, v in after.by_label("shorewatch_frames_rejected_total", "reason").items()}
        assert len(committed) > DEVICES * 10
        assert delta["replayed"] + delta["too_old"] == len(committed), delta
        assert sum(delta.values()) == len(committed), delta
        assert after.total("shorewatch_frames_received_total") == \
            before.total("shorewatch_frames_received_total")
        assert gw.alive()
        log = gw.log_text()
        assert "Traceback" not in log, log[-3000:]
        print(f"\n{len(everything)} detections, {copies} duplicate copies delivered; "
              f"{len(committed)} committed frames replayed after restart: "
              f"{delta['replayed']:.0f} replayed, {delta['too_old']:.0f} too_old")
    finally:
        if sub_task is not None:
            sub_task.cancel()
            await asyncio.gather(sub_task, return_exceptions=True)
        if gw.proc is not None:
            gw.kill()
        broker.stop()


async def test_destination_down_for_the_whole_stream_gets_the_backlog(
        tmp_path: Path, topic_prefix: str) -> None:
    up = Mosquitto(tmp_path / "up").start()
    down = Mosquitto(tmp_path / "down", persistence=True).start()
    topic = f"{topic_prefix}/two/device/+/event/detection"
    sub_up = Subscriber(up, topic, f"{topic_prefix}-up")
    sub_down = Subscriber(down, topic, f"{topic_prefix}-down")
    tasks: list[asyncio.Task[None]] = []
    gateway: Gateway | None = None
    try:
        await _prepare_session(down, sub_down.client_id, topic)
        await asyncio.to_thread(down.stop)  # down before the gateway starts, on a known port
        settings = GatewaySettings(
            data_dir=tmp_path / "gw", udp_port=0, metrics_port=0,
            mqtt=(MqttSettings(up.host, up.port, prefix=topic_prefix, site="two", name="up"),
                  MqttSettings(down.host, down.port, prefix=topic_prefix, site="two",
                               name="down")))
        fleet = make_fleet(DEVICES, seed=43)
        register_fleet(settings.registry_path, fleet)
        gateway = Gateway(settings)
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(gateway.run(lambda _gw: ready.set())))
        await asyncio.wait_for(ready.wait(), 30)
        tasks.append(asyncio.create_task(sub_up.run()))
        await asyncio.wait_for(sub_up.subscribed.wait(), 10)

        async with LoadGenerator(fleet, ("127.0.0.1", gateway.udp_port), PROFILE, seed=9) as lg:
            assert await lg.connect(timeout_s=10) == DEVICES
            await lg.run(STREAM_S / 2)
            acked_at_end = lg.stats.events["acked"]
            arrived_at_end = len(sub_up.keys())
            assert await lg.drain(timeout_s=30)
        everything = {d.key for dev in lg.devices for d in dev.detections}
        await sub_up.wait_for(everything, DELIVERY_TIMEOUT_S)
        # All of it reached the live destination while the other was still unreachable, most
        # of it before the stream even ended: the dead destination held nothing up.
        assert not down.running
        assert gateway.forwarders[1].state is not LinkState.CONNECTED
        assert arrived_at_end >= acked_at_end // 2 > 0
        check_delivery(lg.devices, sub_up.received)
        def published(name: str) -> float:
            assert gateway is not None
            value = gateway.metrics.registry.get_sample_value(
                "shorewatch_mqtt_published_total", {"destination": name})
            return value or 0.0

        assert published("down") == 0

        await asyncio.to_thread(down.restart)
        tasks.append(asyncio.create_task(sub_down.run()))
        await sub_down.wait_for(everything, DELIVERY_TIMEOUT_S)
        check_delivery(lg.devices, sub_down.received)
        assert published("down") == published("up") > 0
    finally:
        for task in tasks[1:]:
            task.cancel()  # the subscribers
            await asyncio.gather(task, return_exceptions=True)
        if gateway is not None:
            gateway.stop()
        if tasks:
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        up.stop()
        down.stop()


def test_subscriber_rules_catch_a_reordered_stream() -> None:
    """The order check fails when first arrivals are out of observation order (it can fail)."""
    dev = SimDevice(make_fleet(1)[0], 0, record=False)
    a, b = dev.observe(1_800_000_000.0), dev.observe(1_800_000_000.5)
    events = [{"idempotency_key": d.key, "device": f"{d.device_id:08x}",
               "event_id": f"{d.device_id:08x}-{d.event_id:08x}",
               "lifecycle": d.lifecycle.name.lower(), "time": d.ts_s + d.ts_ms / 1000,
               "seq": i + 1} for i, d in enumerate((a, b))]
    assert check_delivery([dev], events) == 0
    assert check_delivery([dev], [*events, events[0]]) == 1  # a late copy is fine
    with pytest.raises(AssertionError):
        check_delivery([dev], events[::-1])
    with pytest.raises(AssertionError):
        check_delivery([dev], [events[0], {**events[1], "seq": 1}])
