"""A minimal asyncio HTTP endpoint for ``/metrics`` and ``/healthz`` (no framework; /metrics is
rendered by one thread of its own)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger("shorewatch.http")

# Stands for the /metrics body until it is rendered (off the event loop).
_RENDER = b"(rendered off the event loop)"
# Requests are one line plus a few headers; anything longer is not a scraper.
MAX_REQUEST_HEAD = 8192
READ_TIMEOUT_S = 5.0


class MetricsServer:
    """``/metrics`` is rendered in a worker thread: the fleet gauges of 10,000 devices take
    ~0.9 s to build, and the event loop must keep reading device frames meanwhile (rendered on
    the loop, such a scrape stalled intake long enough for the kernel to drop frames).
    ``prepare`` runs on the loop just before, for work that must not race the loop (the
    session timeouts); the collectors only read in-memory state. One dedicated thread renders,
    so concurrent scrapes queue rather than take the workers SQLite needs. The price: a render
    interleaved with the loop's allocations fragments the heap, and RSS settles higher (~6 MiB
    more at 2,000 devices, ~100 MiB at 10,000, bench/gateway_load.py) instead of frames being
    dropped (17 % of them at 10,000 devices with a scrape every 5 s)."""

    def __init__(self, registry: CollectorRegistry, healthy: Callable[[], bool],
                 prepare: Callable[[], None] | None = None) -> None:
        self._registry = registry
        self._healthy = healthy
        self._prepare = prepare
        self._server: asyncio.Server | None = None
        self._render = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics")

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (``port`` 0 picks a free one)."""
        self._server = await asyncio.start_server(self._serve, host, port,
                                                  limit=MAX_REQUEST_HEAD)
        bound: int = self._server.sockets[0].getsockname()[1]
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._render.shutdown(wait=False, cancel_futures=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            status, ctype, body = self._route(head)
            if body is _RENDER:
                if self._prepare is not None:
                    self._prepare()
                loop = asyncio.get_running_loop()
                body = await loop.run_in_executor(self._render, generate_latest, self._registry)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            writer.close()
            return
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: "
                     f"{len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _route(self, head: bytes) -> tuple[str, str, bytes]:
        parts = head.split(b"\r\n", 1)[0].split(b" ")
        if len(parts) != 3 or parts[0] != b"GET":
            return "405 Method Not Allowed", "text/plain", b"only GET\n"
        path = parts[1].split(b"?", 1)[0]
        if path == b"/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, _RENDER
        if path == b"/healthz":
            if self._healthy():
                return "200 OK", "text/plain", b"ok\n"
            return "503 Service Unavailable", "text/plain", b"unhealthy\n"
        return "404 Not Found", "text/plain", b"not found\n"
