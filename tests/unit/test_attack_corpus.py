"""The hostile corpus says what the gateway must count: checked frame by frame in process.

``shorewatch.attack`` labels each datagram with the rejection reasons it may be counted under;
the bad-input integration test relies on those labels against a live gateway. Here every class
goes through a real ``FrameHandler`` one datagram at a time, so a wrong label shows up as the
datagram that carries it.
"""

from __future__ import annotations

import random

import pytest

from gateway.core import FrameHandler
from gateway.metrics import GatewayMetrics
from gateway.registry import DeviceState
from protocol import DeviceKeys, ReplayWindow
from protocol.errors import REASONS
from protocol.messages import MessageType
from shorewatch.attack import ANY, Attacker, Bad, check_counts
from shorewatch.loadgen import SimDevice, make_fleet

PER_CLASS = 120
NOW = 1_795_680_000.0


class Gateway:
    def __init__(self) -> None:
        fleet = make_fleet(4, seed=5)
        self.legit, silent, replay, malformed = fleet
        self.silent = silent
        self.devices = {i.device_id: DeviceState(
            device_id=i.device_id, name="", keys=DeviceKeys.from_master(i.master_key),
            tag_len=8, window=ReplayWindow(), down_next=0, down_reserved=1 << 20)
            for i in fleet}
        self.metrics = GatewayMetrics(lambda: list(self.devices.values()))
        self.handler = FrameHandler(self.devices, self.metrics, "gw")
        rng = random.Random(1)
        self.replay = SimDevice(replay, 0, record=True)
        self.malformed = SimDevice(malformed, 0, record=True)
        for dev in (self.replay, self.malformed):
            self.accept(dev.seal(MessageType.HELLO, dev.hello_body(rng))[1])
            for _ in range(100):
                self.accept(dev.seal(MessageType.TELEMETRY, dev.telemetry_body())[1])

    def rejected(self) -> dict[str, float]:
        samples = self.metrics.rejected.collect()[0].samples
        return {s.labels["reason"]: s.value for s in samples if s.name.endswith("_total")}

    def accept(self, frame: bytes) -> None:
        before = self.accepted()
        self.handler.handle(frame, ("127.0.0.1", 9), NOW)
        assert self.accepted() == before + 1

    def accepted(self) -> float:
        samples = self.metrics.frames.collect()[0].samples
        return sum(s.value for s in samples if s.name.endswith("_total"))

    def reason(self, frame: bytes) -> str | None:
        """The reason ``frame`` was rejected for, or None if it was accepted."""
        before = self.rejected()
        self.handler.handle(frame, ("127.0.0.1", 9), NOW)
        after = self.rejected()
        assert set(after) == set(REASONS)
        moved = [r for r in REASONS if after[r] != before[r]]
        assert len(moved) <= 1
        return moved[0] if moved else None


@pytest.fixture
def setup() -> tuple[Gateway, Attacker]:
    gw = Gateway()
    attacker = Attacker(random.Random(7), list(gw.devices), silent=gw.silent,
                        replay_victim=gw.replay, malformed_victim=gw.malformed)
    return gw, attacker


def test_every_class_is_rejected_for_the_reasons_its_label_allows(
        setup: tuple[Gateway, Attacker]) -> None:
    gw, attacker = setup
    classes = [attacker.truncated, attacker.oversize, attacker.bad_version,
               attacker.unknown_type, attacker.wrong_direction, attacker.unknown_device,
               attacker.resync_required, attacker.forged, attacker.malformed, attacker.replayed,
               attacker.too_old, attacker.garbage,
               lambda: attacker.bit_flip([f for _, f in gw.replay.frames or []])]
    seen: dict[str, set[str]] = {}
    accepted_before = gw.accepted()
    for make in classes:
        for _ in range(PER_CLASS):
            bad = make()
            reason = gw.reason(bad.data)
            assert reason is not None, f"{bad.kind} accepted: {bad.data.hex()}"
            assert bad.reasons == ANY or reason in bad.reasons, (bad.kind, reason)
            seen.setdefault(bad.kind, set()).add(reason)
    assert gw.accepted() == accepted_before
    assert len(seen) == 13
    # The single-reason classes really exercised their reason.
    for kind in ("truncated", "oversize", "bad_version", "unknown_type", "wrong_direction",
                 "unknown_device", "resync_required", "malformed", "too_old"):
        assert seen[kind] == {kind}, (kind, seen[kind])
    assert seen["forged"] == {"bad_tag"}
    assert seen["replayed"] <= {"replayed", "too_old"} and "replayed" in seen["replayed"]


def test_a_corpus_is_shuffled_but_keeps_authentic_counters_in_order(
        setup: tuple[Gateway, Attacker]) -> None:
    gw, attacker = setup
    corpus = attacker.corpus(13 * 40)
    counters = [b.counter for b in corpus if b.kind == "malformed"]
    assert counters == sorted(counters) and len(counters) == 40
    got: dict[str, float] = {}
    for b in corpus:
        reason = gw.reason(b.data)
        assert reason is not None
        got[reason] = got.get(reason, 0) + 1
    assert check_counts(corpus, got) == []


def test_count_check_finds_what_is_missing_or_misfiled() -> None:
    corpus = [Bad("a", frozenset({"truncated"}), b""), Bad("b", ANY, b"x"),
              Bad("c", frozenset({"replayed", "too_old"}), b"y")]
    assert check_counts(corpus, {"truncated": 1, "bad_tag": 1, "too_old": 1}) == []
    assert check_counts(corpus, {"truncated": 1, "too_old": 1})  # one datagram uncounted
    assert check_counts(corpus, {"oversize": 1, "bad_tag": 1, "too_old": 1})  # misfiled
    assert check_counts(corpus, {"truncated": 1, "bad_tag": 2})  # c cannot be bad_tag twice
