"""/metrics streams the fleet as text without sample objects: byte for byte what
prometheus-client renders from the same families, and served in chunks a scraper parses."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.http import MetricsServer
from gateway.metrics import GatewayMetrics
from gateway.registry import DeviceState
from gateway.sessions import SessionState
from protocol import DeviceKeys, ReplayWindow, Telemetry, encode_body
from protocol.messages import NOT_MEASURED_HUMIDITY, NOT_MEASURED_I16, UNKNOWN_RSSI

KEYS = DeviceKeys.from_master(bytes(32))
FULL = Telemetry(3712, 5100, -120, 1850, 140, -61, 86400, 3, 900, 5)
BLANK = Telemetry(3300, 0, NOT_MEASURED_I16, NOT_MEASURED_I16, NOT_MEASURED_HUMIDITY,
                  UNKNOWN_RSSI, 1, 1, 0, 0)


def _fleet(n: int) -> list[DeviceState]:
    states = []
    for i in range(n):
        s = DeviceState(device_id=0x51000000 + i, name=f'dune "{i}" \\ north\nside',
                        keys=KEYS, tag_len=8, window=ReplayWindow(), down_next=0,
                        down_reserved=256, hw_kind="sensor_node", fw_version="0.1.0")
        s.session = list(SessionState)[i % len(SessionState)]
        if i % 3:
            s.last_seen = 1_795_680_000.125 + i
            # As the fast intake keeps it (bytes), or decoded, or nothing yet.
            s.shown_telemetry = encode_body(FULL) if i % 3 == 1 else BLANK
        states.append(s)
    return states


def _fleet_only(metrics: GatewayMetrics) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.fleet)
    return generate_latest(registry)


def test_streamed_fleet_text_is_what_prometheus_client_renders() -> None:
    states = _fleet(2500)  # more than one chunk per family
    metrics = GatewayMetrics(lambda: states)
    chunks = list(metrics.fleet.exposition())
    assert len(chunks) > 20
    assert b"".join(chunks) == _fleet_only(metrics)


async def test_metrics_endpoint_serves_counters_then_the_fleet() -> None:
    states = _fleet(1200)
    metrics = GatewayMetrics(lambda: states)
    metrics.frames.labels("telemetry").inc(7)
    server = MetricsServer(metrics.counters, lambda: True, stream=metrics.fleet.exposition)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        response = await asyncio.wait_for(reader.read(), 30)
        writer.close()
    finally:
        await server.close()
    head, body = response.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in head
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert {s.labels["type"]: s.value for s in families["shorewatch_frames_received"].samples
            if s.name.endswith("_total")}["telemetry"] == 7
    assert len(families["shorewatch_device_info"].samples) == 1200
    names = {s.labels["name"] for s in families["shorewatch_device_info"].samples}
    assert 'dune "1" \\ north\nside' in names  # escaped on the wire, the same once parsed
    batteries = families["shorewatch_device_battery_volts"].samples
    assert len(batteries) == 800 and {s.value for s in batteries} == {3.712, 3.3}
    assert len(families["shorewatch_device_rssi_dbm"].samples) == 400  # BLANK has none
    assert body == generate_latest(metrics.counters) + _fleet_only(metrics)
