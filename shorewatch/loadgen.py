"""Simulated devices for load, reliability and bad-input runs against a live gateway.

``LoadGenerator`` drives N CPython stand-ins for sensor nodes over UDP on loopback, behaving like
``device/sw/app/node.py``: HELLO (retried with backoff) until a WELCOME whose tag verifies and
whose nonce matches, then periodic TELEMETRY and DETECTIONs. A detection is retransmitted, each
time with a fresh counter, until an ACK names one of its sends (go-back-N over at most
``max_in_flight`` detections). Every loop is bounded in time and count.

The fleet is registered in the gateway's registry before the gateway starts (``register_fleet``),
which is why this lives in the composition root and not in ``hil/``. Malformed and hostile
datagrams come from ``shorewatch.attack``.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import random
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from gateway.registry import Registry
from protocol import (
    SCHEMA_FINGERPRINT,
    Ack,
    DeviceKeys,
    FrameError,
    ReplayWindow,
    Welcome,
    encode_body,
    open_frame,
    peek_header,
    seal,
)
from protocol.crypto import Mac
from protocol.frame import COUNTER_FIELD, SHORT_FIELDS, header_byte
from protocol.limits import RESYNC_AFTER_FRAMES, TAG_STD
from protocol.messages import (
    BootReason,
    Capability,
    Detection,
    DetectionKind,
    Direction,
    HardwareKind,
    Hello,
    Lifecycle,
    MessageType,
    Telemetry,
)

# Downlink datagrams read per wake-up of one socket; bounds the time spent in one callback.
READ_BURST: Final = 256
# A downlink frame is never larger than this (protocol MAX_FRAME_SIZE, with room to spare).
RECV_SIZE: Final = 2048
# Longest sleep of the scheduler: it re-checks its deadline at least this often.
MAX_TICK_S: Final = 0.05
# Shortest sleep: below this the scheduler sends what is due in the same pass.
MIN_TICK_S: Final = 0.001
# Nonces of unanswered HELLOs a device still accepts a WELCOME for (as the firmware does).
KEEP_NONCES: Final = 6
FIRST_DEVICE_ID: Final = 0x51000001


@dataclass(frozen=True, slots=True)
class Identity:
    """What provisioning gives a device: its id, master key and tag length."""

    device_id: int
    master_key: bytes = field(repr=False)
    tag_len: int = TAG_STD


def make_fleet(count: int, *, first_id: int = FIRST_DEVICE_ID, seed: int = 0,
               tag_len: int = TAG_STD) -> list[Identity]:
    """``count`` identities with consecutive ids and keys drawn from ``seed`` (test keys only)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test keys, never real ones
    return [Identity(first_id + i, rng.randbytes(32), tag_len) for i in range(count)]


def register_fleet(registry_path: Path, fleet: Iterable[Identity]) -> int:
    """Add ``fleet`` to the registry at ``registry_path`` (gateway stopped); returns the count."""
    registry = Registry(registry_path)
    n = 0
    try:
        for ident in fleet:
            registry.add(ident.device_id, ident.master_key, tag_len=ident.tag_len)
            n += 1
    finally:
        registry.close()
    return n


@dataclass(frozen=True, slots=True)
class LoadProfile:
    """What each simulated device does; intervals in seconds."""

    telemetry_interval_s: float | None = 1.0
    # Mean time between detections of one device (exponential); None: no detections.
    detection_interval_s: float | None = None
    # Detections one device observes at most (None: unbounded within the run time).
    detections_per_device: int | None = None
    # Detections sent and not yet acknowledged, per device; 1 = stop-and-wait.
    max_in_flight: int = 1
    ack_timeout_s: float = 0.5
    max_ack_timeout_s: float = 4.0
    hello_timeout_s: float = 0.5
    max_hello_timeout_s: float = 4.0
    # HELLOs of the fleet are spread over this long (a fleet booting together).
    start_spread_s: float = 0.2
    # UDP sockets the fleet shares; replies are routed back by the device id in the frame.
    sockets: int = 4
    # Keep every uplink frame sent (for replay attacks and replay checks).
    record_frames: bool = False


@dataclass(slots=True)
class SentDetection:
    """One observation of a device and what became of it."""

    device_id: int
    index: int  # position in the device's observation order
    event_id: int
    lifecycle: Lifecycle
    ts_s: int
    ts_ms: int
    body: bytes = field(repr=False)
    counters: list[int] = field(default_factory=list)  # the counter of every send
    acked_counter: int | None = None
    first_sent_at: float | None = None  # time.monotonic()
    acked_at: float | None = None

    @property
    def key(self) -> str:
        """The idempotency key the gateway must publish (docs/mqtt.md), derived independently."""
        dev = f"{self.device_id:08x}"
        ts = self.ts_s + self.ts_ms / 1000
        return f"{dev}-{self.event_id:08x}-{self.lifecycle.name.lower()}-{ts:.3f}"


class _TelemetrySealer:
    """TELEMETRY frames of one device for the flood, at ~1.5 us each instead of ~4 us with
    ``seal`` (the flood must outrun the gateway): the body is fixed and the HMAC starts from
    SHA-256 states that already absorbed the padded keys. The first frame is checked against
    ``protocol.seal`` byte for byte."""

    __slots__ = ("_body", "_dev", "_hdr", "_id", "_inner", "_outer", "_tag_len")

    def __init__(self, dev: SimDevice) -> None:
        self._dev = dev
        self._hdr = header_byte(MessageType.TELEMETRY, Direction.UP)
        self._id = dev.device_id
        self._tag_len = dev.ident.tag_len
        self._body = dev.telemetry_body(fresh=False)
        mac = dev.keys.mac_up
        if not isinstance(mac, Mac):
            raise TypeError("the uplink key of a device is a precomputed Mac")
        self._inner, self._outer = mac.prepared()
        expected = seal(MessageType.TELEMETRY, self._body, keys=dev.keys, direction=Direction.UP,
                        device_id=self._id, counter=dev.counter, tag_len=self._tag_len)
        if self._frame(dev.counter) != expected:
            raise RuntimeError("the flood's frames differ from protocol.seal")

    def _frame(self, counter: int) -> bytes:
        unsigned = SHORT_FIELDS.pack(self._hdr, self._id, counter & 0xFFFF) + self._body
        inner = self._inner.copy()
        inner.update(COUNTER_FIELD.pack(counter))
        inner.update(unsigned)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return unsigned + outer.digest()[:self._tag_len]

    def next(self) -> bytes:
        dev = self._dev
        frame = self._frame(dev.counter)
        if dev.frames is not None:
            dev.frames.append((dev.counter, frame))
        dev.counter += 1
        dev.since_downlink += 1
        return frame

    def unsend(self) -> None:
        """The last frame never left: not one the gateway could have seen."""
        if self._dev.frames:
            self._dev.frames.pop()


class SimDevice:
    """One simulated sensor node: keys, counters, session and detection queue."""

    __slots__ = ("_body_cache", "_last_ts_ms", "_uptime_base", "acked", "counter",
                 "detections", "down", "event_id", "frames", "hello_sends", "hello_wait",
                 "ident", "in_flight", "keys", "nonces", "queue", "retx_due", "retx_wait",
                 "since_downlink", "sock", "synced", "welcomes")

    def __init__(self, ident: Identity, sock: int, *, record: bool) -> None:
        self.ident = ident
        self.keys = DeviceKeys.from_master(ident.master_key)
        self.sock = sock
        self.counter = 0  # next uplink counter
        self.down = ReplayWindow()
        self.synced = False
        self.welcomes = 0
        self.nonces: deque[bytes] = deque(maxlen=KEEP_NONCES)
        self.hello_sends = 0
        self.hello_wait = 0.0
        self.since_downlink = 0
        self.queue: deque[SentDetection] = deque()  # awaiting ACK, oldest first
        self.in_flight = 0  # the first ``in_flight`` entries of ``queue`` were sent this round
        self.retx_due: float | None = None
        self.retx_wait = 0.0
        self.detections: list[SentDetection] = []
        self.acked = 0
        self.event_id = 0
        self.frames: list[tuple[int, bytes]] | None = [] if record else None
        self._last_ts_ms = 0
        self._uptime_base = time.monotonic()
        self._body_cache: bytes | None = None

    @property
    def device_id(self) -> int:
        return self.ident.device_id

    def seal(self, mtype: MessageType, body: bytes) -> tuple[int, bytes]:
        """The next uplink frame for ``body``: (counter, frame)."""
        counter = self.counter
        self.counter += 1
        self.since_downlink += 1
        frame = seal(mtype, body, keys=self.keys, direction=Direction.UP,
                     device_id=self.ident.device_id, counter=counter, tag_len=self.ident.tag_len)
        if self.frames is not None:
            self.frames.append((counter, frame))
        return counter, frame

    def hello_body(self, rng: random.Random) -> bytes:
        nonce = rng.randbytes(8)
        self.nonces.append(nonce)
        return encode_body(Hello(0, 1, 0, HardwareKind.SENSOR_NODE, BootReason.POWER_ON,
                                 int(Capability.PIR | Capability.BATTERY_ADC),
                                 SCHEMA_FINGERPRINT, nonce))

    def telemetry_body(self, fresh: bool = True) -> bytes:
        """A plausible TELEMETRY body; ``fresh=False`` reuses the last one (flood mode)."""
        if not fresh and self._body_cache is not None:
            return self._body_cache
        uptime = int(time.monotonic() - self._uptime_base)
        body = encode_body(Telemetry(3700 + self.ident.device_id % 300, 5100, -120, 1850, 140,
                                     -61, uptime, 1, 900, 0))
        self._body_cache = body
        return body

    def observe(self, now_wall: float) -> SentDetection:
        """A new detection (lifecycle new, update, end in turn) with a strictly rising time."""
        n = len(self.detections)
        life = Lifecycle(n % 3)
        if life is Lifecycle.NEW:
            self.event_id += 1
        ts = max(int(now_wall * 1000), self._last_ts_ms + 1)
        self._last_ts_ms = ts
        ts_s, ts_ms = divmod(ts, 1000)
        dev = self.ident.device_id
        event = (1 << 16) | self.event_id  # boot count 1 in the high 16 bits (docs/mqtt.md)
        body = encode_body(Detection(event, life, DetectionKind.PERSON, 80 + n % 20, 0, 0, 0, 0,
                                     3150 + n % 50, 1, ts_s, ts_ms))
        d = SentDetection(dev, n, event, life, ts_s, ts_ms, body)
        self.detections.append(d)
        self.queue.append(d)
        return d


@dataclass(slots=True)
class LoadStats:
    """What the generator did and saw, by name (``sent`` by message type)."""

    sent: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)

    def total_sent(self) -> int:
        return sum(self.sent.values())


# Scheduler entry kinds (heap order breaks ties by sequence number, never by kind).
_HELLO: Final = 0
_TELEMETRY: Final = 1
_DETECT: Final = 2
_RETX: Final = 3


class LoadGenerator:
    """A simulated fleet talking to the gateway at ``target``. Use as an async context manager."""

    def __init__(self, fleet: list[Identity], target: tuple[str, int], profile: LoadProfile,
                 *, seed: int = 1, clock: Callable[[], float] = time.time) -> None:
        if target[0] not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"load generator targets loopback only, not {target[0]}")
        self.target = target
        self.profile = profile
        self.stats = LoadStats()
        self._rng = random.Random(seed)  # noqa: S311 - simulation, not security
        self._clock = clock
        nsock = max(1, min(profile.sockets, len(fleet) or 1))
        self.devices = [SimDevice(ident, i % nsock, record=profile.record_frames)
                        for i, ident in enumerate(fleet)]
        self._by_id = {d.device_id: i for i, d in enumerate(self.devices)}
        self._socks: list[socket.socket] = []
        self._nsock = nsock
        self._heap: list[tuple[float, int, int, int]] = []
        self._seq = 0
        self._generating = False
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> LoadGenerator:
        self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Bind the fleet's sockets on loopback (port 0) and start reading replies."""
        self._loop = asyncio.get_running_loop()
        for _ in range(self._nsock):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind(("127.0.0.1", 0))
            self._socks.append(sock)
            self._loop.add_reader(sock.fileno(), self._readable, sock)

    def close(self) -> None:
        for sock in self._socks:
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._socks.clear()

    @property
    def source_ports(self) -> list[int]:
        return [int(s.getsockname()[1]) for s in self._socks]

    # --- phases ---------------------------------------------------------------------------

    async def connect(self, timeout_s: float) -> int:
        """HELLO every device until all are welcomed or ``timeout_s``; returns the synced count."""
        now = time.monotonic()
        spread = self.profile.start_spread_s
        n = len(self.devices)
        for i, dev in enumerate(self.devices):
            if not dev.synced:
                dev.hello_wait = self.profile.hello_timeout_s
                self._push(now + spread * i / max(n, 1), _HELLO, i)
        await self._run_until(now + timeout_s, lambda: all(d.synced for d in self.devices))
        return sum(d.synced for d in self.devices)

    async def run(self, seconds: float) -> None:
        """Telemetry and detections for ``seconds`` (devices not yet welcomed HELLO first)."""
        now = time.monotonic()
        self._generating = True
        p = self.profile
        for i, dev in enumerate(self.devices):
            if dev.synced:
                self._schedule_activity(i, now)
            elif not dev.hello_sends:
                dev.hello_wait = p.hello_timeout_s
                self._push(now + p.start_spread_s * i / max(len(self.devices), 1), _HELLO, i)
        self._stopping = False
        try:
            await self._run_until(now + seconds, lambda: self._stopping)
        finally:
            self._generating = False

    def stop(self) -> None:
        """End a running ``run`` at its next pass (from another task)."""
        self._stopping = True

    async def drain(self, timeout_s: float) -> bool:
        """Keep retransmitting until every detection is acknowledged or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        await self._run_until(deadline, lambda: self.pending() == 0)
        return self.pending() == 0

    def pending(self) -> int:
        """Detections observed and not yet acknowledged."""
        return sum(len(d.queue) for d in self.devices)

    def flood(self, seconds: float, max_frames: int, rate: float | None = None) -> int:
        """Blocking: TELEMETRY from every welcomed device, round robin, as fast as the sockets
        take it (or at ``rate`` per second), for the ingest bench. Returns frames sent."""
        devices = [d for d in self.devices if d.synced]
        if not devices:
            return 0
        sealers = [_TelemetrySealer(d) for d in devices]
        sent = 0
        start = time.monotonic()
        end = start + seconds
        check_every = 256
        i = 0
        for n in range(max_frames * 4):  # blocked sends retry, but not forever
            if sent >= max_frames:
                break
            if n % check_every == 0:
                now = time.monotonic()
                if now >= end:
                    break
                if rate is not None:
                    ahead = sent / rate - (now - start)
                    if ahead > 0:
                        time.sleep(min(ahead, MAX_TICK_S))
            dev = devices[i]
            sealer = sealers[i]
            i = i + 1 if i + 1 < len(devices) else 0
            if dev.since_downlink >= RESYNC_AFTER_FRAMES:
                continue  # such a device would HELLO again; the flood only sends telemetry
            frame = sealer.next()
            try:
                self._socks[dev.sock].sendto(frame, self.target)
            except BlockingIOError:
                self.stats.events["send_blocked"] += 1
                sealer.unsend()
                continue
            sent += 1
        self.stats.sent["telemetry"] += sent
        return sent

    # --- scheduler ------------------------------------------------------------------------

    def _push(self, due: float, kind: int, index: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, kind, index))

    def _schedule_activity(self, i: int, now: float) -> None:
        p = self.profile
        if p.telemetry_interval_s is not None:
            self._push(now + self._rng.random() * p.telemetry_interval_s, _TELEMETRY, i)
        if p.detection_interval_s is not None:
            self._push(now + self._rng.expovariate(1 / p.detection_interval_s), _DETECT, i)

    async def _run_until(self, deadline: float, done: Callable[[], bool]) -> None:
        # Bounded by ``deadline``: each pass sends what is due, then sleeps until the next entry.
        while not done():
            now = time.monotonic()
            if now >= deadline:
                return
            while self._heap and self._heap[0][0] <= now:
                due, _, kind, i = heapq.heappop(self._heap)
                self._fire(kind, i, due, now)
            nxt = self._heap[0][0] if self._heap else deadline
            wait = min(max(nxt - time.monotonic(), 0.0), MAX_TICK_S, deadline - now)
            await asyncio.sleep(wait if wait >= MIN_TICK_S else 0)

    def _fire(self, kind: int, i: int, due: float, now: float) -> None:
        dev = self.devices[i]
        p = self.profile
        if kind == _HELLO:
            if not dev.synced:
                self._hello(dev, i, now)
        elif kind == _TELEMETRY:
            if not self._generating or p.telemetry_interval_s is None:
                return
            self._send(dev, MessageType.TELEMETRY, dev.telemetry_body(), "telemetry")
            self._push(due + p.telemetry_interval_s, _TELEMETRY, i)
        elif kind == _DETECT:
            if not self._generating or p.detection_interval_s is None:
                return
            if p.detections_per_device is not None and \
                    len(dev.detections) >= p.detections_per_device:
                return
            dev.observe(self._clock())
            self._pump(dev, now)
            self._push(due + self._rng.expovariate(1 / p.detection_interval_s), _DETECT, i)
        elif kind == _RETX and dev.retx_due == due:
            self._retransmit(dev, i, now)

    # --- device behaviour -----------------------------------------------------------------

    def _hello(self, dev: SimDevice, i: int, now: float) -> None:
        """Send HELLO and schedule its retry (the wait doubles up to the maximum)."""
        dev.hello_sends += 1
        dev.synced = False
        self._send(dev, MessageType.HELLO, dev.hello_body(self._rng), "hello")
        self._push(now + dev.hello_wait, _HELLO, i)
        dev.hello_wait = min(dev.hello_wait * 2, self.profile.max_hello_timeout_s)

    def _send(self, dev: SimDevice, mtype: MessageType, body: bytes, name: str) -> int:
        counter, frame = dev.seal(mtype, body)
        try:
            self._socks[dev.sock].sendto(frame, self.target)
        except OSError as exc:
            # Lost like a radio frame (retries cover it); never recorded as sent.
            self.stats.events["send_blocked" if isinstance(exc, BlockingIOError)
                              else "send_errors"] += 1
            if dev.frames:
                dev.frames.pop()
        self.stats.sent[name] += 1
        if dev.since_downlink >= RESYNC_AFTER_FRAMES and dev.synced:
            # The gateway could no longer reconstruct 16-bit counters: start a new session.
            dev.hello_wait = self.profile.hello_timeout_s
            self._hello(dev, self._by_id[dev.device_id], time.monotonic())
        return counter

    def _pump(self, dev: SimDevice, now: float) -> None:
        """Send queued detections while fewer than ``max_in_flight`` await their ACK."""
        if not dev.synced:
            return
        while dev.in_flight < min(self.profile.max_in_flight, len(dev.queue)):
            d = dev.queue[dev.in_flight]
            self._send_detection(dev, d, now)
            dev.in_flight += 1
        if dev.in_flight and dev.retx_due is None:
            dev.retx_wait = self.profile.ack_timeout_s
            self._arm(dev, now)

    def _send_detection(self, dev: SimDevice, d: SentDetection, now: float) -> None:
        if d.first_sent_at is None:
            d.first_sent_at = now
        else:
            self.stats.events["retransmissions"] += 1
        d.counters.append(self._send(dev, MessageType.DETECTION, d.body, "detection"))

    def _arm(self, dev: SimDevice, now: float) -> None:
        dev.retx_due = now + dev.retx_wait
        self._push(dev.retx_due, _RETX, self._by_id[dev.device_id])

    def _retransmit(self, dev: SimDevice, i: int, now: float) -> None:
        """Go-back-N: resend every unacknowledged detection of this round, oldest first."""
        dev.retx_due = None
        if not dev.queue:
            dev.in_flight = 0
            return
        if not dev.synced:
            self._push(now + self.profile.ack_timeout_s, _RETX, i)
            dev.retx_due = now + self.profile.ack_timeout_s
            return
        for d in list(dev.queue)[:dev.in_flight]:
            self._send_detection(dev, d, now)
        self._pump(dev, now)
        dev.retx_wait = min(dev.retx_wait * 2, self.profile.max_ack_timeout_s)
        self._arm(dev, now)

    # --- downlink -------------------------------------------------------------------------

    def _readable(self, sock: socket.socket) -> None:
        for _ in range(READ_BURST):
            try:
                data = sock.recv(RECV_SIZE)
            except BlockingIOError:
                return
            except OSError:
                # An ICMP error (gateway port closed) surfaces here on Linux; devices carry on.
                self.stats.events["recv_errors"] += 1
                return
            self._downlink(data)

    def _downlink(self, data: bytes) -> None:
        now = time.monotonic()
        try:
            header = peek_header(data, Direction.DOWN)
            i = self._by_id.get(header.device_id)
            if i is None:
                self.stats.events["downlink_unknown_device"] += 1
                return
            dev = self.devices[i]
            rx = open_frame(data, header, dev.keys, dev.down, dev.ident.tag_len)
        except FrameError as exc:
            self.stats.events[f"downlink_{exc.reason}"] += 1
            return
        dev.since_downlink = 0
        msg = rx.message
        if isinstance(msg, Welcome):
            self._welcome(dev, i, msg, now)
        elif isinstance(msg, Ack):
            self._ack(dev, msg.acked_counter, now)
        else:
            self.stats.events[f"downlink_{msg.TYPE.name.lower()}"] += 1

    def _welcome(self, dev: SimDevice, i: int, msg: Welcome, now: float) -> None:
        if msg.nonce not in dev.nonces:
            self.stats.events["welcome_stale"] += 1
            return
        dev.nonces.clear()
        dev.welcomes += 1
        self.stats.events["welcomes"] += 1
        first = not dev.synced and dev.welcomes == 1
        dev.synced = True
        if first and self._generating:
            self._schedule_activity(i, now)
        # Unacknowledged detections go out again in the new session.
        dev.in_flight = 0
        dev.retx_due = None
        self._pump(dev, now)

    def _ack(self, dev: SimDevice, counter: int, now: float) -> None:
        for pos in range(min(dev.in_flight, len(dev.queue))):
            d = dev.queue[pos]
            if counter in d.counters:
                del dev.queue[pos]
                dev.in_flight -= 1
                d.acked_counter = counter
                d.acked_at = now
                dev.acked += 1
                self.stats.events["acked"] += 1
                dev.retx_due = None
                if dev.in_flight:
                    dev.retx_wait = self.profile.ack_timeout_s
                    self._arm(dev, now)
                self._pump(dev, now)
                return
        self.stats.events["ack_unmatched"] += 1  # an older send of something already acked


# --- what the kernel and the gateway process say ---------------------------------------------

@dataclass(frozen=True, slots=True)
class UdpSocketStats:
    """One UDP socket as ``/proc/net/udp`` shows it."""

    rx_queue: int  # bytes (skb truesize) waiting in the receive buffer
    drops: int  # datagrams dropped for this socket (receive buffer full)


def udp_socket_stats(port: int, host: str = "127.0.0.1") -> UdpSocketStats | None:
    """The kernel's view of the IPv4 UDP socket bound to ``host:port`` (Linux), or None."""
    want = socket.inet_aton(host)[::-1].hex().upper() + f":{port:04X}"
    with Path("/proc/net/udp").open(encoding="ascii") as f:
        next(f)  # header line
        for line in f:
            fields = line.split()
            if fields[1] == want:
                return UdpSocketStats(int(fields[4].split(":")[1], 16), int(fields[-1]))
    return None


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default), from /proc."""
    path = Path(f"/proc/{pid or os.getpid()}/status")
    for line in path.read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no VmRSS in {path}")
