"""The fast intake (plain TELEMETRY ahead of the window) decides every frame as the general path.

Two handlers over identical device states, one with the fast intake and one without, get the
same frames: authentic telemetry with counters jumping ahead, back and far, longer bodies and
short ones, both tag profiles, replays, forgeries, bit flips, truncations, other message types
and unknown devices. After every frame both must agree on the counts by type and reason, the
windows, the dirty flags, the staged and shown telemetry and the replies.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import FrameHandler
from gateway.metrics import GatewayMetrics
from gateway.registry import DeviceState, snapshot
from protocol import (
    BootReason,
    DeviceKeys,
    Direction,
    HardwareKind,
    Hello,
    MessageType,
    ReplayWindow,
    Telemetry,
    encode_body,
    seal,
)
from protocol.schema import SCHEMA_FINGERPRINT

NOW = 1_795_680_000.0
SRC = ("127.0.0.1", 4000)
# Device 1 speaks the std profile (8-byte tags), device 2 the lora profile (4-byte tags);
# device 3 is not registered.
TAGS = {1: 8, 2: 4}
KEYS = {dev: DeviceKeys.from_master(bytes([dev]) * 32) for dev in (1, 2, 3)}
TEL = Telemetry(3700, 5000, -20, 1500, 120, -60, 100, 1, 300, 0)


def _gateway(fast: bool) -> tuple[FrameHandler, dict[int, DeviceState], GatewayMetrics]:
    devices = {dev: DeviceState(device_id=dev, name=f"d{dev}", keys=KEYS[dev], tag_len=tag,
                                window=ReplayWindow(), down_next=0, down_reserved=1 << 20)
               for dev, tag in TAGS.items()}
    metrics = GatewayMetrics(lambda: list(devices.values()))
    return FrameHandler(devices, metrics, "gw", fast_intake=fast), devices, metrics


def _counts(metrics: GatewayMetrics) -> dict[tuple[str, str], float]:
    out = {}
    for family in (metrics.frames, metrics.rejected):
        for sample in family.collect()[0].samples:
            if sample.name.endswith("_total"):
                out[sample.name, next(iter(sample.labels.values()))] = sample.value
    return out


def _view(devices: dict[int, DeviceState]) -> list[Any]:
    def staged(t: Telemetry | bytes | None) -> Any:
        if isinstance(t, bytes):  # the fast path keeps the verified body: compare decoded
            from protocol import decode_body  # noqa: PLC0415 - local to the comparison

            return decode_body(MessageType.TELEMETRY, t)
        return t

    return [(s.device_id, s.window.highest, s.window.bitmap, s.dirty, s.session, s.last_seen,
             staged(s.staged_telemetry), s.telemetry, s.down_next) for s in devices.values()]


def _frame(rng: random.Random, dev: int, counter: int, op: str) -> bytes:
    tag = TAGS.get(dev, 8)
    body = encode_body(TEL)
    mtype = MessageType.TELEMETRY
    encrypt = False
    if op == "hello":
        mtype = MessageType.HELLO
        body = encode_body(Hello(1, 0, 0, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0,
                                 SCHEMA_FINGERPRINT, rng.randbytes(8)))
    elif op == "longer":
        body += rng.randbytes(rng.randrange(1, 40))  # trailing group of a newer firmware
    elif op == "short":
        body = body[:rng.randrange(len(body))]
    elif op == "encrypted":
        encrypt = True
    elif op == "log":
        mtype = MessageType.LOG
        body = bytes([1]) + b"hello"
    frame = seal(mtype, body, keys=KEYS[dev], direction=Direction.UP, device_id=dev,
                 counter=counter, tag_len=tag, encrypt=encrypt)
    if op == "forged":
        frame = frame[:-1] + bytes([frame[-1] ^ 1])
    elif op == "flip":
        i = rng.randrange(len(frame))
        frame = frame[:i] + bytes([frame[i] ^ (1 << rng.randrange(8))]) + frame[i + 1:]
    elif op == "cut":
        frame = frame[:rng.randrange(len(frame))]
    elif op == "wrongkey":
        frame = seal(mtype, body, keys=KEYS[3], direction=Direction.UP, device_id=dev,
                     counter=counter, tag_len=tag)
    return frame


OPS = ("plain", "plain", "plain", "hello", "longer", "short", "encrypted", "log", "forged",
       "flip", "cut", "wrongkey", "replay")
STEP = st.tuples(st.sampled_from((1, 2, 3)), st.sampled_from(OPS),
                 st.sampled_from((1, 1, 1, 2, 5, 63, 64, 65, 0x7FFF, 0x8000, 0x10000, -1, -3,
                                  -64, -65)))


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(STEP, min_size=1, max_size=40), seed=st.integers(0, 2**32 - 1),
       start=st.sampled_from((0, 100, 0xFFF0, 0xFFFFFF00, 0xFFFFFFF0)))
def test_fast_and_general_intake_agree_frame_by_frame(steps: list[tuple[int, str, int]],
                                                      seed: int, start: int) -> None:
    fast, fast_devices, fast_metrics = _gateway(fast=True)
    slow, slow_devices, slow_metrics = _gateway(fast=False)
    rng = random.Random(seed)
    counters = dict.fromkeys((1, 2, 3), start)
    sent: list[bytes] = []
    for n, (dev, op, jump) in enumerate(steps):
        if op == "replay" and sent:
            frame = rng.choice(sent)
        else:
            counters[dev] = max(0, min(counters[dev] + jump, 0xFFFFFFFF))
            frame = _frame(rng, dev, counters[dev], "hello" if n == 0 else op)
            sent.append(frame)
        a = fast.handle(frame, SRC, NOW + n)
        b = slow.handle(frame, SRC, NOW + n)
        assert (a.replies, a.records) == (b.replies, b.records)
        assert _counts(fast_metrics) == _counts(slow_metrics)
        assert _view(fast_devices) == _view(slow_devices)
        if rng.random() < 0.3:  # a group commit: both show what they staged
            snapshot(list(fast_devices.values())).show()
            snapshot(list(slow_devices.values())).show()
            assert _view(fast_devices) == _view(slow_devices)


def test_the_fast_intake_is_taken_for_plain_telemetry_ahead_of_the_window() -> None:
    """Not vacuous: steady telemetry stages bytes (the fast path's mark), the general path
    stages decoded messages."""
    rng = random.Random(1)
    for fast, kind in ((True, bytes), (False, Telemetry)):
        handler, devices, _ = _gateway(fast)
        handler.handle(_frame(rng, 1, 10, "hello"), SRC, NOW)
        handler.handle(_frame(rng, 1, 11, "plain"), SRC, NOW)
        assert isinstance(devices[1].staged_telemetry, kind)
        snapshot([devices[1]]).show()
        assert devices[1].telemetry == TEL
