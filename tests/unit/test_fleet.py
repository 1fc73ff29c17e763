"""Groups, desired configuration, versions and the audit log on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from gateway.errors import DeviceExists, DeviceNotFound
from gateway.fleet import Fleet
from gateway.registry import CounterRow, Registry

KEY = bytes(range(7, 39))
PSK = "tide-tables-at-dawn"
A, B = 0x00A0_0001, 0x00A0_0002


@pytest.fixture
def reg(tmp_path: Path):
    registry = Registry(tmp_path / "r.sqlite3")
    yield registry
    registry.close()


@pytest.fixture
def fleet(reg: Registry) -> Fleet:
    f = Fleet(reg)
    for dev in (A, B):
        f.register(dev, KEY, name="", tag_len=8, down_reserved=0, group="", actor="uid:0",
                   now=1.0)
    return f


def test_device_overrides_group_and_each_change_bumps_the_version(fleet: Fleet) -> None:
    [a] = fleet.set_group(A, "north", actor="token:ops", now=2.0)
    assert (a.group, a.version, a.config) == ("north", 0, {})  # membership only
    [a] = fleet.set_group_config("north", {"report_interval_s": 300,
                                           "detection_sensitivity": 50},
                                 actor="token:ops", now=3.0)
    assert (a.device_id, a.version) == (A, 1)
    [a] = fleet.set_device_config(A, {"report_interval_s": 60}, actor="token:ops", now=4.0)
    assert a.version == 2
    assert a.config == {"report_interval_s": 60, "detection_sensitivity": 50}
    # The group changes a key the device overrides: nothing changes for the device.
    assert fleet.set_group_config("north", {"report_interval_s": 900}, actor="t", now=5.0) == []
    # Removing the override lets the group value through.
    [a] = fleet.set_device_config(A, {"report_interval_s": None}, actor="t", now=6.0)
    assert (a.version, a.config["report_interval_s"]) == (3, 900)
    # Leaving the group drops its keys.
    [a] = fleet.set_group(A, "", actor="t", now=7.0)
    assert (a.group, a.version, a.config) == ("", 4, {})
    # B was never in the group: untouched throughout.
    assert B not in fleet.load() or fleet.load()[B].version == 0
    assert fleet.load()[A].version == 4


def test_desired_state_survives_reopen(tmp_path: Path, reg: Registry, fleet: Fleet) -> None:
    fleet.set_device_config(B, {"wifi_ssid": "beach", "wifi_psk": PSK}, actor="t", now=2.0)
    reg.commit([CounterRow(B, 5, 1, 256, 0, 123.0, 1, "partial", 8)], [])
    reg.close()
    again = Registry(tmp_path / "r.sqlite3")
    try:
        desired = Fleet(again).load()[B]
        assert (desired.version, desired.config["wifi_psk"]) == (1, PSK)
        state = again.load()[B]
        assert (state.last_seen, state.config_version) == (123.0, 1)
        assert (state.config.status, state.config.bad_key) == ("partial", 8)
    finally:
        again.close()


def test_every_change_is_audited_without_secrets(fleet: Fleet) -> None:
    fleet.set_device_config(A, {"wifi_psk": PSK, "wifi_ssid": "beach"}, actor="token:ops",
                            now=2.0)
    fleet.set_device_config(A, {"wifi_psk": PSK + "2"}, actor="uid:1000", now=3.0)
    fleet.set_group_config("south", {"battery_low_mv": 3300}, actor="token:ops", now=4.0)
    fleet.set_group(B, "south", actor="token:ops", now=5.0)
    fleet.remove(B, actor="token:ops", now=6.0)
    entries = fleet.audit()
    assert [e["action"] for e in entries] == [
        "device.register", "device.register", "device.config", "device.config",
        "group.config", "device.group", "device.remove"]
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    text = json.dumps(entries)
    assert PSK not in text and KEY.hex() not in text
    first, second = entries[2], entries[3]
    assert first["after"]["config"]["wifi_psk"] == "<secret, changed>"
    assert second["actor"] == "uid:1000" and second["before"]["config"]["wifi_psk"] == "<secret>"
    assert second["after"]["desired_versions"] == {f"{A:08x}": 2}
    assert entries[5]["after"] == {"group": "south", "desired_versions": {f"{B:08x}": 1}}
    assert entries[6]["before"] == {"name": f"{B:08x}", "tag_len": 8, "group": "south"}
    assert [e["id"] for e in fleet.audit(after_id=entries[4]["id"], limit=1)] == [
        entries[5]["id"]]


def test_audit_log_is_append_only(reg: Registry, fleet: Fleet) -> None:
    assert fleet.audit()
    for sql in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            reg.connection.execute(sql)


def test_unknown_and_duplicate_devices(fleet: Fleet) -> None:
    with pytest.raises(DeviceNotFound):
        fleet.set_device_config(0x42, {"report_interval_s": 60}, actor="t", now=1.0)
    with pytest.raises(DeviceNotFound):
        fleet.set_group(0x42, "g", actor="t", now=1.0)
    with pytest.raises(DeviceNotFound):
        fleet.remove(0x42, actor="t", now=1.0)
    with pytest.raises(DeviceExists):
        fleet.register(A, KEY, name="", tag_len=8, down_reserved=0, group="", actor="t",
                       now=1.0)
    # Nothing of the failed attempts reached the audit log.
    assert [e["action"] for e in fleet.audit()] == ["device.register"] * 2


def test_removing_a_device_removes_its_configuration(fleet: Fleet) -> None:
    fleet.set_device_config(A, {"report_interval_s": 60}, actor="t", now=1.0)
    fleet.remove(A, actor="t", now=2.0)
    assert A not in fleet.load()
    view = fleet.view(A)
    assert (view.desired_version, view.overrides) == (0, {})
