"""Message bodies as dicts, in the golden-vector conventions (spec section 9).

Field names in spec order, enumerations by their lowercase names, byte strings as bytes,
DETECTION "thumbnail" None or {format, w, h, data}, CONFIG_PUSH "entries" as [key, value] lists.
proto.pack_body / proto.unpack_body import this module on first use, so a device that speaks
only the per-message functions never holds these names in RAM.
"""
from . import proto
from .proto import (CONFIG_ACK, CONFIG_PUSH, DETECTION, FW_RESULT, HELLO, LOG, NACK,
                    TYPE_NAMES, ProtoError)

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
# pack_<msg> / unpack_<msg> by type - 1 (HELLO, type 1, first). Kept here, not in proto: only
# the dict form needs them, so a node never holds the tables.
_PACKERS = (proto.pack_hello, proto.pack_welcome, proto.pack_telemetry, proto.pack_detection,
            proto.pack_config_push, proto.pack_config_ack, proto.pack_fw_offer,
            proto.pack_fw_request, proto.pack_fw_chunk, proto.pack_fw_result, proto.pack_ack,
            proto.pack_nack, proto.pack_log)
_UNPACKERS = (proto.unpack_hello, proto.unpack_welcome, proto.unpack_telemetry,
              proto.unpack_detection, proto.unpack_config_push, proto.unpack_config_ack,
              proto.unpack_fw_offer, proto.unpack_fw_request, proto.unpack_fw_chunk,
              proto.unpack_fw_result, proto.unpack_ack, proto.unpack_nack, proto.unpack_log)
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
