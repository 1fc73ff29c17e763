"""Shorewatch wire protocol v1, device side (spec: docs/protocol.md).

Frames: encode_frame / peek_header / decode_frame (verify, then parse) and the replay Window.
Bodies: pack_<msg> / unpack_<msg> with numbers for enumerations and tuples in spec field order,
for firmware; pack_body / unpack_body with the dict conventions of the golden vectors (names,
bytes as bytes), for tests and tools. Every rejection is a ProtoError whose .reason is a spec
section 8 reason.

This file holds what a sensor node runs: frames, and the bodies it sends or acts on. The rest
of the codec (the other bodies, the dict form) is in sw/fields.py, loaded on first use through
this module's __getattr__, so `proto.pack_fw_offer` works everywhere but costs a node no heap:
on the unix port bytecode and names live in the heap, ~4 KB for those functions.

Runs on MicroPython and on CPython 3.11 (CPython without body encryption: no cryptolib).
"""
import struct

try:
    from micropython import const
except ImportError:  # CPython: const() is only a compiler hint
    def const(x):  # type: ignore[misc]  # the stub's generic signature, same behaviour
        return x

from .crypto import Ctr, Hmac, ct_equal, derive

# --- limits (spec section 1); every length from outside is checked against one of these ---
# Only what a sensor node uses is public here; the other spec numbers are public in
# sw/fields.py (through this module's __getattr__): each public name costs a node heap.
MAX_FRAME_SIZE = const(1232)  # IPv6 minimum MTU minus IPv6+UDP headers: never fragmented
_MAX_THUMBNAIL = const(1024)  # a deflated 32x24 thermal thumbnail is ~300-700 bytes
_MAX_FW_CHUNK = const(1024)  # largest firmware chunk that fits a frame with headers and tag
_MAX_CONFIG_ENTRIES = const(32)  # more keys than any device has; bounds the decode loop
_MAX_CONFIG_VALUE = const(64)  # longest value is a WiFi passphrase (63 characters)
_MAX_LOG_TEXT = const(192)  # one log line; devices truncate longer ones
MAX_COUNTER = const(0xFFFFFFFF)  # after this the sender must be re-keyed
RESYNC_AFTER = const(16384)  # frames without an authenticated downlink before HELLO again

# Schema fingerprint of this message table (spec section 7), sent in HELLO. The canonical value
# is computed by protocol/schema.py and recorded in protocol/vectors/messages.json
# ("schema_fingerprint"); tests/device checks that the two are equal.
SCHEMA_FINGERPRINT = const(3968531341)

_VERSION = const(1)
UP = const(0)
DOWN = const(1)
TAG_STD = const(8)  # std profile (UDP/WiFi)
_SHORT_HEADER = const(7)
_LONG_HEADER = const(9)

HELLO = const(1)
WELCOME = const(2)
TELEMETRY = const(3)
DETECTION = const(4)
CONFIG_PUSH = const(5)
CONFIG_ACK = const(6)
ACK = const(11)
NACK = const(12)

TYPE_NAMES = (None, "HELLO", "WELCOME", "TELEMETRY", "DETECTION", "CONFIG_PUSH", "CONFIG_ACK",
              "FW_OFFER", "FW_REQUEST", "FW_CHUNK", "FW_RESULT", "ACK", "NACK", "LOG")

_VERSION_BITS = const(0x40)  # hdr bits 7..6 = 01
_ENC_BIT = const(0x10)
_TYPE_MASK = const(0x0F)
_LAST_TYPE = const(13)
_WINDOW = const(64)  # replay window width in counters
# Allowed directions per type (index = type): bit 0 uplink, bit 1 downlink (spec section 5)
_DIRS = b"\x00\x01\x02\x01\x01\x02\x01\x02\x01\x02\x01\x03\x03\x01"


class ProtoError(Exception):
    """A frame or body rejected; .reason is one of the spec section 8 reason strings.

    Frame-level errors carry the reason alone (the device only counts and drops them); body
    errors say which field, since that is what a firmware developer has to look at.
    """

    def __init__(self, reason, detail=None):
        super().__init__(reason if detail is None else reason + ": " + detail)
        self.reason = reason


class Keys:
    """The four working keys of one device (spec section 2), as HMAC pads and CTR keystreams
    by direction (UP, DOWN)."""

    def __init__(self, master):
        """master: the 32-byte master key, or the tuple of its working keys from derive()
        (a node derives them at boot, while its heap is still in one piece)."""
        mac_up, mac_down, enc_up, enc_down = (master if isinstance(master, tuple)
                                              else derive(master))
        self._mac = (Hmac(mac_up), Hmac(mac_down))
        self._ctr = (Ctr(enc_up), Ctr(enc_down))


# --- frames -------------------------------------------------------------------------------

def encode_frame(keys, mtype, direction, device_id, counter, body, tag_len=TAG_STD,
                 encrypt=False):
    """Build a complete frame; long header for HELLO/WELCOME, tag over counter32 || frame."""
    if counter > MAX_COUNTER:
        raise ProtoError("counter_exhausted", "re-key the device")
    if counter < 0 or not 0 <= device_id <= 0xFFFFFFFF or tag_len not in (4, 8):
        raise ValueError("bad counter, device id or tag length")
    if not 0 < mtype <= _LAST_TYPE:
        raise ProtoError("unknown_type")
    if direction not in (UP, DOWN) or not _DIRS[mtype] & (1 << direction):
        raise ProtoError("wrong_direction")
    hl = _header_len(mtype)
    size = hl + len(body) + tag_len
    if size > MAX_FRAME_SIZE:
        raise ProtoError("oversize")
    buf = bytearray(size)
    buf[0] = _VERSION_BITS | (direction << 5) | (_ENC_BIT if encrypt else 0) | mtype  # bit 5
    struct.pack_into("<I", buf, 1, device_id)
    if hl == _LONG_HEADER:
        struct.pack_into("<I", buf, 5, counter)
    else:
        struct.pack_into("<H", buf, 5, counter & 0xFFFF)
    end = hl + len(body)
    buf[hl:end] = body
    if encrypt:
        keys._ctr[direction].xor(buf, hl, end, counter, device_id)
    digest = _mac(keys, direction, counter, buf, end)
    buf[end:] = digest[:tag_len]
    return bytes(buf)


def peek_header(frame, tag_len=TAG_STD, expect=None):
    """Step 1 of spec section 3; the direction checks only when ``expect`` (UP/DOWN) is given.

    Returns (version, direction, encrypted, mtype, device_id, counter_field, header_len);
    version is always 1 (anything else raised bad_version). The header + tag length is
    checked by decode_frame after the device check (step 2), as the gateway must: it learns the
    tag length from the device record. tag_len is accepted for callers that pass it.
    """
    n = len(frame)
    if n > MAX_FRAME_SIZE:
        raise ProtoError("oversize")
    if n < _SHORT_HEADER:
        raise ProtoError("truncated")
    hdr = frame[0]
    if hdr & 0xC0 != _VERSION_BITS:
        raise ProtoError("bad_version")
    mtype = hdr & _TYPE_MASK
    if not 0 < mtype <= _LAST_TYPE:
        raise ProtoError("unknown_type")
    d = (hdr >> 5) & 1
    if expect is not None and (d != expect or not _DIRS[mtype] & (1 << d)):
        raise ProtoError("wrong_direction")  # before the long-header length, as the spec orders
    hl = _header_len(mtype)
    if n < hl:
        raise ProtoError("truncated")
    device_id = struct.unpack_from("<I", frame, 1)[0]
    counter = struct.unpack_from("<I" if hl == _LONG_HEADER else "<H", frame, 5)[0]
    return (_VERSION, d, bool(hdr & _ENC_BIT), mtype, device_id, counter, hl)


def decode_frame(keys, frame, direction, device_id, window, tag_len=TAG_STD):
    """Run the whole receive pipeline (spec section 3) -> (mtype, counter, plaintext body).

    direction is the one this receiver expects (a device expects DOWN). The window is only
    updated once the tag has verified.
    """
    _, d, enc, mtype, dev, field, hl = peek_header(frame, tag_len, direction)
    if dev != device_id:
        # A device ignores frames addressed to another device: it holds no key for them, which
        # is the gateway's "unknown_device" case (step 2), so the same reason is used.
        raise ProtoError("unknown_device")
    if len(frame) < hl + tag_len:
        raise ProtoError("truncated")
    counter = field if hl == _LONG_HEADER else window.reconstruct(field)
    end = len(frame) - tag_len
    tag = memoryview(_mac(keys, d, counter, frame, end))[:tag_len]
    if not ct_equal(tag, memoryview(frame)[end:]):
        raise ProtoError("bad_tag")
    window.accept(counter)
    body = memoryview(frame)[hl:end]  # type: memoryview | bytearray  # no copy until returned
    if enc:
        body = bytearray(body)
        keys._ctr[d].xor(body, 0, len(body), counter, dev)
    return mtype, counter, bytes(body)


class Window:
    """Receiver state of one direction: highest accepted counter H and a 64-counter bitmap.

    The bitmap is a ring indexed by counter mod 64 instead of a shifted 64-bit integer: same
    meaning as the spec's "bit i = H - i", but no big-int arithmetic on 32-bit boards.
    """

    def __init__(self, highest=None):
        self._bits = bytearray(_WINDOW // 8)
        self.reset(highest)

    def reset(self, counter=None):
        """Forget everything; counter, if given, becomes H as accepted (WELCOME after a boot)."""
        bits = self._bits
        for i in range(len(bits)):
            bits[i] = 0
        self.highest = counter
        if counter is not None:
            bits[(counter & 63) >> 3] |= 1 << (counter & 7)

    def reconstruct(self, lo16):
        """Full counter from its low 16 bits (short header), spec section 3."""
        h = self.highest
        if h is None:
            raise ProtoError("resync_required", "HELLO needed")
        d = (lo16 - h) & 0xFFFF
        if d >= 0x8000:
            d -= 0x10000
        c = h + d
        if c < 0:
            raise ProtoError("too_old")
        if c > MAX_COUNTER:
            raise ProtoError("resync_required", "HELLO needed")
        return c

    def accept(self, counter):
        """Take counter (call only after the tag verified); replayed / too_old if it is not
        acceptable, and then nothing changes."""
        h = self.highest
        bits = self._bits
        if h is not None and counter <= h:
            if h - counter >= _WINDOW:
                raise ProtoError("too_old")
            if bits[(counter & 63) >> 3] & (1 << (counter & 7)):
                raise ProtoError("replayed")
        if h is None or counter - h >= _WINDOW:
            self.reset(counter)
            return
        while h < counter:  # fewer than 64 steps, checked above
            h += 1
            # the slot of a counter skipped over now stands for it: not seen yet
            bits[(h & 63) >> 3] &= ~(1 << (h & 7))
        self.highest = h  # max(H, counter)
        bits[(counter & 63) >> 3] |= 1 << (counter & 7)


# Tag input prefix, reused: the device is single-threaded and the MAC does not yield.
_CTR_LE = bytearray(4)


def _mac(keys, direction, counter, frame, end):
    struct.pack_into("<I", _CTR_LE, 0, counter)
    return keys._mac[direction].digest(_CTR_LE, memoryview(frame)[:end])


def _header_len(mtype):
    return _LONG_HEADER if mtype == HELLO or mtype == WELCOME else _SHORT_HEADER


# --- bodies -------------------------------------------------------------------------------
# Layouts are compact constants (struct formats, check records in bytes) instead of nested
# tuples: a table of ~90 (name, code, rule) tuples costs ~8 KB of heap on the unix port, these
# cost a fraction of that. Field and enumeration names are in sw/fields.py, which only the
# dict form (tests, tools) loads. Error details name a field by its index in the layout: the
# spec tables of section 5, counted from 0.

# Layout ids past the message types: fixed parts of trailing groups.
_THUMB = const(14)  # DETECTION group 1 head: format, w, h, len (data follows)
_HELLO_G1 = const(15)  # HELLO group 1: config_version

# Index 0 is no message type: its empty layout is never used (callers pass a type or group id).
_FORMATS = ("", "<BBHBBHI8s", "<8sIHHB", "<HHhhBbIHHB", "<IBBBBBBBhBIH", "<HB", "<HBB",
            "<HBBHIH32s", "<HIH", "<HIH", "<HBBBH", "<IB", "<IB", "<BB", "<BBBH", "<H")
_SIZES = tuple(struct.calcsize(f) for f in _FORMATS)

_OPEN = const(1)  # open enumeration: a value outside lo..hi reads as 0 ("unknown")
_STRICT = const(2)  # closed enumeration or range: a value outside lo..hi is malformed
_REC = const(6)  # bytes per check record


def _r(index, kind, lo, hi):
    """A check record: field index in the layout, kind, lo and hi (u16)."""
    return struct.pack("<BBHH", index, kind, lo, hi)


_RULES = (
    b"",  # no message type 0
    _r(3, _OPEN, 0, 2) + _r(4, _OPEN, 0, 7),  # HELLO hw_kind, boot_reason
    _r(2, _STRICT, 0, 999),  # WELCOME unix_ms
    b"",  # TELEMETRY
    _r(1, _STRICT, 0, 2) + _r(2, _OPEN, 0, 5) + _r(3, _STRICT, 0, 100)
    + _r(11, _STRICT, 0, 999),  # DETECTION lifecycle, kind, confidence_pct, ts_ms
    _r(1, _STRICT, 0, _MAX_CONFIG_ENTRIES),  # CONFIG_PUSH n
    _r(1, _STRICT, 0, 2),  # CONFIG_ACK status
    _r(5, _STRICT, 1, _MAX_FW_CHUNK),  # FW_OFFER chunk_size
    _r(2, _STRICT, 1, _MAX_FW_CHUNK),  # FW_REQUEST length
    _r(2, _STRICT, 0, _MAX_FW_CHUNK),  # FW_CHUNK length
    _r(1, _STRICT, 0, 7),  # FW_RESULT status
    b"",  # ACK
    _r(1, _OPEN, 0, 7),  # NACK code
    _r(0, _STRICT, 0, 4) + _r(1, _STRICT, 0, _MAX_LOG_TEXT),  # LOG level, length
    _r(0, _STRICT, 1, 2) + _r(3, _STRICT, 0, _MAX_THUMBNAIL),  # thumbnail format, len
    b"",  # HELLO config_version
)
del _r  # used above only: its code goes
# struct.pack raises struct.error on CPython when a value does not fit; MicroPython truncates.
_PACK_ERRORS = (getattr(struct, "error", ValueError), OverflowError)


def _bad(lid, what):
    name = "DETECTION.thumbnail" if lid == _THUMB else TYPE_NAMES[HELLO if lid == _HELLO_G1
                                                                  else lid]
    return ProtoError("malformed", "%s: %s" % (name, what))


def _apply_rules(lid, vals):
    """Run the checks of layout lid on vals (a list), in place; returns vals."""
    rules = _RULES[lid]
    for o in range(0, len(rules), _REC):
        i = rules[o]
        if not rules[o + 2] | rules[o + 3] << 8 <= vals[i] <= rules[o + 4] | rules[o + 5] << 8:
            if rules[o + 1] != _OPEN:
                # by index: the names live in sw/fields.py, not in the device's RAM
                raise _bad(lid, "field %d = %d" % (i, vals[i]))
            vals[i] = 0
    return vals


def _core(lid, body, off=0):
    """Unpack and check layout lid at body[off:]; enumerations stay numbers."""
    if len(body) < off + _SIZES[lid]:
        raise _bad(lid, "%d bytes, need %d" % (len(body) - off, _SIZES[lid]))
    return _apply_rules(lid, list(struct.unpack_from(_FORMATS[lid], body, off)))


def _pack(lid, vals):
    """Check and pack layout lid; any value the receiver would reject is malformed."""
    _apply_rules(lid, list(vals))
    fmt = _FORMATS[lid]
    try:
        out = struct.pack(fmt, *vals)
    except _PACK_ERRORS:
        out = None
    # MicroPython truncates out-of-range ints and both pad short byte strings: read it back
    if out is None or struct.unpack(fmt, out) != tuple(vals):
        raise _bad(lid, "value does not fit its field: %r" % (tuple(vals),))
    return out


# --- per-message bodies (numbers for enums, spec field order) -------------------------------

def pack_hello(fw_major, fw_minor, fw_patch, hw_kind, boot_reason, capabilities, schema, nonce,
               config_version=0):
    """HELLO body: core, plus group 1 only when config_version is not its default 0."""
    core = _pack(HELLO, (fw_major, fw_minor, fw_patch, hw_kind, boot_reason, capabilities,
                         schema, nonce))
    if config_version == 0:
        return core  # the golden vectors omit a group that holds only its default
    return core + _pack(_HELLO_G1, (config_version,))


def unpack_welcome(body):
    """(nonce, unix_s, unix_ms, config_version, flags)."""
    return tuple(_core(WELCOME, body))


def pack_telemetry(battery_mv, solar_mv, charge_ma, temperature_cc, humidity_half_pct, rssi_dbm,
                   uptime_s, boot_count, free_heap_64, flags):
    """TELEMETRY body (19 bytes)."""
    return _pack(TELEMETRY, (battery_mv, solar_mv, charge_ma, temperature_cc, humidity_half_pct,
                             rssi_dbm, uptime_s, boot_count, free_heap_64, flags))


def pack_detection(event_id, lifecycle, kind, confidence_pct, box_x, box_y, box_w, box_h,
                   peak_cc, count, ts_s, ts_ms, thumbnail=None):
    """DETECTION body; thumbnail is None or (format, w, h, data)."""
    core = _pack(DETECTION, (event_id, lifecycle, kind, confidence_pct, box_x, box_y, box_w,
                             box_h, peak_cc, count, ts_s, ts_ms))
    if thumbnail is None:
        return core
    fmt, w, h, data = thumbnail
    return core + _pack(_THUMB, (fmt, w, h, len(data))) + data


def unpack_config_push(body):
    """(config_version, [(key, value), ...])."""
    cv, n = _core(CONFIG_PUSH, body)  # n <= _MAX_CONFIG_ENTRIES, checked
    off = _SIZES[CONFIG_PUSH]
    entries = []
    last = -1
    for _ in range(n):
        if len(body) < off + 2:
            raise _bad(CONFIG_PUSH, "entry cut")
        key = body[off]
        size = body[off + 1]
        if key <= last:
            raise _bad(CONFIG_PUSH, "key %d not increasing" % key)
        if size > _MAX_CONFIG_VALUE:
            raise _bad(CONFIG_PUSH, "value of %d bytes" % size)
        off += 2
        if len(body) < off + size:
            raise _bad(CONFIG_PUSH, "value cut")
        entries.append((key, bytes(memoryview(body)[off:off + size])))
        off += size
        last = key
    return cv, entries


def pack_config_ack(config_version, status, bad_key):
    """CONFIG_ACK body (4 bytes)."""
    return _pack(CONFIG_ACK, (config_version, status, bad_key))


def unpack_ack(body):
    """(acked_counter, acked_type)."""
    return tuple(_core(ACK, body))


def pack_nack(nacked_counter, code):
    """NACK body (5 bytes)."""
    return _pack(NACK, (nacked_counter, code))


def unpack_nack(body):
    """(nacked_counter, code); unknown codes read as 0."""
    return tuple(_core(NACK, body))


def __getattr__(name):
    """The rest of the codec (sw/fields.py), loaded on first use."""
    from . import fields

    return getattr(fields, name)
