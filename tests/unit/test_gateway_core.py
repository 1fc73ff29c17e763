"""FrameHandler at the seam: real codec, in-memory device states, fake forwarder."""

from __future__ import annotations

import json

import pytest

from gateway.core import DetectionEvent, Effects, FrameHandler, detection_payload
from gateway.metrics import GatewayMetrics
from gateway.registry import DeviceState, snapshot
from protocol import (
    Ack,
    BootReason,
    Detection,
    DetectionKind,
    DeviceKeys,
    Direction,
    HardwareKind,
    Hello,
    Lifecycle,
    ReplayWindow,
    Telemetry,
    Welcome,
    encode_frame,
    open_frame,
    peek_header,
)
from protocol.schema import SCHEMA_FINGERPRINT

DEV = 0x00C0FFEE
KEY = bytes(range(32))
NOW = 1_795_680_000.25
SRC = ("127.0.0.1", 40000)


def _state() -> DeviceState:
    return DeviceState(device_id=DEV, name="n", keys=DeviceKeys.from_master(KEY), tag_len=8,
                       window=ReplayWindow(), down_next=0, down_reserved=256)


class Harness:
    def __init__(self) -> None:
        self.state = _state()
        self.devices = {DEV: self.state}
        self.metrics = GatewayMetrics(lambda: list(self.devices.values()))
        self.handler = FrameHandler(self.devices, self.metrics, "gw1")
        self.keys = DeviceKeys.from_master(KEY)
        self.down = ReplayWindow()

    def up(self, msg, counter: int, device_id: int = DEV, keys: DeviceKeys | None = None) -> bytes:
        return encode_frame(msg, keys=keys or self.keys, direction=Direction.UP,
                            device_id=device_id, counter=counter)

    def reply(self, effects: Effects):
        assert len(effects.replies) == 1
        header = peek_header(effects.replies[0], Direction.DOWN)
        return open_frame(effects.replies[0], header, self.keys, self.down, 8).message

    def rejected(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value("shorewatch_frames_rejected_total",
                                                       {"reason": reason})
        assert value is not None
        return value


HELLO = Hello(0, 1, 0, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0x19, SCHEMA_FINGERPRINT,
              b"12345678")
TEL = Telemetry(3700, 5000, -20, 1500, 120, -60, 100, 1, 300, 0)
DET = Detection(0x10001, Lifecycle.NEW, DetectionKind.PERSON, 90, 0, 0, 0, 0, 3100, 1,
                1_795_680_000, 125)


def test_hello_gets_welcome_echoing_nonce_with_time() -> None:
    h = Harness()
    welcome = h.reply(h.handler.handle(h.up(HELLO, 300), SRC, NOW))
    assert isinstance(welcome, Welcome)
    assert welcome.nonce == b"12345678"
    assert (welcome.unix_s, welcome.unix_ms) == (1_795_680_000, 250)
    assert h.state.fw_version == "0.1.0" and h.state.hw_kind == "sensor_node"
    assert h.state.last_addr == SRC and h.state.last_seen == NOW


def test_short_header_before_hello_requires_resync() -> None:
    h = Harness()
    assert not h.handler.handle(h.up(TEL, 3), SRC, NOW)
    assert h.rejected("resync_required") == 1
    assert h.state.telemetry is None


def test_telemetry_updates_state_without_reply() -> None:
    h = Harness()
    h.handler.handle(h.up(HELLO, 0), SRC, NOW)
    effects = h.handler.handle(h.up(TEL, 1), SRC, NOW)
    assert not effects.replies and not effects.records
    assert h.state.dirty  # the window moved: the next commit persists it
    assert h.state.telemetry is None  # visible only once the commit made the frame durable
    taken = snapshot([h.state])
    assert [r.device_id for r in taken.rows] == [h.state.device_id]
    assert h.state.telemetry is None
    taken.show()  # the commit returned
    assert h.state.telemetry == TEL


def test_telemetry_of_a_failed_commit_is_staged_again() -> None:
    h = Harness()
    h.handler.handle(h.up(HELLO, 0), SRC, NOW)
    h.handler.handle(h.up(TEL, 1), SRC, NOW)
    taken = snapshot([h.state])
    assert not h.state.dirty
    taken.restore()  # the commit failed: nothing shown, everything back for the next one
    assert h.state.dirty and h.state.telemetry is None
    snapshot([h.state]).show()
    assert h.state.telemetry == TEL


def test_detection_is_forwarded_and_acked_with_full_counter() -> None:
    h = Harness()
    h.handler.handle(h.up(HELLO, 70000), SRC, NOW)
    h.reply(h.handler.handle(h.up(HELLO, 70001), SRC, NOW))  # keeps downlink window in step
    effects = h.handler.handle(h.up(DET, 70002), SRC, NOW)
    assert h.reply(effects) == Ack(70002, 4)
    [record] = effects.records
    assert record.topic == "device/00c0ffee/event/detection"
    payload = json.loads(record.payload)
    assert payload == detection_payload(DetectionEvent(DEV, 1, DET, NOW), "gw1")
    assert payload["seq"] == 1


def test_replayed_forged_and_unknown_are_counted_and_change_nothing() -> None:
    h = Harness()
    h.handler.handle(h.up(HELLO, 0), SRC, NOW)
    frame = h.up(TEL, 1)
    h.handler.handle(frame, SRC, NOW)
    effects = [h.handler.handle(frame, SRC, NOW)]
    forged = bytearray(h.up(DET, 2))
    forged[-1] ^= 1
    effects.append(h.handler.handle(bytes(forged), SRC, NOW))
    effects.append(h.handler.handle(h.up(TEL, 5, device_id=DEV + 1), SRC, NOW))
    effects.append(h.handler.handle(h.up(TEL, 6, keys=DeviceKeys.from_master(bytes(32))), SRC,
                                    NOW))
    assert not any(effects)
    assert h.rejected("replayed") == 1
    assert h.rejected("bad_tag") == 2
    assert h.rejected("unknown_device") == 1
    assert h.state.window.highest == 1


@pytest.mark.parametrize("garbage", [b"", b"\x00" * 40, b"\xff" * 1300, b"\x43" + bytes(33)])
def test_garbage_never_raises(garbage: bytes) -> None:
    h = Harness()
    assert not h.handler.handle(garbage, SRC, NOW)
    total = sum(s.value for m in h.metrics.registry.collect()
                if m.name == "shorewatch_frames_rejected" for s in m.samples
                if s.name.endswith("_total"))
    assert total == 1


def test_downlink_waits_for_persisted_reservation() -> None:
    h = Harness()
    h.state.down_reserved = 0
    assert not h.handler.handle(h.up(HELLO, 0), SRC, NOW)
    assert h.metrics.registry.get_sample_value("shorewatch_downlink_deferred_total") == 1


def test_detection_payload_is_stable_and_idempotent() -> None:
    event = DetectionEvent(DEV, 7, DET, NOW)
    payload = detection_payload(event, "gw1")
    assert payload["event_id"] == "00c0ffee-00010001"
    assert payload["idempotency_key"] == "00c0ffee-00010001-new-1795680000.125"
    assert payload["score"] == 0.9 and payload["peak_temp_c"] == 31.0
    assert payload["seq"] == 7 and payload["gateway"] == "gw1"
    again = detection_payload(DetectionEvent(DEV, 8, DET, NOW + 5), "gw1")
    assert again["idempotency_key"] == payload["idempotency_key"]
