"""The sender refuses what no receiver would accept; frame sizes are what the spec promises."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest

from protocol import (
    CounterExhausted,
    DeviceKeys,
    EncodeError,
    Oversize,
    ProtocolError,
    cobs_encode,
    decode_body,
    encode_body,
    encode_frame,
    seal,
)
from protocol.limits import (
    COUNTER_MAX,
    MAX_CONFIG_ENTRIES,
    MAX_CONFIG_VALUE,
    MAX_FRAME_SIZE,
    MAX_FW_CHUNK,
    MAX_LOG_TEXT,
    MAX_THUMBNAIL,
    TAG_LORA,
    TAG_STD,
)
from protocol.messages import (
    Ack,
    BootReason,
    ConfigAck,
    ConfigEntry,
    ConfigPush,
    ConfigStatus,
    Detection,
    DetectionKind,
    Direction,
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

KEYS = DeviceKeys.from_master(hashlib.sha256(b"shorewatch unit tests: encode").digest())
UP, DOWN = Direction.UP, Direction.DOWN
R = dataclasses.replace

TELEMETRY = Telemetry(3712, 5120, -85, 1275, 142, -67, 86400, 12, 480, 0x11)
HELLO = Hello(1, 2, 3, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0x29, 0xDEADBEEF, bytes(8))
WELCOME = Welcome(bytes(8), 1795680000, 999, 42, 1)
DETECTION = Detection(7, Lifecycle.NEW, DetectionKind.PERSON, 87, 12, 5, 3, 7, 3150, 1,
                      1795680123, 250)
THUMB = Thumbnail(ThumbFormat.RAW, 8, 6, bytes(48))
OFFER = FwOffer(3, 1, 3, 0, 123456, 512, bytes(32))


def _frame(msg: Message, **kw: Any) -> bytes:
    kw.setdefault("direction", UP)
    return encode_frame(msg, keys=KEYS, device_id=0x5A17C0DE, counter=kw.pop("counter", 5), **kw)


# --- sizes --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("tag_len", "size"), [(TAG_STD, 34), (TAG_LORA, 30)])
def test_telemetry_frame_size(tag_len: int, size: int) -> None:
    assert len(encode_body(TELEMETRY)) == 19
    assert len(_frame(TELEMETRY, tag_len=tag_len)) == size


def test_telemetry_stream_overhead_is_two_bytes() -> None:
    frame = _frame(TELEMETRY)
    assert len(frame) == 34
    assert len(cobs_encode(frame)) == 34 + 2


@pytest.mark.parametrize(("msg", "size"), [
    pytest.param(HELLO, 20, id="hello-core"),
    pytest.param(R(HELLO, config_version=1), 22, id="hello-with-config-version"),
    pytest.param(WELCOME, 17, id="welcome"),
    pytest.param(DETECTION, 20, id="detection-core"),
    pytest.param(R(DETECTION, thumbnail=THUMB), 20 + 5 + 48, id="detection-with-thumbnail"),
    pytest.param(ConfigAck(1, ConfigStatus.APPLIED, 0), 4, id="config-ack"),
    pytest.param(OFFER, 44, id="fw-offer"),
    pytest.param(FwRequest(3, 0, 512), 8, id="fw-request"),
    pytest.param(FwResult(3, FwStatus.INSTALLED, 1, 3, 0), 7, id="fw-result"),
    pytest.param(Ack(1, 3), 5, id="ack"),
    pytest.param(Nack(1, NackCode.BUSY), 5, id="nack"),
    pytest.param(Log(LogLevel.INFO, "é"), 4, id="log-counts-utf8-bytes"),
])
def test_body_sizes_match_the_spec(msg: Message, size: int) -> None:
    assert len(encode_body(msg)) == size


# --- values at their limits are accepted ---------------------------------------------------------

@pytest.mark.parametrize("msg", [
    pytest.param(R(DETECTION, confidence_pct=100, ts_ms=999), id="detection-confidence-100"),
    pytest.param(R(DETECTION, thumbnail=Thumbnail(ThumbFormat.DEFLATE, 32, 24,
                                                  bytes(MAX_THUMBNAIL))), id="thumbnail-cap"),
    pytest.param(R(OFFER, chunk_size=MAX_FW_CHUNK), id="chunk-size-cap"),
    pytest.param(R(OFFER, chunk_size=1), id="chunk-size-1"),
    pytest.param(FwChunk(3, 0, bytes(MAX_FW_CHUNK)), id="fw-chunk-cap"),
    pytest.param(Log(LogLevel.INFO, "é" * (MAX_LOG_TEXT // 2)), id="log-cap-in-utf8-bytes"),
    pytest.param(ConfigPush(1, tuple(ConfigEntry(k, b"") for k in range(MAX_CONFIG_ENTRIES))),
                 id="config-entries-cap"),
    pytest.param(ConfigPush(1, (ConfigEntry(255, bytes(MAX_CONFIG_VALUE)),)),
                 id="config-value-cap"),
    pytest.param(R(TELEMETRY, charge_ma=-32768, temperature_cc=32767, rssi_dbm=-128,
                   uptime_s=0xFFFFFFFF), id="telemetry-signed-extremes"),
])
def test_values_at_their_limits_encode_and_decode(msg: Message) -> None:
    assert decode_body(msg.TYPE, encode_body(msg)) == msg


# --- out of range -> EncodeError ----------------------------------------------------------------

@pytest.mark.parametrize("msg", [
    pytest.param(R(TELEMETRY, humidity_half_pct=256), id="u8-overflow"),
    pytest.param(R(TELEMETRY, battery_mv=-1), id="u16-negative"),
    pytest.param(R(TELEMETRY, battery_mv=0x10000), id="u16-overflow"),
    pytest.param(R(TELEMETRY, charge_ma=-32769), id="i16-underflow"),
    pytest.param(R(TELEMETRY, rssi_dbm=128), id="i8-overflow"),
    pytest.param(R(TELEMETRY, uptime_s=1 << 32), id="u32-overflow"),
    pytest.param(R(HELLO, config_version=0x10000), id="trailing-group-u16-overflow"),
    pytest.param(R(HELLO, nonce=bytes(7)), id="nonce-7-bytes"),
    pytest.param(R(OFFER, sha256=bytes(31)), id="sha256-31-bytes"),
    pytest.param(R(WELCOME, unix_ms=1000), id="welcome-unix-ms-1000"),
    pytest.param(R(DETECTION, confidence_pct=101), id="confidence-101"),
    pytest.param(R(DETECTION, ts_ms=1000), id="detection-ts-ms-1000"),
    pytest.param(R(DETECTION, thumbnail=R(THUMB, w=256)), id="thumbnail-w-overflow"),
    pytest.param(R(DETECTION, thumbnail=R(THUMB, data=bytes(MAX_THUMBNAIL + 1))),
                 id="thumbnail-over-cap"),
    pytest.param(R(OFFER, chunk_size=0), id="chunk-size-0"),
    pytest.param(R(OFFER, chunk_size=MAX_FW_CHUNK + 1), id="chunk-size-over-cap"),
    pytest.param(FwRequest(3, 0, 0), id="fw-request-length-0"),
    pytest.param(FwRequest(3, 0, MAX_FW_CHUNK + 1), id="fw-request-length-over-cap"),
    pytest.param(FwChunk(3, 0, bytes(MAX_FW_CHUNK + 1)), id="fw-chunk-over-cap"),
    pytest.param(Log(LogLevel.INFO, "é" * (MAX_LOG_TEXT // 2) + "a"), id="log-193-utf8-bytes"),
    pytest.param(Log(LogLevel.INFO, "a" * (MAX_LOG_TEXT + 1)), id="log-193-ascii"),
    pytest.param(Log(LogLevel.INFO, "\U0001f30a" * 64), id="log-256-utf8-bytes"),
    pytest.param(Log(LogLevel.INFO, "\ud800"), id="log-lone-surrogate"),
    pytest.param(ConfigPush(1, (ConfigEntry(2, b""), ConfigEntry(2, b""))), id="config-keys-equal"),
    pytest.param(ConfigPush(1, (ConfigEntry(3, b""), ConfigEntry(2, b""))),
                 id="config-keys-decreasing"),
    pytest.param(ConfigPush(1, tuple(ConfigEntry(k, b"") for k in range(MAX_CONFIG_ENTRIES + 1))),
                 id="config-entries-over-cap"),
    pytest.param(ConfigPush(1, (ConfigEntry(1, bytes(MAX_CONFIG_VALUE + 1)),)),
                 id="config-value-over-cap"),
    pytest.param(ConfigPush(1, (ConfigEntry(256, b""),)), id="config-key-overflow"),
    pytest.param(Ack(1 << 32, 3), id="ack-counter-overflow"),
])
def test_encode_refuses_out_of_range(msg: Message) -> None:
    with pytest.raises(EncodeError) as info:
        encode_body(msg)
    assert type(info.value) is EncodeError
    with pytest.raises(EncodeError):
        _frame(msg, direction=DOWN if msg.TYPE in {MessageType.WELCOME, MessageType.CONFIG_PUSH,
                                                   MessageType.FW_OFFER, MessageType.FW_CHUNK}
               else UP)


@pytest.mark.parametrize("msg", [
    pytest.param(R(DETECTION, lifecycle=3), id="detection-lifecycle-3"),
    pytest.param(R(DETECTION, thumbnail=R(THUMB, format=3)), id="thumbnail-format-3"),
    pytest.param(ConfigAck(1, 3, 0), id="config-ack-status-3"),
    pytest.param(FwResult(3, 8, 1, 3, 0), id="fw-result-status-8"),
    pytest.param(Log(5, "hi"), id="log-level-5"),
])
def test_encode_refuses_closed_enum_values_a_receiver_rejects(msg: Message) -> None:
    """schema._validate promises to "refuse to build what a receiver would reject as malformed".

    A closed enumeration out of range is malformed at every receiver (decode.json has a vector
    for each), so the sender must not build it.
    """
    with pytest.raises(EncodeError):
        body = encode_body(msg)
        pytest.fail(f"built {body.hex()}, which decode_body rejects: "
                    f"{_decode_error(msg.TYPE, body)}")


def _decode_error(mtype: MessageType, body: bytes) -> str:
    try:
        decode_body(mtype, body)
    except ProtocolError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def test_message_type_not_allowed_in_direction() -> None:
    with pytest.raises(EncodeError):
        _frame(TELEMETRY, direction=DOWN)
    with pytest.raises(EncodeError):
        _frame(WELCOME, direction=UP)


# --- counters, sizes and header fields ----------------------------------------------------------

def test_last_counter_is_usable_and_the_next_one_is_exhausted() -> None:
    assert len(_frame(HELLO, counter=COUNTER_MAX)) == 9 + 20 + 8
    with pytest.raises(CounterExhausted) as info:
        _frame(HELLO, counter=COUNTER_MAX + 1)
    assert info.value.reason == "counter_exhausted"
    with pytest.raises(CounterExhausted):
        _frame(TELEMETRY, counter=COUNTER_MAX + 1)


def test_negative_counter_is_refused() -> None:
    with pytest.raises(EncodeError):
        _frame(TELEMETRY, counter=-1)


@pytest.mark.parametrize("device_id", [-1, 1 << 32])
def test_device_id_must_fit_32_bits(device_id: int) -> None:
    with pytest.raises(EncodeError):
        encode_frame(TELEMETRY, keys=KEYS, direction=UP, device_id=device_id, counter=1)


@pytest.mark.parametrize("tag_len", [0, 2, 6, 16, 32])
def test_only_the_two_profile_tag_lengths(tag_len: int) -> None:
    with pytest.raises(EncodeError):
        _frame(TELEMETRY, tag_len=tag_len)


def _config_push_of_frame_size(size: int) -> ConfigPush:
    """A CONFIG_PUSH whose std-tag frame is exactly ``size`` bytes (7 + body + 8)."""
    body = size - 15 - 3
    full, rest = divmod(body, 2 + MAX_CONFIG_VALUE)
    entries = [ConfigEntry(k, bytes(MAX_CONFIG_VALUE)) for k in range(1, full + 1)]
    if rest:
        entries.append(ConfigEntry(full + 1, bytes(rest - 2)))
    return ConfigPush(1, tuple(entries))


def test_largest_frame_is_accepted_and_one_byte_more_is_oversize() -> None:
    assert len(_frame(_config_push_of_frame_size(MAX_FRAME_SIZE), direction=DOWN)) == MAX_FRAME_SIZE
    with pytest.raises(Oversize) as info:
        _frame(_config_push_of_frame_size(MAX_FRAME_SIZE + 1), direction=DOWN)
    assert (info.value.size, info.value.limit) == (MAX_FRAME_SIZE + 1, MAX_FRAME_SIZE)


def test_seal_refuses_an_oversize_body() -> None:
    with pytest.raises(Oversize) as info:
        seal(MessageType.LOG, bytes(MAX_FRAME_SIZE), keys=KEYS, direction=UP, device_id=1,
             counter=1, tag_len=TAG_LORA)
    assert (info.value.size, info.value.limit) == (7 + MAX_FRAME_SIZE + 4, MAX_FRAME_SIZE)


def test_hello_omits_a_default_trailing_group() -> None:
    assert encode_body(R(HELLO, config_version=0)) == encode_body(HELLO)[:20]
    assert encode_body(R(HELLO, config_version=0x0102))[20:] == b"\x02\x01"


@pytest.mark.parametrize(("msg", "direction", "long"), [
    (HELLO, UP, True), (WELCOME, DOWN, True), (TELEMETRY, UP, False), (Ack(1, 3), DOWN, False),
])
def test_header_byte_and_counter_width(msg: Message, direction: Direction, long: bool) -> None:
    frame = _frame(msg, direction=direction, counter=0x12345678, encrypt=True)
    assert frame[0] == 0x40 | int(direction) << 5 | 0x10 | int(msg.TYPE)
    assert int.from_bytes(frame[1:5], "little") == 0x5A17C0DE
    if long:
        assert int.from_bytes(frame[5:9], "little") == 0x12345678
    else:
        assert int.from_bytes(frame[5:7], "little") == 0x5678
