"""Load, CI size: 1,000 simulated devices through a live gateway process for a few seconds.

Every frame a device sent must be counted once by the gateway as accepted (by type), none
rejected, none dropped by the kernel at the gateway's socket (read from /proc/net/udp) at this
moderate rate, and every detection acknowledged and published. The gateway's RSS is reported,
not asserted: speed and size targets live in bench/gateway_ingest.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from shorewatch.harness import GatewayProcess, Metrics
from shorewatch.loadgen import (
    LoadGenerator,
    LoadProfile,
    make_fleet,
    register_fleet,
    udp_socket_stats,
)
from shorewatch.peers import Mosquitto

pytestmark = pytest.mark.integration

DEVICES = 1000
RUN_S = 4.0
# 1,000 devices: 2,000 telemetry + ~400 detections per second, far below the gateway's ceiling.
PROFILE = LoadProfile(telemetry_interval_s=0.5, detection_interval_s=2.5, max_in_flight=2,
                      ack_timeout_s=1.0, start_spread_s=0.5, sockets=8)


async def _wait_published(gw: GatewayProcess, detections: int, within_s: float) -> Metrics:
    deadline = time.monotonic() + within_s
    while True:
        m = await asyncio.to_thread(gw.scrape)
        if m.total("shorewatch_mqtt_published_total") >= detections or \
                time.monotonic() > deadline:
            return m
        await asyncio.sleep(0.2)


async def test_thousand_devices_every_frame_counted(
        tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str,
        record_property: pytest.RecordProperty) -> None:
    fleet = make_fleet(DEVICES, seed=11)
    register_fleet(tmp_path / "gw" / "registry.sqlite3", fleet)
    gw = GatewayProcess(tmp_path / "gw", mqtt=(mosquitto.host, mosquitto.port),
                        prefix=topic_prefix, site="load", workdir=tmp_path / "run").start()
    try:
        rss_idle = gw.rss()
        async with LoadGenerator(fleet, ("127.0.0.1", gw.udp_port), PROFILE, seed=5) as lg:
            assert await lg.connect(timeout_s=20) == DEVICES
            await lg.run(RUN_S)
            assert await lg.drain(timeout_s=20), f"{lg.pending()} detections never acknowledged"
        kernel = udp_socket_stats(gw.udp_port)
        rss_loaded = gw.rss()
        sent = lg.stats.sent
        m = await _wait_published(gw, sum(len(d.detections) for d in lg.devices), within_s=30)

        assert kernel is not None
        assert kernel.drops == 0, "the kernel dropped datagrams at this moderate rate"
        accepted = m.by_label("shorewatch_frames_received_total", "type")
        assert sent["hello"] >= DEVICES and sent["telemetry"] > DEVICES * 4
        assert {t: int(accepted.get(t, 0)) for t in sent} == dict(sent)
        assert m.total("shorewatch_frames_received_total") == lg.stats.total_sent()
        assert m.total("shorewatch_frames_rejected_total") == 0
        # Each observation is published once (a retransmission is recognised and only ACKed).
        observed = sum(len(d.detections) for d in lg.devices)
        assert m.total("shorewatch_mqtt_published_total") == observed
        assert lg.stats.events["acked"] == observed
        assert lg.stats.events["send_blocked"] == 0
        assert gw.alive()
    finally:
        code = gw.stop()
    assert code == 0, gw.log_text()[-3000:]
    record_property("gateway_rss_idle_bytes", rss_idle)
    record_property("gateway_rss_loaded_bytes", rss_loaded)
    print(f"\n{DEVICES} devices, {lg.stats.total_sent()} frames in {RUN_S:.0f} s: gateway RSS "
          f"{rss_idle / 2**20:.1f} MiB idle (devices loaded), {rss_loaded / 2**20:.1f} MiB after "
          f"the run; kernel drops {kernel.drops}")
