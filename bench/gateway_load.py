"""A long load run: simulated devices through a live gateway, drops and memory over time.

    python bench/gateway_load.py [--seconds 60] [--devices 2000] [--telemetry-interval 1]
                                 [--detection-interval 20] [--sample-every 5]

The gateway (``shorewatch gateway run``) gets one core; the simulated fleet (shorewatch.loadgen,
HELLO, telemetry, detections retransmitted until ACKed), a subscriber and this script share the
other. Every ``--sample-every`` seconds a row: frames sent and accepted by type, rejected,
kernel drops at the gateway socket (/proc/net/udp), replies and events the gateway dropped, and
the gateway's RSS. The baselines come from the same run: frames accepted against frames sent,
RSS against the gateway's own RSS before the load; the gateway's CPU use (all threads, share of
one core) is printed per row and for the whole run. The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

try:
    import shorewatch  # noqa: F401 - installed, or run from the repository root
except ImportError:  # ``python bench/gateway_load.py`` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiomqtt

from shorewatch.harness import GatewayProcess, Metrics
from shorewatch.loadgen import (
    LoadGenerator,
    LoadProfile,
    make_fleet,
    register_fleet,
    udp_socket_stats,
)
from shorewatch.peers import Mosquitto

DRAIN_S = 30.0


class Delivered:
    """Detection events seen by a subscriber, by idempotency key."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.messages = 0
        self.ready = asyncio.Event()
        self.progress = asyncio.Event()

    async def wait_for(self, keys: set[str], within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while not keys <= self.keys and time.monotonic() < deadline:
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), deadline - time.monotonic())

    async def run(self, broker: Mosquitto, topic: str) -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe(topic, qos=1)
            self.ready.set()
            async for message in client.messages:
                self.messages += 1
                self.keys.add(json.loads(bytes(message.payload))["idempotency_key"])
                self.progress.set()


def _pin(gateway_pid: int) -> None:
    """The gateway (all its threads) on the first core, this process on the second."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) >= 2:
        for task in Path(f"/proc/{gateway_pid}/task").iterdir():
            os.sched_setaffinity(int(task.name), {cores[0]})
        os.sched_setaffinity(0, {cores[1]})


# What the rows need from /metrics (a scrape of 10,000 devices is ~12 MB of text).
SCRAPED = ("shorewatch_frames_", "shorewatch_replies_dropped_total",
           "shorewatch_outbox_dropped_total", "shorewatch_downlink_deferred_total",
           "shorewatch_mqtt_published_total", "shorewatch_commit_seconds_count")


def _written(pid: int) -> int:
    """Bytes the process caused to be written to storage (/proc/PID/io write_bytes)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def _summary(lg: LoadGenerator, m: Metrics, written: int) -> float:
    """Print storage use and frames by type; returns the number of group commits."""
    accepted = m.by_label("shorewatch_frames_received_total", "type")
    commits = m.total("shorewatch_commit_seconds_count")
    print(f"storage: {commits:,.0f} group commits ({accepted_total(m) / max(commits, 1):.1f} "
          f"frames each), {written / 2**20:,.1f} MiB written during the run "
          f"({written / max(accepted_total(m), 1):,.0f} B per accepted frame)")
    print("by type (sent / accepted): " + ", ".join(
        f"{t} {n:,} / {accepted.get(t, 0):,.0f}" for t, n in sorted(lg.stats.sent.items())))
    return commits


def accepted_total(m: Metrics) -> float:
    return m.total("shorewatch_frames_received_total")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _row(t: float, lg: LoadGenerator, m: Metrics, drops: int, rss: int,  # noqa: PLR0917
         cpu: float) -> str:
    accepted = m.total("shorewatch_frames_received_total")
    lost = (m.total("shorewatch_replies_dropped_total")
            + m.total("shorewatch_outbox_dropped_total")
            + m.total("shorewatch_downlink_deferred_total"))
    return (f"{t:6.1f} {lg.stats.total_sent():>10,} {accepted:>10,.0f} "
            f"{m.total('shorewatch_frames_rejected_total'):>8,.0f} {drops:>8,} {lost:>8,.0f} "
            f"{lg.stats.events['acked']:>8,} {m.total('shorewatch_mqtt_published_total'):>9,.0f} "
            f"{rss / 2**20:>8.1f} {cpu:>6.0%}")


async def run(args: argparse.Namespace, work: Path, broker: Mosquitto) -> dict[str, float]:
    fleet = make_fleet(args.devices, seed=21)
    register_fleet(work / "gw" / "registry.sqlite3", fleet)
    gw = GatewayProcess(work / "gw", mqtt=(broker.host, broker.port), prefix="load",
                        site="bench", workdir=work / "run")
    await asyncio.to_thread(gw.start)
    _pin(gw.pid)
    delivered = Delivered()
    sub = asyncio.create_task(delivered.run(broker, "load/bench/device/+/event/detection"))
    profile = LoadProfile(telemetry_interval_s=args.telemetry_interval,
                          detection_interval_s=args.detection_interval, max_in_flight=4,
                          ack_timeout_s=1.0, start_spread_s=2.0, sockets=8)
    rss_start = gw.rss()
    rss_max = rss_start
    try:
        await asyncio.wait_for(delivered.ready.wait(), 10)
        async with LoadGenerator(fleet, ("127.0.0.1", gw.udp_port), profile, seed=22) as lg:
            synced = await lg.connect(timeout_s=60)
            print(f"{synced:,} of {args.devices:,} devices welcomed; gateway RSS "
                  f"{rss_start / 2**20:.1f} MiB before the load")
            print(f"{'t/s':>6} {'sent':>10} {'accepted':>10} {'rejected':>8} {'k.drops':>8} "
                  f"{'gw.drops':>8} {'acked':>8} {'published':>9} {'RSS MiB':>8} {'CPU':>6}")
            started = time.monotonic()
            cpu_start = last_cpu = _cpu_seconds(gw.pid)
            written_start = _written(gw.pid)
            last_t = started
            run_task = asyncio.create_task(lg.run(args.seconds))
            while not run_task.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(run_task), args.sample_every)
                m = await asyncio.to_thread(gw.scrape, 10.0, SCRAPED)
                kernel = udp_socket_stats(gw.udp_port)
                rss = gw.rss()
                rss_max = max(rss_max, rss)
                now, cpu = time.monotonic(), _cpu_seconds(gw.pid)
                print(_row(now - started, lg, m, kernel.drops if kernel else -1, rss,
                           (cpu - last_cpu) / (now - last_t)), flush=True)
                last_t, last_cpu = now, cpu
            cpu_run = (_cpu_seconds(gw.pid) - cpu_start) / (time.monotonic() - started)
            written = _written(gw.pid) - written_start
            drained = await lg.drain(DRAIN_S)
        observed = {d.key for dev in lg.devices for d in dev.detections}
        await delivered.wait_for(observed, DRAIN_S)
        m = await asyncio.to_thread(gw.scrape, 10.0, SCRAPED)
        kernel = udp_socket_stats(gw.udp_port)
        rss_end = gw.rss()
        print(_row(time.monotonic() - started, lg, m, kernel.drops if kernel else -1, rss_end,
                   cpu_run))
    finally:
        sub.cancel()
        await asyncio.gather(sub, return_exceptions=True)
        code = await asyncio.to_thread(gw.stop)
    commits = _summary(lg, m, written)
    print(f"detections: {len(observed):,} observed, {lg.stats.events['acked']:,} acked, "
          f"{len(observed & delivered.keys):,} delivered ({delivered.messages:,} messages), "
          f"{lg.stats.events['retransmissions']:,} retransmissions, all acked: {drained}; "
          f"gateway exit {code}")
    return {"sent": lg.stats.total_sent(), "accepted": m.total("shorewatch_frames_received_total"),
            "kernel_drops": kernel.drops if kernel else -1,
            "gateway_drops": m.total("shorewatch_replies_dropped_total")
            + m.total("shorewatch_outbox_dropped_total"),
            "rejected": m.total("shorewatch_frames_rejected_total"),
            "observed": len(observed), "delivered": len(observed & delivered.keys),
            "rss_start": rss_start, "rss_end": rss_end, "rss_max": rss_max,
            "cpu_pct": cpu_run * 100, "commits": commits, "written": written}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--telemetry-interval", type=float, default=1.0)
    parser.add_argument("--detection-interval", type=float, default=20.0,
                        help="mean seconds between detections of one device")
    parser.add_argument("--sample-every", type=float, default=5.0)
    args = parser.parse_args()
    rate = args.devices / args.telemetry_interval + args.devices / args.detection_interval
    print(f"{args.devices:,} devices for {args.seconds:.0f} s, ~{rate:,.0f} frames/s; load "
          f"average {os.getloadavg()[0]:.2f}")
    work = Path(tempfile.mkdtemp(prefix="shorewatch-load-"))
    broker = Mosquitto(work / "mosquitto").start()
    try:
        r = asyncio.run(run(args, work, broker))
    finally:
        broker.stop()
    print(f"accepted / sent = {r['accepted'] / r['sent']:.4f}; RSS end / start = "
          f"{r['rss_end'] / r['rss_start']:.2f}")
    print(f"RESULT seconds={args.seconds:.0f} devices={args.devices} "
          f"frames_sent={r['sent']:.0f} frames_accepted={r['accepted']:.0f} "
          f"kernel_drops={r['kernel_drops']:.0f} gateway_drops={r['gateway_drops']:.0f} "
          f"rejected={r['rejected']:.0f} detections={r['observed']:.0f} "
          f"delivered={r['delivered']:.0f} rss_start_bytes={r['rss_start']:.0f} "
          f"rss_end_bytes={r['rss_end']:.0f} rss_max_bytes={r['rss_max']:.0f} "
          f"gateway_cpu_pct={r['cpu_pct']:.0f} commits={r['commits']:.0f} "
          f"written_bytes={r['written']:.0f}")


if __name__ == "__main__":
    main()
