"""The admin API over a real unix socket: authentication, validation, live registration,
configuration and audit, and that secrets never leak (responses, audit, logs, database)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.admin import AdminContext, AdminServer, new_device_state
from gateway.admin_client import AdminClient
from gateway.config import AdminSettings
from gateway.core import FrameHandler
from gateway.fleet import Fleet
from gateway.metrics import GatewayMetrics
from gateway.registry import DeviceState, Registry
from protocol import (
    BootReason,
    DeviceKeys,
    Direction,
    HardwareKind,
    Hello,
    ReplayWindow,
    Welcome,
    encode_frame,
    open_frame,
    peek_header,
)
from protocol.schema import SCHEMA_FINGERPRINT

OPS = "ops-token-0123456789abcdef"
VIEWER = "viewer-token-0123456789abcdef"
PSK = "sandcastle-at-low-tide"
NOW = 1_795_680_000.0


@dataclass
class Api:
    server: AdminServer
    sock: Path
    devices: dict[int, DeviceState]
    handler: FrameHandler
    metrics: GatewayMetrics
    registry: Registry

    async def call(self, method: str, path: str, body: Any = None, *,
                   token: str | None = OPS) -> tuple[int, Any]:
        client = AdminClient(socket_path=self.sock, token=token, timeout=5)
        return await asyncio.to_thread(client.request, method, path, body)


async def _start(tmp_path: Path, allowed_uids: frozenset[int] | None,
                 endpoint: tuple[str, int] = ("192.0.2.1", 4700)) -> Api:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# name token [read-only]\nops {OPS}\nviewer {VIEWER} read-only\n")
    tokens.chmod(0o600)
    registry = await asyncio.to_thread(Registry, tmp_path / "registry.sqlite3")
    fleet = await asyncio.to_thread(Fleet, registry)
    devices: dict[int, DeviceState] = {}
    metrics = GatewayMetrics(lambda: list(devices.values()))
    ctx = AdminContext(devices=devices, fleet=fleet, metrics=metrics,
                       gateway_endpoint=lambda: endpoint, clock=lambda: NOW,
                       new_state=new_device_state)
    sock = tmp_path / "admin.sock"
    server = AdminServer(AdminSettings(socket=sock, token_file=tokens), ctx,
                         allowed_uids=allowed_uids)
    await server.start()
    return Api(server, sock, devices, FrameHandler(devices, metrics), metrics, registry)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    a = await _start(tmp_path, frozenset({os.getuid()}))
    yield a
    await a.server.close()
    await asyncio.to_thread(a.registry.close)


def _hello_frame(identity: dict[str, Any]) -> tuple[bytes, DeviceKeys]:
    keys = DeviceKeys.from_master(bytes.fromhex(identity["master_key"]))
    hello = Hello(1, 0, 0, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0,
                  SCHEMA_FINGERPRINT, b"fresh!!!")
    return encode_frame(hello, keys=keys, direction=Direction.UP,
                        device_id=identity["device_id"], counter=0,
                        tag_len=identity["tag_len"]), keys


async def test_socket_is_group_accessible_only(api: Api) -> None:
    mode = api.sock.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660


async def test_register_goes_live_and_remove_takes_it_away(api: Api) -> None:
    status, body = await api.call("POST", "/v1/devices", {"device_id": "5a17c0de",
                                                          "name": "pier", "group": "north"})
    assert status == 201, body
    identity = body["identity"]
    assert identity["device_id"] == 0x5A17C0DE and len(identity["master_key"]) == 64
    assert identity["gateway"] == {"host": "192.0.2.1", "port": 4700}
    assert body["device"]["state"] == "provisioned" and body["device"]["group"] == "north"
    # The frame handler sees the device at once: a CPython-encoded HELLO gets a WELCOME.
    frame, keys = _hello_frame(identity)
    effects = api.handler.handle(frame, ("127.0.0.1", 5555), NOW)
    [reply] = effects.replies
    welcome = open_frame(reply, peek_header(reply, Direction.DOWN), keys, ReplayWindow(), 8)
    assert isinstance(welcome.message, Welcome) and welcome.message.nonce == b"fresh!!!"
    status, shown = await api.call("GET", "/v1/devices/5a17c0de")
    assert status == 200 and shown["state"] == "online" and shown["name"] == "pier"
    assert identity["master_key"] not in json.dumps(shown)
    # The key is returned once: a second registration of the id is a conflict.
    status, again = await api.call("POST", "/v1/devices", {"device_id": "5a17c0de"})
    assert status == 409 and again["error"]["field"] == "device_id"
    status, _ = await api.call("DELETE", "/v1/devices/5a17c0de")
    assert status == 200 and 0x5A17C0DE not in api.devices
    assert not api.handler.handle(frame, ("127.0.0.1", 5555), NOW)
    assert api.metrics.registry.get_sample_value("shorewatch_frames_rejected_total",
                                                 {"reason": "unknown_device"}) == 1
    status, _ = await api.call("GET", "/v1/devices/5a17c0de")
    assert status == 404


async def test_register_without_id_picks_a_free_one(api: Api) -> None:
    status, body = await api.call("POST", "/v1/devices", {"tag_len": 4,
                                                          "gateway": "[2001:db8::1]:4700"})
    assert status == 201
    dev = int(body["device"]["device_id"], 16)
    assert dev in api.devices and api.devices[dev].tag_len == 4
    assert body["identity"]["gateway"] == {"host": "2001:db8::1", "port": 4700}


async def test_wildcard_listener_needs_the_device_facing_address(tmp_path: Path) -> None:
    a = await _start(tmp_path, None, endpoint=("0.0.0.0", 4700))
    try:
        status, body = await a.call("POST", "/v1/devices", {})
        assert status == 400 and body["error"]["field"] == "gateway"
        status, body = await a.call("POST", "/v1/devices", {"gateway": "192.0.2.7:4700"})
        assert status == 201 and body["identity"]["gateway"]["host"] == "192.0.2.7"
    finally:
        await a.server.close()
        await asyncio.to_thread(a.registry.close)


@pytest.mark.parametrize(("token", "code", "status"), [
    pytest.param("wrong-token-0123456789abcdef", "unauthorized", 401, id="bad-token"),
    pytest.param("", "unauthorized", 401, id="empty-token"),
])
async def test_bad_tokens_are_refused(api: Api, token: str, code: str, status: int) -> None:
    got, body = await api.call("GET", "/v1/devices", token=token)
    assert (got, body["error"]["code"]) == (status, code)


async def test_basic_auth_is_refused(api: Api) -> None:
    raw = await _raw(api.sock, b"GET /v1/devices HTTP/1.1\r\nAuthorization: Basic b3BzOng=\r\n"
                               b"\r\n")
    assert raw.startswith(b"HTTP/1.1 401 ") and b"WWW-Authenticate: Bearer" in raw


async def test_allowed_uid_needs_no_token_and_is_the_audited_actor(api: Api) -> None:
    status, _ = await api.call("POST", "/v1/devices", {"device_id": "00000001"}, token=None)
    assert status == 201
    _, audit = await api.call("GET", "/v1/audit")
    assert audit["entries"][-1]["actor"] == f"uid:{os.getuid()}"


async def test_read_only_token_reads_but_cannot_change(api: Api) -> None:
    assert (await api.call("GET", "/v1/devices", token=VIEWER))[0] == 200
    status, body = await api.call("POST", "/v1/devices", {}, token=VIEWER)
    assert status == 403 and "read-only" in body["error"]["message"]
    assert not api.devices


async def test_peer_uid_not_allowed_is_forbidden(tmp_path: Path) -> None:
    a = await _start(tmp_path, frozenset())  # not even our own uid
    try:
        status, body = await a.call("GET", "/v1/devices", token=None)
        assert status == 403 and f"uid {os.getuid()}" in body["error"]["message"]
        assert (await a.call("GET", "/v1/devices", token=OPS))[0] == 200  # a token still works
        assert a.metrics.registry.get_sample_value("shorewatch_admin_requests_total",
                                                   {"status": "403"}) == 1
    finally:
        await a.server.close()
        await asyncio.to_thread(a.registry.close)


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), [
    pytest.param("POST", "/v1/devices", {"device_id": "zz"}, 400, "device_id", id="id-not-hex"),
    pytest.param("POST", "/v1/devices", {"device_id": "0"}, 400, "device_id", id="id-reserved"),
    pytest.param("POST", "/v1/devices", {"device_id": "123456789"}, 400, "device_id",
                 id="id-too-long"),
    pytest.param("POST", "/v1/devices", {"device_id": 5}, 400, "device_id", id="id-number"),
    pytest.param("POST", "/v1/devices", {"tag_len": 5}, 400, "tag_len", id="tag-len"),
    pytest.param("POST", "/v1/devices", {"tag_len": 8.0}, 400, "tag_len", id="tag-len-float"),
    pytest.param("POST", "/v1/devices", {"name": "a\nb"}, 400, "name", id="name-control"),
    pytest.param("POST", "/v1/devices", {"name": "n" * 65}, 400, "name", id="name-long"),
    pytest.param("POST", "/v1/devices", {"group": "a/b"}, 400, "group", id="group-slash"),
    pytest.param("POST", "/v1/devices", {"hw_kind": "toaster"}, 400, "hw_kind", id="hw-kind"),
    pytest.param("POST", "/v1/devices", {"gateway": "nohost"}, 400, "gateway", id="endpoint"),
    pytest.param("POST", "/v1/devices", {"colour": "red"}, 400, "colour", id="unknown-field"),
    pytest.param("POST", "/v1/devices", [1], 400, "body", id="array-body"),
    pytest.param("GET", "/v1/devices/xyz", None, 400, "device_id", id="path-id"),
    pytest.param("GET", "/v1/devices/ffffffff", None, 400, "device_id", id="path-id-reserved"),
    pytest.param("GET", "/v1/devices/12345678", None, 404, "device_id", id="not-found"),
    pytest.param("DELETE", "/v1/devices/12345678", None, 404, "device_id", id="delete-unknown"),
    pytest.param("PUT", "/v1/devices/00c0ffee/config", {"report_interval_s": 5}, 400,
                 "config.report_interval_s", id="interval-range"),
    pytest.param("PUT", "/v1/devices/00c0ffee/config", {"battery_low_mv": 5000}, 400,
                 "config.battery_low_mv", id="battery-range"),
    pytest.param("PUT", "/v1/devices/00c0ffee/config", {"wifi_psk": "short"}, 400,
                 "config.wifi_psk", id="psk-short"),
    pytest.param("PUT", "/v1/devices/00c0ffee/config", {"led": 1}, 400, "config.led",
                 id="unknown-key"),
    pytest.param("PUT", "/v1/devices/00c0ffee/config", {}, 400, "config", id="empty-config"),
    pytest.param("PUT", "/v1/groups/-bad/config", {"report_interval_s": 60}, 400, "group",
                 id="group-name"),
    pytest.param("PUT", "/v1/devices/00c0ffee/group", {}, 400, "group", id="group-missing"),
    pytest.param("PUT", "/v1/devices/00c0ffee/group", {"group": 7}, 400, "group",
                 id="group-number"),
    pytest.param("GET", "/v1/audit?limit=abc", None, 400, "limit", id="audit-limit"),
    pytest.param("GET", "/v1/audit?after=-1", None, 400, "after", id="audit-after"),
])
async def test_invalid_input_gets_4xx_naming_the_field(api: Api, method: str, path: str,
                                                       body: Any, status: int,
                                                       field: str) -> None:
    assert (await api.call("POST", "/v1/devices", {"device_id": "00c0ffee"}))[0] == 201
    got, answer = await api.call(method, path, body)
    assert got == status, answer
    assert answer["error"]["field"] == field
    assert answer["error"]["message"]
    assert list(api.devices) == [0x00C0FFEE]  # nothing half-done


@pytest.mark.parametrize(("request_bytes", "status"), [
    pytest.param(b"GARBAGE\r\n\r\n", b"400", id="request-line"),
    pytest.param(b"GET /v1/devices HTTP/1.1\r\nbroken header\r\n\r\n", b"400", id="header"),
    pytest.param(b"GET /v1/devices HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", b"413",
                 id="head-too-large"),
    pytest.param(b"PUT /v1/groups/g/config HTTP/1.1\r\nAuthorization: Bearer " + OPS.encode()
                 + b"\r\nContent-Length: 999999\r\n\r\n", b"413", id="body-too-large"),
    pytest.param(b"PUT /v1/groups/g/config HTTP/1.1\r\nAuthorization: Bearer " + OPS.encode()
                 + b"\r\n\r\n", b"411", id="no-length"),
    pytest.param(b"PUT /v1/groups/g/config HTTP/1.1\r\nAuthorization: Bearer " + OPS.encode()
                 + b"\r\nTransfer-Encoding: chunked\r\n\r\n", b"501", id="chunked"),
    pytest.param(b"PUT /v1/groups/g/config HTTP/1.1\r\nAuthorization: Bearer " + OPS.encode()
                 + b"\r\nContent-Length: 5\r\n\r\n{nope", b"400", id="not-json"),
    pytest.param(b"PUT /v1/groups/g/config HTTP/1.1\r\nAuthorization: Bearer " + OPS.encode()
                 + b"\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}", b"415",
                 id="not-json-type"),
    pytest.param(b"PUT /v1/groups/g/config HTTP/1.1\r\nAuthorization: Bearer " + OPS.encode()
                 + b"\r\nContent-Length: 16000\r\n\r\n" + b"[" * 16000, b"400", id="deep-json"),
    pytest.param(b"PATCH /v1/devices HTTP/1.1\r\nAuthorization: Bearer " + OPS.encode()
                 + b"\r\n\r\n", b"405", id="method"),
    pytest.param(b"GET /v2/anything HTTP/1.1\r\nAuthorization: Bearer " + OPS.encode()
                 + b"\r\n\r\n", b"404", id="path"),
    pytest.param(b"GET /v1/devices HTTP/1.1\r\n\r\n", b"200", id="uid-only"),
])
async def test_malformed_requests_never_crash(api: Api, request_bytes: bytes,
                                              status: bytes) -> None:
    raw = await _raw(api.sock, request_bytes)
    assert raw.split(b" ", 2)[1] == status, raw[:200]
    assert raw.split(b"\r\n\r\n", 1)[1].startswith(b"{")
    # and the server still answers the next request
    assert (await api.call("GET", "/v1/devices"))[0] == 200


async def test_client_that_stalls_is_dropped(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.adminhttp.READ_TIMEOUT_S", 0.2)
    raw = await _raw(api.sock, b"GET /v1/dev")
    assert raw == b""  # closed without an answer
    assert api.metrics.registry.get_sample_value("shorewatch_admin_requests_total",
                                                 {"status": "408"}) == 1


async def test_configuration_reaches_the_live_devices(api: Api) -> None:
    for dev in ("000000a1", "000000a2"):
        assert (await api.call("POST", "/v1/devices", {"device_id": dev}))[0] == 201
    status, body = await api.call("PUT", "/v1/devices/000000a1/group", {"group": "dunes"})
    assert status == 200 and body["group"] == "dunes"
    status, body = await api.call("PUT", "/v1/groups/dunes/config",
                                  {"report_interval_s": 600, "detection_sensitivity": 30})
    assert status == 200 and body["desired_versions"] == {"000000a1": 1}
    assert body["devices"] == 1
    a1 = api.devices[0xA1]
    assert (a1.config.desired_version, a1.group) == (1, "dunes")
    assert [e.key for e in a1.config.entries] == [1, 2]
    assert api.devices[0xA2].config.desired_version == 0
    status, body = await api.call("PUT", "/v1/devices/000000a1/config",
                                  {"report_interval_s": 60})
    assert status == 200
    assert body["desired"] == {"detection_sensitivity": 30, "report_interval_s": 60}
    assert body["overrides"] == {"report_interval_s": 60} and body["desired_version"] == 2
    _, shown = await api.call("GET", "/v1/devices/000000a1")
    assert shown["config"]["desired_version"] == 2 and shown["config"]["pending"] is True
    _, groups = await api.call("GET", "/v1/groups")
    assert groups["groups"][0]["name"] == "dunes"
    status, body = await api.call("PUT", "/v1/devices/000000a1/group", {"group": None})
    assert status == 200 and body["group"] is None
    assert a1.config.desired_version == 3 and [e.key for e in a1.config.entries] == [1]


async def test_secrets_never_leave_except_the_one_time_identity(
        api: Api, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    status, created = await api.call("POST", "/v1/devices", {"device_id": "0000face",
                                                             "group": "harbour"})
    assert status == 201
    key_hex = created["identity"]["master_key"]
    answers = []
    for method, path, body in [
        ("PUT", "/v1/devices/0000face/config", {"wifi_ssid": "beach", "wifi_psk": PSK}),
        ("PUT", "/v1/groups/harbour/config", {"wifi_psk": PSK + "-group"}),
        ("PUT", "/v1/devices/0000face/config", {"wifi_psk": None}),
        ("PUT", "/v1/devices/0000face/config", {"wifi_psk": "x" * 4}),  # 400: echo-free
        ("GET", "/v1/devices", None), ("GET", "/v1/devices/0000face", None),
        ("GET", "/v1/groups", None), ("GET", "/v1/audit", None),
        ("DELETE", "/v1/devices/0000face", None), ("GET", "/v1/audit", None),
    ]:
        answers.append(await api.call(method, path, body))
    assert [s for s, _ in answers] == [200, 200, 200, 400, 200, 200, 200, 200, 200, 200]
    audit = answers[-1][1]["entries"]
    assert [e["action"] for e in audit] == ["device.register", "device.group", "device.config",
                                            "group.config", "device.config", "device.remove"]
    assert audit[2]["after"]["config"]["wifi_psk"] == "<secret, changed>"
    assert all(e["actor"] == "token:ops" and e["at"] == NOW for e in audit)
    dumped = await asyncio.to_thread(_sqlite_dump_of_audit, api.registry)
    for secret in (key_hex, PSK, "x" * 4):
        for where, text in (("responses", json.dumps(answers)), ("logs", caplog.text),
                            ("audit table", dumped)):
            assert secret not in text, f"{secret[:6]}... leaked into {where}"
    assert any("registered" in r.getMessage() for r in caplog.records)  # logs did run


def _sqlite_dump_of_audit(registry: Registry) -> str:
    with registry.lock:
        return json.dumps(registry.connection.execute("SELECT * FROM audit").fetchall())


async def _raw(path: Path, data: bytes) -> bytes:
    def talk() -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5.0)
            s.connect(str(path))
            s.sendall(data)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)
    return await asyncio.to_thread(talk)
