"""The local admin API: JSON over HTTP/1.1 on a unix socket (mode 0660) and/or loopback TCP.

Endpoints (docs/gateway.md "Admin API"): devices (list, show, register, remove), device and
group configuration, group membership, and the audit log. Every input is validated here; store
writes run in a worker thread; the in-memory device states the frame handler uses are changed
on the event loop only, after the write committed, so a registered device is served at once.
Master keys and WiFi passphrases are never logged or returned (the identity document of a new
device, returned once by POST /v1/devices, is the single exception, by design).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import socket
import sqlite3
import stat
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from protocol import DeviceKeys, ReplayWindow
from protocol.limits import COUNTER_BLOCK, TAG_LENGTHS

from .adminhttp import (
    MAX_HEAD,
    ApiError,
    Principal,
    Request,
    Tokens,
    authenticate,
    default_uids,
    peer_uid,
    read_request,
    response,
)
from .config import AdminSettings
from .devconfig import InvalidConfig, key_name, validate_changes
from .errors import ConfigError, DeviceExists, DeviceNotFound, RegistryError
from .fleet import Desired, Fleet, identity_document
from .metrics import GatewayMetrics
from .registry import DeviceState
from .sessions import SessionState

log = logging.getLogger("shorewatch.admin")

_DEVICE_ID: Final = re.compile(r"(?:0x)?[0-9a-fA-F]{1,8}")
_GROUP: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# Names show up in metrics labels and listings: one line of printable text.
MAX_NAME: Final = 64
_HW_KINDS: Final = ("sensor_node", "thermal_camera")
_LOOPBACK: Final = ("127.0.0.1", "::1", "localhost")
_WILDCARDS: Final = ("0.0.0.0", "::", "")  # noqa: S104 - compared with, never bound


Handler = Callable[[Request, Principal, dict[str, str]], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    writes: bool


@dataclass
class AdminContext:
    """What the API acts on: the live device dict and the store, plus edge inputs."""

    devices: dict[int, DeviceState]
    fleet: Fleet
    metrics: GatewayMetrics
    gateway_endpoint: Callable[[], tuple[str, int]]  # for identity documents
    clock: Callable[[], float]
    new_state: Callable[[int, str, bytes, int], DeviceState] = field(repr=False)


class AdminServer:
    """Serves the admin API until ``close``."""

    def __init__(self, settings: AdminSettings, ctx: AdminContext, *,
                 tcp: tuple[str, int] | None = None,
                 allowed_uids: frozenset[int] | None = None) -> None:
        """``tcp``: also listen on loopback TCP (token required). ``allowed_uids``: unix peers
        admitted without a token (default: root and the gateway's own user)."""
        if settings.socket is None and tcp is None:
            raise ConfigError("admin.socket", "neither a socket nor a TCP endpoint is set")
        if tcp is not None and tcp[0] not in _LOOPBACK:
            raise ConfigError("admin tcp", f"{tcp[0]} is not a loopback address",
                              "the admin API listens on 127.0.0.1 or ::1 only")
        if tcp is not None and settings.token_file is None:
            raise ConfigError("admin.token_file", "required when the API listens on TCP")
        self._settings = settings
        self._tcp = tcp
        self._ctx = ctx
        self._tokens: Tokens | None = None
        self._uids = allowed_uids if allowed_uids is not None else default_uids()
        self._servers: list[asyncio.Server] = []
        self._writes = asyncio.Lock()  # store order == in-memory order
        self._routes = self._table()
        self.tcp_port = 0

    async def start(self) -> None:
        s = self._settings
        if s.token_file is not None:
            self._tokens = await asyncio.to_thread(Tokens.load, s.token_file)
        if s.socket is not None:
            await asyncio.to_thread(_clear_stale_socket, s.socket)
            server = await asyncio.start_unix_server(self._serve, path=s.socket, limit=MAX_HEAD)
            self._servers.append(server)
            # Group members may connect; each request is still authenticated (uid or token).
            await asyncio.to_thread(s.socket.chmod, 0o660)
            log.info("admin API on unix socket %s", s.socket)
        if self._tcp is not None:
            host, port = self._tcp
            server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD)
            self._servers.append(server)
            self.tcp_port = server.sockets[0].getsockname()[1]
            log.info("admin API on http://%s:%d", host, self.tcp_port)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        if self._settings.socket is not None:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(self._settings.socket.unlink)

    # --- connection -------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status = 500
        try:
            try:
                req = await read_request(reader, peer_uid(writer.get_extra_info("socket")))
                status, body = await self._dispatch(req)
                payload = response(status, body)
            except ApiError as exc:
                status = exc.status
                extra = "WWW-Authenticate: Bearer\r\n" if status == 401 else ""
                payload = response(status, exc.body(), extra)
                if status in (401, 403):
                    log.warning("admin request refused (%d): %s", status, exc.message)
            writer.write(payload)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            status = 408
        finally:
            self._ctx.metrics.admin_requests.labels(str(status)).inc()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _dispatch(self, req: Request) -> tuple[int, Any]:
        who = authenticate(req, self._tokens, self._uids)  # before routing: no probing
        route, params = self._route(req)
        if not route.writes:
            return await self._call(route, req, who, params)
        if not who.can_write:
            raise ApiError(403, "forbidden", f"{who.actor} is read-only")
        async with self._writes:
            status, body = await self._call(route, req, who, params)
        log.info("admin %s: %s %s -> %d", who.actor, req.method, req.path, status)
        return status, body

    def _route(self, req: Request) -> tuple[_Route, dict[str, str]]:
        allowed = []
        for route in self._routes:
            m = route.pattern.fullmatch(req.path)
            if m is None:
                continue
            if route.method == req.method:
                return route, m.groupdict()
            allowed.append(route.method)
        if allowed:
            raise ApiError(405, "method_not_allowed",
                           f"{req.method[:10]} not allowed here (use {', '.join(allowed)})")
        raise ApiError(404, "not_found", "no such endpoint")

    async def _call(self, route: _Route, req: Request, who: Principal,
                    params: dict[str, str]) -> tuple[int, Any]:
        try:
            return await route.handler(req, who, params)
        except InvalidConfig as exc:
            raise ApiError(400, "invalid_config", str(exc), exc.field) from exc
        except DeviceNotFound as exc:
            raise ApiError(404, "device_not_found", str(exc), "device_id") from exc
        except DeviceExists as exc:
            raise ApiError(409, "device_exists", str(exc), "device_id") from exc
        except RegistryError as exc:
            raise ApiError(400, "invalid", str(exc)) from exc
        except sqlite3.Error as exc:
            log.error("admin %s %s: registry error: %s (disk full or read-only?)", req.method,
                      req.path, exc)
            raise ApiError(503, "registry_unavailable", "the registry could not be written; "
                           "see the gateway log") from exc
        except ApiError:
            raise
        except Exception as exc:
            log.exception("admin %s %s failed", req.method, req.path)
            raise ApiError(500, "internal", "internal error; see the gateway log") from exc

    def _table(self) -> list[_Route]:
        dev = r"/v1/devices/(?P<device>[^/]+)"
        spec: list[tuple[str, str, Handler, bool]] = [
            ("GET", r"/v1/devices", self._list, False),
            ("POST", r"/v1/devices", self._register, True),
            ("GET", dev, self._show, False),
            ("DELETE", dev, self._remove, True),
            ("PUT", dev + "/config", self._device_config, True),
            ("PUT", dev + "/group", self._device_group, True),
            ("GET", r"/v1/groups", self._groups, False),
            ("PUT", r"/v1/groups/(?P<group>[^/]+)/config", self._group_config, True),
            ("GET", r"/v1/audit", self._audit, False),
        ]
        return [_Route(m, re.compile(p), h, w) for m, p, h, w in spec]

    # --- handlers ---------------------------------------------------------------------------

    async def _list(self, _req: Request, _who: Principal,
                    _p: dict[str, str]) -> tuple[int, Any]:
        states = sorted(self._ctx.devices.values(), key=lambda s: s.device_id)
        return 200, {"devices": [device_status(s) for s in states]}

    async def _show(self, _req: Request, _who: Principal, p: dict[str, str]) -> tuple[int, Any]:
        state = self._state(p["device"])
        view = await asyncio.to_thread(self._ctx.fleet.view, state.device_id)
        body = device_status(state)
        body["config"].update(overrides=view.overrides, desired=view.desired)
        return 200, body

    async def _register(self, req: Request, who: Principal,
                        _p: dict[str, str]) -> tuple[int, Any]:
        body = _object(req.json(), {"device_id", "name", "tag_len", "group", "hw_kind",
                                    "gateway"})
        dev = _device_id(body["device_id"], "device_id") if "device_id" in body \
            else self._free_id()
        name = _name(body.get("name", ""))
        tag_len = body.get("tag_len", 8)
        if type(tag_len) is not int or tag_len not in TAG_LENGTHS:
            raise ApiError(400, "invalid", f"must be one of {TAG_LENGTHS}", "tag_len")
        group = _group(body.get("group", ""), "group", allow_empty=True)
        hw_kind = body.get("hw_kind", "sensor_node")
        if hw_kind not in _HW_KINDS:
            raise ApiError(400, "invalid", f"must be one of {', '.join(_HW_KINDS)}", "hw_kind")
        endpoint = _endpoint(body["gateway"]) if "gateway" in body \
            else self._ctx.gateway_endpoint()
        if endpoint[0] in _WILDCARDS:
            raise ApiError(400, "invalid", f"required: this gateway listens on {endpoint[0]}, "
                           "name the HOST:PORT devices send to", "gateway")
        if dev in self._ctx.devices:
            raise DeviceExists(dev)
        key = secrets.token_bytes(32)
        updates = await asyncio.to_thread(
            self._ctx.fleet.register, dev, key, name=name, tag_len=tag_len,
            down_reserved=COUNTER_BLOCK, group=group, actor=who.actor, now=self._ctx.clock())
        # Live at once: the handler finds the device in the dict the next time a frame arrives.
        state = self._ctx.new_state(dev, name or f"{dev:08x}", key, tag_len)
        self._ctx.devices[dev] = state
        apply_desired(self._ctx.devices, updates)
        identity = identity_document(dev, key, tag_len=tag_len, gateway=endpoint,
                                     hw_kind=hw_kind)
        log.info("device %08x registered by %s (tag %d, group %s)", dev, who.actor, tag_len,
                 group or "-")
        return 201, {"device": device_status(state), "identity": identity}

    async def _remove(self, _req: Request, who: Principal,
                      p: dict[str, str]) -> tuple[int, Any]:
        state = self._state(p["device"])
        await asyncio.to_thread(self._ctx.fleet.remove, state.device_id, actor=who.actor,
                                now=self._ctx.clock())
        self._ctx.devices.pop(state.device_id, None)
        log.info("device %08x removed by %s", state.device_id, who.actor)
        return 200, {"removed": f"{state.device_id:08x}"}

    async def _device_config(self, req: Request, who: Principal,
                             p: dict[str, str]) -> tuple[int, Any]:
        state = self._state(p["device"])
        changes = validate_changes(req.json())
        updates = await asyncio.to_thread(self._ctx.fleet.set_device_config, state.device_id,
                                          changes, actor=who.actor, now=self._ctx.clock())
        apply_desired(self._ctx.devices, updates)
        view = await asyncio.to_thread(self._ctx.fleet.view, state.device_id)
        return 200, {"device": f"{state.device_id:08x}", "overrides": view.overrides,
                     "desired": view.desired, "desired_version": view.desired_version}

    async def _group_config(self, req: Request, who: Principal,
                            p: dict[str, str]) -> tuple[int, Any]:
        group = _group(p["group"], "group")
        changes = validate_changes(req.json())
        updates = await asyncio.to_thread(self._ctx.fleet.set_group_config, group, changes,
                                          actor=who.actor, now=self._ctx.clock())
        apply_desired(self._ctx.devices, updates)
        groups = await asyncio.to_thread(self._ctx.fleet.groups)
        entry = next(g for g in groups if g["name"] == group)
        entry["desired_versions"] = {f"{d.device_id:08x}": d.version for d in updates}
        return 200, entry

    async def _device_group(self, req: Request, who: Principal,
                            p: dict[str, str]) -> tuple[int, Any]:
        state = self._state(p["device"])
        body = _object(req.json(), {"group"})
        if "group" not in body:
            raise ApiError(400, "invalid", "required (null leaves every group)", "group")
        group = _group(body["group"] or "", "group", allow_empty=True)
        updates = await asyncio.to_thread(self._ctx.fleet.set_group, state.device_id, group,
                                          actor=who.actor, now=self._ctx.clock())
        apply_desired(self._ctx.devices, updates)
        return 200, device_status(state)

    async def _groups(self, _req: Request, _who: Principal,
                      _p: dict[str, str]) -> tuple[int, Any]:
        return 200, {"groups": await asyncio.to_thread(self._ctx.fleet.groups)}

    async def _audit(self, req: Request, _who: Principal,
                     _p: dict[str, str]) -> tuple[int, Any]:
        after = _query_int(req, "after", 0, 0, 2**62)
        limit = _query_int(req, "limit", 100, 1, 500)
        return 200, {"entries": await asyncio.to_thread(self._ctx.fleet.audit, after, limit)}

    # --- helpers ----------------------------------------------------------------------------

    def _state(self, text: str) -> DeviceState:
        dev = _device_id(text, "device_id")
        state = self._ctx.devices.get(dev)
        if state is None:
            raise DeviceNotFound(dev)
        return state

    def _free_id(self) -> int:
        for _ in range(64):
            dev = secrets.randbelow(0xFFFFFFFE) + 1
            if dev not in self._ctx.devices:
                return dev
        raise ApiError(503, "no_free_id", "could not pick a free device id; name one")


def device_status(s: DeviceState) -> dict[str, Any]:
    """A device as the API shows it: identity, session, configuration sync; never its key."""
    sync = s.config
    t = s.telemetry
    return {
        "device_id": f"{s.device_id:08x}", "name": s.name, "tag_len": s.tag_len,
        "group": s.group or None, "state": s.session.value, "state_code": s.session.code,
        "last_seen": s.last_seen,
        "address": f"{s.last_addr[0]}:{s.last_addr[1]}" if s.last_addr else None,
        "hw_kind": s.hw_kind, "firmware": s.fw_version or None,
        "boot_reason": s.boot_reason or None,
        "battery_mv": t.battery_mv if t is not None else None,
        "config": {
            "desired_version": sync.desired_version, "reported_version": s.config_version,
            "pending": sync.pending(s.config_version), "push": sync.push_state,
            "attempts": sync.attempts, "last_status": sync.status or None,
            "bad_key": key_name(sync.bad_key) if sync.bad_key else None,
        },
    }


def apply_desired(devices: dict[int, DeviceState], updates: Iterable[Desired]) -> None:
    """Store results -> in-memory states (event loop only). A new version restarts the push."""
    for d in updates:
        state = devices.get(d.device_id)
        if state is None:
            continue
        state.group = d.group
        if d.version != state.config.desired_version:
            state.config.want(d.version, d.config)


def new_device_state(device_id: int, name: str, master_key: bytes, tag_len: int) -> DeviceState:
    """The in-memory state of a just-registered device (first downlink block already on disk)."""
    return DeviceState(device_id=device_id, name=name, keys=DeviceKeys.from_master(master_key),
                       tag_len=tag_len, window=ReplayWindow(), down_next=0,
                       down_reserved=COUNTER_BLOCK, session=SessionState.PROVISIONED)


def _object(value: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(400, "invalid", "body must be a JSON object", "body")
    for key in value:
        if key not in allowed:
            shown = key if len(key) <= 40 else key[:40] + "..."
            raise ApiError(400, "unknown_field",
                           f"unknown field (known: {', '.join(sorted(allowed))})", shown)
    return value


def _device_id(value: Any, where: str) -> int:
    if not isinstance(value, str) or not _DEVICE_ID.fullmatch(value):
        raise ApiError(400, "invalid", "must be a device id of 1..8 hex digits", where)
    dev = int(value, 16)
    if not 1 <= dev <= 0xFFFFFFFE:
        raise ApiError(400, "invalid", "must be 00000001..fffffffe (0 and ffffffff are reserved)",
                       where)
    return dev


def _name(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_NAME or not value.isprintable():
        raise ApiError(400, "invalid", f"must be printable text of at most {MAX_NAME} "
                       "characters", "name")
    return value


def _group(value: Any, where: str, *, allow_empty: bool = False) -> str:
    if allow_empty and value == "":
        return ""
    if not isinstance(value, str) or not _GROUP.fullmatch(value):
        raise ApiError(400, "invalid", "must be 1..63 of A-Z a-z 0-9 _ . -, starting with a "
                       "letter or digit", where)
    return value


def _endpoint(value: Any) -> tuple[str, int]:
    if isinstance(value, str):
        host, sep, port = value.rpartition(":")
        if sep and host and port.isdigit() and 1 <= int(port) <= 65535 and len(host) <= 253:
            return host.strip("[]"), int(port)
    raise ApiError(400, "invalid", "must be 'HOST:PORT' (the address devices send to)",
                   "gateway")


def _query_int(req: Request, name: str, default: int, lo: int, hi: int) -> int:
    values = req.query.get(name)
    if not values:
        return default
    text = values[-1]
    if not text.isdigit() or len(text) > 19 or not lo <= int(text) <= hi:
        raise ApiError(400, "invalid", f"must be an integer {lo}..{hi}", name)
    return int(text)


def _clear_stale_socket(path: Path) -> None:
    """Remove a socket file left by a gateway that died; refuse to steal a live one."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError("admin socket", f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
            return
    raise ConfigError("admin socket", f"{path} is in use", "is another gateway running?")
