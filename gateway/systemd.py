"""systemd integration, written from the protocol (sd_notify(3)): READY, STATUS, STOPPING, WATCHDOG.

A notification is one datagram of newline-separated ``KEY=VALUE`` lines sent to the AF_UNIX socket
named by ``$NOTIFY_SOCKET`` (a leading ``@`` names the abstract namespace). Without that variable
every call is a no-op, so the gateway runs the same outside systemd. The watchdog is fed from the
event loop, and only while the gateway reports itself healthy (docs/gateway.md "systemd").
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping

log = logging.getLogger("shorewatch.systemd")

# sun_path is 108 bytes on Linux; an address that does not fit cannot be reached.
MAX_SOCKET_ADDRESS = 108
# STATUS= is shown by `systemctl status` on one line; longer text is cut.
MAX_STATUS_CHARS = 200
# Without a watchdog, start-up progress is still reported this often (EXTEND_TIMEOUT_USEC).
DEFAULT_TICK_S = 5.0
# STATUS= is re-evaluated this often and sent when it changed.
STATUS_INTERVAL_S = 2.0
# A watchdog tick this late means the event loop was blocked: worth a log line.
LATE_TICK_S = 1.0


class Notifier:
    """A client of the service manager's notification socket; ``enabled`` is False without one."""

    def __init__(self, address: str | None) -> None:
        self._address: str | bytes | None = None
        self._sock: socket.socket | None = None
        self._failed = False
        if not address:
            return
        if address.startswith("@"):
            target: str | bytes = b"\0" + address[1:].encode()  # abstract namespace
        elif address.startswith("/"):
            target = address
        else:
            log.warning("NOTIFY_SOCKET=%r is not a unix socket address: not notifying systemd",
                        address)
            return
        if len(os.fsencode(target)) > MAX_SOCKET_ADDRESS:
            log.warning("NOTIFY_SOCKET is longer than %d bytes: not notifying systemd",
                        MAX_SOCKET_ADDRESS)
            return
        self._address = target
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setblocking(False)  # a full queue drops a notification, never the loop

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Notifier:
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; False if not sent (logged once)."""
        if self._sock is None or self._address is None or not assignments:
            return False
        try:
            self._sock.sendto("\n".join(assignments).encode(), self._address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd (%s): %s", assignments[0].split("=")[0], exc)
            self._failed = True
            return False
        if self._failed:
            log.info("notifying systemd again")
            self._failed = False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(env: Mapping[str, str], pid: int) -> float | None:
    """``WatchdogSec=`` in seconds when it applies to this process (WATCHDOG_PID), else None."""
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if owner and (not owner.isdigit() or int(owner) != pid):
        return None
    return int(usec) / 1e6


def status_line(text: str) -> str:
    """A STATUS= value: one line, bounded."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_STATUS_CHARS else flat[: MAX_STATUS_CHARS - 3] + "..."


class Supervisor:
    """Tells systemd when the gateway is ready, what it is doing, and that it is healthy.

    ``wait_ready`` returns once the service is ready; ``health`` returns None while healthy or
    the reason it is not; ``status`` is the one-line STATUS= text.
    """

    def __init__(self, notifier: Notifier, *, wait_ready: Callable[[], Awaitable[None]],
                 health: Callable[[], str | None], status: Callable[[], str],
                 watchdog_s: float | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._notifier = notifier
        self._wait_ready = wait_ready
        self._health = health
        self._status = status
        self._watchdog_s = watchdog_s
        self._clock = clock
        self._ready = False
        self._stopping = False
        self._sent_status = ""

    async def run(self) -> None:
        """Runs until cancelled; returns at once when not under systemd."""
        if not self._notifier.enabled:
            return
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._feed(), name="systemd-watchdog")
            tg.create_task(self._report_status(), name="systemd-status")
            await self._wait_ready()
            if not self._stopping:
                self._ready = True
                self._sent_status = status_line(self._status())
                self._notifier.send("READY=1", f"STATUS={self._sent_status}")
                log.info("ready: %s", self._sent_status)

    def stopping(self) -> None:
        """Before the ordered shutdown: systemd shows "deactivating" from here on."""
        self._stopping = True
        self._notifier.send("STOPPING=1", "STATUS=stopping")

    async def _feed(self) -> None:
        """WATCHDOG=1 at half WatchdogSec while healthy; before READY, also extend the start
        timeout, so a gateway waiting for its broker is not killed while it serves devices."""
        tick = self._watchdog_s / 2 if self._watchdog_s else DEFAULT_TICK_S
        extend_usec = int(tick * 3 * 1e6)
        problem: str | None = "starting"
        while not self._stopping:
            previous, problem = problem, self._health()
            if problem not in (previous, "starting"):
                if problem is None:
                    log.info("healthy: feeding the systemd watchdog")
                else:
                    log.warning("unhealthy: %s; not feeding the systemd watchdog", problem)
            if problem is None:
                fields = ["WATCHDOG=1"] if self._watchdog_s else []
                if not self._ready:
                    fields.append(f"EXTEND_TIMEOUT_USEC={extend_usec}")
                self._notifier.send(*fields)
            started = self._clock()
            await asyncio.sleep(tick)
            late = self._clock() - started - tick
            if late > LATE_TICK_S:
                log.warning("event loop was blocked for %.1f s", late)

    async def _report_status(self) -> None:
        while not self._stopping:
            text = status_line(self._status())
            if text != self._sent_status:
                self._sent_status = text
                self._notifier.send(f"STATUS={text}")
            await asyncio.sleep(STATUS_INTERVAL_S)

