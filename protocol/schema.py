"""Body layouts on ``construct``, converted to and from the typed messages at this boundary.

``construct`` never sees unauthenticated bytes: ``frame.py`` verifies the tag before calling
``decode_body``. Containers never leave this module.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final, TypeVar

import construct as c

from .errors import EncodeError, Malformed
from .limits import MAX_CONFIG_ENTRIES, MAX_CONFIG_VALUE, MAX_FW_CHUNK, MAX_LOG_TEXT, MAX_THUMBNAIL
from .messages import (
    Ack,
    BootReason,
    ConfigAck,
    ConfigEntry,
    ConfigPush,
    ConfigStatus,
    Detection,
    DetectionKind,
    FwChunk,
    FwOffer,
    FwRequest,
    FwResult,
    FwStatus,
    HardwareKind,
    Hello,
    Lifecycle,
    Log,
    LogLevel,
    Message,
    MessageType,
    Nack,
    NackCode,
    Telemetry,
    ThumbFormat,
    Thumbnail,
    Welcome,
)

_FIELD_TYPES: Final[dict[str, Any]] = {
    "u8": c.Int8ul, "i8": c.Int8sl, "u16": c.Int16ul, "i16": c.Int16sl, "u32": c.Int32ul,
    "b8": c.Bytes(8), "b32": c.Bytes(32),
}

# Fixed layouts, in wire order: (name, type). The canonical schema text is built from these.
_CORE: Final[dict[MessageType, tuple[tuple[str, str], ...]]] = {
    MessageType.HELLO: (
        ("fw_major", "u8"), ("fw_minor", "u8"), ("fw_patch", "u16"), ("hw_kind", "u8"),
        ("boot_reason", "u8"), ("capabilities", "u16"), ("schema", "u32"), ("nonce", "b8"),
    ),
    MessageType.WELCOME: (
        ("nonce", "b8"), ("unix_s", "u32"), ("unix_ms", "u16"), ("config_version", "u16"),
        ("flags", "u8"),
    ),
    MessageType.TELEMETRY: (
        ("battery_mv", "u16"), ("solar_mv", "u16"), ("charge_ma", "i16"),
        ("temperature_cc", "i16"), ("humidity_half_pct", "u8"), ("rssi_dbm", "i8"),
        ("uptime_s", "u32"), ("boot_count", "u16"), ("free_heap_64", "u16"), ("flags", "u8"),
    ),
    MessageType.DETECTION: (
        ("event_id", "u32"), ("lifecycle", "u8"), ("kind", "u8"), ("confidence_pct", "u8"),
        ("box_x", "u8"), ("box_y", "u8"), ("box_w", "u8"), ("box_h", "u8"), ("peak_cc", "i16"),
        ("count", "u8"), ("ts_s", "u32"), ("ts_ms", "u16"),
    ),
    MessageType.CONFIG_ACK: (("config_version", "u16"), ("status", "u8"), ("bad_key", "u8")),
    MessageType.FW_OFFER: (
        ("offer_id", "u16"), ("fw_major", "u8"), ("fw_minor", "u8"), ("fw_patch", "u16"),
        ("size", "u32"), ("chunk_size", "u16"), ("sha256", "b32"),
    ),
    MessageType.FW_REQUEST: (("offer_id", "u16"), ("offset", "u32"), ("length", "u16")),
    MessageType.FW_RESULT: (
        ("offer_id", "u16"), ("status", "u8"), ("fw_major", "u8"), ("fw_minor", "u8"),
        ("fw_patch", "u16"),
    ),
    MessageType.ACK: (("acked_counter", "u32"), ("acked_type", "u8")),
    MessageType.NACK: (("nacked_counter", "u32"), ("code", "u8")),
}


def _struct(fields: tuple[tuple[str, str], ...]) -> Any:
    return c.Struct(*[name / _FIELD_TYPES[kind] for name, kind in fields])


# Variable layouts. Every length read from the wire is checked against its cap before the bytes
# it announces are read.
def _capped(field: Any, cap: int) -> Any:
    """A length field that fails (with its own name in the path) above ``cap``."""
    return c.ExprValidator(field, c.obj_ <= cap)


_THUMB = c.Struct(
    "format" / c.Int8ul, "w" / c.Int8ul, "h" / c.Int8ul,
    "length" / _capped(c.Int16ul, MAX_THUMBNAIL), "data" / c.Bytes(c.this.length),
)
_HELLO_TAIL = c.Struct("config_version" / c.Int16ul)
_CONFIG_PUSH = c.Struct(
    "config_version" / c.Int16ul, "n" / _capped(c.Int8ul, MAX_CONFIG_ENTRIES),
    "entries" / c.Array(c.this.n, c.Struct(
        "key" / c.Int8ul, "length" / _capped(c.Int8ul, MAX_CONFIG_VALUE),
        "value" / c.Bytes(c.this.length),
    )),
)
_FW_CHUNK = c.Struct(
    "offer_id" / c.Int16ul, "offset" / c.Int32ul, "length" / _capped(c.Int16ul, MAX_FW_CHUNK),
    "data" / c.Bytes(c.this.length),
)
_LOG = c.Struct(
    "level" / c.Int8ul, "length" / _capped(c.Int8ul, MAX_LOG_TEXT),
    "text" / c.Bytes(c.this.length),
)

_CANONICAL_VARIABLE: Final = (
    "4 DETECTION+ thumb_format:u8 thumb_w:u8 thumb_h:u8 thumb_len:u16 thumb_data:bytes[thumb_len]",
    "1 HELLO+ config_version:u16",
    "5 CONFIG_PUSH config_version:u16 n:u8 entries:(key:u8 len:u8 value:bytes[len])[n]",
    "9 FW_CHUNK offer_id:u16 offset:u32 length:u16 data:bytes[length]",
    "13 LOG level:u8 length:u8 text:utf8[length]",
)


def canonical_schema() -> str:
    """The text hashed into the schema fingerprint: one line per layout, sorted."""
    lines = [
        f"{int(t)} {t.name} " + " ".join(f"{n}:{k}" for n, k in fields)
        for t, fields in _CORE.items()
    ]
    return "\n".join(sorted([*lines, *_CANONICAL_VARIABLE])) + "\n"


def schema_fingerprint() -> int:
    """First four bytes (LE) of SHA-256 over ``canonical_schema()``."""
    return int.from_bytes(hashlib.sha256(canonical_schema().encode()).digest()[:4], "little")


SCHEMA_FINGERPRINT: Final = schema_fingerprint()


@dataclass(frozen=True, slots=True)
class _Core:
    """A fixed-size core layout in three equivalent forms, all derived from one construct Struct.

    ``layout`` is construct, interpreted; ``compiled`` is construct's own compiler; ``packed`` is
    one ``struct.Struct`` built from the construct field formats, the fastest. Only bytes whose
    tag verified reach the compiled forms; the vectors are checked in all three modes.
    """

    layout: Any
    compiled: Any
    packed: struct.Struct
    names: tuple[str, ...]
    size: int


def _packed(layout: Any) -> tuple[struct.Struct, tuple[str, ...]]:
    """One little-endian ``struct`` format for a Struct of FormatFields and fixed Bytes."""
    fmt, names = "<", []
    for field in layout.subcons:
        inner = field.subcon
        if isinstance(inner, c.FormatField):
            fmt += inner.fmtstr[1:]
        elif isinstance(inner, c.Bytes) and isinstance(inner.length, int):
            fmt += f"{inner.length}s"
        else:
            raise TypeError(f"{field.name}: {inner!r} has no fixed struct format")
        names.append(field.name)
    packed = struct.Struct(fmt)
    if packed.size != layout.sizeof():
        raise TypeError(f"struct size {packed.size} != construct size {layout.sizeof()}")
    return packed, tuple(names)


def _make_core(fields: tuple[tuple[str, str], ...]) -> _Core:
    layout = _struct(fields)
    packed, names = _packed(layout)
    return _Core(layout, layout.compile(), packed, names, layout.sizeof())


_CORES: Final = {t: _make_core(f) for t, f in _CORE.items()}
MODES: Final = ("packed", "compiled", "interpreted")
_mode = "packed"


def use_mode(mode: str) -> None:
    """Select how fixed layouts are parsed: ``packed``, ``compiled`` or ``interpreted``."""
    global _mode  # noqa: PLW0603 - a process-wide codec mode, set by tests and benches
    if mode not in MODES:
        raise ValueError(f"unknown codec mode {mode!r}, expected one of {MODES}")
    _mode = mode


def current_mode() -> str:
    return _mode


def use_compiled(enabled: bool) -> None:
    """Switch fixed-layout parsing between compiled and interpreted construct."""
    use_mode("compiled" if enabled else "interpreted")


E = TypeVar("E", bound=IntEnum)


def _closed(enum: type[E], value: int, name: str, path: str) -> E:
    try:
        return enum(value)
    except ValueError:
        raise Malformed(name, path, f"{value} is not a valid {enum.__name__}") from None


def _open(enum: type[E], value: int) -> E:
    try:
        return enum(value)
    except ValueError:
        return enum(0)


def core_size(mtype: MessageType) -> int:
    """Bytes of the fixed core of ``mtype``'s body (shorter bodies are ``Malformed``)."""
    return _CORES[mtype].size


def _below(value: int, limit: int, name: str, path: str) -> None:
    if value >= limit:
        raise Malformed(name, path, f"{value} must be below {limit}")


def _core(mtype: MessageType, body: bytes) -> Any:
    core = _CORES[mtype]
    if len(body) < core.size:
        raise Malformed(mtype.name, "", f"{len(body)} bytes, core needs {core.size}")
    if _mode == "packed":
        return dict(zip(core.names, core.packed.unpack_from(body), strict=True))
    parser = core.compiled if _mode == "compiled" else core.layout
    return parser.parse(body[: core.size])


def _parse_var(layout: Any, data: bytes, name: str) -> Any:
    try:
        return layout.parse(data)
    except c.ConstructError as exc:
        path = getattr(exc, "path", "") or ""
        raise Malformed(name, path.replace("(parsing) -> ", ""), str(exc).split("\n")[-1]) from exc


# --- decoders ---------------------------------------------------------------------------------

def _dec_hello(body: bytes) -> Hello:
    v = _core(MessageType.HELLO, body)
    config_version = 0
    if len(body) > 20:
        config_version = _parse_var(_HELLO_TAIL, body[20:], "HELLO").config_version
    return Hello(v["fw_major"], v["fw_minor"], v["fw_patch"], _open(HardwareKind, v["hw_kind"]),
                 _open(BootReason, v["boot_reason"]), v["capabilities"], v["schema"], v["nonce"],
                 config_version)


def _dec_welcome(body: bytes) -> Welcome:
    v = _core(MessageType.WELCOME, body)
    _below(v["unix_ms"], 1000, "WELCOME", "unix_ms")
    return Welcome(v["nonce"], v["unix_s"], v["unix_ms"], v["config_version"], v["flags"])


def _dec_telemetry(body: bytes) -> Telemetry:
    v = _core(MessageType.TELEMETRY, body)
    return Telemetry(v["battery_mv"], v["solar_mv"], v["charge_ma"], v["temperature_cc"],
                     v["humidity_half_pct"], v["rssi_dbm"], v["uptime_s"], v["boot_count"],
                     v["free_heap_64"], v["flags"])


def _dec_detection(body: bytes) -> Detection:
    v = _core(MessageType.DETECTION, body)
    _below(v["confidence_pct"], 101, "DETECTION", "confidence_pct")
    _below(v["ts_ms"], 1000, "DETECTION", "ts_ms")
    thumb = None
    if len(body) > 20:
        tv = _parse_var(_THUMB, body[20:], "DETECTION")
        fmt = _closed(ThumbFormat, tv["format"], "DETECTION", "thumbnail.format")
        thumb = Thumbnail(fmt, tv["w"], tv["h"], tv["data"])
    return Detection(v["event_id"], _closed(Lifecycle, v["lifecycle"], "DETECTION", "lifecycle"),
                     _open(DetectionKind, v["kind"]), v["confidence_pct"], v["box_x"], v["box_y"],
                     v["box_w"],
                     v["box_h"], v["peak_cc"], v["count"], v["ts_s"], v["ts_ms"], thumb)


def _dec_config_push(body: bytes) -> ConfigPush:
    v = _parse_var(_CONFIG_PUSH, body, "CONFIG_PUSH")
    entries = tuple(ConfigEntry(e.key, e.value) for e in v["entries"])
    for i in range(1, len(entries)):
        if entries[i].key <= entries[i - 1].key:
            raise Malformed("CONFIG_PUSH", f"entries[{i}].key", "keys must strictly increase")
    return ConfigPush(v["config_version"], entries)


def _dec_config_ack(body: bytes) -> ConfigAck:
    v = _core(MessageType.CONFIG_ACK, body)
    return ConfigAck(v["config_version"],
                     _closed(ConfigStatus, v["status"], "CONFIG_ACK", "status"),
                     v["bad_key"])


def _dec_fw_offer(body: bytes) -> FwOffer:
    v = _core(MessageType.FW_OFFER, body)
    if not 1 <= v["chunk_size"] <= MAX_FW_CHUNK:
        raise Malformed("FW_OFFER", "chunk_size", f"{v['chunk_size']} outside 1..{MAX_FW_CHUNK}")
    return FwOffer(v["offer_id"], v["fw_major"], v["fw_minor"], v["fw_patch"], v["size"],
                   v["chunk_size"],
                   v["sha256"])


def _dec_fw_request(body: bytes) -> FwRequest:
    v = _core(MessageType.FW_REQUEST, body)
    if not 1 <= v["length"] <= MAX_FW_CHUNK:
        raise Malformed("FW_REQUEST", "length", f"{v['length']} outside 1..{MAX_FW_CHUNK}")
    return FwRequest(v["offer_id"], v["offset"], v["length"])


def _dec_fw_chunk(body: bytes) -> FwChunk:
    v = _parse_var(_FW_CHUNK, body, "FW_CHUNK")
    return FwChunk(v["offer_id"], v["offset"], v["data"])


def _dec_fw_result(body: bytes) -> FwResult:
    v = _core(MessageType.FW_RESULT, body)
    return FwResult(v["offer_id"], _closed(FwStatus, v["status"], "FW_RESULT", "status"),
                    v["fw_major"],
                    v["fw_minor"], v["fw_patch"])


def _dec_ack(body: bytes) -> Ack:
    v = _core(MessageType.ACK, body)
    return Ack(v["acked_counter"], v["acked_type"])


def _dec_nack(body: bytes) -> Nack:
    v = _core(MessageType.NACK, body)
    return Nack(v["nacked_counter"], _open(NackCode, v["code"]))


def _dec_log(body: bytes) -> Log:
    v = _parse_var(_LOG, body, "LOG")
    try:
        text = v["text"].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed("LOG", "text", f"invalid UTF-8 at byte {exc.start}") from exc
    return Log(_closed(LogLevel, v["level"], "LOG", "level"), text)


_DECODERS: Final[dict[MessageType, Callable[[bytes], Message]]] = {
    MessageType.HELLO: _dec_hello, MessageType.WELCOME: _dec_welcome,
    MessageType.TELEMETRY: _dec_telemetry, MessageType.DETECTION: _dec_detection,
    MessageType.CONFIG_PUSH: _dec_config_push, MessageType.CONFIG_ACK: _dec_config_ack,
    MessageType.FW_OFFER: _dec_fw_offer, MessageType.FW_REQUEST: _dec_fw_request,
    MessageType.FW_CHUNK: _dec_fw_chunk, MessageType.FW_RESULT: _dec_fw_result,
    MessageType.ACK: _dec_ack, MessageType.NACK: _dec_nack, MessageType.LOG: _dec_log,
}


def decode_body(mtype: MessageType, body: bytes) -> Message:
    """Parse an authenticated, decrypted body into its message; ``Malformed`` if it is not one."""
    try:
        return _DECODERS[mtype](body)
    except c.ConstructError as exc:
        raise Malformed(mtype.name, getattr(exc, "path", "") or "", str(exc)) from exc


# --- encoders ---------------------------------------------------------------------------------

def _fields(msg: Message, mtype: MessageType) -> dict[str, Any]:
    return {name: getattr(msg, name) for name, _ in _CORE[mtype]}


def _enc_core(msg: Message) -> bytes:
    return bytes(_CORES[msg.TYPE].layout.build(_fields(msg, msg.TYPE)))


_CLOSED: Final[dict[MessageType, tuple[tuple[str, type[IntEnum]], ...]]] = {
    MessageType.DETECTION: (("lifecycle", Lifecycle),),
    MessageType.CONFIG_ACK: (("status", ConfigStatus),),
    MessageType.FW_RESULT: (("status", FwStatus),),
    MessageType.LOG: (("level", LogLevel),),
}


def _validate(msg: Message) -> None:
    """Refuse to build what a receiver would reject as malformed."""
    try:
        for name, enum in _CLOSED.get(msg.TYPE, ()):
            _closed(enum, int(getattr(msg, name)), msg.TYPE.name, name)
        if isinstance(msg, Detection) and msg.thumbnail is not None:
            _closed(ThumbFormat, int(msg.thumbnail.format), "DETECTION", "thumbnail.format")
        if isinstance(msg, Welcome):
            _below(msg.unix_ms, 1000, "WELCOME", "unix_ms")
        elif isinstance(msg, Detection):
            _below(msg.confidence_pct, 101, "DETECTION", "confidence_pct")
            _below(msg.ts_ms, 1000, "DETECTION", "ts_ms")
        elif isinstance(msg, FwOffer) and not 1 <= msg.chunk_size <= MAX_FW_CHUNK:
            raise Malformed("FW_OFFER", "chunk_size", f"outside 1..{MAX_FW_CHUNK}")
        elif isinstance(msg, FwRequest) and not 1 <= msg.length <= MAX_FW_CHUNK:
            raise Malformed("FW_REQUEST", "length", f"outside 1..{MAX_FW_CHUNK}")
        elif isinstance(msg, ConfigPush):
            keys = [e.key for e in msg.entries]
            if keys != sorted(set(keys)):
                raise Malformed("CONFIG_PUSH", "entries", "keys must strictly increase")
    except Malformed as exc:
        raise EncodeError(str(exc)) from exc


def encode_body(msg: Message) -> bytes:
    """Build the v1 body of ``msg``; ``EncodeError`` if a field is out of range or too long."""
    _validate(msg)
    try:
        return _encode(msg)
    except (c.ConstructError, UnicodeEncodeError, ValueError, TypeError,
            AttributeError) as exc:
        raise EncodeError(f"cannot encode {msg.TYPE.name}: {exc}") from exc


def _encode(msg: Message) -> bytes:
    if isinstance(msg, Hello):
        tail = b"" if msg.config_version == 0 else _HELLO_TAIL.build(
            {"config_version": msg.config_version})
        return _enc_core(msg) + tail
    if isinstance(msg, Detection):
        out = _enc_core(msg)
        if msg.thumbnail is not None:
            t = msg.thumbnail
            out += _THUMB.build({"format": int(t.format), "w": t.w, "h": t.h,
                                 "length": len(t.data), "data": t.data})
        return out
    if isinstance(msg, ConfigPush):
        return bytes(_CONFIG_PUSH.build({
            "config_version": msg.config_version, "n": len(msg.entries),
            "entries": [{"key": e.key, "length": len(e.value), "value": e.value}
                        for e in msg.entries],
        }))
    if isinstance(msg, FwChunk):
        return bytes(_FW_CHUNK.build({"offer_id": msg.offer_id, "offset": msg.offset,
                                      "length": len(msg.data), "data": msg.data}))
    if isinstance(msg, Log):
        text = msg.text.encode("utf-8")
        return bytes(_LOG.build({"level": int(msg.level), "length": len(text), "text": text}))
    return _enc_core(msg)
