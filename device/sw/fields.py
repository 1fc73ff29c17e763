"""The rest of the device codec: the bodies a sensor node never sends or acts on, and every
body as a dict in the golden-vector conventions (spec section 9).

sw/proto.py loads this module on first use (its __getattr__): `proto.unpack_hello`,
`proto.pack_body` and the like resolve here, so a node that speaks only its own messages never
holds this code or these names in RAM.

Dict form: field names in spec order, enumerations by their lowercase names, byte strings as
bytes, DETECTION "thumbnail" None or {format, w, h, data}, CONFIG_PUSH "entries" as
[key, value] lists.
"""
try:
    from micropython import const
except ImportError:  # CPython: const() is only a compiler hint
    def const(x):  # type: ignore[misc]  # the stub's generic signature, same behaviour
        return x

from . import proto
from .proto import (ACK, CONFIG_ACK, CONFIG_PUSH, DETECTION, HELLO, NACK, TELEMETRY, TYPE_NAMES,
                    WELCOME, ProtoError, _bad, _core, _pack, _SIZES)

# The spec numbers a sensor node never uses (docs/protocol.md): sw/proto.py checks with the same
# values under private names, so a node does not hold these names in its heap. Tests hold both
# codecs to the golden vectors.
MAX_THUMBNAIL = const(1024)  # a deflated 32x24 thermal thumbnail is ~300-700 bytes
MAX_FW_CHUNK = const(1024)  # largest firmware chunk that fits a frame with headers and tag
MAX_CONFIG_ENTRIES = const(32)  # more keys than any device has; bounds the decode loop
MAX_CONFIG_VALUE = const(64)  # longest value is a WiFi passphrase (63 characters)
MAX_LOG_TEXT = const(192)  # one log line; devices truncate longer ones
MAX_STREAM_FRAME = const(1237)  # COBS of MAX_FRAME_SIZE, delimiter excluded
VERSION = const(1)
TAG_LORA = const(4)  # lora profile: every byte costs air time
SHORT_HEADER = const(7)
LONG_HEADER = const(9)
FW_OFFER = const(7)
FW_REQUEST = const(8)
FW_CHUNK = const(9)
FW_RESULT = const(10)
LOG = const(13)

# layout ids of the trailing groups (sw/proto.py keeps the same numbers)
_THUMB = const(14)  # DETECTION group 1 head: format, w, h, len (data follows)
_HELLO_G1 = const(15)  # HELLO group 1: config_version

# --- bodies a sensor node never sends or acts on ------------------------------------------

def _utf8_ok(b, i, end):
    """Strict UTF-8 (RFC 3629, as CPython): MicroPython's decoder accepts surrogates and
    overlong forms, which the gateway would reject."""
    while i < end:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        lo = 0x80
        hi = 0xBF
        if 0xC2 <= c <= 0xDF:
            n = 1
        elif 0xE0 <= c <= 0xEF:
            n = 2
            if c == 0xE0:
                lo = 0xA0  # overlong
            elif c == 0xED:
                hi = 0x9F  # surrogates
        elif 0xF0 <= c <= 0xF4:
            n = 3
            if c == 0xF0:
                lo = 0x90  # overlong
            elif c == 0xF4:
                hi = 0x8F  # above U+10FFFF
        else:
            return False
        if i + n >= end:
            return False  # sequence cut by the end of the text
        if not lo <= b[i + 1] <= hi:
            return False
        for k in range(2, n + 1):
            if not 0x80 <= b[i + k] <= 0xBF:
                return False
        i += n + 1
    return True


def _group_present(lid, body, off, size):
    """True if a trailing group starts at off; a group that starts must be complete."""
    if len(body) <= off:
        return False
    if len(body) < off + size:
        raise _bad(lid, "trailing group cut at %d bytes" % (len(body) - off))
    return True


def unpack_hello(body):
    """HELLO fields in spec order; config_version 0 when group 1 is absent."""
    vals = _core(HELLO, body)
    off = _SIZES[HELLO]
    vals.append(_core(_HELLO_G1, body, off)[0]
                if _group_present(HELLO, body, off, _SIZES[_HELLO_G1]) else 0)
    return tuple(vals)


def pack_welcome(nonce, unix_s, unix_ms, config_version, flags):
    """WELCOME body (17 bytes)."""
    return _pack(WELCOME, (nonce, unix_s, unix_ms, config_version, flags))


def unpack_telemetry(body):
    """TELEMETRY fields in spec order."""
    return tuple(_core(TELEMETRY, body))


def unpack_detection(body):
    """DETECTION fields in spec order; thumbnail None or (format, w, h, data)."""
    vals = _core(DETECTION, body)
    off = _SIZES[DETECTION]
    thumb = None
    if _group_present(_THUMB, body, off, _SIZES[_THUMB]):
        fmt, w, h, n = _core(_THUMB, body, off)  # n <= MAX_THUMBNAIL, checked
        off += _SIZES[_THUMB]
        if len(body) < off + n:
            raise _bad(_THUMB, "data cut")
        thumb = (fmt, w, h, bytes(memoryview(body)[off:off + n]))
    vals.append(thumb)
    return tuple(vals)


def pack_config_push(config_version, entries):
    """CONFIG_PUSH body; entries is a sequence of (key, value bytes), keys strictly increasing."""
    size = _SIZES[CONFIG_PUSH]
    last = -1
    for key, value in entries:
        if not last < key <= 0xFF or len(value) > MAX_CONFIG_VALUE:
            raise _bad(CONFIG_PUSH, "entry key %d" % key)
        last = key
        size += 2 + len(value)
    out = bytearray(size)  # one buffer, not a list of pieces: the heap stays in one piece
    out[0:3] = _pack(CONFIG_PUSH, (config_version, len(entries)))
    off = 3
    for key, value in entries:
        out[off] = key
        out[off + 1] = len(value)
        off += 2
        out[off:off + len(value)] = value
        off += len(value)
    return bytes(out)


def unpack_config_ack(body):
    """(config_version, status, bad_key)."""
    return tuple(_core(CONFIG_ACK, body))


def pack_fw_offer(offer_id, fw_major, fw_minor, fw_patch, size, chunk_size, sha256):
    """FW_OFFER body (44 bytes)."""
    return _pack(FW_OFFER, (offer_id, fw_major, fw_minor, fw_patch, size, chunk_size, sha256))


def unpack_fw_offer(body):
    """(offer_id, fw_major, fw_minor, fw_patch, size, chunk_size, sha256)."""
    return tuple(_core(FW_OFFER, body))


def pack_fw_request(offer_id, offset, length):
    """FW_REQUEST body (8 bytes)."""
    return _pack(FW_REQUEST, (offer_id, offset, length))


def unpack_fw_request(body):
    """(offer_id, offset, length)."""
    return tuple(_core(FW_REQUEST, body))


def pack_fw_chunk(offer_id, offset, data):
    """FW_CHUNK body; length is len(data)."""
    return _pack(FW_CHUNK, (offer_id, offset, len(data))) + data


def unpack_fw_chunk(body):
    """(offer_id, offset, data)."""
    offer_id, offset, n = _core(FW_CHUNK, body)  # n <= MAX_FW_CHUNK, checked
    off = _SIZES[FW_CHUNK]
    if len(body) < off + n:
        raise _bad(FW_CHUNK, "data cut")
    return offer_id, offset, bytes(memoryview(body)[off:off + n])


def pack_fw_result(offer_id, status, fw_major, fw_minor, fw_patch):
    """FW_RESULT body (7 bytes)."""
    return _pack(FW_RESULT, (offer_id, status, fw_major, fw_minor, fw_patch))


def unpack_fw_result(body):
    """(offer_id, status, fw_major, fw_minor, fw_patch)."""
    return tuple(_core(FW_RESULT, body))


def pack_ack(acked_counter, acked_type):
    """ACK body (5 bytes)."""
    return _pack(ACK, (acked_counter, acked_type))


def pack_log(level, text):
    """LOG body; text (str) is cut to MAX_LOG_TEXT bytes at a character boundary."""
    raw = text.encode("utf-8")
    n = len(raw)
    if n > MAX_LOG_TEXT:
        n = MAX_LOG_TEXT
        while raw[n] & 0xC0 == 0x80:  # never cut inside a multi-byte character
            n -= 1
    return _pack(LOG, (level, n)) + raw[:n]


def unpack_log(body):
    """(level, text); invalid UTF-8 is malformed."""
    level, n = _core(LOG, body)  # n <= MAX_LOG_TEXT, checked
    off = _SIZES[LOG]
    if len(body) < off + n:
        raise _bad(LOG, "text cut")
    if not _utf8_ok(body, off, off + n):
        raise _bad(LOG, "text is not UTF-8")
    return level, bytes(memoryview(body)[off:off + n]).decode("utf-8")


# pack_<msg> / unpack_<msg> by type - 1 (HELLO, type 1, first). Kept here, not in proto: only
# the dict form needs them, so a node never holds the tables.
_PACKERS = (proto.pack_hello, pack_welcome, proto.pack_telemetry, proto.pack_detection,
            pack_config_push, proto.pack_config_ack, pack_fw_offer, pack_fw_request,
            pack_fw_chunk, pack_fw_result, pack_ack, proto.pack_nack, pack_log)
_UNPACKERS = (unpack_hello, proto.unpack_welcome, unpack_telemetry, unpack_detection,
              proto.unpack_config_push, unpack_config_ack, unpack_fw_offer, unpack_fw_request,
              unpack_fw_chunk, unpack_fw_result, proto.unpack_ack, proto.unpack_nack, unpack_log)


# Field names of each message (index = type), in the order of the per-message tuples. Length
# fields of variable parts (n, length, thumb_len) are implied by what follows and left out.
_FIELDS = (
    "",  # no message type 0 (_known() rejects it)
    "fw_major fw_minor fw_patch hw_kind boot_reason capabilities schema nonce config_version",
    "nonce unix_s unix_ms config_version flags",
    "battery_mv solar_mv charge_ma temperature_cc humidity_half_pct rssi_dbm uptime_s "
    "boot_count free_heap_64 flags",
    "event_id lifecycle kind confidence_pct box_x box_y box_w box_h peak_cc count ts_s ts_ms "
    "thumbnail",
    "config_version entries",
    "config_version status bad_key",
    "offer_id fw_major fw_minor fw_patch size chunk_size sha256",
    "offer_id offset length",
    "offer_id offset data",
    "offer_id status fw_major fw_minor fw_patch",
    "acked_counter acked_type",
    "nacked_counter code",
    "level text",
)

# (type, field) -> names by number (spec section 5). Open enumerations start with their
# number-0 name, which proto already substituted for unknown numbers.
_ENUMS = {
    (HELLO, "hw_kind"): "unknown sensor_node thermal_camera",
    (HELLO, "boot_reason"): "unknown power_on hard_reset watchdog deep_sleep soft_reset "
                            "brownout ota_trial",
    (DETECTION, "lifecycle"): "new update end",
    (DETECTION, "kind"): "unknown person group boat vehicle animal",
    (CONFIG_ACK, "status"): "applied rejected partial",
    (FW_RESULT, "status"): "installed staged hash_mismatch bad_signature no_space "
                           "rollback_refused aborted trial_failed",
    (NACK, "code"): "unspecified malformed unsupported not_provisioned resync_required busy "
                    "config_invalid too_large",
    (LOG, "level"): "debug info warning error critical",
}
_THUMB_FORMATS = "- deflate raw"  # 0 is not a format: "-" never matches a given name
_DEFAULTS = {(HELLO, "config_version"): 0, (DETECTION, "thumbnail"): None}  # trailing groups


def pack_body(mtype, fields):
    """Body from a dict keyed by spec field names; a missing trailing group takes its default."""
    _known(mtype)
    args = []
    for name in _FIELDS[mtype].split():
        if name in fields:
            value = fields[name]
        elif (mtype, name) in _DEFAULTS:
            value = _DEFAULTS[(mtype, name)]
        else:
            raise ProtoError("malformed", "%s: field %s missing" % (TYPE_NAMES[mtype], name))
        names = _ENUMS.get((mtype, name))
        args.append(value if names is None else _number(mtype, name, names, value))
    if mtype == DETECTION and args[-1] is not None:
        t = args[-1]
        fmt = _number(mtype, "thumbnail.format", _THUMB_FORMATS, t["format"])
        args[-1] = (fmt, t["w"], t["h"], t["data"])
    return _PACKERS[mtype - 1](*args)


def unpack_body(mtype, body):
    """Dict of the body's fields (raises ProtoError('malformed') like unpack_<msg>)."""
    _known(mtype)
    vals = _UNPACKERS[mtype - 1](body)
    names = _FIELDS[mtype].split()
    out = {}
    for i in range(len(names)):
        enum = _ENUMS.get((mtype, names[i]))
        out[names[i]] = vals[i] if enum is None else enum.split()[vals[i]]
    if mtype == DETECTION and out["thumbnail"] is not None:
        fmt, w, h, data = out["thumbnail"]
        out["thumbnail"] = {"format": _THUMB_FORMATS.split()[fmt], "w": w, "h": h, "data": data}
    elif mtype == CONFIG_PUSH:
        out["entries"] = [[k, v] for k, v in out["entries"]]
    return out


def _known(mtype):
    if not 0 < mtype < len(TYPE_NAMES):
        raise ProtoError("unknown_type")


def _number(mtype, field, names, value):
    """Enumeration name -> number; numbers pass through (pack_<msg> checks them)."""
    if not isinstance(value, str):
        return value
    choices = names.split()
    if value == "-" or value not in choices:
        raise ProtoError("malformed", "%s.%s: no value named %s" % (TYPE_NAMES[mtype], field,
                                                                    value))
    return choices.index(value)
