"""Every MQTT payload the gateway builds validates against its published JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from gateway.core import DetectionEvent, FrameHandler, detection_payload, telemetry_payload
from gateway.metrics import GatewayMetrics
from gateway.registry import DeviceState
from protocol import (
    NOT_MEASURED_HUMIDITY,
    NOT_MEASURED_I16,
    SCHEMA_FINGERPRINT,
    UNKNOWN_RSSI,
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
    ThumbFormat,
    Thumbnail,
    encode_frame,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
DEV = 0x5A170042
KEY = bytes(range(32))


def _schema(name: str) -> dict:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def _det(lifecycle: Lifecycle, ms: int = 500, thumb: Thumbnail | None = None) -> Detection:
    return Detection(0x00030001, lifecycle, DetectionKind.GROUP, 77, 3, 4, 5, 6, 3050, 3,
                     1_795_680_000, ms, thumb)


@pytest.mark.parametrize("lifecycle", list(Lifecycle))
@pytest.mark.parametrize("thumb", [None, Thumbnail(ThumbFormat.DEFLATE, 8, 6, b"\x01\x02")])
def test_detection_payload_matches_schema(lifecycle: Lifecycle, thumb: Thumbnail | None) -> None:
    payload = detection_payload(DetectionEvent(DEV, 3, _det(lifecycle, thumb=thumb), 1.5e9,
                                               1_795_679_990.0), "gw-1")
    jsonschema.validate(payload, _schema("detection.v1.json"))


@pytest.mark.parametrize("measured", [True, False])
def test_telemetry_payload_matches_schema(measured: bool) -> None:
    t = (Telemetry(3712, 5100, -20, 1250, 150, -70, 60, 1, 300, 3) if measured else
         Telemetry(3712, 0, NOT_MEASURED_I16, NOT_MEASURED_I16, NOT_MEASURED_HUMIDITY,
                   UNKNOWN_RSSI, 60, 1, 300, 0))
    payload = telemetry_payload(DEV, t, 1.5e9, "gw-1")
    jsonschema.validate(payload, _schema("telemetry.v1.json"))
    assert ("temperature_c" in payload) is measured


def test_gateway_state_schema() -> None:
    schema = _schema("gateway-state.v1.json")
    for state in ("online", "offline"):
        jsonschema.validate({"state": state}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"state": "maybe"}, schema)


class _Node:
    def __init__(self, publish_telemetry: bool = False) -> None:
        self.state = DeviceState(device_id=DEV, name="n", keys=DeviceKeys.from_master(KEY),
                                 tag_len=8, window=ReplayWindow(), down_next=0, down_reserved=256)
        devices = {DEV: self.state}
        self.metrics = GatewayMetrics(lambda: list(devices.values()))
        self.handler = FrameHandler(devices, self.metrics, "gw-1",
                                    publish_telemetry=publish_telemetry)
        self.counter = 0
        self.send(Hello(0, 1, 0, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0,
                        SCHEMA_FINGERPRINT, b"12345678"))

    def send(self, msg):
        frame = encode_frame(msg, keys=DeviceKeys.from_master(KEY), direction=Direction.UP,
                             device_id=DEV, counter=self.counter)
        self.counter += 1
        return self.handler.handle(frame, ("127.0.0.1", 1), 1.8e9)


def test_lifecycle_carries_start_and_end_time() -> None:
    node = _Node()
    new, update, end = (json.loads(node.send(_det(lc, ms)).records[0].payload)
                        for lc, ms in ((Lifecycle.NEW, 0), (Lifecycle.UPDATE, 500),
                                       (Lifecycle.END, 900)))
    assert new["start_time"] == update["start_time"] == end["start_time"] == 1_795_680_000.0
    assert new["end_time"] is None and update["end_time"] is None
    assert end["end_time"] == 1_795_680_000.9
    assert [p["seq"] for p in (new, update, end)] == [1, 2, 3]


def test_retransmission_is_acked_but_published_once() -> None:
    node = _Node()
    first = node.send(_det(Lifecycle.NEW))
    again = node.send(_det(Lifecycle.NEW))  # same observation, new counter: a retransmission
    assert len(first.records) == 1 and len(again.records) == 0
    assert len(again.replies) == 1  # the device still gets its ACK
    assert node.metrics.registry.get_sample_value("shorewatch_detection_duplicates_total") == 1


def test_telemetry_events_only_when_enabled() -> None:
    t = Telemetry(3712, 5100, -20, 1250, 150, -70, 60, 1, 300, 3)
    assert not _Node().send(t).records
    [record] = _Node(publish_telemetry=True).send(t).records
    assert record.topic == f"device/{DEV:08x}/event/telemetry"
    jsonschema.validate(json.loads(record.payload), _schema("telemetry.v1.json"))
