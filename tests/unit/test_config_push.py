"""Configuration push at the FrameHandler seam: WELCOME flag, CONFIG_PUSH after the reply,
encryption of secrets, retries with backoff and a bound, CONFIG_ACK; and the key validation."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core import Effects, FrameHandler
from gateway.devconfig import (
    KEYS,
    InvalidConfig,
    PushPolicy,
    entries,
    merge,
    next_version,
    redact,
    validate_changes,
)
from gateway.metrics import GatewayMetrics
from gateway.registry import DeviceState, snapshot
from protocol import (
    BootReason,
    ConfigAck,
    ConfigEntry,
    ConfigPush,
    ConfigStatus,
    DeviceKeys,
    Direction,
    HardwareKind,
    Hello,
    Message,
    ReplayWindow,
    Telemetry,
    Welcome,
    WelcomeFlag,
    encode_frame,
    open_frame,
    peek_header,
)
from protocol.schema import SCHEMA_FINGERPRINT

DEV = 0x00C0_F1C0
KEY = bytes(range(100, 132))
T0 = 1_795_680_000.0
SRC = ("127.0.0.1", 40001)
PSK = "correct horse battery"
POLICY = PushPolicy(max_attempts=4, backoff_s=10.0, backoff_max_s=25.0)
TEL = Telemetry(3700, 0, -1, 0, 255, -128, 1, 1, 1, 0)


def _hello(config_version: int = 0) -> Hello:
    return Hello(1, 2, 3, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0x20,
                 SCHEMA_FINGERPRINT, b"n0nce-42", config_version)


class Device:
    """The device end of one session: encodes uplinks, opens the gateway's downlinks."""

    def __init__(self, desired: dict[str, Any] | None = None, version: int = 3) -> None:
        self.state = DeviceState(device_id=DEV, name="c", keys=DeviceKeys.from_master(KEY),
                                 tag_len=8, window=ReplayWindow(), down_next=0,
                                 down_reserved=256)
        if desired is not None:
            self.state.config.want(version, desired)
        self.devices = {DEV: self.state}
        self.metrics = GatewayMetrics(lambda: list(self.devices.values()))
        self.handler = FrameHandler(self.devices, self.metrics, push_policy=POLICY)
        self.keys = DeviceKeys.from_master(KEY)
        self.counter = 0
        self.down = ReplayWindow()
        self.raw: list[bytes] = []

    def send(self, msg: Message, now: float) -> list[Message]:
        frame = encode_frame(msg, keys=self.keys, direction=Direction.UP, device_id=DEV,
                             counter=self.counter)
        self.counter += 1
        return self.receive(self.handler.handle(frame, SRC, now))

    def receive(self, effects: Effects) -> list[Message]:
        out = []
        for frame in effects.replies:
            self.raw.append(frame)
            header = peek_header(frame, Direction.DOWN)
            window = ReplayWindow() if header.long else self.down
            received = open_frame(frame, header, self.keys, window, 8)
            if header.long:
                self.down = window
            out.append(received.message)
        return out

    def pushes(self, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value("shorewatch_config_push_total",
                                                       {"outcome": outcome})
        assert value is not None
        return value


def test_hello_gets_welcome_with_pending_flag_then_the_push() -> None:
    d = Device({"report_interval_s": 60, "detection_sensitivity": 40})
    welcome, push = d.send(_hello(), T0)
    assert isinstance(welcome, Welcome)
    assert welcome.config_version == 3
    assert welcome.flags & WelcomeFlag.CONFIG_PENDING
    assert push == ConfigPush(3, (ConfigEntry(1, b"\x3c\x00"), ConfigEntry(2, b"\x28")))
    assert not d.raw[1][0] & 0x10  # nothing secret: sent in clear
    assert d.state.config.attempts == 1 and d.pushes("sent") == 1
    assert d.metrics.registry.get_sample_value("shorewatch_device_config_desired_version",
                                               {"device": f"{DEV:08x}"}) == 3


def test_push_with_passphrase_is_encrypted() -> None:
    d = Device({"wifi_ssid": "beach", "wifi_psk": PSK})
    _, push = d.send(_hello(), T0)
    assert d.raw[1][0] & 0x10  # encryption bit
    assert PSK.encode() not in d.raw[1]
    assert isinstance(push, ConfigPush)
    assert push.entries == (ConfigEntry(7, b"beach"), ConfigEntry(8, PSK.encode()))


def test_sleepy_device_gets_the_push_after_telemetry() -> None:
    d = Device({"battery_low_mv": 3300})
    # A session opened before the gateway restarted: both windows carry on.
    d.state.window, d.counter = ReplayWindow(41, 1), 42
    d.state.down_next, d.down = 10, ReplayWindow(9, 1)
    [push] = d.send(TEL, T0)
    assert push == ConfigPush(3, (ConfigEntry(4, (3300).to_bytes(2, "little")),))


def test_retries_back_off_then_give_up() -> None:
    d = Device({"report_interval_s": 600})
    assert len(d.send(_hello(), T0)) == 2  # attempt 1 at T0
    assert d.send(TEL, T0 + 9.9) == []  # wait 10 s
    assert isinstance(d.send(TEL, T0 + 10)[0], ConfigPush)  # attempt 2; next wait 20 s
    assert d.send(TEL, T0 + 29) == []
    assert d.pushes("retried") == 1
    # A HELLO skips the wait (the device is awake and listening) but not the bound.
    welcome, push = d.send(_hello(), T0 + 11)
    assert isinstance(push, ConfigPush) and welcome.flags & WelcomeFlag.CONFIG_PENDING
    assert isinstance(d.send(TEL, T0 + 11 + 25)[0], ConfigPush)  # attempt 4, capped wait 25 s
    assert d.state.config.attempts == 4 and d.pushes("retried") == 3
    assert d.send(TEL, T0 + 60) == []  # bound reached, last attempt still has time
    assert d.pushes("gave_up") == 0
    assert d.send(TEL, T0 + 61) == []  # ... now it had its time
    assert d.pushes("gave_up") == 1 and d.state.config.push_state == "failed"
    welcome, *rest = d.send(_hello(), T0 + 100)
    assert rest == [] and not welcome.flags & WelcomeFlag.CONFIG_PENDING
    # A new desired configuration starts over.
    d.state.config.want(4, {"report_interval_s": 900})
    assert d.send(TEL, T0 + 101)[0] == ConfigPush(4, (ConfigEntry(1, (900).to_bytes(2,
                                                                                 "little")),))


@pytest.mark.parametrize(("status", "bad_key", "reported", "state"), [
    pytest.param(ConfigStatus.APPLIED, 0, 3, "sent", id="applied"),
    pytest.param(ConfigStatus.PARTIAL, 8, 3, "sent", id="partial"),
    pytest.param(ConfigStatus.REJECTED, 1, 0, "failed", id="rejected"),
])
def test_config_ack_sets_reported_version(status: ConfigStatus, bad_key: int, reported: int,
                                          state: str) -> None:
    d = Device({"report_interval_s": 60, "wifi_psk": PSK})
    d.send(_hello(), T0)
    assert d.send(ConfigAck(3, status, bad_key), T0 + 1) == []
    sync = d.state.config
    assert d.state.config_version == reported
    assert (sync.status, sync.bad_key, sync.push_state) == (status.name.lower(), bad_key, state)
    assert d.pushes(status.name.lower()) == 1
    assert d.send(TEL, T0 + 500) == []  # nothing more to push either way
    [row] = snapshot([d.state]).rows  # the commit persists what the device reported
    assert (row.config_version, row.config_status, row.config_bad_key) == (
        reported, status.name.lower(), bad_key)
    assert row.last_seen == T0 + 500


def test_ack_of_an_older_version_keeps_pushing() -> None:
    d = Device({"report_interval_s": 60}, version=5)
    d.send(_hello(), T0)
    d.send(ConfigAck(4, ConfigStatus.APPLIED, 0), T0 + 1)
    assert d.state.config_version == 4
    assert isinstance(d.send(TEL, T0 + 11)[0], ConfigPush)


def test_hello_reporting_the_desired_version_settles_it() -> None:
    """The device applied the push, but its CONFIG_ACK was lost: its next HELLO says so."""
    d = Device({"report_interval_s": 60})
    d.send(_hello(), T0)
    [welcome] = d.send(_hello(config_version=3), T0 + 5)
    assert isinstance(welcome, Welcome) and not welcome.flags & WelcomeFlag.CONFIG_PENDING


def test_no_managed_config_confirms_the_device_version() -> None:
    d = Device()
    [welcome] = d.send(_hello(config_version=7), T0)
    assert isinstance(welcome, Welcome)
    assert (welcome.config_version, welcome.flags) == (7, 0)


def test_push_waits_for_a_persisted_counter_and_is_not_counted() -> None:
    d = Device({"report_interval_s": 60})
    d.state.down_reserved = 1  # room for the WELCOME only
    [welcome] = d.send(_hello(), T0)
    assert isinstance(welcome, Welcome)
    assert d.state.config.attempts == 0 and d.pushes("sent") == 0
    d.state.down_reserved = 256  # the next commit extended the reservation
    assert isinstance(d.send(TEL, T0 + 1)[0], ConfigPush)


def test_legacy_version_callable_still_drives_the_flag() -> None:
    d = Device()
    d.handler = FrameHandler(d.devices, d.metrics, config_version=lambda _dev: 9)
    [welcome] = d.send(_hello(config_version=2), T0)
    assert isinstance(welcome, Welcome)
    assert welcome.config_version == 9 and welcome.flags & WelcomeFlag.CONFIG_PENDING


# --- key validation and encoding ---------------------------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    pytest.param([], "config", id="not-an-object"),
    pytest.param({}, "config", id="empty"),
    pytest.param({"colour": 1}, "config.colour", id="unknown-key"),
    pytest.param({"report_interval_s": 9}, "config.report_interval_s", id="interval-low"),
    pytest.param({"report_interval_s": 86400}, "config.report_interval_s",
                 id="interval-over-u16"),
    pytest.param({"report_interval_s": "60"}, "config.report_interval_s", id="string-number"),
    pytest.param({"report_interval_s": 60.0}, "config.report_interval_s", id="float"),
    pytest.param({"detection_sensitivity": True}, "config.detection_sensitivity", id="bool"),
    pytest.param({"detection_sensitivity": 101}, "config.detection_sensitivity", id="sens"),
    pytest.param({"battery_low_mv": 2799}, "config.battery_low_mv", id="batt-low"),
    pytest.param({"battery_low_mv": 4201}, "config.battery_low_mv", id="batt-high"),
    pytest.param({"thermal_fps_x10": 0}, "config.thermal_fps_x10", id="fps-zero"),
    pytest.param({"wifi_ssid": ""}, "config.wifi_ssid", id="ssid-empty"),
    pytest.param({"wifi_ssid": "x" * 33}, "config.wifi_ssid", id="ssid-long"),
    pytest.param({"wifi_ssid": 5}, "config.wifi_ssid", id="ssid-number"),
    pytest.param({"wifi_ssid": "a\nb"}, "config.wifi_ssid", id="ssid-control"),
    pytest.param({"wifi_psk": "short"}, "config.wifi_psk", id="psk-short"),
    pytest.param({"wifi_psk": "é" * 32}, "config.wifi_psk", id="psk-64-bytes"),
])
def test_invalid_values_name_the_field(body: object, field: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        validate_changes(body)
    assert info.value.field == field
    if isinstance(body, dict) and "wifi_psk" in body:
        assert body["wifi_psk"] not in str(info.value)


def test_valid_values_encode_little_endian_in_key_order() -> None:
    changes = validate_changes({"wifi_psk": "x" * 63, "report_interval_s": 65535,
                                "battery_low_mv": 2800, "detection_sensitivity": 0,
                                "thermal_fps_x10": 255, "pir_holdoff_s": None})
    config = merge({"pir_holdoff_s": 30}, changes)
    assert "pir_holdoff_s" not in config
    assert [e.key for e in entries(config)] == [1, 2, 4, 6, 8]
    assert entries(config)[0].value == b"\xff\xff"
    assert entries(config)[2].value == (2800).to_bytes(2, "little")
    assert set(KEYS) == {"report_interval_s", "detection_sensitivity", "pir_holdoff_s",
                         "battery_low_mv", "radar_window_ms", "thermal_fps_x10", "wifi_ssid",
                         "wifi_psk"}


def test_redact_hides_secrets_and_says_when_they_changed() -> None:
    before = {"wifi_psk": PSK, "wifi_ssid": "a"}
    assert redact(before) == {"wifi_psk": "<secret>", "wifi_ssid": "a"}
    assert redact({"wifi_psk": PSK + "!"}, before)["wifi_psk"] == "<secret, changed>"
    assert redact(before, before)["wifi_psk"] == "<secret>"


def test_versions_wrap_past_zero() -> None:
    assert [next_version(v) for v in (0, 1, 65534, 65535)] == [1, 2, 65535, 1]
