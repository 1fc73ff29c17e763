"""Frame header, tag and encryption: encode, and the verify-then-parse receive pipeline.

The header is read with a fixed ``struct`` layout before authentication (the key lookup needs the
device id and counter); ``construct`` only ever sees bodies whose tag verified.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final, NamedTuple

from .crypto import DeviceKeys, ctr_crypt, tags_equal
from .errors import (
    BadTag,
    BadVersion,
    CounterExhausted,
    EncodeError,
    FrameError,
    Oversize,
    Truncated,
    UnknownType,
    WrongDirection,
)
from .limits import COUNTER_MAX, LONG_HEADER, MAX_FRAME_SIZE, SHORT_HEADER, TAG_LENGTHS, VERSION
from .messages import (
    DOWNLINK_TYPES,
    LONG_HEADER_TYPES,
    UPLINK_TYPES,
    Direction,
    Message,
    MessageType,
)
from .replay import ReplayWindow
from .schema import decode_body, encode_body

# Header byte, device id, counter (16 bits) of a short header; and the full counter under the
# MAC. Public for senders that build frames themselves (the load generator's flood).
SHORT_FIELDS: Final = struct.Struct("<BIH")
COUNTER_FIELD: Final = struct.Struct("<I")
_LONG: Final = struct.Struct("<BII")
_TYPES: Final = {int(t): t for t in MessageType}
_ALLOWED: Final = {Direction.UP: UPLINK_TYPES, Direction.DOWN: DOWNLINK_TYPES}


class Header(NamedTuple):
    """What can be read before authentication. ``counter`` is 16 or 32 bits as sent.

    A named tuple rather than a frozen dataclass: one is built per received frame, before the
    tag is checked, and tuple construction is several times cheaper.
    """

    direction: Direction
    encrypted: bool
    mtype: MessageType
    device_id: int
    counter: int
    size: int

    @property
    def long(self) -> bool:
        return self.size == LONG_HEADER


@dataclass(frozen=True, slots=True)
class Received:
    """An authenticated, replay-checked, decoded frame."""

    header: Header
    counter: int
    message: Message


def _classify(hdr: int) -> tuple[Direction, bool, MessageType, int] | Callable[[], FrameError]:
    """Meaning of one header byte, or how to reject it (for a table of all 256 values).

    Rejections are factories: each raise needs a fresh exception (they carry tracebacks).
    """
    version = hdr >> 6
    if version != VERSION:
        return partial(BadVersion, version)
    mtype = _TYPES.get(hdr & 0x0F)
    if mtype is None:
        return partial(UnknownType, hdr & 0x0F)
    direction = Direction((hdr >> 5) & 1)
    if mtype not in _ALLOWED[direction]:
        return partial(WrongDirection, int(mtype), int(direction))
    size = LONG_HEADER if mtype in LONG_HEADER_TYPES else SHORT_HEADER
    return direction, bool(hdr & 0x10), mtype, size


_HEADER_BYTES: Final = tuple(_classify(b) for b in range(256))


def peek_header(frame: bytes, expect: Direction) -> Header:
    """Check size, version, type and direction, and read the header fields (section 3 step 1)."""
    n = len(frame)
    if n > MAX_FRAME_SIZE:
        raise Oversize(n, MAX_FRAME_SIZE)
    if n < SHORT_HEADER:
        raise Truncated(SHORT_HEADER, n)
    meaning = _HEADER_BYTES[frame[0]]
    if callable(meaning):
        raise meaning()
    direction, encrypted, mtype, size = meaning
    if direction != expect:
        raise WrongDirection(int(mtype), int(direction))
    if size == LONG_HEADER:
        if n < LONG_HEADER:
            raise Truncated(LONG_HEADER, n)
        _, device_id, counter = _LONG.unpack_from(frame)
    else:
        _, device_id, counter = SHORT_FIELDS.unpack_from(frame)
    return Header(direction, encrypted, mtype, device_id, counter, size)


def open_frame(
    frame: bytes, header: Header, keys: DeviceKeys, window: ReplayWindow, tag_len: int
) -> Received:
    """Steps 3-6 of section 3: counter, tag, replay window, decrypt, parse. Commits the window."""
    need = header.size + tag_len
    if len(frame) < need:
        raise Truncated(need, len(frame))
    counter = header.counter if header.long else window.reconstruct(header.counter,
                                                                    header.device_id)
    direction = header.direction
    cut = len(frame) - tag_len
    expected = keys.mac(direction).digest(COUNTER_FIELD.pack(counter), frame[:cut])[:tag_len]
    if not tags_equal(expected, frame[cut:]):
        raise BadTag(header.device_id, counter)
    window.check(counter)
    window.commit(counter)
    body = frame[header.size : cut]
    if header.encrypted:
        body = ctr_crypt(keys.enc(direction), header.device_id, counter, body)
    return Received(header, counter, decode_body(header.mtype, body))


def header_byte(mtype: MessageType, direction: Direction, encrypted: bool = False) -> int:
    """The first byte of a v1 frame of this type, direction and encryption."""
    return (VERSION << 6) | (int(direction) << 5) | (0x10 if encrypted else 0) | int(mtype)


def open_fresh(frame: bytes, keys: DeviceKeys, window: ReplayWindow, *, tag_len: int,
               direction: Direction, device_id: int, low16: int) -> int:
    """The common case of steps 3-5, fused: a short-header frame (header already read:
    ``device_id`` and ``low16``, its counter) whose counter is ahead of the window, so no
    replay check can fail.

    Returns the full counter after the tag verified and the window committed; returns -1,
    having touched nothing, when the frame is not that case (a first frame, a counter at or
    behind the window's highest, the 32-bit end, no room for a tag), so that ``open_frame``
    decides it. Raises ``BadTag`` like ``open_frame`` would. Same verdicts as ``open_frame``
    (tests/unit/test_intake_fast_path.py checks it against random and mutated frames).
    """
    h = window.highest
    if h is None:
        return -1
    ahead = (low16 - h) & 0xFFFF
    full = h + ahead
    if not 0 < ahead < 0x8000 or full > COUNTER_MAX:
        return -1
    cut = len(frame) - tag_len
    if cut < SHORT_HEADER:
        return -1
    if not tags_equal(keys.mac(direction).digest(COUNTER_FIELD.pack(full), frame[:cut])[:tag_len],
                      frame[cut:]):
        raise BadTag(device_id, full)
    window.commit(full)
    return full


def encode_frame(
    message: Message,
    *,
    keys: DeviceKeys,
    direction: Direction,
    device_id: int,
    counter: int,
    tag_len: int = 8,
    encrypt: bool = False,
) -> bytes:
    """Build a complete, tagged (and optionally encrypted) frame for ``message``."""
    if message.TYPE not in _ALLOWED[direction]:
        raise EncodeError(f"{message.TYPE.name} cannot be sent as {direction.name}")
    return seal(message.TYPE, encode_body(message), keys=keys, direction=direction,
                device_id=device_id, counter=counter, tag_len=tag_len, encrypt=encrypt)


def seal(
    mtype: MessageType,
    body: bytes,
    *,
    keys: DeviceKeys,
    direction: Direction,
    device_id: int,
    counter: int,
    tag_len: int = 8,
    encrypt: bool = False,
    hdr: int | None = None,
) -> bytes:
    """Frame an already encoded ``body``: header, optional encryption, tag.

    ``hdr`` overrides the header byte; only vector generators and fuzzers use it, to build
    authentic frames with headers a v1 sender would never produce.
    """
    if tag_len not in TAG_LENGTHS:
        raise EncodeError(f"tag length {tag_len} is not a v1 profile {TAG_LENGTHS}")
    if not 0 <= device_id <= 0xFFFFFFFF:
        raise EncodeError(f"device id {device_id} does not fit 32 bits")
    if counter > COUNTER_MAX:
        raise CounterExhausted
    if counter < 0:
        raise EncodeError(f"negative counter {counter}")
    if encrypt:
        body = ctr_crypt(keys.enc(direction), device_id, counter, body)
    if hdr is None:
        hdr = (VERSION << 6) | (int(direction) << 5) | (0x10 if encrypt else 0) | int(mtype)
    if mtype in LONG_HEADER_TYPES:
        head = _LONG.pack(hdr, device_id, counter)
    else:
        head = SHORT_FIELDS.pack(hdr, device_id, counter & 0xFFFF)
    unsigned = head + body
    size = len(unsigned) + tag_len
    if size > MAX_FRAME_SIZE:
        raise Oversize(size, MAX_FRAME_SIZE)
    return unsigned + keys.mac(direction).digest(COUNTER_FIELD.pack(counter), unsigned)[:tag_len]
