"""Device configuration: the CONFIG_PUSH keys, their validation, their wire encoding, and the
per-device push state (docs/protocol.md section 5, docs/gateway.md "Configuration push").

Values are validated here once, at the admin boundary; the store and the push path trust them.
Secret values (``wifi_psk``) never appear in a repr, a log line, an audit entry or an API answer:
``redact`` is the only way they are rendered.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from protocol import ConfigEntry

from .errors import GatewayError

ConfigValue = int | str
Config = dict[str, ConfigValue]

# Shown instead of a secret value; "changed" tells an auditor that it was replaced.
HIDDEN: Final = "<secret>"
HIDDEN_CHANGED: Final = "<secret, changed>"


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One CONFIG_PUSH key: wire id and encoding, and the range the admin API accepts."""

    name: str
    key: int
    kind: str  # "u8", "u16" or "str"
    lo: int  # inclusive; for strings, the length in UTF-8 bytes
    hi: int
    secret: bool = False

    def encode(self, value: ConfigValue) -> bytes:
        if self.kind == "str":
            assert isinstance(value, str)
            return value.encode()
        assert isinstance(value, int)
        return struct.pack("<B" if self.kind == "u8" else "<H", value)


# Ranges: report_interval_s is a u16 on the wire, so 65535 s (18.2 h) is the longest interval a
# push can carry; an SSID is at most 32 bytes (IEEE 802.11), a WPA2 passphrase 8..63 characters.
KEYS: Final = {k.name: k for k in (
    KeySpec("report_interval_s", 1, "u16", 10, 0xFFFF),
    KeySpec("detection_sensitivity", 2, "u8", 0, 100),
    KeySpec("pir_holdoff_s", 3, "u16", 0, 3600),
    KeySpec("battery_low_mv", 4, "u16", 2800, 4200),
    KeySpec("radar_window_ms", 5, "u16", 10, 60_000),
    KeySpec("thermal_fps_x10", 6, "u8", 1, 255),
    KeySpec("wifi_ssid", 7, "str", 1, 32),
    KeySpec("wifi_psk", 8, "str", 8, 63, secret=True),
)}
_BY_ID: Final = {k.key: k for k in KEYS.values()}


class InvalidConfig(GatewayError):
    """A configuration value the devices would not accept; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def key_name(key: int) -> str:
    """The name of wire key ``key`` for logs and the API (``key_42`` for an unknown one)."""
    spec = _BY_ID.get(key)
    return spec.name if spec is not None else f"key_{key}"


def validate_changes(body: object, where: str = "config") -> dict[str, ConfigValue | None]:
    """Check a JSON object of ``key: value`` (``null`` removes the key); raise InvalidConfig."""
    if not isinstance(body, dict):
        raise InvalidConfig(where, "must be a JSON object of key: value")
    if not body:
        raise InvalidConfig(where, "is empty: name at least one key")
    out: dict[str, ConfigValue | None] = {}
    for name, value in body.items():
        spec = KEYS.get(name)
        path = f"{where}.{name}"
        if spec is None:
            known = ", ".join(KEYS)
            raise InvalidConfig(path if len(name) <= 40 else where,
                                f"unknown key (known: {known})")
        out[name] = None if value is None else _check(spec, value, path)
    return out


def _check(spec: KeySpec, value: object, path: str) -> ConfigValue:
    if spec.kind == "str":
        if not isinstance(value, str):
            raise InvalidConfig(path, "must be a string")
        size = len(value.encode("utf-8", "surrogatepass"))
        if not spec.lo <= size <= spec.hi:
            raise InvalidConfig(path, f"must be {spec.lo}..{spec.hi} bytes of UTF-8")
        if any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise InvalidConfig(path, "must not contain control characters")
        return value
    # bool is an int in Python but never a valid number here.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidConfig(path, "must be an integer")
    if not spec.lo <= value <= spec.hi:
        raise InvalidConfig(path, f"must be {spec.lo}..{spec.hi}")
    return value


def merge(base: Mapping[str, ConfigValue],
          changes: Mapping[str, ConfigValue | None]) -> Config:
    """``base`` with ``changes`` applied (``None`` removes a key)."""
    out = dict(base)
    for name, value in changes.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def redact(config: Mapping[str, ConfigValue],
           before: Mapping[str, ConfigValue] | None = None) -> dict[str, ConfigValue]:
    """``config`` safe to log, audit and return: secret values replaced by a marker."""
    out: dict[str, ConfigValue] = {}
    for name, value in sorted(config.items()):
        spec = KEYS.get(name)
        if spec is not None and spec.secret:
            changed = before is not None and before.get(name) != value
            out[name] = HIDDEN_CHANGED if changed else HIDDEN
        else:
            out[name] = value
    return out


def entries(config: Mapping[str, ConfigValue]) -> tuple[ConfigEntry, ...]:
    """The CONFIG_PUSH entries for ``config``, keys in increasing order as the codec requires."""
    specs = sorted((KEYS[n] for n in config), key=lambda s: s.key)
    return tuple(ConfigEntry(s.key, s.encode(config[s.name])) for s in specs)


def has_secret(config: Mapping[str, ConfigValue]) -> bool:
    return any(KEYS[n].secret for n in config)


def next_version(version: int) -> int:
    """Versions run 1..65535 (u16 on the wire; 0 means "no pushed config") and wrap to 1."""
    return version % 0xFFFF + 1


@dataclass(frozen=True, slots=True)
class PushPolicy:
    """Retries of a CONFIG_PUSH that got no CONFIG_ACK: on later uplinks, spaced by time."""

    max_attempts: int = 5
    # Wait before attempt n+1: backoff_s * 2**(n-1), capped; a HELLO skips the wait (the device
    # just said it is awake and listening), but not the attempt bound.
    backoff_s: float = 10.0
    backoff_max_s: float = 900.0

    def wait(self, attempts: int) -> float:
        return float(min(self.backoff_s * 2 ** max(attempts - 1, 0), self.backoff_max_s))


@dataclass(slots=True)
class ConfigSync:
    """Desired configuration of one device and the state of its push (in memory)."""

    desired_version: int = 0
    entries: tuple[ConfigEntry, ...] = field(default=(), repr=False)
    secret: bool = False
    status: str = ""  # last CONFIG_ACK status: applied, partial or rejected
    bad_key: int = 0
    attempts: int = 0
    last_push_at: float | None = None
    gave_up: bool = False

    def want(self, version: int, config: Mapping[str, ConfigValue]) -> None:
        """A new desired configuration: the push starts over."""
        self.desired_version = version
        self.entries = entries(config)
        self.secret = has_secret(config)
        self.attempts = 0
        self.last_push_at = None
        self.gave_up = False

    def pending(self, reported: int) -> bool:
        return self.desired_version not in (0, reported)

    @property
    def push_state(self) -> str:
        if self.gave_up:
            return "failed"
        return "sent" if self.attempts else "waiting"
