"""sd_notify client and supervisor on real unix datagram sockets (path and abstract), and the
commit health the watchdog is fed by."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core import Effects
from gateway.metrics import GatewayMetrics
from gateway.service import COMMIT_STALL_S, Committer
from gateway.systemd import MAX_STATUS_CHARS, Notifier, Supervisor, status_line, watchdog_interval


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A notification socket like systemd's: (socket, $NOTIFY_SOCKET value)."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, str(path)
    sock.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    assert notifier.send("READY=1") is False
    notifier.close()


def test_path_socket_gets_one_datagram_per_notification(listener) -> None:
    sock, address = listener
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    assert notifier.send("READY=1", "STATUS=3 devices")
    assert sock.recv(4096) == b"READY=1\nSTATUS=3 devices"
    notifier.close()


def test_abstract_namespace_socket() -> None:
    name = f"shorewatch-test-{os.getpid()}-{id(object())}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        notifier = Notifier(f"@{name}")
        assert notifier.send("WATCHDOG=1")
        assert sock.recv(4096) == b"WATCHDOG=1"
        notifier.close()
    finally:
        sock.close()


@pytest.mark.parametrize("address", ["vsock:2:1234", "relative/path", "/" + "x" * 200])
def test_unusable_addresses_disable_notifications(address: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "shorewatch.systemd"):
        notifier = Notifier(address)
    assert not notifier.enabled
    assert "not notifying systemd" in caplog.text


def test_a_vanished_socket_is_logged_once_and_recovers(
        listener, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sock, address = listener
    notifier = Notifier(address)
    sock.close()
    Path(address).unlink()
    with caplog.at_level(logging.INFO, "shorewatch.systemd"):
        assert notifier.send("WATCHDOG=1") is False
        assert notifier.send("WATCHDOG=1") is False
        again = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        again.bind(address)
        try:
            assert notifier.send("WATCHDOG=1")
            assert again.recv(4096) == b"WATCHDOG=1"
        finally:
            again.close()
    assert caplog.text.count("cannot notify systemd (WATCHDOG)") == 1
    assert "notifying systemd again" in caplog.text
    notifier.close()


@pytest.mark.parametrize(("env", "expected"), [
    ({}, None),
    ({"WATCHDOG_USEC": "30000000"}, 30.0),
    ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "4242"}, 2.0),
    ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),  # someone else's watchdog
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
])
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(env, 4242) == expected


def test_status_is_one_bounded_line() -> None:
    assert status_line("a\nb  c") == "a b c"
    long = status_line("x" * 500)
    assert len(long) == MAX_STATUS_CHARS and long.endswith("...")


async def _next(sock: socket.socket, within: float = 5.0) -> list[str]:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(within):
        data = await loop.sock_recv(sock, 4096)
    return data.decode().split("\n")


async def test_supervisor_extends_start_then_ready_then_feeds_only_while_healthy(
        listener) -> None:
    sock, address = listener
    sock.setblocking(False)
    ready = asyncio.Event()
    problem: list[str | None] = [None]
    supervisor = Supervisor(Notifier(address), wait_ready=ready.wait,
                            health=lambda: problem[0], status=lambda: "2 devices",
                            watchdog_s=0.1)
    task = asyncio.create_task(supervisor.run())
    try:
        seen: list[list[str]] = []
        while not any("STATUS=2 devices" in m for m in seen) or not any(
                "EXTEND_TIMEOUT_USEC=150000" in m for m in seen):
            seen.append(await _next(sock))
        assert not any("READY=1" in m for m in seen)  # not ready: the start is extended
        ready.set()
        while "READY=1" not in (msg := await _next(sock)):
            pass
        assert msg == ["READY=1", "STATUS=2 devices"]
        assert await _next(sock) == ["WATCHDOG=1"]  # ready: no more extensions
        problem[0] = "group commit failing"
        _drain(sock)  # what was sent before is in the buffer; nothing may follow
        with pytest.raises(TimeoutError):
            await _next(sock, within=0.5)  # unhealthy: the watchdog starves
        problem[0] = None
        assert await _next(sock) == ["WATCHDOG=1"]
        supervisor.stopping()
        while (msg := await _next(sock)) == ["WATCHDOG=1"]:
            pass
        assert msg == ["STOPPING=1", "STATUS=stopping"]
        with pytest.raises(TimeoutError):
            await _next(sock, within=0.5)  # nothing after STOPPING
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def _drain(sock: socket.socket) -> None:
    while True:
        try:
            sock.recv(4096, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return


async def test_supervisor_is_a_no_op_outside_systemd() -> None:
    async def never() -> None:
        await asyncio.Event().wait()

    supervisor = Supervisor(Notifier(None), wait_ready=never, health=lambda: None,
                            status=lambda: "", watchdog_s=0.1)
    async with asyncio.timeout(1):
        await supervisor.run()  # returns at once


class _FailingRegistry:
    """A registry whose disk is gone: every commit raises, as SQLite does on EIO."""

    def __init__(self) -> None:
        self.fail = True

    def commit(self, rows: object, records: object) -> None:
        if self.fail:
            raise sqlite3.OperationalError("disk I/O error")


async def test_commit_health_feeds_the_watchdog_decision() -> None:
    """Healthy = the last group commit succeeded and the loop cycled recently."""
    registry = _FailingRegistry()
    sent: list[bytes] = []
    committer = Committer(registry, {}, GatewayMetrics(list),
                          lambda frame, addr: sent.append(frame), lambda: None)
    now = time.monotonic()
    assert committer.problem(now) is None
    committer.submit(("127.0.0.1", 1), Effects(replies=[b"ack"]))
    await committer.commit()
    assert committer.problem(now) == "group commit failing"
    assert sent == []  # nothing released while failing
    registry.fail = False
    committer.submit(("127.0.0.1", 1), Effects(replies=[b"ack"]))
    await committer.commit()
    assert committer.problem(now) is None
    assert sent == [b"ack"]
    assert committer.problem(committer.last_cycle + COMMIT_STALL_S + 1) == (
        "group commit stalled (no cycle for over 10 s)")
