"""The gateway service: intake, group commit, MQTT destinations and metrics in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from . import sessions
from .admin import AdminContext, AdminServer, apply_desired, new_device_state
from .config import AdminSettings
from .core import Address, Effects, FrameHandler
from .devconfig import PushPolicy
from .errors import MdnsError
from .fleet import Fleet
from .http import MetricsServer
from .mdns import Advertisement, Advertiser, MdnsSettings, choose_addresses, http_url
from .metrics import GatewayMetrics
from .mqtt import Forwarder, LinkState, MqttSettings
from .outbox import Outbox
from .registry import DeviceState, Registry, apply_reservations, snapshot
from .sessions import SessionPolicy
from .transports import Deliver, Link, Reply, SerialLink, SerialSettings, UdpListener, UdpSettings

log = logging.getLogger("shorewatch.gateway")

# A commit loop that has not completed a cycle for this long (SQLite stuck on a dying SD card)
# makes the gateway unhealthy: the systemd watchdog stops being fed and restarts it.
COMMIT_STALL_S = 10.0


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
    # Also publish every TELEMETRY as an MQTT event (docs/mqtt.md); metrics always have it.
    publish_telemetry: bool = False
    udp_host: str = "127.0.0.1"
    udp_port: int = 4700
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    # Window state of frames without effects (telemetry) reaches the disk at least this often;
    # frames with effects (replies, events) are committed at once, before the effects.
    flush_interval_s: float = 0.2
    outbox: OutboxLimits = field(default_factory=OutboxLimits)
    # Device listeners (IPv4 and IPv6); empty = the one at udp_host:udp_port.
    udp: tuple[UdpSettings, ...] = ()
    serial: tuple[SerialSettings, ...] = ()
    mdns: MdnsSettings | None = None
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    # The admin API's unix socket and token file (gateway/config.py); off by default.
    admin: AdminSettings = field(default_factory=AdminSettings)
    # Also serve the admin API on loopback TCP (needs admin.token_file); None: socket only.
    admin_tcp: tuple[str, int] | None = None
    # Unix peers admitted without a token; None: root and the gateway's own user.
    admin_uids: frozenset[int] | None = None
    config_push: PushPolicy = field(default_factory=PushPolicy)

    @property
    def udp_listeners(self) -> tuple[UdpSettings, ...]:
        return self.udp or (UdpSettings(self.udp_host, self.udp_port),)

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "registry.sqlite3"


class Committer:
    """Group commit: counter state and outbox rows reach SQLite before replies and events leave.

    Frames accepted while a commit runs join the next one, so the batch grows with the load. A
    commit started by effects (a device waits for its ACK) writes the rows of the devices that
    have effects; the rest of the dirty devices (telemetry alone) are written by a full commit,
    at most ``idle_interval`` apart. On an SD card that matters: every commit rewrites each page
    it touches, and a row of every device that sent telemetry touched most pages of the tables
    (~70 KB a commit at 2,000 devices, bench/gateway_load.py ``written_bytes``).
    """

    def __init__(self, registry: Registry, devices: dict[int, DeviceState],
                 metrics: GatewayMetrics, send: Callable[[bytes, Address], None],
                 published: Callable[[], None]) -> None:
        self._registry = registry
        self._devices = devices
        self._metrics = metrics
        self._send = send
        self._published = published
        self._pending: list[tuple[Address, Effects, Reply | None]] = []
        self._wake = asyncio.Event()
        # Health (docs/gateway.md "Health"): whether the last commit failed, when a cycle ended.
        self.failing = False
        self.last_cycle = time.monotonic()

    def submit(self, source: Address, effects: Effects, reply: Reply | None = None) -> None:
        """Queue ``effects`` (replies, events) for a commit that starts at once (a device waits
        for its ACK); ``reply`` sends on the frame's own link (without it, replies are routed
        by ``source``).

        Frames without effects (telemetry) are never queued: their device is dirty and its
        telemetry staged, and the next commit takes both, at most the idle interval later. One
        fsync'd transaction per telemetry frame wrote ~11 KB per frame (bench/gateway_load.py),
        too much for an SD card."""
        self._pending.append((source, effects, reply))
        self._wake.set()

    async def run(self, idle_interval: float) -> None:
        last_full = time.monotonic()
        while True:
            try:
                async with asyncio.timeout(max(0.0, last_full + idle_interval - time.monotonic())):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            now = time.monotonic()
            full = now - last_full >= idle_interval
            await self.commit(full=full)
            if full:
                last_full = now
            self.last_cycle = time.monotonic()

    def problem(self, now: float) -> str | None:
        """Why the commit loop is unhealthy (failing or stalled), or None."""
        if self.failing:
            return "group commit failing"
        if now - self.last_cycle > COMMIT_STALL_S:
            return f"group commit stalled (no cycle for over {COMMIT_STALL_S:g} s)"
        return None

    async def commit(self, *, full: bool = True) -> None:
        """Persist the pending effects with their devices' rows (and, ``full``, every dirty
        device's), then release them."""
        batch, self._pending = self._pending, []
        if full:
            states = list(self._devices.values())
        else:
            urgent = {id(e.device): e.device for _, e, _ in batch if e.device is not None}
            states = list(urgent.values())
        taken = snapshot(states)
        rows = taken.rows
        records = [r for _, e, _ in batch for r in e.records]
        if not rows and not records and not batch:
            return
        started = time.monotonic()
        try:
            await asyncio.to_thread(self._registry.commit, rows, records)
        except sqlite3.Error as exc:
            # Nothing is released: devices get no ACK and retransmit; nothing is lost. The
            # frames' windows stay advanced in memory, so their copies are still refused.
            self._metrics.commit_errors.inc()
            self.failing = True
            taken.restore()
            log.error("commit failed, %d replies withheld: %s (disk full or read-only?)",
                      len(batch), exc)
            return
        self._metrics.commit_seconds.observe(time.monotonic() - started)
        self.failing = False
        apply_reservations(self._devices, rows)
        taken.show()
        for source, effects, reply in batch:
            for frame in effects.replies:
                if reply is None:
                    self._send(frame, source)
                else:
                    reply(frame)
        if records:
            self._published()


def _intake(handler: FrameHandler, committer: Committer) -> Deliver:
    """Frames from every link: handled at once, effects released after their commit."""
    def deliver(frame: bytes, addr: Any, link: Link) -> None:
        # Logs and device state get (host, port); the reply goes to the full address.
        source = addr if len(addr) == 2 else (addr[0], addr[1])
        effects = handler.handle(frame, source)
        if effects:
            committer.submit(source, effects, partial(link.send, addr=addr))
    return deliver


class Gateway:
    """One gateway instance. ``run`` returns after ``stop()`` with state flushed."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.devices: dict[int, DeviceState] = {}
        # Sessions are refreshed on the loop before each scrape (MetricsServer ``prepare``),
        # not by the collector, which runs in the rendering thread.
        self.metrics = GatewayMetrics(lambda: list(self.devices.values()))
        self.admin: AdminServer | None = None
        self.forwarders: list[Forwarder] = []
        self.udp: list[UdpListener] = []
        self.serial: list[SerialLink] = []
        self.mdns: Advertiser | None = None
        self._stop = asyncio.Event()
        self._serving = asyncio.Event()
        self._committer: Committer | None = None
        self.udp_port = 0
        self.metrics_port = 0

    def stop(self) -> None:
        self._stop.set()

    async def wait_ready(self) -> None:
        """Until every listener is bound, mDNS registered (when on) and every MQTT destination
        has connected once: what systemd's READY=1 means (docs/gateway.md "systemd")."""
        await self._serving.wait()
        for f in self.forwarders:
            await f.connected.wait()

    def health(self) -> str | None:
        """None while healthy, else why not: the systemd watchdog is fed only while healthy.

        Healthy = serving and the group commit neither failing nor stalled. A broker that is
        down is not unhealthy (events wait in the outbox; a restart would not bring it back);
        a blocked event loop cannot feed the watchdog at all.
        """
        if self._committer is None or not self._serving.is_set():
            return "starting"
        return self._committer.problem(time.monotonic())

    def status(self) -> str:
        """One line for ``systemctl status``: devices and MQTT destinations up."""
        if not self._serving.is_set():
            return "starting"
        down = [f.name for f in self.forwarders if f.state is not LinkState.CONNECTED]
        up = len(self.forwarders) - len(down)
        count = len(self.devices)
        text = f"{count} device{'' if count == 1 else 's'}, MQTT {up}/{len(self.forwarders)} up"
        if down:
            text += f" ({', '.join(down)} down)"
        problem = self.health()
        return f"{text}; {problem}" if problem else text

    async def run(self, ready: Callable[[Gateway], None] | None = None) -> None:
        s = self.settings
        registry = await asyncio.to_thread(Registry, s.registry_path)
        try:
            self.devices = await asyncio.to_thread(registry.load)
            fleet = await asyncio.to_thread(Fleet, registry)
            apply_desired(self.devices, (await asyncio.to_thread(fleet.load)).values())
            sessions.restore(self.devices.values(), time.time(), s.sessions)
            outbox = Outbox(registry)
            self.forwarders = [Forwarder(m, outbox, self.metrics) for m in s.mqtt]
            handler = FrameHandler(self.devices, self.metrics, s.gateway_id,
                                   push_policy=s.config_push,
                                   publish_telemetry=s.publish_telemetry)
            committer = Committer(registry, self.devices, self.metrics, self._send,
                                  self._wake_forwarders)
            deliver = _intake(handler, committer)
            self.udp = [UdpListener(u, deliver, self.metrics) for u in s.udp_listeners]
            self.serial = [SerialLink(p, deliver, self.metrics) for p in s.serial]
            await committer.commit()  # reserve downlink counters before the first reply
            http = MetricsServer(self.metrics.counters, self._healthy, self._refresh_sessions,
                                 stream=self.metrics.fleet.exposition)
            try:
                for listener in self.udp:
                    await listener.start()
                self.udp_port = self.udp[0].address[1]
                self.metrics_port = await http.start(s.metrics_host, s.metrics_port)
                await self._start_admin(fleet)
                await self._serve(committer, outbox, ready)
            finally:
                if self.admin is not None:
                    await self.admin.close()  # no more changes, then stop intake
                for listener in self.udp:
                    listener.close()  # stop intake first, then persist what it produced
                await http.close()
                await committer.commit()
        finally:
            await asyncio.to_thread(registry.close)
        log.info("gateway stopped, state flushed")

    async def _serve(self, committer: Committer, outbox: Outbox,
                     ready: Callable[[Gateway], None] | None) -> None:
        self._committer = committer
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(f.run(), name=f"mqtt-{f.name}") for f in self.forwarders]
            tasks.append(tg.create_task(committer.run(self.settings.flush_interval_s),
                                        name="commit"))
            tasks.append(tg.create_task(self._trim_loop(outbox), name="outbox-trim"))
            tasks.append(tg.create_task(self._session_loop(), name="sessions"))
            tasks.extend(tg.create_task(link.run(), name=link.name) for link in self.serial)
            links = [u.name for u in self.udp] + [p.name for p in self.serial]
            log.info("gateway up: %d devices, %s, metrics %s:%d, %d MQTT destinations",
                     len(self.devices), ", ".join(links),
                     self.settings.metrics_host, self.metrics_port, len(self.forwarders))
            # mDNS is registered before READY and withdrawn first at shutdown.
            async with contextlib.AsyncExitStack() as stack:
                await self._advertise(stack)
                self._serving.set()
                if ready is not None:
                    ready(self)
                await self._stop.wait()
            for task in tasks:
                task.cancel()

    def _send(self, frame: bytes, addr: Address) -> None:
        """Route by address: serial sources name their port, UDP goes out by address family."""
        links: list[SerialLink | UdpListener] = [*self.serial, *self.udp]
        for link in links:
            if link.owns(addr):
                link.send(frame, addr)
                return
        log.warning("no link reaches %s:%d: reply dropped", addr[0], addr[1])

    async def _advertise(self, stack: contextlib.AsyncExitStack) -> None:
        """Register on mDNS; on failure log it and serve without (devices can be configured)."""
        s = self.settings
        if s.mdns is None:
            return
        addresses = await choose_addresses(s.mdns, [u.address[0] for u in self.udp])
        admin_url = s.mdns.admin_url
        if not admin_url and self.admin is not None and s.admin_tcp is not None:
            admin_url = http_url(s.admin_tcp[0], self.admin.tcp_port, "/", addresses)
        ad = Advertisement(
            # The site is configured per MQTT destination until the config names it once.
            site=s.mqtt[0].site if s.mqtt else "", gateway_id=s.gateway_id, port=self.udp_port,
            addresses=addresses, admin_url=admin_url, instance=s.mdns.instance,
            metrics_url=http_url(s.metrics_host, self.metrics_port, "/metrics", addresses))
        try:
            self.mdns = await stack.enter_async_context(Advertiser(s.mdns, ad))
        except MdnsError as exc:
            log.error("%s; devices need this gateway's address configured", exc)

    async def _start_admin(self, fleet: Fleet) -> None:
        s = self.settings
        if s.admin.socket is None and s.admin_tcp is None:
            return
        ctx = AdminContext(
            devices=self.devices, fleet=fleet, metrics=self.metrics,
            gateway_endpoint=lambda: (self.udp[0].address[0], self.udp_port),
            clock=time.time, new_state=new_device_state)
        self.admin = AdminServer(s.admin, ctx, tcp=s.admin_tcp, allowed_uids=s.admin_uids)
        await self.admin.start()

    def _refresh_sessions(self) -> None:
        """Apply the session timeouts now (the periodic task, and every metrics scrape)."""
        for moved in sessions.advance(self.devices.values(), time.time(), self.settings.sessions):
            self.metrics.session_transitions.labels(moved.after.value).inc()

    async def _session_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sessions.tick_s)
            self._refresh_sessions()

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
                self.metrics.outbox_dropped.labels(name).inc(count)
                log.warning("outbox bound reached: %d events dropped for %s", count, name)
            await self._measure_backlog(outbox)

    async def _measure_backlog(self, outbox: Outbox) -> None:
        """Outbox depth and oldest age per destination, for scrapes that must not touch SQLite."""
        now = time.time()
        for f in self.forwarders:
            try:
                backlog = await asyncio.to_thread(outbox.backlog, f.name, f.cursor)
            except sqlite3.Error as exc:
                log.error("outbox backlog query failed: %s", exc)
                return
            self.metrics.outbox_rows.labels(f.name).set(backlog.rows)
            oldest = backlog.oldest_created_at
            self.metrics.outbox_oldest_age.labels(f.name).set(0 if oldest is None else now - oldest)
