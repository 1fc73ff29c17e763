"""Tables of invalid inputs: the exact exception class and the fields it carries.

Bodies are sealed into authentic frames and run through the whole receive pipeline (a body only
reaches the parser after its tag verified), and also given to ``decode_body`` directly.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from protocol import (
    BadTag,
    BadVersion,
    CobsError,
    DeviceKeys,
    Malformed,
    Oversize,
    ProtocolError,
    Replayed,
    ReplayWindow,
    ResyncRequired,
    StreamDecoder,
    StreamOverflow,
    TooOld,
    Truncated,
    UnknownType,
    WrongDirection,
    cobs_decode,
    decode_body,
    encode_body,
    open_frame,
    peek_header,
    seal,
)
from protocol.limits import MAX_FRAME_SIZE, MAX_STREAM_FRAME
from protocol.messages import (
    DOWNLINK_TYPES,
    BootReason,
    ConfigAck,
    ConfigStatus,
    Detection,
    DetectionKind,
    Direction,
    FwOffer,
    HardwareKind,
    Hello,
    Lifecycle,
    MessageType,
    Telemetry,
    ThumbFormat,
    Thumbnail,
    Welcome,
)

T = MessageType
UP, DOWN = Direction.UP, Direction.DOWN
KEYS = DeviceKeys.from_master(hashlib.sha256(b"shorewatch unit tests: malformed").digest())
DEV = 0x00C0FFEE

HELLO = encode_body(Hello(1, 2, 3, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0x29,
                          0xDEADBEEF, bytes(range(8))))
WELCOME = encode_body(Welcome(bytes(8), 1795680000, 999, 42, 1))
TELEMETRY = encode_body(Telemetry(3712, 5120, -85, 1275, 142, -67, 86400, 12, 480, 0x11))
DETECTION = encode_body(Detection(7, Lifecycle.NEW, DetectionKind.PERSON, 87, 12, 5, 3, 7, 3150,
                                  1, 1795680123, 250))
THUMB_HEAD = bytes([int(ThumbFormat.RAW), 8, 6]) + (48).to_bytes(2, "little")
CONFIG_ACK = encode_body(ConfigAck(42, ConfigStatus.APPLIED, 0))
FW_OFFER = encode_body(FwOffer(3, 1, 3, 0, 123456, 512, bytes(32)))  # chunk_size at offset 10
FW_HEAD = b"\x03\x00" + (4096).to_bytes(4, "little")  # offer_id, offset: FW_REQUEST / FW_CHUNK
SHORT = "stream read less than specified amount, expected {}, found {}"


def _set(body: bytes, offset: int, raw: bytes) -> bytes:
    return body[:offset] + raw + body[offset + len(raw):]


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "little")


def malformed(mtype: MessageType, body: bytes, path: str, detail: str | None, *,
              id: str) -> Any:
    """A row: ``detail`` None means the test does not pin the wording (see the cap rows)."""
    return pytest.param(mtype, body, path, detail, id=id)


BODY_ROWS = [
    # HELLO
    malformed(T.HELLO, HELLO[:19], "", "19 bytes, core needs 20", id="hello-core-19-bytes"),
    malformed(T.HELLO, HELLO + b"\x2a", "config_version", SHORT.format(2, 1),
              id="hello-half-trailing-group"),
    # WELCOME
    malformed(T.WELCOME, WELCOME[:16], "", "16 bytes, core needs 17", id="welcome-core-16-bytes"),
    malformed(T.WELCOME, _set(WELCOME, 12, _u16(1000)), "unix_ms", "1000 must be below 1000",
              id="welcome-unix-ms-1000"),
    malformed(T.WELCOME, _set(WELCOME, 12, _u16(0xFFFF)), "unix_ms", "65535 must be below 1000",
              id="welcome-unix-ms-65535"),
    # TELEMETRY
    malformed(T.TELEMETRY, b"", "", "0 bytes, core needs 19", id="telemetry-empty"),
    malformed(T.TELEMETRY, TELEMETRY[:18], "", "18 bytes, core needs 19",
              id="telemetry-core-18-bytes"),
    # DETECTION
    malformed(T.DETECTION, DETECTION[:19], "", "19 bytes, core needs 20",
              id="detection-core-19-bytes"),
    malformed(T.DETECTION, _set(DETECTION, 4, b"\x03"), "lifecycle", "3 is not a valid Lifecycle",
              id="detection-lifecycle-3"),
    malformed(T.DETECTION, _set(DETECTION, 4, b"\xff"), "lifecycle",
              "255 is not a valid Lifecycle", id="detection-lifecycle-255"),
    malformed(T.DETECTION, _set(DETECTION, 6, b"\x65"), "confidence_pct",
              "101 must be below 101", id="detection-confidence-101"),
    malformed(T.DETECTION, _set(DETECTION, 6, b"\xff"), "confidence_pct",
              "255 must be below 101", id="detection-confidence-255"),
    malformed(T.DETECTION, _set(DETECTION, 18, _u16(1000)), "ts_ms", "1000 must be below 1000",
              id="detection-ts-ms-1000"),
    malformed(T.DETECTION, DETECTION + THUMB_HEAD[:3], "length", SHORT.format(2, 0),
              id="detection-thumbnail-header-cut"),
    malformed(T.DETECTION, DETECTION + THUMB_HEAD + bytes(47), "data", SHORT.format(48, 47),
              id="detection-thumbnail-data-short"),
    malformed(T.DETECTION, DETECTION + b"\x00\x01\x01\x01\x00\x09", "thumbnail.format",
              "0 is not a valid ThumbFormat", id="detection-thumbnail-format-0"),
    malformed(T.DETECTION, DETECTION + b"\x03\x01\x01\x01\x00\x09", "thumbnail.format",
              "3 is not a valid ThumbFormat", id="detection-thumbnail-format-3"),
    malformed(T.DETECTION, DETECTION + b"\x02\x20\x20" + _u16(1025) + bytes(1025), "length", None,
              id="detection-thumbnail-1025-over-cap"),
    # CONFIG_PUSH
    malformed(T.CONFIG_PUSH, b"", "config_version", SHORT.format(2, 0), id="config-push-empty"),
    malformed(T.CONFIG_PUSH, b"\x01\x00\x21" + b"\x01\x00" * 33, "n", None,
              id="config-push-33-entries-over-cap"),
    malformed(T.CONFIG_PUSH, b"\x01\x00\x01\x07\x41" + bytes(65), "entries -> length", None,
              id="config-push-value-65-over-cap"),
    malformed(T.CONFIG_PUSH, b"\x01\x00\x01\x07\x05abc", "entries -> value", SHORT.format(5, 3),
              id="config-push-value-short"),
    malformed(T.CONFIG_PUSH, b"\x01\x00\x02\x07\x01a", "entries -> key", SHORT.format(1, 0),
              id="config-push-entry-missing"),
    malformed(T.CONFIG_PUSH, b"\x01\x00\x02\x02\x01\x05\x02\x01\x05", "entries[1].key",
              "keys must strictly increase", id="config-push-keys-equal"),
    malformed(T.CONFIG_PUSH, b"\x01\x00\x03\x01\x00\x05\x00\x04\x00", "entries[2].key",
              "keys must strictly increase", id="config-push-keys-decreasing"),
    # CONFIG_ACK
    malformed(T.CONFIG_ACK, CONFIG_ACK[:3], "", "3 bytes, core needs 4", id="config-ack-3-bytes"),
    malformed(T.CONFIG_ACK, _set(CONFIG_ACK, 2, b"\x03"), "status",
              "3 is not a valid ConfigStatus", id="config-ack-status-3"),
    # FW_OFFER
    malformed(T.FW_OFFER, FW_OFFER[:43], "", "43 bytes, core needs 44", id="fw-offer-43-bytes"),
    malformed(T.FW_OFFER, _set(FW_OFFER, 10, _u16(0)), "chunk_size", "0 outside 1..1024",
              id="fw-offer-chunk-size-0"),
    malformed(T.FW_OFFER, _set(FW_OFFER, 10, _u16(1025)), "chunk_size", "1025 outside 1..1024",
              id="fw-offer-chunk-size-1025"),
    # FW_REQUEST
    malformed(T.FW_REQUEST, FW_HEAD + _u16(0), "length", "0 outside 1..1024",
              id="fw-request-length-0"),
    malformed(T.FW_REQUEST, FW_HEAD + _u16(1025), "length", "1025 outside 1..1024",
              id="fw-request-length-1025"),
    malformed(T.FW_REQUEST, FW_HEAD + b"\x01", "", "7 bytes, core needs 8",
              id="fw-request-7-bytes"),
    # FW_CHUNK
    malformed(T.FW_CHUNK, b"\x03\x00", "offset", SHORT.format(4, 0), id="fw-chunk-header-cut"),
    malformed(T.FW_CHUNK, FW_HEAD + _u16(16) + bytes(15), "data", SHORT.format(16, 15),
              id="fw-chunk-data-short"),
    malformed(T.FW_CHUNK, FW_HEAD + _u16(1025) + bytes(1025), "length", None,
              id="fw-chunk-1025-over-cap"),
    # FW_RESULT
    malformed(T.FW_RESULT, b"\x03\x00\x08\x01\x03\x00\x00", "status",
              "8 is not a valid FwStatus", id="fw-result-status-8"),
    malformed(T.FW_RESULT, b"\x03\x00\x00\x01\x03\x00", "", "6 bytes, core needs 7",
              id="fw-result-6-bytes"),
    # ACK, NACK
    malformed(T.ACK, b"\x01\x00\x00\x00", "", "4 bytes, core needs 5", id="ack-4-bytes"),
    malformed(T.NACK, b"", "", "0 bytes, core needs 5", id="nack-empty"),
    # LOG
    malformed(T.LOG, b"", "level", SHORT.format(1, 0), id="log-empty"),
    malformed(T.LOG, b"\x05\x02hi", "level", "5 is not a valid LogLevel", id="log-level-5"),
    malformed(T.LOG, b"\x01\xc1" + b"a" * 193, "length", None, id="log-193-bytes-over-cap"),
    malformed(T.LOG, b"\x01\x05abc", "text", SHORT.format(5, 3), id="log-text-short"),
    malformed(T.LOG, b"\x01\x02\xc3\x28", "text", "invalid UTF-8 at byte 0",
              id="log-invalid-utf8"),
    malformed(T.LOG, b"\x01\x03a\xe2\x82", "text", "invalid UTF-8 at byte 1",
              id="log-utf8-cut-mid-character"),
]


def _direction(mtype: MessageType) -> Direction:
    return DOWN if mtype in DOWNLINK_TYPES else UP


def test_fixtures_are_valid_bodies() -> None:
    """The rows mutate valid bodies; make sure the originals decode (else a row proves nothing)."""
    assert decode_body(T.FW_OFFER, FW_OFFER).chunk_size == 512
    assert decode_body(T.DETECTION, DETECTION + THUMB_HEAD + bytes(48)).thumbnail == Thumbnail(
        ThumbFormat.RAW, 8, 6, bytes(48))
    assert decode_body(T.FW_REQUEST, FW_HEAD + _u16(512)).length == 512
    for mtype, body in [(T.HELLO, HELLO), (T.WELCOME, WELCOME), (T.TELEMETRY, TELEMETRY),
                        (T.CONFIG_ACK, CONFIG_ACK)]:
        assert decode_body(mtype, body).TYPE is mtype


def test_table_covers_every_message_type() -> None:
    assert len(BODY_ROWS) >= 25
    assert {row.values[0] for row in BODY_ROWS} == set(MessageType)


@pytest.mark.parametrize(("mtype", "body", "path", "detail"), BODY_ROWS)
def test_malformed_body(mtype: MessageType, body: bytes, path: str, detail: str | None,
                        codec_mode: str) -> None:
    direction = _direction(mtype)
    frame = seal(mtype, body, keys=KEYS, direction=direction, device_id=DEV, counter=70000)
    window = ReplayWindow(69990)
    with pytest.raises(Malformed) as through_frame:
        open_frame(frame, peek_header(frame, direction), KEYS, window, 8)
    with pytest.raises(Malformed) as direct:
        decode_body(mtype, body)
    for exc in (through_frame.value, direct.value):
        assert type(exc) is Malformed
        assert exc.reason == "malformed"
        assert (exc.message, exc.path) == (mtype.name, path)
        if detail is not None:
            assert exc.detail == detail
    assert window.highest == 70000  # the tag verified, so the counter is spent


# --- frames rejected before the body is parsed --------------------------------------------------

def _seal(mtype: MessageType, body: bytes, counter: int = 7, **kw: Any) -> bytes:
    kw.setdefault("direction", _direction(mtype))
    return seal(mtype, body, keys=KEYS, device_id=DEV, counter=counter, **kw)


def _flip(frame: bytes, index: int, mask: int = 1) -> bytes:
    return frame[:index] + bytes([frame[index] ^ mask]) + frame[index + 1:]


TEL = _seal(T.TELEMETRY, TELEMETRY)
TEL_LORA = _seal(T.TELEMETRY, TELEMETRY, tag_len=4)
HEL = _seal(T.HELLO, HELLO)


def rejected(frame: bytes, exc: type[ProtocolError], fields: dict[str, int], *, id: str,
             expect: Direction = UP, highest: int | None = 0, tag_len: int = 8) -> Any:
    return pytest.param(frame, expect, highest, tag_len, exc, fields, id=id)


FRAME_ROWS = [
    rejected(b"", Truncated, {"needed": 7, "got": 0}, id="empty"),
    rejected(TEL[:6], Truncated, {"needed": 7, "got": 6}, id="shorter-than-short-header"),
    rejected(HEL[:8], Truncated, {"needed": 9, "got": 8}, id="shorter-than-long-header",
             highest=None),
    rejected(TEL[:14], Truncated, {"needed": 15, "got": 14}, id="short-header-no-room-for-tag"),
    rejected(HEL[:16], Truncated, {"needed": 17, "got": 16}, id="long-header-no-room-for-tag",
             highest=None),
    rejected(TEL_LORA[:10], Truncated, {"needed": 11, "got": 10}, id="lora-no-room-for-tag",
             tag_len=4),
    rejected(_seal(T.LOG, b"\x01\x00") + bytes(MAX_FRAME_SIZE - 17 + 1), Oversize,
             {"size": MAX_FRAME_SIZE + 1, "limit": MAX_FRAME_SIZE}, id="oversize-by-one"),
    rejected(_flip(TEL, 0, 0x40), BadVersion, {"version": 0}, id="version-0"),
    rejected(_seal(T.TELEMETRY, TELEMETRY, hdr=0x83), BadVersion, {"version": 2}, id="version-2"),
    rejected(_seal(T.TELEMETRY, TELEMETRY, hdr=0xC3), BadVersion, {"version": 3}, id="version-3"),
    rejected(_seal(T.TELEMETRY, TELEMETRY, hdr=0x40), UnknownType, {"mtype": 0}, id="type-0"),
    rejected(_seal(T.TELEMETRY, TELEMETRY, hdr=0x4E), UnknownType, {"mtype": 14}, id="type-14"),
    rejected(_seal(T.TELEMETRY, TELEMETRY, hdr=0x4F), UnknownType, {"mtype": 15}, id="type-15"),
    rejected(_seal(T.ACK, b"\x01\x00\x00\x00\x03", direction=DOWN), WrongDirection,
             {"mtype": 11, "direction": 1}, id="downlink-ack-at-uplink-receiver"),
    rejected(_seal(T.ACK, b"\x01\x00\x00\x00\x03", direction=UP), WrongDirection,
             {"mtype": 11, "direction": 0}, id="uplink-ack-at-downlink-receiver", expect=DOWN),
    rejected(_seal(T.WELCOME, WELCOME, hdr=0x42), WrongDirection, {"mtype": 2, "direction": 0},
             id="welcome-marked-uplink", highest=None),
    rejected(_seal(T.TELEMETRY, TELEMETRY, direction=DOWN), WrongDirection,
             {"mtype": 3, "direction": 1}, id="telemetry-marked-downlink", expect=DOWN),
    rejected(TEL, ResyncRequired, {"device_id": DEV}, id="short-header-without-state",
             highest=None),
    rejected(_seal(T.TELEMETRY, TELEMETRY, counter=5), ResyncRequired, {"device_id": DEV},
             id="short-header-past-32-bits", highest=0xFFFFFFF0),
    rejected(_seal(T.TELEMETRY, TELEMETRY, counter=0xFFFF), TooOld,
             {"counter": -1, "highest": 10}, id="short-header-below-zero", highest=10),
    rejected(_flip(TEL, len(TEL) - 1), BadTag, {"device_id": DEV, "counter": 7},
             id="bit-in-tag"),
    rejected(_flip(_seal(T.TELEMETRY, TELEMETRY, counter=0x10005), 10), BadTag,
             {"device_id": DEV, "counter": 0x10005}, id="bad-tag-reports-full-counter",
             highest=0x10000),
    rejected(_flip(TEL, 0, 0x10), BadTag, {"device_id": DEV, "counter": 7},
             id="encryption-bit-flipped"),
    rejected(TEL_LORA, BadTag, {"device_id": DEV, "counter": 7}, id="lora-frame-std-receiver"),
    rejected(TEL, Replayed, {"counter": 7}, id="replayed-highest", highest=7),
    rejected(_seal(T.TELEMETRY, TELEMETRY, counter=36), TooOld, {"counter": 36, "highest": 100},
             id="too-old-by-64", highest=100),
]


@pytest.mark.parametrize(("frame", "expect", "highest", "tag_len", "exc", "fields"), FRAME_ROWS)
def test_rejected_frame(frame: bytes, expect: Direction, highest: int | None, tag_len: int,
                        exc: type[ProtocolError], fields: dict[str, int]) -> None:
    window = ReplayWindow(highest)
    with pytest.raises(ProtocolError) as info:
        open_frame(frame, peek_header(frame, expect), KEYS, window, tag_len)
    assert type(info.value) is exc
    assert {name: getattr(info.value, name) for name in fields} == fields
    assert window.highest == highest  # nothing before the tag check moves the window


# --- stream framing -----------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "detail"), [
    pytest.param(b"\x01\x00", "zero byte at offset 1", id="zero-inside"),
    pytest.param(b"\x00", "zero byte at offset 0", id="zero-code"),
    pytest.param(b"\x05\x01\x02", "block at offset 0 runs 2 bytes past the end", id="past-end"),
    pytest.param(b"\x02\x01\x03\x07", "block at offset 2 runs 1 bytes past the end",
                 id="second-block-past-end"),
])
def test_cobs_decode_rejects(data: bytes, detail: str) -> None:
    with pytest.raises(CobsError) as info:
        cobs_decode(data)
    assert (info.value.reason, info.value.detail) == ("cobs", detail)


def test_stream_overflow_carries_the_limit_and_resynchronises() -> None:
    decoder = StreamDecoder()
    outputs = decoder.feed(b"\x01" * (MAX_STREAM_FRAME + 1) + b"\x02\x07\0")
    assert len(outputs) == 1
    assert isinstance(outputs[0], StreamOverflow)
    assert (outputs[0].reason, outputs[0].limit) == ("overflow", MAX_STREAM_FRAME)
    assert decoder.feed(b"\x02\x07\0") == [b"\x07"]


def test_stream_cobs_error_is_reported_and_dropped() -> None:
    decoder = StreamDecoder()
    outputs = decoder.feed(b"\x05\x01\x02\0\x02\x07\0")
    assert isinstance(outputs[0], CobsError)
    assert outputs[0].detail == "block at offset 0 runs 2 bytes past the end"
    assert outputs[1:] == [b"\x07"]
    assert decoder.pending == 0
