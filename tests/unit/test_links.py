"""Link helpers at the seam: serial over pyserial's loop:// URL, addresses, names, bind errors."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gateway.core import Address
from gateway.errors import LinkError
from gateway.mdns import Advertisement, http_url
from gateway.metrics import GatewayMetrics
from gateway.transports import Link, SerialLink, SerialSettings, UdpListener, UdpSettings


async def test_serial_link_on_loop_url_writes_cobs_and_reads_it_back() -> None:
    metrics = GatewayMetrics(list)
    got: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()

    def deliver(frame: bytes, source: Address, link: Link) -> None:
        got.put_nowait((frame, source))

    link = SerialLink(SerialSettings("loop://"), deliver, metrics)
    task = asyncio.create_task(link.run())
    try:
        async with asyncio.timeout(10):
            await link.opened.wait()
            link.send(b"\x01\x00\x02")  # loop:// echoes what is written: reply -> intake
            assert await got.get() == (b"\x01\x00\x02", ("serial:loop://", 0))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    link.send(b"late")  # the port is closed: dropped and counted, not raised
    assert metrics.registry.get_sample_value(
        "shorewatch_replies_dropped_total", {"link": "serial:loop://"}) == 1


async def test_udp_bind_conflict_names_the_listener_and_a_fix() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        listener = UdpListener(UdpSettings("127.0.0.1", port), lambda *_: None,
                               GatewayMetrics(list))
        with pytest.raises(LinkError, match=rf"udp 127.0.0.1:{port} cannot be bound: .*"
                                            r"\(is another gateway running on this port\?\)"):
            await listener.start()


@pytest.mark.parametrize(("host", "addresses", "url"), [
    ("127.0.0.1", (), "http://127.0.0.1:9108/metrics"),
    ("0.0.0.0", ("192.168.1.7",), "http://192.168.1.7:9108/metrics"),
    ("::", ("fd00::7",), "http://[fd00::7]:9108/metrics"),
    ("::", (), "http://[::]:9108/metrics"),
], ids=["specific", "wildcard-v4", "wildcard-v6", "nothing-better"])
def test_http_url_replaces_wildcards_with_an_advertised_address(
        host: str, addresses: tuple[str, ...], url: str) -> None:
    assert http_url(host, 9108, "/metrics", addresses) == url


def test_advertisement_names_and_txt() -> None:
    ad = Advertisement("Calais Nord", "gw 1", 4700, ("127.0.0.1",), "http://127.0.0.1:9108/metrics")
    assert ad.name == "Shorewatch Calais Nord gw 1._shorewatch._udp.local."
    assert ad.server == "shorewatch-calais-nord-gw-1.local."
    assert ad.txt() == {"proto": "1", "site": "Calais Nord", "gateway": "gw 1",
                        "metrics": "http://127.0.0.1:9108/metrics"}
