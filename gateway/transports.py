"""Device links: UDP listeners (IPv4 and IPv6) and COBS byte streams on serial ports.

A link hands each frame to ``Deliver`` with its source address and the link itself, whose
``send(frame, addr)`` replies on the same link (the same UDP socket, the same serial port). The
service sends a reply only after the frame's state change is committed. A serial port is read
and written by two threads of its own (pyserial blocks); the event loop only decodes the bytes
they hand over and queues replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, cast

import serial

from protocol import StreamDecoder, StreamError, cobs_encode

from .core import Address, RejectLog
from .errors import LinkError
from .metrics import GatewayMetrics

log = logging.getLogger("shorewatch.gateway")

Reply = Callable[[bytes], None]


class Link(Protocol):
    """Where a frame came from and its replies go: ``addr`` is the full peer address as the
    link reported it (with an IPv6 scope id; a serial port ignores it)."""

    def send(self, frame: bytes, addr: Any) -> None: ...


# (frame, full peer address, link). Nothing is built per frame for the reply: a bound reply
# is made only for the few frames that have one (a partial per datagram cost ~0.1 us).
Deliver = Callable[[bytes, Any, Link], None]

# Bytes taken from the port per read; bounds one hand-off to the event loop.
READ_CHUNK = 4096
# The reader and writer threads notice a stop request at least this often.
POLL_S = 0.2
# A port that takes no bytes for this long (flow control stuck) drops the reply being written.
WRITE_TIMEOUT_S = 2.0
# Replies waiting for a slow port; beyond this they are dropped and the device retransmits.
WRITE_QUEUE = 64
# Longest wait for the port threads at shutdown (a read or write returns within POLL_S or
# WRITE_TIMEOUT_S, so this is only reached if the driver hangs).
JOIN_TIMEOUT_S = 5.0
# Receive buffer asked for on each UDP socket (the kernel caps it at net.core.rmem_max): room for
# thousands of frames, so a pause of the event loop does not drop them. A /metrics scrape renders
# the fleet on the loop, ~80 ms per 1,000 devices (bench/gateway_load.py saw drops at 2,000
# devices with the 208 KiB default).
UDP_RCVBUF = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class UdpSettings:
    """One UDP listener. ``::`` or ``::1`` listen on IPv6 only; list ``0.0.0.0`` too for both."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """One serial port carrying the COBS stream (a USB device, a LoRa-UART modem)."""

    # A device path (prefer /dev/serial/by-id/..., stable across replugs) or a pyserial URL
    # (loop://, rfc2217://host:port, socket://host:port).
    port: str
    baudrate: int = 115200
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0


def link_name(host: str, port: int) -> str:
    """``udp 127.0.0.1:4700`` / ``udp [::1]:4700``."""
    return f"udp [{host}]:{port}" if ":" in host else f"udp {host}:{port}"


class UdpListener(asyncio.DatagramProtocol):
    """One UDP socket; a reply leaves from the socket its frame came in on."""

    def __init__(self, settings: UdpSettings, deliver: Deliver, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self._deliver = deliver
        self._metrics = metrics
        self._transport: asyncio.DatagramTransport | None = None
        self._family = socket.AF_INET
        self.address: tuple[str, int] = (settings.host, settings.port)

    @property
    def name(self) -> str:
        return link_name(*self.address)

    async def start(self) -> tuple[str, int]:
        """Bind; returns the bound (host, port) (``port`` 0 picks a free one)."""
        sock = await _bind_udp(self.settings.host, self.settings.port)
        self._family = sock.family
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=sock)
        bound = sock.getsockname()
        self.address = (bound[0], bound[1])
        return self.address

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def owns(self, addr: Address) -> bool:
        """Whether a reply to ``addr`` can leave from this socket (same address family)."""
        return (":" in addr[0]) == (self._family == socket.AF_INET6)

    def send(self, frame: bytes, addr: tuple[Any, ...]) -> None:
        if self._transport is None or self._transport.is_closing():
            self._metrics.replies_dropped.labels(self.name).inc()
            return
        self._transport.sendto(frame, addr)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._deliver(data, addr, self)

    def error_received(self, exc: Exception) -> None:
        log.warning("%s: socket error: %s", self.name, exc)


async def _bind_udp(host: str, port: int) -> socket.socket:
    name = link_name(host, port)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_DGRAM,
                                       flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise LinkError(name, f"cannot be resolved: {exc.strerror}",
                        "use an address such as 0.0.0.0, ::, 127.0.0.1 or ::1") from exc
    family, _, proto, _, sockaddr = infos[0]
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM, proto)
    except OSError as exc:
        raise LinkError(name, f"cannot be opened: {exc.strerror}",
                        "is IPv6 disabled on this host?") from exc
    try:
        if family == socket.AF_INET6:
            # IPv6 sockets take IPv6 only, so "0.0.0.0" and "::" on one port can be listed
            # side by side and IPv4 peers never show up as ::ffff:a.b.c.d.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RCVBUF)
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        raise LinkError(name, f"cannot be bound: {exc.strerror}", _BIND_HINTS.get(
            exc.errno or 0, "")) from exc
    return sock


_BIND_HINTS = {
    errno.EADDRINUSE: "is another gateway running on this port?",
    errno.EADDRNOTAVAIL: "the address is not configured on this host (for ::1, is IPv6 "
                         "enabled on lo? sysctl net.ipv6.conf.lo.disable_ipv6)",
    errno.EACCES: "ports below 1024 need CAP_NET_BIND_SERVICE",
}


class PortState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    RETRYING = "retrying"


class SerialLink:
    """One serial port carrying a COBS stream. ``run`` is its long-lived task: it opens the
    port, serves it until it fails (USB unplugged), and reopens it with backoff, forever.
    """

    def __init__(self, settings: SerialSettings, deliver: Deliver,
                 metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.name = f"serial:{settings.port}"
        self.source: Address = (self.name, 0)
        self.state = PortState.CLOSED
        self.opened = asyncio.Event()
        self.failures = 0  # failed opens since the port was last open
        self._deliver = deliver
        self._metrics = metrics
        self._rejects = RejectLog()
        self._conn: _Connection | None = None
        self._decoder = StreamDecoder()

    def owns(self, addr: Address) -> bool:
        return addr[0] == self.name

    def send(self, frame: bytes, addr: Any = None) -> None:
        """Queue ``frame`` for the port (COBS-encoded); dropped while the port is down."""
        conn = self._conn
        if conn is None:
            self._drop("port closed")
            return
        try:
            conn.writes.put_nowait(cobs_encode(frame))
        except queue.Full:
            self._drop("write queue full")

    async def run(self) -> None:
        s = self.settings
        delay = s.retry_initial_s
        quiet = ""  # an open failure already reported: not repeated at every retry
        down_since: float | None = None
        while True:
            try:
                port = await asyncio.to_thread(self._open)
            except LinkError as exc:
                self.state = PortState.RETRYING
                self.failures += 1
                down_since = down_since or time.monotonic()
                if exc.problem != quiet:
                    log.error("%s; retrying every %g s at most", exc, s.retry_max_s)
                    quiet = exc.problem
            else:
                if down_since is not None:
                    log.info("port %s is back after %.1f s", s.port,
                             time.monotonic() - down_since)
                self.failures = 0
                opened_at = time.monotonic()
                lost = await self._serve(port)
                down_since = time.monotonic()
                self.state = PortState.RETRYING
                log.error("port %s was lost: %s (was the device unplugged? reopening when it is "
                          "back)", s.port, lost)
                quiet = _UNPLUGGED[0]  # an unplugged port is missing next: already said
                # Back to quick retries only after a port that stayed up; one that fails right
                # after every open keeps backing off.
                if down_since - opened_at > s.retry_max_s:
                    delay = s.retry_initial_s
            await asyncio.sleep(delay)
            delay = min(delay * 2, s.retry_max_s)

    def _open(self) -> serial.SerialBase:
        """Open the port (worker thread); errors name the cause and a fix."""
        s = self.settings
        try:
            port: serial.SerialBase = serial.serial_for_url(
                s.port, baudrate=s.baudrate, timeout=POLL_S, write_timeout=WRITE_TIMEOUT_S,
                exclusive=True)
        except serial.SerialException as exc:
            code = exc.errno if isinstance(exc.errno, int) else 0
            problem, hint = _OPEN_ERRORS.get(code, (f"cannot be opened: {exc}", ""))
            raise LinkError(f"port {s.port}", problem, hint) from exc
        except ValueError as exc:
            raise LinkError(f"port {s.port}", f"cannot be opened: {exc}",
                            "check the port URL and baud rate") from exc
        return port

    async def _serve(self, port: serial.SerialBase) -> BaseException:
        """Serve an open port until it fails; returns the failure. Closes the port."""
        loop = asyncio.get_running_loop()
        conn = _Connection(port, loop, self._received)
        self._decoder = StreamDecoder()  # a partial frame from before does not survive
        self._conn = conn
        self._up()
        try:
            conn.start(self.name)
            return await conn.failed
        finally:
            self._conn = None
            self._down()
            await asyncio.to_thread(conn.stop)

    def _received(self, data: bytes) -> None:
        for item in self._decoder.feed(data):
            if isinstance(item, StreamError):
                self._metrics.rejected.labels(item.reason).inc()
                self._rejects.note(item, self.source, time.time())
            else:
                self._deliver(item, self.source, self)

    def _up(self) -> None:
        self.state = PortState.OPEN
        self.opened.set()
        self._metrics.serial_open.labels(self.settings.port).set(1)
        log.info("port %s open at %d baud", self.settings.port, self.settings.baudrate)

    def _down(self) -> None:
        self.state = PortState.CLOSED
        self.opened.clear()
        self._metrics.serial_open.labels(self.settings.port).set(0)

    def _drop(self, why: str) -> None:
        self._metrics.replies_dropped.labels(self.name).inc()
        log.debug("%s: reply dropped: %s", self.name, why)


_UNPLUGGED = ("is missing", "is the device plugged in? /dev/serial/by-id/ paths survive replugs")
_BUSY = ("is busy", "is another program using it?")
_DENIED = ("is not accessible: permission denied", "is the service user in the dialout group?")
_OPEN_ERRORS = {
    errno.ENOENT: _UNPLUGGED, errno.ENODEV: _UNPLUGGED, errno.ENXIO: _UNPLUGGED,
    # EBUSY: TIOCEXCL set by another program; EAGAIN: its flock (pyserial exclusive=True).
    errno.EBUSY: _BUSY, errno.EAGAIN: _BUSY,
    errno.EACCES: _DENIED, errno.EPERM: _DENIED,
}


class _Connection:
    """One open port with its reader and writer threads; ``failed`` resolves on the first error.

    Threads hand bytes and errors to the loop with ``call_soon_threadsafe`` only.
    """

    def __init__(self, port: serial.SerialBase, loop: asyncio.AbstractEventLoop,
                 received: Callable[[bytes], None]) -> None:
        self.port = port
        self.loop = loop
        self.writes: queue.Queue[bytes] = queue.Queue(maxsize=WRITE_QUEUE)
        self.failed: asyncio.Future[BaseException] = loop.create_future()
        self._received = received
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, name: str) -> None:
        for role, target in (("reader", self._read_loop), ("writer", self._write_loop)):
            thread = threading.Thread(target=target, name=f"{name} {role}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Stop both threads and close the port (blocks: call from a worker thread)."""
        self._stop.set()
        with contextlib.suppress(serial.SerialException, OSError):
            self.port.cancel_read()
            self.port.cancel_write()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.error("%s did not stop within %.0f s (driver hung?)", thread.name,
                          JOIN_TIMEOUT_S)
        with contextlib.suppress(serial.SerialException, OSError):
            self.port.close()

    def _read_loop(self) -> None:
        port = self.port
        try:
            while not self._stop.is_set():
                data = port.read(min(port.in_waiting, READ_CHUNK) or 1)
                if data:
                    self._to_loop(self._received, data)
        except (serial.SerialException, OSError) as exc:
            self._fail(exc)

    def _write_loop(self) -> None:
        resync = False
        while not self._stop.is_set():
            try:
                data = self.writes.get(timeout=POLL_S)
            except queue.Empty:
                continue
            try:
                # After a partial write the peer holds half a frame: a leading delimiter
                # ends it (as one rejected frame) so this frame arrives whole.
                self.port.write(b"\0" + data if resync else data)
                resync = False
            except serial.SerialTimeoutException:
                resync = True
                log.warning("port %s took no bytes for %.0f s: reply dropped (flow control?)",
                            self.port.name, WRITE_TIMEOUT_S)
            except (serial.SerialException, OSError) as exc:
                self._fail(exc)
                return

    def _fail(self, exc: BaseException) -> None:
        self._to_loop(_settle, self.failed, exc)

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        # The loop is only closed after stop() joined us; a closed loop means shutdown anyway.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(callback, *args)


def _settle(future: asyncio.Future[BaseException], exc: BaseException) -> None:
    if not future.done():
        future.set_result(exc)
