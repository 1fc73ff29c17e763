"""Golden vectors: the shared contract of the gateway and device codecs (docs/protocol.md s. 9).

JSON helpers to convert messages to and from the vector field conventions, and a loader.
"""

from __future__ import annotations

import dataclasses
import json
from enum import IntEnum, IntFlag
from pathlib import Path
from typing import Any, Final

from .. import messages as m

DIR: Final = Path(__file__).parent
FILES: Final = ("messages.json", "decode.json", "replay.json", "framing.json")
_CLASSES: Final[dict[str, type[Any]]] = {
    "HELLO": m.Hello, "WELCOME": m.Welcome, "TELEMETRY": m.Telemetry, "DETECTION": m.Detection,
    "CONFIG_PUSH": m.ConfigPush, "CONFIG_ACK": m.ConfigAck, "FW_OFFER": m.FwOffer,
    "FW_REQUEST": m.FwRequest, "FW_CHUNK": m.FwChunk, "FW_RESULT": m.FwResult, "ACK": m.Ack,
    "NACK": m.Nack, "LOG": m.Log,
}


def load(name: str) -> dict[str, Any]:
    """Parse one vector file of this directory."""
    data: dict[str, Any] = json.loads((DIR / name).read_text(encoding="utf-8"))
    return data


def to_json(msg: m.Message) -> dict[str, Any]:
    """Vector field conventions: bytes as hex, enumerations by lowercase name."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(msg):
        out[f.name] = _value_to_json(getattr(msg, f.name))
    return out


def _value_to_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, IntFlag):
        return int(value)
    if isinstance(value, IntEnum):
        return value.name.lower()
    if isinstance(value, m.Thumbnail):
        return {"format": value.format.name.lower(), "w": value.w, "h": value.h,
                "data": value.data.hex()}
    if isinstance(value, tuple):
        return [[e.key, e.value.hex()] for e in value]
    return value


def from_json(type_name: str, fields: dict[str, Any]) -> m.Message:
    """Inverse of ``to_json`` for message ``type_name``."""
    cls = _CLASSES[type_name]
    kwargs: dict[str, Any] = {}
    hints = {f.name: f for f in dataclasses.fields(cls)}
    for name, raw in fields.items():
        kwargs[name] = _value_from_json(cls, name, raw)
    missing = set(hints) - set(kwargs)
    for name in missing:
        if hints[name].default is dataclasses.MISSING:
            raise KeyError(f"{type_name} vector lacks field {name}")
    result: m.Message = cls(**kwargs)
    return result


_ENUM_FIELDS: Final[dict[tuple[str, str], type[IntEnum]]] = {
    ("Hello", "hw_kind"): m.HardwareKind, ("Hello", "boot_reason"): m.BootReason,
    ("Detection", "lifecycle"): m.Lifecycle, ("Detection", "kind"): m.DetectionKind,
    ("ConfigAck", "status"): m.ConfigStatus, ("FwResult", "status"): m.FwStatus,
    ("Nack", "code"): m.NackCode, ("Log", "level"): m.LogLevel,
}
_BYTES_FIELDS: Final = {"nonce", "sha256", "data"}


def _value_from_json(cls: type[Any], name: str, raw: Any) -> Any:
    enum = _ENUM_FIELDS.get((cls.__name__, name))
    if enum is not None:
        return enum[raw.upper()]
    if name in _BYTES_FIELDS:
        return bytes.fromhex(raw)
    if name == "thumbnail":
        if raw is None:
            return None
        return m.Thumbnail(m.ThumbFormat[raw["format"].upper()], raw["w"], raw["h"],
                           bytes.fromhex(raw["data"]))
    if name == "entries":
        return tuple(m.ConfigEntry(k, bytes.fromhex(v)) for k, v in raw)
    return raw
