"""Device session state machine with injected time: seen() on traffic, advance() on ticks."""

from __future__ import annotations

import pytest

from gateway import sessions
from gateway.core import FrameHandler
from gateway.metrics import GatewayMetrics
from gateway.registry import DeviceState
from gateway.sessions import SessionPolicy, SessionState, classify
from protocol import (
    BootReason,
    DeviceKeys,
    Direction,
    HardwareKind,
    Hello,
    ReplayWindow,
    Telemetry,
    encode_frame,
)
from protocol.schema import SCHEMA_FINGERPRINT

DEV = 0x5E55_1001
KEY = bytes(range(32, 64))
T0 = 1_795_680_000.0
POLICY = SessionPolicy(stale_after_s=60.0, offline_after_s=300.0)
P, ON, ST, OFF = (SessionState.PROVISIONED, SessionState.ONLINE, SessionState.STALE,
                  SessionState.OFFLINE)


def _state() -> DeviceState:
    return DeviceState(device_id=DEV, name="s", keys=DeviceKeys.from_master(KEY), tag_len=8,
                       window=ReplayWindow(), down_next=0, down_reserved=256)


@pytest.mark.parametrize(("last_seen", "now", "expected"), [
    pytest.param(None, T0, P, id="never-seen"),
    pytest.param(T0, T0, ON, id="just-now"),
    pytest.param(T0, T0 + 59.999, ON, id="before-stale"),
    pytest.param(T0, T0 + 60, ST, id="at-stale"),
    pytest.param(T0, T0 + 299.9, ST, id="before-offline"),
    pytest.param(T0, T0 + 300, OFF, id="at-offline"),
    pytest.param(T0, T0 + 86400 * 30, OFF, id="a-month"),
    pytest.param(T0 + 5, T0, ON, id="clock-went-back"),
])
def test_classify_by_age(last_seen: float | None, now: float, expected: SessionState) -> None:
    assert classify(last_seen, now, POLICY) is expected


def test_walk_through_every_state() -> None:
    s = _state()
    assert s.session is P
    # Only a HELLO opens the first session.
    assert sessions.seen(s, T0, hello=False) is None
    assert s.session is P and s.last_seen == T0
    assert sessions.advance([s], T0 + 1000, POLICY) == []  # provisioned does not time out
    moved = sessions.seen(s, T0 + 1000, hello=True)
    assert moved is not None and (moved.before, moved.after) == (P, ON)
    assert sessions.advance([s], T0 + 1059, POLICY) == []
    [to_stale] = sessions.advance([s], T0 + 1060, POLICY)
    assert (to_stale.before, to_stale.after, to_stale.at) == (ON, ST, T0 + 1060)
    assert sessions.advance([s], T0 + 1100, POLICY) == []  # no repeated transition
    [to_offline] = sessions.advance([s], T0 + 1300, POLICY)
    assert (to_offline.before, to_offline.after) == (ST, OFF)
    # Any authenticated traffic brings it back (its window is still valid).
    back = sessions.seen(s, T0 + 5000, hello=False)
    assert back is not None and (back.before, back.after) == (OFF, ON)
    assert sessions.seen(s, T0 + 5001, hello=False) is None


def test_long_silence_goes_straight_to_offline() -> None:
    s = _state()
    sessions.seen(s, T0, hello=True)
    [moved] = sessions.advance([s], T0 + 301, POLICY)
    assert (moved.before, moved.after) == (ON, OFF)


def test_restore_from_persisted_last_seen() -> None:
    states = [_state() for _ in range(4)]
    for s, seen in zip(states, (None, T0 - 10, T0 - 100, T0 - 1000), strict=True):
        s.last_seen = seen
    sessions.restore(states, T0, POLICY)
    assert [s.session for s in states] == [P, ON, ST, OFF]


@pytest.mark.parametrize(("stale", "offline"), [(0, 10), (10, 10), (20, 10), (-1, 5)])
def test_policy_rejects_inconsistent_timeouts(stale: float, offline: float) -> None:
    with pytest.raises(ValueError, match="stale_after_s"):
        SessionPolicy(stale_after_s=stale, offline_after_s=offline)


def test_policy_tick_is_bounded() -> None:
    assert SessionPolicy(stale_after_s=8, offline_after_s=20).tick_s == 2.0
    assert SessionPolicy().tick_s == 5.0


def _one_hot(metrics: GatewayMetrics) -> dict[str, float]:
    out = {}
    for st in SessionState:
        value = metrics.registry.get_sample_value(
            "shorewatch_device_state", {"device": f"{DEV:08x}", "state": st.value})
        assert value is not None
        out[st.value] = value
    return out


def test_handler_and_scrape_drive_the_machine() -> None:
    """HELLO through the FrameHandler -> online; the scrape-time refresh applies timeouts."""
    state = _state()
    devices = {DEV: state}
    clock = [T0]
    metrics = GatewayMetrics(lambda: list(devices.values()),
                             lambda: _count(sessions.advance(devices.values(), clock[0], POLICY)))
    handler = FrameHandler(devices, metrics)
    keys = DeviceKeys.from_master(KEY)
    assert _one_hot(metrics) == {"unknown": 0, "provisioned": 1, "online": 0, "stale": 0,
                                 "offline": 0}
    hello = Hello(1, 0, 0, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0,
                  SCHEMA_FINGERPRINT, b"abcdefgh")
    handler.handle(encode_frame(hello, keys=keys, direction=Direction.UP, device_id=DEV,
                                counter=0), ("127.0.0.1", 1), T0)
    assert state.session is ON
    assert metrics.registry.get_sample_value("shorewatch_device_transitions_total",
                                             {"state": "online"}) == 1
    clock[0] = T0 + 61
    assert _one_hot(metrics)["stale"] == 1
    tel = Telemetry(3700, 0, -1, 0, 255, -128, 1, 1, 1, 0)
    handler.handle(encode_frame(tel, keys=keys, direction=Direction.UP, device_id=DEV,
                                counter=1), ("127.0.0.1", 1), T0 + 62)
    assert _one_hot(metrics)["online"] == 1
    clock[0] = T0 + 62 + 300
    assert _one_hot(metrics)["offline"] == 1
    assert sum(_one_hot(metrics).values()) == 1


def _count(moves: list[sessions.Transition]) -> None:
    assert all(m.device_id == DEV for m in moves)
