"""Shorewatch wire protocol v1: pure codecs, no I/O (docs/protocol.md)."""

from .cobs import StreamDecoder, cobs_decode, cobs_encode
from .crypto import DeviceKeys
from .errors import (
    BadTag,
    BadVersion,
    CobsError,
    CounterExhausted,
    EncodeError,
    FrameError,
    Malformed,
    Oversize,
    ProtocolError,
    Replayed,
    ResyncRequired,
    StreamError,
    StreamOverflow,
    TooOld,
    Truncated,
    UnknownDevice,
    UnknownType,
    WrongDirection,
)
from .frame import Header, Received, encode_frame, open_frame, peek_header, seal
from .messages import *  # noqa: F403 - the message types are the package's vocabulary
from .replay import ReplayWindow
from .schema import SCHEMA_FINGERPRINT, decode_body, encode_body

__all__ = [
    "SCHEMA_FINGERPRINT", "BadTag", "BadVersion", "CobsError", "CounterExhausted", "DeviceKeys",
    "EncodeError", "FrameError", "Header", "Malformed", "Oversize", "ProtocolError", "Received",
    "ReplayWindow", "Replayed", "ResyncRequired", "StreamDecoder", "StreamError",
    "StreamOverflow", "TooOld", "Truncated", "UnknownDevice", "UnknownType", "WrongDirection",
    "cobs_decode", "cobs_encode", "decode_body", "encode_body", "encode_frame", "open_frame",
    "peek_header", "seal",
]
