"""A minimal asyncio HTTP endpoint for ``/metrics`` and ``/healthz`` (no framework; /metrics is
rendered by one thread of its own)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

log = logging.getLogger("shorewatch.http")

# Stands for the /metrics body until it is rendered (off the event loop).
_RENDER = b"(rendered off the event loop)"
# Requests are one line plus a few headers; anything longer is not a scraper.
MAX_REQUEST_HEAD = 8192
READ_TIMEOUT_S = 5.0


class _One:
    """A registry of one family, for ``generate_latest`` (it only calls ``collect``)."""

    def __init__(self, family: Metric) -> None:
        self._family = family

    def collect(self) -> Iterator[Metric]:
        yield self._family


class MetricsServer:
    """``/metrics`` is rendered in a worker thread, one piece at a time: the event loop must
    keep reading device frames meanwhile (rendered on the loop, a 10,000-device scrape stalled
    intake long enough for the kernel to drop frames). ``prepare`` runs on the loop just
    before, for work that must not race the loop (the session timeouts); the collectors only
    read in-memory state. One dedicated thread renders, so concurrent scrapes queue rather than
    take the workers SQLite needs. Each family of ``registry``, then each chunk of ``stream``
    (the fleet, ~1,000 samples a chunk), is written before the next is built: the whole
    exposition (~12 MB of text at 10,000 devices) never sits in memory, which used to leave
    RSS ~2.5 KiB per device higher after a scrape (bench/gateway_ingest.py prints it)."""

    def __init__(self, registry: CollectorRegistry, healthy: Callable[[], bool],
                 prepare: Callable[[], None] | None = None,
                 stream: Callable[[], Iterator[bytes]] | None = None) -> None:
        """``stream`` yields more exposition text after ``registry``'s (the fleet)."""
        self._registry = registry
        self._stream = stream
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
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            writer.close()
            return
        try:
            if body is _RENDER:
                await self._stream_metrics(writer, status, ctype)
            else:
                writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: "
                             f"{len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _stream_metrics(self, writer: asyncio.StreamWriter, status: str,
                              ctype: str) -> None:
        """The exposition one metric family at a time, each rendered in the render thread and
        written before the next is built; the body ends when the connection closes (HTTP/1.1
        allows it with ``Connection: close``). A whole 10,000-device exposition (~12 MB of
        text, plus the samples behind it) is never in memory at once."""
        if self._prepare is not None:
            self._prepare()
        loop = asyncio.get_running_loop()
        chunks = self._chunks()
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                     f"Connection: close\r\n\r\n".encode())
        while True:
            chunk = await loop.run_in_executor(self._render, next, chunks, None)
            if chunk is None:
                return
            writer.write(chunk)
            await writer.drain()

    def _chunks(self) -> Iterator[bytes]:
        """Runs in the render thread, one chunk per step."""
        for family in self._registry.collect():
            yield generate_latest(_One(family))
        if self._stream is not None:
            yield from self._stream()

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
