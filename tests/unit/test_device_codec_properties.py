"""Hypothesis properties of the DEVICE codec (device/sw), run from CPython against the gateway
codec: the two independent implementations must agree byte for byte and reason for reason.

The device codec also runs inside the real MicroPython interpreter (tests/device): vectors and a
100,000-frame fuzz corpus. Here Hypothesis explores far more shapes than the vectors hold.
Encryption is left to those tests: CPython has no ``cryptolib``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_protocol_properties import ALLOWED, MESSAGES

from protocol import (
    Direction,
    MessageType,
    ProtocolError,
    ReplayWindow,
    UnknownDevice,
    encode_body,
    encode_frame,
    open_frame,
    peek_header,
    seal,
)
from protocol.cobs import cobs_encode
from protocol.limits import COUNTER_MAX
from protocol.vectors import to_json

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "device"))
from sw import cobs as dev_cobs
from sw import proto as dev

MASTER = bytes(range(32))
DEV_KEYS = dev.Keys(MASTER)
DEVICE_ID = 0x5A17C0DE
TYPES = list(MessageType)

from protocol import DeviceKeys  # noqa: E402

HOST_KEYS = DeviceKeys.from_master(MASTER)


def _dev_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Vector JSON conventions (hex) -> the device's dict form (bytes)."""
    out = dict(fields)
    for name in ("nonce", "sha256", "data"):
        if name in out:
            out[name] = bytes.fromhex(out[name])
    if out.get("thumbnail") is not None:
        t = out["thumbnail"]
        out["thumbnail"] = {**t, "data": bytes.fromhex(t["data"])}
    if "entries" in out:
        out["entries"] = [[k, bytes.fromhex(v)] for k, v in out["entries"]]
    return out


def _as_lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_as_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_lists(v) for k, v in value.items()}
    return value


@st.composite
def framed(draw: st.DrawFn) -> tuple[MessageType, Any, Direction, int, int]:
    mtype = draw(st.sampled_from(TYPES))
    message = draw(MESSAGES[mtype])
    direction = draw(st.sampled_from([d for d in Direction if mtype in ALLOWED[d]]))
    counter = draw(st.integers(1, COUNTER_MAX))
    tag_len = draw(st.sampled_from((8, 4)))
    return mtype, message, direction, counter, tag_len


def _host(mtype: MessageType, message: Any, direction: Direction, counter: int,
          tag_len: int) -> bytes:
    return encode_frame(message, keys=HOST_KEYS, direction=direction, device_id=DEVICE_ID,
                        counter=counter, tag_len=tag_len)


def _dev_reason(frame: bytes, direction: Direction, highest: int, tag_len: int) -> str:
    try:
        mtype, _, body = dev.decode_frame(DEV_KEYS, frame, int(direction), DEVICE_ID,
                                          dev.Window(highest), tag_len)
        dev.unpack_body(mtype, body)
    except dev.ProtoError as exc:
        return str(exc.reason)
    return "accept"


def _host_reason(frame: bytes, direction: Direction, highest: int, tag_len: int) -> str:
    try:
        header = peek_header(frame, direction)
        if header.device_id != DEVICE_ID:  # the gateway's registry lookup (step 2)
            raise UnknownDevice(header.device_id)
        open_frame(frame, header, HOST_KEYS, ReplayWindow(highest), tag_len)
    except ProtocolError as exc:
        return exc.reason
    return "accept"


@settings(max_examples=150)
@given(framed())
def test_device_encodes_the_same_bytes(case: tuple[MessageType, Any, Direction, int, int]) -> None:
    mtype, message, direction, counter, tag_len = case
    body = dev.pack_body(int(mtype), _dev_fields(to_json(message)))
    assert bytes(body) == encode_body(message)
    frame = dev.encode_frame(DEV_KEYS, int(mtype), int(direction), DEVICE_ID, counter, body,
                             tag_len)
    assert bytes(frame) == _host(mtype, message, direction, counter, tag_len)


@settings(max_examples=150)
@given(framed())
def test_device_decodes_what_the_gateway_encodes(
        case: tuple[MessageType, Any, Direction, int, int]) -> None:
    mtype, message, direction, counter, tag_len = case
    frame = _host(mtype, message, direction, counter, tag_len)
    window = dev.Window(counter - 1)
    got_type, got_counter, body = dev.decode_frame(DEV_KEYS, frame, int(direction), DEVICE_ID,
                                                   window, tag_len)
    assert (got_type, got_counter, window.highest) == (int(mtype), counter, counter)
    assert _as_lists(dev.unpack_body(got_type, bytes(body))) == _as_lists(
        _dev_fields(to_json(message)))


@settings(max_examples=60)
@given(framed())
def test_every_strict_prefix_is_rejected_alike(
        case: tuple[MessageType, Any, Direction, int, int]) -> None:
    mtype, message, direction, counter, tag_len = case
    frame = _host(mtype, message, direction, counter, tag_len)
    for cut in range(len(frame)):
        prefix = frame[:cut]
        reason = _dev_reason(prefix, direction, counter - 1, tag_len)
        assert reason in ("truncated", "bad_tag"), (cut, reason)
        assert reason == _host_reason(prefix, direction, counter - 1, tag_len), cut


@settings(max_examples=300)
@given(st.sampled_from(TYPES), st.binary(max_size=300), st.integers(1, 0xFFFF))
def test_authentic_random_bodies_get_the_same_verdict(mtype: MessageType, body: bytes,
                                                      counter: int) -> None:
    """Any body, correctly sealed: both codecs accept it or both call it malformed."""
    direction = next(d for d in Direction if mtype in ALLOWED[d])
    frame = seal(mtype, body, keys=HOST_KEYS, direction=direction, device_id=DEVICE_ID,
                 counter=counter)
    host = _host_reason(frame, direction, counter - 1, 8)
    assert host in ("accept", "malformed")
    assert _dev_reason(frame, direction, counter - 1, 8) == host


@settings(max_examples=400)
@given(st.binary(max_size=1), st.binary(max_size=80), st.booleans(),
       st.sampled_from(list(Direction)))
def test_random_frames_get_the_same_reason(head: bytes, rest: bytes, ours: bool,
                                           direction: Direction) -> None:
    """Random frames, half of them addressed to the receiver's device id."""
    device = DEVICE_ID.to_bytes(4, "little") if ours else b""
    frame = head + device + rest
    assert _dev_reason(frame, direction, 1000, 8) == _host_reason(frame, direction, 1000, 8)


@settings(max_examples=100)
@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=4),
       st.binary(max_size=40))
def test_device_stream_decoder_one_byte_at_a_time(frames: list[bytes], garbage: bytes) -> None:
    """Garbage, a delimiter, then frames: fed byte by byte, every frame comes out intact."""
    stream = garbage + b"\0" + b"".join(cobs_encode(f) for f in frames)
    decoder = dev_cobs.StreamDecoder()
    out: list[tuple[bytes | None, str | None]] = []
    for i in range(len(stream)):
        out.extend(decoder.feed(stream[i : i + 1]))
    whole = dev_cobs.StreamDecoder().feed(stream)
    norm = [(bytes(f) if f is not None else None, e) for f, e in out]
    assert norm == [(bytes(f) if f is not None else None, e) for f, e in whole]
    assert [f for f, _ in norm if f is not None][-len(frames):] == frames
