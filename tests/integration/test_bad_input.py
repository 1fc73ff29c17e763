"""200,000 hostile datagrams against a live gateway process, between legitimate devices.

The corpus (shorewatch.attack) mixes truncated, oversize, bad-version, unknown-type,
wrong-direction, unknown-device, resync-required, forged, malformed (authentic but refused by the
codec), replayed and too-old frames, random garbage and bit flips; replays of the legitimate
devices' own frames are added while they talk. Sending is paced on the kernel's view of the
gateway socket (its receive queue in /proc/net/udp), so nothing is dropped, and the drop counter
proves it: then every datagram the gateway received must be counted exactly once, under a
reason the corpus allows, and every legitimate frame must be accepted. Afterwards the registry
(replay windows, detection sequence) must match what the devices sent, across a restart.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from pathlib import Path

import pytest

from gateway.registry import Registry
from shorewatch.attack import REPLAY_REASONS, Attacker, Bad, check_counts
from shorewatch.harness import GatewayProcess, Metrics
from shorewatch.loadgen import (
    LoadGenerator,
    LoadProfile,
    SimDevice,
    make_fleet,
    register_fleet,
    udp_socket_stats,
)
from shorewatch.peers import Mosquitto

pytestmark = pytest.mark.integration

BAD = 200_000
LEGIT = 20
# Live replays of the legitimate devices' frames, sent among the corpus.
LIVE_REPLAYS = 2_000
LEGIT_PROFILE = LoadProfile(telemetry_interval_s=0.2, detection_interval_s=0.5, max_in_flight=2,
                            ack_timeout_s=0.5, record_frames=True, sockets=2)
VICTIM_FRAMES = 150  # per victim: more than the 64-counter replay window
# Longest the attack may take on a slow, shared runner; typically 5-10 s.
ATTACK_TIMEOUT_S = 90.0


def _rmem_default() -> int:
    return int(Path("/proc/sys/net/core/rmem_default").read_text())


async def _paced_send(port: int, datagrams: list[Bad], live: list[SimDevice],
                      rng: random.Random) -> tuple[int, list[Bad]]:
    """Send ``datagrams`` so the gateway's receive queue never holds more than a quarter of its
    buffer; returns (datagrams sent, live replays sent among them)."""
    budget = _rmem_default() // 4
    target = ("127.0.0.1", port)
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    replays: list[Bad] = []
    sent = 0
    deadline = time.monotonic() + ATTACK_TIMEOUT_S
    replay_every = max(1, len(datagrams) // LIVE_REPLAYS)
    try:
        i = 0
        while i < len(datagrams):
            assert time.monotonic() < deadline, f"attack not done after {ATTACK_TIMEOUT_S} s"
            used = 0
            while i < len(datagrams) and used < budget:
                b = datagrams[i]
                # Each datagram costs its size plus the kernel's per-buffer overhead (< 1 KiB).
                used += len(b.data) + 1024
                socks[i % 2].sendto(b.data, target)
                i += 1
                sent += 1
                if i % replay_every == 0:
                    replay = _live_replay(live, rng)
                    if replay is not None:
                        socks[0].sendto(replay.data, target)
                        replays.append(replay)
                        used += len(replay.data) + 1024
            while True:
                stats = udp_socket_stats(port)
                assert stats is not None, "the gateway socket is gone"
                if stats.rx_queue <= budget:
                    break
                assert time.monotonic() < deadline, "the gateway stopped reading"
                await asyncio.sleep(0.0005)
            await asyncio.sleep(0)  # let the legitimate devices run
    finally:
        for s in socks:
            s.close()
    return sent, replays


def _live_replay(devices: list[SimDevice], rng: random.Random) -> Bad | None:
    """A frame a legitimate device sent earlier (so the gateway saw it first): a replay."""
    dev = rng.choice(devices)
    if not dev.frames:
        return None
    _, data = dev.frames[rng.randrange(len(dev.frames))]
    return Bad("live_replay", REPLAY_REASONS, data)


async def _quiet(gw: GatewayProcess, port: int, within_s: float = 20.0) -> Metrics:
    """Metrics once the socket is drained and two scrapes agree (all datagrams handled)."""
    deadline = time.monotonic() + within_s
    last = None
    while time.monotonic() < deadline:
        stats = udp_socket_stats(port)
        m = await asyncio.to_thread(gw.scrape)
        key = (m.total("shorewatch_frames_received_total"),
               m.total("shorewatch_frames_rejected_total"))
        if stats is not None and stats.rx_queue == 0 and key == last:
            return m
        last = key
        await asyncio.sleep(0.2)
    raise AssertionError("the gateway did not settle")


async def test_hostile_datagrams_all_counted_legit_devices_unharmed(
        tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str) -> None:
    rng = random.Random(2024)
    legit = make_fleet(LEGIT, seed=31)
    victims = make_fleet(3, first_id=0x7E000001, seed=32)
    silent, replay_id, malformed_id = victims
    registry_path = tmp_path / "gw" / "registry.sqlite3"
    register_fleet(registry_path, [*legit, *victims])
    gw = GatewayProcess(tmp_path / "gw", mqtt=(mosquitto.host, mosquitto.port),
                        prefix=topic_prefix, site="bad", workdir=tmp_path / "run").start()
    port = gw.udp_port
    target = ("127.0.0.1", port)
    try:
        # Victims: welcomed, then quiet after VICTIM_FRAMES recorded frames each.
        victim_profile = LoadProfile(telemetry_interval_s=None, record_frames=True, sockets=1)
        async with LoadGenerator([replay_id, malformed_id], target, victim_profile) as vg:
            assert await vg.connect(timeout_s=10) == 2
            vg.flood(seconds=10, max_frames=2 * VICTIM_FRAMES, rate=2000)
        replay_victim, malformed_victim = vg.devices
        attacker = Attacker(rng, [d.device_id for d in (*legit, *victims)], silent=silent,
                            replay_victim=replay_victim, malformed_victim=malformed_victim)
        corpus = attacker.corpus(BAD)
        before = await _quiet(gw, port)
        assert before.total("shorewatch_frames_rejected_total") == 0

        async with LoadGenerator(legit, target, LEGIT_PROFILE, seed=3) as lg:
            assert await lg.connect(timeout_s=10) == LEGIT
            legit_run = asyncio.create_task(lg.run(ATTACK_TIMEOUT_S))
            await asyncio.sleep(0.5)  # some legitimate frames to replay
            sent_bad, replays = await _paced_send(port, corpus, lg.devices, rng)
            lg.stop()
            await legit_run
            assert await lg.drain(timeout_s=20), f"{lg.pending()} legit detections not acked"
        after = await _quiet(gw, port)
        kernel = udp_socket_stats(port)

        # Nothing was lost before the gateway could count it...
        assert kernel is not None and kernel.drops == 0, f"kernel dropped {kernel}"
        assert sent_bad == BAD and len(replays) >= LIVE_REPLAYS // 2
        # ... so every bad datagram is one rejection, under a reason its class allows,
        got = {r: v - before.by_label("shorewatch_frames_rejected_total", "reason").get(r, 0)
               for r, v in after.by_label("shorewatch_frames_rejected_total", "reason").items()}
        problems = check_counts([*corpus, *replays], got)
        assert not problems, problems
        assert sum(got.values()) == BAD + len(replays)
        kinds = {b.kind for b in corpus}
        assert len(kinds) == 13, kinds  # every class was sent
        # ... and every legitimate frame (devices and victims' setup) was accepted, once.
        accepted = after.by_label("shorewatch_frames_received_total", "type")
        expected = lg.stats.sent + vg.stats.sent
        assert {t: int(accepted.get(t, 0)) for t in expected} == dict(expected)
        assert after.total("shorewatch_frames_received_total") == expected.total()
        assert lg.stats.events["acked"] == sum(len(d.detections) for d in lg.devices) > 0
        assert gw.alive(), "gateway crashed"
        print(f"\n{BAD} bad + {len(replays)} live replays, counted by reason: "
              + ", ".join(f"{r}={v:.0f}" for r, v in sorted(got.items()) if v))
    finally:
        code = gw.stop()
    assert code == 0, gw.log_text()[-3000:]

    # The registry holds exactly what the devices sent: windows and detection sequence.
    registry = Registry(registry_path)
    try:
        states = registry.load()
    finally:
        registry.close()
    for dev in [*lg.devices, replay_victim, malformed_victim]:
        state = states[dev.device_id]
        assert state.window.highest == dev.counter - 1, f"{dev.device_id:08x}"
        # Every counter the device used was accepted: the whole window is marked.
        full = (1 << min(64, dev.counter)) - 1
        assert state.window.bitmap == full, f"{dev.device_id:08x}: a counter was not accepted"
    for dev in lg.devices:
        # One sequence number per observation: retransmissions are recognised, not re-counted.
        assert states[dev.device_id].detection_seq == len(dev.detections)
    assert states[silent.device_id].window.highest is None

    # After a restart the devices carry on, and their old frames are still refused.
    gw.start()
    async with LoadGenerator(legit, target, LEGIT_PROFILE, seed=4) as again:
        for old, new in zip(lg.devices, again.devices, strict=True):
            new.counter, new.down, new.synced = old.counter, old.down, True
        await again.run(1.0)
        assert await again.drain(timeout_s=20)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        old_frames = [f for dev in lg.devices for _, f in dev.frames or []]
        for i, frame in enumerate(old_frames):
            s.sendto(frame, target)
            if i % 64 == 63:
                await asyncio.sleep(0.002)
    m = await _quiet(gw, port)
    try:
        rejected = m.by_label("shorewatch_frames_rejected_total", "reason")
        assert rejected["replayed"] + rejected["too_old"] == len(old_frames)
        assert m.total("shorewatch_frames_rejected_total") == len(old_frames)
        assert m.total("shorewatch_frames_received_total") == again.stats.total_sent() > 0
        assert udp_socket_stats(port) is not None
    finally:
        assert gw.stop() == 0
