"""Hypothesis properties of the codec: every message type, frames, COBS streams, replay window."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from protocol import (
    BadTag,
    BadVersion,
    DeviceKeys,
    Malformed,
    ProtocolError,
    Received,
    Replayed,
    ReplayWindow,
    ResyncRequired,
    StreamDecoder,
    StreamError,
    TooOld,
    Truncated,
    UnknownType,
    WrongDirection,
    cobs_decode,
    cobs_encode,
    decode_body,
    encode_body,
    encode_frame,
    open_frame,
    peek_header,
    schema,
    seal,
)
from protocol.limits import (
    COUNTER_MAX,
    MAX_CONFIG_ENTRIES,
    MAX_CONFIG_VALUE,
    MAX_FRAME_SIZE,
    MAX_FW_CHUNK,
    MAX_LOG_TEXT,
    MAX_STREAM_FRAME,
    MAX_THUMBNAIL,
    REPLAY_WINDOW_BITS,
    SHORT_HEADER,
    TAG_LENGTHS,
    TAG_STD,
)
from protocol.messages import (
    DOWNLINK_TYPES,
    LONG_HEADER_TYPES,
    UPLINK_TYPES,
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

KEYS = DeviceKeys.from_master(bytes(range(32)))
# Every rejection that can happen before the tag verified. Malformed and Replayed cannot: a
# tampered or truncated frame never reaches the window or the body parser.
PRE_AUTH_REJECTIONS = (Truncated, BadVersion, UnknownType, WrongDirection, ResyncRequired, TooOld,
                       BadTag)
ALLOWED = {Direction.UP: UPLINK_TYPES, Direction.DOWN: DOWNLINK_TYPES}

# --- strategies ---------------------------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
i8 = st.integers(-0x80, 0x7F)
i16 = st.integers(-0x8000, 0x7FFF)


def sized_bytes(cap: int) -> st.SearchStrategy[bytes]:
    """Byte strings up to ``cap``, with the cap itself drawn often."""
    return (st.integers(0, cap) | st.just(cap)).flatmap(lambda n: st.binary(min_size=n,
                                                                           max_size=n))


def _fit_utf8(text: str) -> str:
    return text.encode("utf-8")[:MAX_LOG_TEXT].decode("utf-8", "ignore")


log_texts = st.text(max_size=MAX_LOG_TEXT).map(_fit_utf8) | st.sampled_from(
    ["é" * (MAX_LOG_TEXT // 2), "\U0001f30a" * (MAX_LOG_TEXT // 4), "a" * MAX_LOG_TEXT,
     "€" * (MAX_LOG_TEXT // 3), "Ströming ≥ 2 m/s, 🌊 rip current\n"]
)
# The largest body a short-header frame with the std tag can carry.
BODY_BUDGET = MAX_FRAME_SIZE - SHORT_HEADER - TAG_STD


@st.composite
def config_pushes(draw: st.DrawFn) -> ConfigPush:
    """Strictly increasing keys, values up to the cap, trimmed to what fits one frame."""
    keys = sorted(draw(st.sets(u8, max_size=MAX_CONFIG_ENTRIES)))
    entries: list[ConfigEntry] = []
    size = 3
    for key in keys:
        value = draw(sized_bytes(MAX_CONFIG_VALUE))
        if size + 2 + len(value) > BODY_BUDGET:
            break
        size += 2 + len(value)
        entries.append(ConfigEntry(key, value))
    return ConfigPush(draw(u16), tuple(entries))


MESSAGES: dict[MessageType, st.SearchStrategy[Any]] = {
    MessageType.HELLO: st.builds(
        Hello, fw_major=u8, fw_minor=u8, fw_patch=u16, hw_kind=st.sampled_from(HardwareKind),
        boot_reason=st.sampled_from(BootReason), capabilities=u16, schema=u32,
        nonce=st.binary(min_size=8, max_size=8), config_version=u16),
    MessageType.WELCOME: st.builds(
        Welcome, nonce=st.binary(min_size=8, max_size=8), unix_s=u32,
        unix_ms=st.integers(0, 999), config_version=u16, flags=u8),
    MessageType.TELEMETRY: st.builds(
        Telemetry, battery_mv=u16, solar_mv=u16, charge_ma=i16, temperature_cc=i16,
        humidity_half_pct=u8, rssi_dbm=i8, uptime_s=u32, boot_count=u16, free_heap_64=u16,
        flags=u8),
    MessageType.DETECTION: st.builds(
        Detection, event_id=u32, lifecycle=st.sampled_from(Lifecycle),
        kind=st.sampled_from(DetectionKind), confidence_pct=st.integers(0, 100), box_x=u8,
        box_y=u8, box_w=u8, box_h=u8, peak_cc=i16, count=u8, ts_s=u32,
        ts_ms=st.integers(0, 999),
        thumbnail=st.none() | st.builds(Thumbnail, format=st.sampled_from(ThumbFormat), w=u8,
                                        h=u8, data=sized_bytes(MAX_THUMBNAIL))),
    MessageType.CONFIG_PUSH: config_pushes(),
    MessageType.CONFIG_ACK: st.builds(ConfigAck, config_version=u16,
                                      status=st.sampled_from(ConfigStatus), bad_key=u8),
    MessageType.FW_OFFER: st.builds(
        FwOffer, offer_id=u16, fw_major=u8, fw_minor=u8, fw_patch=u16, size=u32,
        chunk_size=st.integers(1, MAX_FW_CHUNK), sha256=st.binary(min_size=32, max_size=32)),
    MessageType.FW_REQUEST: st.builds(FwRequest, offer_id=u16, offset=u32,
                                      length=st.integers(1, MAX_FW_CHUNK)),
    MessageType.FW_CHUNK: st.builds(FwChunk, offer_id=u16, offset=u32,
                                    data=sized_bytes(MAX_FW_CHUNK)),
    MessageType.FW_RESULT: st.builds(FwResult, offer_id=u16, status=st.sampled_from(FwStatus),
                                     fw_major=u8, fw_minor=u8, fw_patch=u16),
    MessageType.ACK: st.builds(Ack, acked_counter=u32, acked_type=u8),
    MessageType.NACK: st.builds(Nack, nacked_counter=u32, code=st.sampled_from(NackCode)),
    MessageType.LOG: st.builds(Log, level=st.sampled_from(LogLevel), text=log_texts),
}
TYPES = list(MessageType)


@dataclass(frozen=True)
class Sent:
    """A message as sent, and the receiver state that must accept it."""

    message: Message
    direction: Direction
    device_id: int
    counter: int
    tag_len: int
    encrypt: bool
    highest: int | None  # receiver's H before the frame; only H itself is marked as seen

    def frame(self) -> bytes:
        return encode_frame(self.message, keys=KEYS, direction=self.direction,
                            device_id=self.device_id, counter=self.counter,
                            tag_len=self.tag_len, encrypt=self.encrypt)

    def seal(self, body: bytes) -> bytes:
        return seal(self.message.TYPE, body, keys=KEYS, direction=self.direction,
                    device_id=self.device_id, counter=self.counter, tag_len=self.tag_len,
                    encrypt=self.encrypt)

    def window(self) -> ReplayWindow:
        return ReplayWindow(self.highest)


@st.composite
def sent(draw: st.DrawFn, mtype: MessageType) -> Sent:
    message = draw(MESSAGES[mtype])
    direction = draw(st.sampled_from([d for d in Direction if mtype in ALLOWED[d]]))
    long = mtype in LONG_HEADER_TYPES
    counter = draw(u32 if long else st.integers(1, COUNTER_MAX))
    # Receiver state: behind the counter by up to half the 16-bit range (what a short header can
    # reconstruct), or ahead of it inside the window, or (long header only) no state at all.
    behind = st.integers(counter - min(counter, 0x7FFF), counter - 1) if counter else st.nothing()
    ahead = (st.integers(counter + 1, min(counter + REPLAY_WINDOW_BITS - 1, COUNTER_MAX))
             if counter < COUNTER_MAX else st.nothing())
    highest = draw(behind | ahead | (st.none() if long else st.nothing()))
    return Sent(message, direction, draw(st.integers(1, 0xFFFFFFFE)), counter,
                draw(st.sampled_from(TAG_LENGTHS)), draw(st.booleans()), highest)


def receive(frame: bytes, s: Sent, window: ReplayWindow) -> Received:
    return open_frame(frame, peek_header(frame, s.direction), KEYS, window, s.tag_len)


def _state(window: ReplayWindow) -> tuple[int | None, int]:
    return window.highest, window.bitmap


def _body_with_all_groups(message: Message) -> bytes:
    """The body with every trailing group this codec knows present, so more bytes are 'newer'."""
    body = encode_body(message)
    if isinstance(message, Hello) and message.config_version == 0:
        body += b"\0\0"  # the encoder omits a default trailing group
    return body


mtype_param = pytest.mark.parametrize("mtype", TYPES, ids=lambda t: t.name.lower())
# The codec mode fixture is constant for all examples of a test, which is what it is for.
fixture_ok = [HealthCheck.function_scoped_fixture]


def test_every_message_type_has_a_strategy() -> None:
    assert set(MESSAGES) == set(MessageType)


# --- frames -------------------------------------------------------------------------------------

@mtype_param
@settings(max_examples=25, suppress_health_check=fixture_ok)
@given(data=st.data())
def test_round_trip(mtype: MessageType, codec_mode: str, data: st.DataObject) -> None:
    s = data.draw(sent(mtype))
    frame = s.frame()
    window = s.window()
    received = receive(frame, s, window)
    assert received.message == s.message
    assert received.counter == s.counter
    h = received.header
    assert (h.direction, h.encrypted, h.mtype, h.device_id) == (s.direction, s.encrypt, mtype,
                                                                s.device_id)
    assert h.counter == (s.counter if mtype in LONG_HEADER_TYPES else s.counter & 0xFFFF)
    assert window.highest == max(s.counter, s.highest or 0)
    with pytest.raises(Replayed):
        receive(frame, s, window)


@mtype_param
@settings(max_examples=10)
@given(data=st.data())
def test_every_strict_prefix_is_rejected(mtype: MessageType, data: st.DataObject) -> None:
    s = data.draw(sent(mtype))
    frame = s.frame()
    window = s.window()
    before = _state(window)
    for n in range(len(frame)):
        with pytest.raises((Truncated, BadTag)):
            receive(frame[:n], s, window)
    assert _state(window) == before
    assert receive(frame, s, window).message == s.message  # the whole frame still goes through


@mtype_param
@settings(max_examples=5)
@given(data=st.data())
def test_every_single_bit_flip_is_rejected(mtype: MessageType, data: st.DataObject) -> None:
    s = data.draw(sent(mtype))
    frame = bytearray(s.frame())
    window = s.window()
    before = _state(window)
    flips = 0
    for bit in range(len(frame) * 8):
        frame[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(PRE_AUTH_REJECTIONS):
            receive(bytes(frame), s, window)
        frame[bit // 8] ^= 1 << (bit % 8)
        flips += 1
    assert flips == len(frame) * 8
    assert _state(window) == before


@mtype_param
@settings(max_examples=15, suppress_health_check=fixture_ok)
@given(data=st.data())
def test_appended_body_bytes_are_ignored(mtype: MessageType, codec_mode: str,
                                         data: st.DataObject) -> None:
    s = data.draw(sent(mtype))
    # Without a thumbnail, appended bytes would start the thumbnail group: not "newer fields".
    assume(not (isinstance(s.message, Detection) and s.message.thumbnail is None))
    body = _body_with_all_groups(s.message)
    header = 9 if mtype in LONG_HEADER_TYPES else 7
    room = MAX_FRAME_SIZE - header - s.tag_len - len(body)
    assume(room > 0)
    extra = data.draw(st.binary(min_size=1, max_size=min(room, 64)), label="appended")
    received = receive(s.seal(body + extra), s, s.window())
    assert received.message == s.message


@settings(max_examples=150)
@given(
    frame=st.binary(max_size=MAX_FRAME_SIZE + 8)
    | st.tuples(st.integers(0, 0x3F).map(lambda b: 0x40 | b), st.binary(max_size=80))
    .map(lambda t: bytes([t[0]]) + t[1]),
    direction=st.sampled_from(Direction),
    highest=st.none() | u32,
    tag_len=st.sampled_from(TAG_LENGTHS),
)
def test_random_bytes_raise_only_protocol_errors(frame: bytes, direction: Direction,
                                                 highest: int | None, tag_len: int) -> None:
    window = ReplayWindow(highest)
    with pytest.raises(ProtocolError):
        open_frame(frame, peek_header(frame, direction), KEYS, window, tag_len)
    assert window.highest == highest


@mtype_param
@settings(max_examples=40)
@given(body=st.binary(max_size=80) | st.binary(max_size=MAX_FRAME_SIZE - 15))
def test_random_authentic_body_decodes_or_is_malformed(mtype: MessageType, body: bytes) -> None:
    direction = next(d for d in Direction if mtype in ALLOWED[d])
    frame = seal(mtype, body, keys=KEYS, direction=direction, device_id=7, counter=70000)
    window = ReplayWindow(69999)
    try:
        received = open_frame(frame, peek_header(frame, direction), KEYS, window, TAG_STD)
    except Malformed as exc:
        assert exc.message == mtype.name
    else:
        assert received.message.TYPE is mtype
    assert window.highest == 70000  # authenticated: the window moves even for a bad body


def _outcome(mtype: MessageType, body: bytes) -> Message | tuple[str, str]:
    try:
        return decode_body(mtype, body)
    except Malformed as exc:
        return exc.message, exc.path


@mtype_param
@settings(max_examples=40)
@given(data=st.data())
def test_all_codec_modes_agree_on_mutated_bodies(mtype: MessageType,
                                                          data: st.DataObject) -> None:
    body = bytearray(encode_body(data.draw(MESSAGES[mtype], label="message")))
    for index, value in data.draw(st.lists(st.tuples(st.integers(0, 0xFFFF), u8), max_size=3),
                                  label="mutations"):
        if body:
            body[index % len(body)] = value
    body = body[: data.draw(st.integers(0, len(body)), label="cut")]
    previous = schema.current_mode()
    outcomes = []
    try:
        for mode in schema.MODES:
            schema.use_mode(mode)
            outcomes.append(_outcome(mtype, bytes(body)))
    finally:
        schema.use_mode(previous)
    assert outcomes[0] == outcomes[1] == outcomes[2]


# --- COBS and the stream decoder ----------------------------------------------------------------

@st.composite
def runs(draw: st.DrawFn) -> bytes:
    """Runs of non-zero bytes around the 254-byte COBS block length, separated by zeros."""
    out = b""
    for length, zero in draw(st.lists(st.tuples(st.integers(0, 600) | st.sampled_from(
            [253, 254, 255, 508]), st.booleans()), max_size=6)):
        out += b"\x07" * length + (b"\0" if zero else b"")
    return out[:MAX_FRAME_SIZE]


frames = (st.binary(max_size=300) | st.integers(0, MAX_FRAME_SIZE)
          .flatmap(lambda n: st.binary(min_size=n, max_size=n)) | runs())


@settings(max_examples=200)
@given(frame=frames)
def test_cobs_round_trip(frame: bytes) -> None:
    encoded = cobs_encode(frame)
    assert encoded[-1] == 0
    assert 0 not in encoded[:-1]
    assert cobs_decode(encoded[:-1]) == frame
    assert len(encoded) - 1 <= MAX_STREAM_FRAME
    assert len(encoded) <= len(frame) + 2 + len(frame) // 254
    if len(frame) < 254:
        assert len(encoded) == len(frame) + 2
    if 0 not in frame:  # every zero saves a byte; without any, one code byte per 254 data bytes
        assert len(encoded) == len(frame) + 2 + len(frame) // 254


def _norm(outputs: list[bytes | StreamError]) -> list[bytes | str]:
    return [o.reason if isinstance(o, StreamError) else o for o in outputs]


garbage = (st.binary(max_size=40) | st.binary(min_size=MAX_STREAM_FRAME - 5,
                                               max_size=MAX_STREAM_FRAME + 70)).map(
    lambda g: g + b"\0")


@settings(max_examples=60)
@given(pieces=st.lists(st.tuples(garbage, frames), min_size=1, max_size=4),
       cuts=st.lists(st.integers(0, 1 << 16), max_size=10))
def test_stream_decoder_recovers_every_frame_after_garbage(
    pieces: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    decoder = StreamDecoder()
    expected: list[bytes | str] = []
    for junk, frame in pieces:
        expected += _norm(decoder.feed(junk))
        assert decoder.pending == 0  # garbage ends in a delimiter: back in sync
        got = decoder.feed(cobs_encode(frame))
        assert got == [frame]
        expected += got
    stream = b"".join(junk + cobs_encode(frame) for junk, frame in pieces)

    assert _norm(StreamDecoder().feed(stream)) == expected

    one_by_one = StreamDecoder()
    outputs: list[bytes | StreamError] = []
    for byte in stream:
        outputs += one_by_one.feed(bytes([byte]))
    assert _norm(outputs) == expected

    chunked = StreamDecoder()
    outputs = []
    bounds = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    for a, b in itertools.pairwise(bounds):
        outputs += chunked.feed(stream[a:b])
    assert _norm(outputs) == expected


@settings(max_examples=100)
@given(stream=st.binary(max_size=3000))
def test_stream_decoder_fed_one_byte_at_a_time_equals_fed_whole(stream: bytes) -> None:
    whole = StreamDecoder()
    expected = _norm(whole.feed(stream))
    one_by_one = StreamDecoder()
    outputs: list[bytes | StreamError] = []
    for byte in stream:
        outputs += one_by_one.feed(bytes([byte]))
    assert _norm(outputs) == expected
    assert one_by_one.pending == whole.pending <= MAX_STREAM_FRAME


# --- replay window against a reference model ----------------------------------------------------

class ModelWindow:
    """Accept iff never seen and within 64 of the highest accepted: a set, no bitmap."""

    def __init__(self, highest: int | None) -> None:
        self.highest = highest
        self.seen = set() if highest is None else {highest}

    def receive(self, counter: int) -> str:
        if self.highest is not None and self.highest - counter >= REPLAY_WINDOW_BITS:
            return "too_old"
        if counter in self.seen:
            return "replayed"
        self.seen.add(counter)
        self.highest = counter if self.highest is None else max(self.highest, counter)
        return "accept"


starts = st.sampled_from([0, 5, 0xFFFF, COUNTER_MAX - 5, COUNTER_MAX]) | u32
# Steps relative to the highest accepted counter, dense around the window edge (63/64/65).
deltas = st.lists(st.integers(-70, 70) | st.sampled_from([-65, -64, -63, 63, 64, 65, 40000]),
                  max_size=60)


def _next_counter(model: ModelWindow, start: int, delta: int) -> int:
    reference = start if model.highest is None else model.highest
    return min(max(reference + delta, 0), COUNTER_MAX)


@settings(max_examples=300)
@given(highest=u32, low16=u16)
@example(highest=40000, low16=(40000 + 0x8000) & 0xFFFF).via("d = 0x8000 reads as -32768")
@example(highest=40000, low16=(40000 + 0x7FFF) & 0xFFFF).via("d = 0x7fff reads as +32767")
@example(highest=10, low16=0xFFFF).via("below zero")
@example(highest=COUNTER_MAX, low16=0).via("past 32 bits")
def test_counter_reconstruction_picks_the_nearest_counter(highest: int, low16: int) -> None:
    """C = H + d, d the signed 16-bit distance; below 0 too_old, past 32 bits resync_required."""
    d = (low16 - highest) & 0xFFFF
    d = d - 0x10000 if d >= 0x8000 else d
    window = ReplayWindow(highest)
    if highest + d < 0:
        with pytest.raises(TooOld):
            window.reconstruct(low16, 1)
    elif highest + d > COUNTER_MAX:
        with pytest.raises(ResyncRequired):
            window.reconstruct(low16, 1)
    else:
        counter = window.reconstruct(low16, 1)
        assert counter & 0xFFFF == low16
        assert -0x8000 <= counter - highest <= 0x7FFF
        assert counter == highest + d


@settings(max_examples=300)
@given(start=starts, fresh=st.booleans(), steps=deltas)
@example(start=100, fresh=False, steps=[63, -63]).via("H_old at age 63 is still remembered")
@example(start=100, fresh=False, steps=[64, -64]).via("age 64 is too old")
@example(start=100, fresh=False, steps=[-1, 65, -64, -63]).via("bits shift with H")
def test_replay_window_matches_set_model(start: int, fresh: bool, steps: list[int]) -> None:
    initial = None if fresh else start
    window, model = ReplayWindow(initial), ModelWindow(initial)
    for delta in steps:
        counter = _next_counter(model, start, delta)
        try:
            window.check(counter)
        except (Replayed, TooOld) as exc:
            got = exc.reason
        else:
            window.commit(counter)
            got = "accept"
        assert (counter, got, window.highest) == (counter, model.receive(counter), model.highest)


@settings(max_examples=60)
@given(start=starts, steps=deltas.map(lambda d: [x for x in d if abs(x) < 0x8000]),
       long=st.lists(st.booleans(), min_size=60, max_size=60))
def test_replay_window_through_frames_matches_set_model(start: int, steps: list[int],
                                                        long: list[bool]) -> None:
    """Same model through the whole pipeline, mixing long (HELLO) and short (16-bit) headers."""
    window, model = ReplayWindow(start), ModelWindow(start)
    hello = Hello(1, 0, 0, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0, 0, bytes(8))
    tele = Telemetry(3700, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    for delta, is_long in zip(steps, long, strict=False):
        counter = _next_counter(model, start, delta)
        msg: Message = hello if is_long else tele
        frame = encode_frame(msg, keys=KEYS, direction=Direction.UP, device_id=9,
                             counter=counter)
        try:
            received = open_frame(frame, peek_header(frame, Direction.UP), KEYS, window, 8)
        except (Replayed, TooOld) as exc:
            got = exc.reason
        else:
            assert received.counter == counter
            got = "accept"
        assert (counter, got, window.highest) == (counter, model.receive(counter), model.highest)


@mtype_param
def test_sent_strategy_reaches_every_frame_variant(mtype: MessageType) -> None:
    """Guards the strategy: both tag lengths, clear and encrypted, every allowed direction, and
    receivers behind, ahead of and (long header) without a counter are all drawn."""
    seen: dict[str, set[object]] = {"direction": set(), "tag_len": set(), "encrypt": set(),
                                    "receiver": set()}

    @settings(max_examples=100, derandomize=True, database=None)
    @given(s=sent(mtype))
    def collect(s: Sent) -> None:
        seen["direction"].add(s.direction)
        seen["tag_len"].add(s.tag_len)
        seen["encrypt"].add(s.encrypt)
        seen["receiver"].add("fresh" if s.highest is None
                             else "behind" if s.highest < s.counter else "ahead")

    collect()
    assert seen == {
        "direction": {d for d in Direction if mtype in ALLOWED[d]},
        "tag_len": set(TAG_LENGTHS),
        "encrypt": {False, True},
        "receiver": {"behind", "ahead"} | ({"fresh"} if mtype in LONG_HEADER_TYPES else set()),
    }
