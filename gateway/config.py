"""The gateway's TOML configuration file (docs/gateway.md) loaded into the settings dataclasses.

Everything is checked before the gateway starts: an unknown key, a wrong type, a value out of
range, a missing required key, an unreadable secret file, a duplicate destination name or a bad
endpoint raises ``ConfigError`` naming the full key path (``mqtt[1].port``) and a fix. Secrets are
never written in the file itself: each one is read from a file of its own (``password_file``,
``token_file``), typically a systemd credential.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import stat
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .adminhttp import Tokens
from .errors import ConfigError, EndpointError
from .mdns import MdnsSettings
from .mqtt import MqttSettings, TlsSettings
from .sessions import SessionPolicy
from .transports import SerialSettings, UdpSettings

if TYPE_CHECKING:
    from .service import GatewaySettings

# A gateway config is a few KiB; anything this large is the wrong file.
MAX_CONFIG_BYTES = 1 << 20
# A password or token longer than this is not one: probably the wrong file was named.
MAX_SECRET_BYTES = 4096
# A token file holds a few lines of ``NAME TOKEN``; more is the wrong file.
MAX_TOKEN_FILE_BYTES = 65536
# A PEM private key is a few KiB even for RSA-4096.
MAX_PEM_BYTES = 65536
# sun_path holds 108 bytes on Linux, including the terminating NUL.
MAX_UNIX_SOCKET_PATH = 107
# A queue bigger than this (rows of ~300 B) would not fit the SD card of a gateway.
MAX_OUTBOX_ROWS = 10_000_000
# Longest timeout or age accepted anywhere: one year, in seconds.
MAX_SECONDS = 366 * 86400.0
# The only variables expanded in paths: the directories systemd hands to a service.
EXPANDED_VARIABLES = ("STATE_DIRECTORY", "RUNTIME_DIRECTORY", "CONFIGURATION_DIRECTORY",
                      "CREDENTIALS_DIRECTORY", "CACHE_DIRECTORY", "LOGS_DIRECTORY")


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """The local admin API socket (off when ``socket`` is None) and its bearer tokens."""

    socket: Path | None = None
    # ``NAME TOKEN [read-only]`` per line (adminhttp.Tokens); checked at load, read by the API.
    token_file: Path | None = None


def load_config(path: Path, env: Mapping[str, str]) -> GatewaySettings:
    """Read and check ``path``; ``env`` supplies the systemd directories expanded in paths."""
    from .service import GatewaySettings, OutboxLimits  # noqa: PLC0415 - service imports us

    root = _Table(_read_toml(path), "", _ROOT)
    paths = _Paths(path.resolve().parent, env)
    gw = root.table("gateway", _GATEWAY, required=True)
    name_hint = "letters, digits, '_', '.' and '-' (up to 64), starting with a letter or digit"
    gateway_id = gw.string("id", hint=f'unique among the gateways sharing a broker, {name_hint}; '
                                      'e.g. id = "gw-calais-1"', pattern=_NAME)
    site = gw.string("site", hint=f'the site in MQTT topics, {name_hint}; e.g. site = "calais"',
                     pattern=_NAME)
    prefix = gw.string("prefix", "shorewatch", pattern=_PREFIX,
                       hint='up to 4 topic levels joined by "/", no wildcards: "org/shorewatch"')
    data_dir = paths.resolve(gw, "data_dir", "${STATE_DIRECTORY}")
    publish_telemetry = gw.boolean("publish_telemetry", False)
    udp = _udp(root)
    serial = _serial(root)
    if not udp and not serial:
        raise ConfigError("udp", "no device link is configured",
                          'add [[udp]] listen = "0.0.0.0:4700" or a [[serial]] port')
    metrics = root.table("metrics", _METRICS)
    metrics_host, metrics_port = parse_endpoint(
        metrics.string("listen", "127.0.0.1:9108"), metrics.key("listen"))
    outbox = root.table("outbox", _OUTBOX)
    defaults = OutboxLimits()
    limits = OutboxLimits(
        max_rows=outbox.integer("max_rows", defaults.max_rows, 1, MAX_OUTBOX_ROWS,
                                "events kept for a lagging destination, ~300 bytes of disk each"),
        max_age_s=outbox.number("max_age_s", defaults.max_age_s, 60.0, MAX_SECONDS,
                                "seconds; 604800 is 7 days"))
    # udp_host/udp_port mirror the first listener for code that reads only those.
    first = udp[0] if udp else UdpSettings("127.0.0.1", 4700)
    return GatewaySettings(
        data_dir=data_dir, gateway_id=gateway_id, publish_telemetry=publish_telemetry,
        udp_host=first.host, udp_port=first.port,
        metrics_host=metrics_host, metrics_port=metrics_port, outbox=limits,
        mqtt=_mqtt(root, paths, prefix=prefix, site=site, gateway_id=gateway_id),
        udp=udp, serial=serial, sessions=_sessions(root), mdns=_mdns(root),
        admin=_admin(root, paths))


def parse_endpoint(text: str, key: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port); IPv6 addresses must be bracketed."""
    example = "e.g. 0.0.0.0:4700, or [::]:4700 for IPv6"
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise EndpointError(key, f"{text!r} is not HOST:PORT", example)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not _is_ip(host, 6):
            raise EndpointError(key, f"{host!r} in brackets is not an IPv6 address", example)
    elif ":" in host:
        raise EndpointError(key, f"{text!r}: an IPv6 address needs brackets",
                            f"write [{host}]:{port_text}")
    elif not (_is_ip(host, 4) or _HOSTNAME.fullmatch(host)):
        raise EndpointError(key, f"{host!r} is neither an IP address nor a host name", example)
    port = int(port_text)
    if port > 65535:
        raise EndpointError(key, f"port {port} is out of range 0..65535", example)
    return host, port


def format_endpoint(host: str, port: int) -> str:
    """The inverse of ``parse_endpoint``: brackets around IPv6 addresses."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def summary(settings: GatewaySettings) -> list[str]:
    """What ``check-config`` prints: one line per part, never a secret."""
    s = settings
    mq = s.mqtt[0] if s.mqtt else None
    lines = [f"gateway {s.gateway_id}" + (f", site {mq.site}, prefix {mq.prefix}" if mq else ""),
             f"data_dir {s.data_dir}"]
    lines += [f"udp {format_endpoint(u.host, u.port)}" for u in s.udp]
    lines += [f"serial {p.port} at {p.baudrate} baud" for p in s.serial]
    lines.append(f"metrics http://{format_endpoint(s.metrics_host, s.metrics_port)}/metrics")
    for m in s.mqtt:
        auth = "anonymous"
        if m.username:
            auth = f"user {m.username}" + (" with password" if m.password else "")
        tls = "tls" if m.tls is not None else "plain"
        lines.append(f"mqtt {m.name}: {format_endpoint(m.host, m.port)} {tls}, {auth}, "
                     f"topics {' '.join(m.topics)}")
    lines.append(f"outbox max_rows {s.outbox.max_rows}, max_age_s {s.outbox.max_age_s:g}")
    lines.append(f"sessions stale_after_s {s.sessions.stale_after_s:g}, "
                 f"offline_after_s {s.sessions.offline_after_s:g}")
    if s.mdns is None:
        lines.append("mdns off")
    else:
        lines.append("mdns on " + (", ".join(s.mdns.interfaces) or "every interface"))
    lines.append(f"admin socket {s.admin.socket}" if s.admin.socket else "admin off")
    return lines


# --- the sections -------------------------------------------------------------------------

_ROOT = ("gateway", "udp", "serial", "mdns", "admin", "sessions", "metrics", "mqtt", "outbox")
_GATEWAY = ("id", "site", "prefix", "data_dir", "publish_telemetry")
_METRICS = ("listen",)
_OUTBOX = ("max_rows", "max_age_s")
_SESSIONS = ("stale_after_s", "offline_after_s")
_MDNS = ("enabled", "interfaces", "addresses", "instance")
_ADMIN = ("socket", "token_file")
_UDP = ("listen",)
_SERIAL = ("port", "baudrate")
_MQTT = ("name", "host", "port", "username", "password", "password_file", "tls", "topics",
         "keepalive")
_TLS = ("ca_file", "cert_file", "key_file")

# Gateway ids, sites and destination names: one MQTT topic level, also a metrics label value.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}){0,3}")
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


def _udp(root: _Table) -> tuple[UdpSettings, ...]:
    seen: dict[tuple[str, int], str] = {}
    out = []
    for t in root.tables("udp", _UDP, 'each listener is [[udp]] listen = "HOST:PORT"'):
        host, port = parse_endpoint(t.string("listen", hint='e.g. listen = "0.0.0.0:4700"'),
                                    t.key("listen"))
        if (host, port) in seen and port != 0:
            raise ConfigError(t.key("listen"), f"{format_endpoint(host, port)} is already "
                              f"listed in {seen[(host, port)]}", "remove one of them")
        seen[(host, port)] = t.key("listen")
        out.append(UdpSettings(host, port))
    return tuple(out)


def _serial(root: _Table) -> tuple[SerialSettings, ...]:
    seen: dict[str, str] = {}
    out = []
    default = SerialSettings("").baudrate
    for t in root.tables("serial", _SERIAL, 'each port is [[serial]] port = "/dev/ttyUSB0"'):
        port = t.string("port", hint="a device path, best /dev/serial/by-id/..., or a pyserial "
                                     "URL such as rfc2217://host:port")
        if "://" not in port and not port.startswith("/"):
            raise ConfigError(t.key("port"), f"{port!r} is neither an absolute device path "
                              "nor a pyserial URL", "e.g. /dev/serial/by-id/usb-...-if00")
        if port in seen:
            raise ConfigError(t.key("port"), f"{port} is already listed in {seen[port]}",
                              "remove one of them")
        seen[port] = t.key("port")
        out.append(SerialSettings(port, t.integer("baudrate", default, 300, 4_000_000,
                                                  "the device's rate, usually 115200")))
    return tuple(out)


def _sessions(root: _Table) -> SessionPolicy:
    t = root.table("sessions", _SESSIONS)
    defaults = SessionPolicy()
    hint = "seconds since the device's last authenticated frame, e.g. 900"
    stale = t.number("stale_after_s", defaults.stale_after_s, 1.0, MAX_SECONDS, hint)
    offline = t.number("offline_after_s", defaults.offline_after_s, 1.0, MAX_SECONDS, hint)
    if offline <= stale:
        raise ConfigError(t.key("offline_after_s"), f"{offline:g} is not greater than "
                          f"stale_after_s ({stale:g})",
                          "a device goes stale first, then offline: raise offline_after_s")
    return SessionPolicy(stale_after_s=stale, offline_after_s=offline)


def _mdns(root: _Table) -> MdnsSettings | None:
    t = root.table("mdns", _MDNS)
    enabled = t.boolean("enabled", False)
    interfaces = t.strings("interfaces", [])
    for i, text in enumerate(interfaces):
        if not (text.isdigit() or _is_ip(text, 4) or _is_ip(text, 6)):
            raise ConfigError(f"{t.key('interfaces')}[{i}]", f"{text!r} is neither an IP "
                              "address nor an interface index", "give the gateway's address "
                              'on the device network, e.g. "192.168.4.1"')
    addresses = t.strings("addresses", [])
    for i, text in enumerate(addresses):
        if not (_is_ip(text, 4) or _is_ip(text, 6)):
            raise ConfigError(f"{t.key('addresses')}[{i}]", f"{text!r} is not an IP address",
                              "list the addresses devices should use to reach the gateway")
    instance = t.string("instance", "")
    if len(instance.encode()) > 63:
        raise ConfigError(t.key("instance"), "is longer than 63 bytes",
                          "a DNS-SD instance name is one DNS label: shorten it")
    if not enabled:
        return None
    return MdnsSettings(interfaces=tuple(interfaces), instance=instance,
                        addresses=tuple(addresses))


def _admin(root: _Table, paths: _Paths) -> AdminSettings:
    t = root.table("admin", _ADMIN, secret_keys=("token",))
    if "socket" not in t:
        if "token_file" in t:
            raise ConfigError(t.key("socket"), "required when admin.token_file is set",
                              'e.g. socket = "${RUNTIME_DIRECTORY}/admin.sock"')
        return AdminSettings()
    socket = paths.resolve(t, "socket")
    if len(os.fsencode(socket)) > MAX_UNIX_SOCKET_PATH:
        raise ConfigError(t.key("socket"), f"{socket} is longer than "
                          f"{MAX_UNIX_SOCKET_PATH} bytes", "unix socket paths must be short: "
                          "use ${RUNTIME_DIRECTORY}/admin.sock")
    if "token_file" not in t:
        return AdminSettings(socket=socket)
    token_file = paths.resolve(t, "token_file")
    _read_secret(t.key("token_file"), token_file, limit=MAX_TOKEN_FILE_BYTES, one_line=False)
    try:
        Tokens.load(token_file)
    except ConfigError as exc:  # the API names it "admin token_file"; say where it is set
        raise ConfigError(t.key("token_file"), exc.problem, exc.hint or "one token per line, "
                          "NAME TOKEN [read-only]; make one with: openssl rand -hex 32") from exc
    return AdminSettings(socket=socket, token_file=token_file)


def _mqtt(root: _Table, paths: _Paths, *, prefix: str, site: str,
          gateway_id: str) -> tuple[MqttSettings, ...]:
    tables = root.tables("mqtt", _MQTT, "each destination is an [[mqtt]] table",
                         secret_keys=("password",))
    if not tables:
        raise ConfigError("mqtt", "no MQTT destination is configured",
                          'add [[mqtt]] name = "local" host = "127.0.0.1"')
    names: dict[str, str] = {}
    out = []
    for t in tables:
        name = t.string("name", hint='e.g. name = "local"; it keys the outbox cursor and '
                                     "the metrics of this destination", pattern=_NAME)
        if name in names:
            raise ConfigError(t.key("name"), f"{name!r} is already used by {names[name]}",
                              "each destination needs its own name: it keys its outbox "
                              "cursor and metrics")
        names[name] = t.key("name")
        host = t.string("host", hint='the broker, e.g. host = "127.0.0.1"')
        if not (_is_ip(host, 4) or _is_ip(host, 6) or _HOSTNAME.fullmatch(host)):
            raise ConfigError(t.key("host"), f"{host!r} is neither an IP address nor a host "
                              "name", "give the broker's address without port or brackets")
        tls = _tls(t, paths)
        username = t.optional_string("username")
        password = None
        if "password_file" in t:
            if username is None:
                raise ConfigError(t.key("username"), "required with password_file",
                                  "MQTT 3.1.1 sends a password only with a user name")
            password = _read_secret(t.key("password_file"), paths.resolve(t, "password_file"))
        out.append(MqttSettings(
            host, t.integer("port", 8883 if tls else 1883, 1, 65535,
                            "the broker's TCP port: usually 1883, or 8883 with TLS"),
            prefix=prefix, site=site, gateway_id=gateway_id, name=name, username=username,
            password=password, tls=tls, topics=_topics(t),
            keepalive=t.integer("keepalive", 30, 5, 65535, "seconds between pings; 30 is usual")))
    return tuple(out)


def _tls(t: _Table, paths: _Paths) -> TlsSettings | None:
    if "tls" not in t:
        return None
    tls = t.table("tls", _TLS)
    if "key_file" in tls and "cert_file" not in tls:
        raise ConfigError(tls.key("cert_file"), "required with key_file",
                          "a client key is used with its certificate: set cert_file too")
    files: dict[str, str | None] = {}
    for name in _TLS:
        if name not in tls:
            files[name] = None
            continue
        file = paths.resolve(tls, name)
        if name == "key_file":
            _read_secret(tls.key(name), file, limit=MAX_PEM_BYTES, one_line=False)
        else:
            _check_readable(tls.key(name), file)
        files[name] = str(file)
    return TlsSettings(ca_file=files["ca_file"], cert_file=files["cert_file"],
                       key_file=files["key_file"])


def _topics(t: _Table) -> tuple[str, ...]:
    topics = t.strings("topics", ["#"])
    if not topics:
        raise ConfigError(t.key("topics"), "is empty: the destination would receive nothing",
                          'use ["#"] for everything, or remove the destination')
    for i, topic in enumerate(topics):
        levels = topic.split("/")
        bad = (not topic or "\0" in topic or topic.startswith("/")
               or any(("#" in lv and (lv != "#" or j != len(levels) - 1))
                      or ("+" in lv and lv != "+") for j, lv in enumerate(levels)))
        if bad:
            raise ConfigError(f"{t.key('topics')}[{i}]", f"{topic!r} is not an MQTT filter "
                              "below <prefix>/<site>/", 'e.g. "device/+/event/detection"; '
                              '"+" is one whole level, "#" only the last')
    return tuple(topics)


# --- reading ----------------------------------------------------------------------------------

def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the config file: {exc.strerror}",
                          "check the path given to --config") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(str(path), f"larger than {MAX_CONFIG_BYTES} bytes",
                          "is this the gateway's TOML config?")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "is not UTF-8 text", "save it as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"invalid TOML: {exc}",
                          "see deploy/gateway.example.toml for the syntax") from exc


def _read_secret(key: str, path: Path, *, limit: int = MAX_SECRET_BYTES,
                 one_line: bool = True) -> str:
    """A secret file: a regular file other users cannot access, holding UTF-8 text."""
    hint = ("with systemd, pass it with LoadCredential= and name "
            "${CREDENTIALS_DIRECTORY}/<name>; check-config outside systemd: set "
            "CREDENTIALS_DIRECTORY to the directory holding it")
    try:
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(key, f"{path} is not a regular file", hint)
            if st.st_mode & stat.S_IRWXO:
                raise ConfigError(key, f"{path} is accessible to other users",
                                  f"chmod 600 {path}, or pass it with LoadCredential=")
            raw = f.read(limit + 1)
    except FileNotFoundError as exc:
        raise ConfigError(key, f"{path} does not exist", hint) from exc
    except IsADirectoryError as exc:
        raise ConfigError(key, f"{path} is not a regular file", hint) from exc
    except PermissionError as exc:
        raise ConfigError(key, f"{path} is not readable by this user", hint) from exc
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}", hint) from exc
    if len(raw) > limit:
        raise ConfigError(key, f"{path} is longer than {limit} bytes", "is it the right file?")
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise ConfigError(key, f"{path} is not UTF-8 text", "store the secret as text") from exc
    if not text:
        raise ConfigError(key, f"{path} is empty", "write the secret into it")
    if one_line and ("\n" in text or "\r" in text):
        raise ConfigError(key, f"{path} holds more than one line",
                          "the file should hold the secret alone, on one line")
    return text


def _check_readable(key: str, path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError as exc:
        raise ConfigError(key, f"{path} does not exist", "check the path") from exc
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}",
                          "the gateway's user must be able to read it") from exc


def _is_ip(text: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


class _Missing(Enum):
    REQUIRED = "required"


_REQUIRED = _Missing.REQUIRED
_T = TypeVar("_T")


class _Paths:
    """Expands ``${STATE_DIRECTORY}``-style variables; relative paths follow the config file."""

    _VARIABLE = re.compile(r"\$\{([^}]*)\}")

    def __init__(self, base: Path, env: Mapping[str, str]) -> None:
        self._base = base
        self._env = env

    def resolve(self, t: _Table, name: str, default: str | _Missing = _REQUIRED, *,
                hint: str = "") -> Path:
        key = t.key(name)
        text = t.string(name, default, hint=hint or "an absolute path, or one relative to "
                                                    "the config file")

        def expand(m: re.Match[str]) -> str:
            var = m.group(1)
            if var not in EXPANDED_VARIABLES:
                raise ConfigError(key, f"${{{var}}} cannot be expanded",
                                  f"only {', '.join(EXPANDED_VARIABLES)} are")
            value = self._env.get(var)
            if not value:
                raise ConfigError(key, f"${{{var}}} is not set (not running under systemd?)",
                                  f"give a path instead, or set {var} in the environment")
            # systemd joins several directories with ':'; the first one is ours.
            return value.split(":")[0]

        expanded = self._VARIABLE.sub(expand, text)
        if not expanded:
            raise ConfigError(key, "is empty", "give a path")
        return self._base / expanded


class _Table:
    """One TOML table under validation: typed getters whose errors name the full key path."""

    def __init__(self, data: Mapping[str, object], path: str, allowed: Iterable[str],
                 secret_keys: Iterable[str] = ()) -> None:
        self._data = data
        self.path = path
        allowed = tuple(allowed)
        for name in secret_keys:
            if name in data:
                raise ConfigError(self.key(name), "secrets are not accepted in the config "
                                  "file", f"write it alone into a file readable only by the "
                                  f"gateway and set {name}_file to it (a systemd credential)")
        unknown = sorted(set(data) - set(allowed) - set(secret_keys))
        if unknown:
            close = difflib.get_close_matches(unknown[0], allowed, n=1)
            raise ConfigError(self.key(unknown[0]), "unknown key",
                              f"did you mean {close[0]!r}?" if close
                              else f"known keys here: {', '.join(allowed)}")

    def __contains__(self, name: str) -> bool:
        return name in self._data

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def string(self, name: str, default: str | _Missing = _REQUIRED, *, hint: str = "",
               pattern: re.Pattern[str] | None = None) -> str:
        value = self._get(name, str, default, hint)
        if pattern is not None and not pattern.fullmatch(value):
            raise ConfigError(self.key(name), f"{value!r} is not allowed here", hint or
                              "use letters, digits, '_', '.' and '-' (up to 64), "
                              "starting with a letter or digit")
        return value

    def optional_string(self, name: str) -> str | None:
        if name not in self._data:
            return None
        value = self._get(name, str, _REQUIRED, "")
        if not value:
            raise ConfigError(self.key(name), "is empty", "remove the key or give a value")
        return value

    def integer(self, name: str, default: int | _Missing, lowest: int, highest: int,
                hint: str = "") -> int:
        value = self._get(name, int, default, hint)
        if not lowest <= value <= highest:
            raise ConfigError(self.key(name), f"{value} is out of range {lowest}..{highest}",
                              hint or "pick a value in the range")
        return value

    def number(self, name: str, default: float | _Missing, lowest: float, highest: float,
               hint: str = "") -> float:
        value = float(self._get(name, (float, int), default, hint))
        if not (math.isfinite(value) and lowest <= value <= highest):
            raise ConfigError(self.key(name), f"{value:g} is out of range "
                              f"{lowest:g}..{highest:g}", hint or "pick a value in the range")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        return self._get(name, bool, default, "")

    def strings(self, name: str, default: list[str]) -> list[str]:
        values = self._get(name, list, default, 'an array of strings, e.g. ["a", "b"]')
        for i, item in enumerate(values):
            if not isinstance(item, str):
                raise ConfigError(f"{self.key(name)}[{i}]",
                                  f"expected a string, got {_describe(item)}", "quote it")
        return list(values)

    def table(self, name: str, allowed: Iterable[str], *, required: bool = False,
              secret_keys: Iterable[str] = ()) -> _Table:
        if name not in self._data:
            if required:
                raise ConfigError(self.key(name), "required section is missing",
                                  f"add a [{self.key(name)}] table")
            return _Table({}, self.key(name), allowed)
        value = self._data[name]
        if not isinstance(value, dict):
            raise ConfigError(self.key(name), f"expected a table, got {_describe(value)}",
                              f"write it as a [{self.key(name)}] section")
        return _Table(value, self.key(name), allowed, secret_keys)

    def tables(self, name: str, allowed: Iterable[str], hint: str,
               secret_keys: Iterable[str] = ()) -> list[_Table]:
        value = self._data.get(name, [])
        if not isinstance(value, list):
            raise ConfigError(self.key(name), f"expected an array of tables, got "
                              f"{_describe(value)}", f"write [[{name}]], one per entry: {hint}")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ConfigError(f"{self.key(name)}[{i}]", f"expected a table, got "
                                  f"{_describe(item)}", hint)
            out.append(_Table(item, f"{self.key(name)}[{i}]", allowed, secret_keys))
        return out

    def _get(self, name: str, kind: type[_T] | tuple[type, ...], default: _T | _Missing,
             hint: str) -> _T:
        if name not in self._data:
            if isinstance(default, _Missing):
                raise ConfigError(self.key(name), "required key is missing", hint)
            return default
        value = self._data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ConfigError(self.key(name), f"expected {_KIND_NAMES[kinds[0]]}, got "
                              f"{_describe(value)}", hint or _KIND_HINTS[kinds[0]])
        return value  # type: ignore[return-value]  # checked against kind just above


_KIND_NAMES: dict[type, str] = {str: "a string", int: "an integer", float: "a number",
                                bool: "a boolean", list: "an array", dict: "a table"}
_KIND_HINTS: dict[type, str] = {
    str: 'put the value in double quotes: key = "value"',
    int: "write a whole number without quotes: key = 1883",
    float: "write a number without quotes: key = 900 (seconds where the name ends in _s)",
    bool: "write true or false, without quotes", list: 'write an array: key = ["a", "b"]',
    dict: "write an inline table { ... } or a [section]"}


def _describe(value: object) -> str:
    # bool before int: True is an int too.
    for scalar in (bool, int, float, str):
        if isinstance(value, scalar):
            return f"{_KIND_NAMES[scalar]} ({value!r})"
    if isinstance(value, list | dict):
        return _KIND_NAMES[type(value)]
    return f"a {type(value).__name__}"  # TOML dates and times
