"""Protocol error tree. Every leaf has a stable ``reason`` used in logs, metrics and vectors."""

from __future__ import annotations

from typing import ClassVar


class ProtocolError(Exception):
    """Root of every error raised by ``protocol``."""

    reason: ClassVar[str] = "protocol"


class FrameError(ProtocolError):
    """A frame was rejected; ``reason`` names why."""


class Truncated(FrameError):
    reason = "truncated"

    def __init__(self, needed: int, got: int) -> None:
        super().__init__(f"frame too short: {got} bytes, need at least {needed}")
        self.needed = needed
        self.got = got


class Oversize(FrameError):
    reason = "oversize"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit}")
        self.size = size
        self.limit = limit


class BadVersion(FrameError):
    reason = "bad_version"

    def __init__(self, version: int) -> None:
        super().__init__(f"protocol version {version} is not supported (this peer speaks v1)")
        self.version = version


class UnknownType(FrameError):
    reason = "unknown_type"

    def __init__(self, mtype: int) -> None:
        super().__init__(f"message type {mtype} is not defined in v1")
        self.mtype = mtype


class WrongDirection(FrameError):
    reason = "wrong_direction"

    def __init__(self, mtype: int, direction: int) -> None:
        word = "downlink" if direction else "uplink"
        super().__init__(f"message type {mtype} is not accepted as {word} here")
        self.mtype = mtype
        self.direction = direction


class UnknownDevice(FrameError):
    reason = "unknown_device"

    def __init__(self, device_id: int) -> None:
        super().__init__(f"device {device_id:#010x} is not provisioned here")
        self.device_id = device_id


class ResyncRequired(FrameError):
    reason = "resync_required"

    def __init__(self, device_id: int) -> None:
        super().__init__(f"no counter state for device {device_id:#010x}: it must send HELLO")
        self.device_id = device_id


class BadTag(FrameError):
    reason = "bad_tag"

    def __init__(self, device_id: int, counter: int) -> None:
        super().__init__(
            f"authentication tag mismatch (device {device_id:#010x}, counter {counter})"
        )
        self.device_id = device_id
        self.counter = counter


class Replayed(FrameError):
    reason = "replayed"

    def __init__(self, counter: int) -> None:
        super().__init__(f"counter {counter} was already accepted")
        self.counter = counter


class TooOld(FrameError):
    reason = "too_old"

    def __init__(self, counter: int, highest: int) -> None:
        super().__init__(f"counter {counter} is older than the replay window (highest {highest})")
        self.counter = counter
        self.highest = highest


class Malformed(FrameError):
    reason = "malformed"

    def __init__(self, message: str, path: str, detail: str) -> None:
        super().__init__(f"{message} body malformed at {path or '<body>'}: {detail}")
        self.message = message
        self.path = path
        self.detail = detail


class CounterExhausted(ProtocolError):
    reason = "counter_exhausted"

    def __init__(self) -> None:
        super().__init__("frame counter exhausted (2**32 frames): the device must be re-keyed")


class StreamError(ProtocolError):
    """A byte-stream framing problem; the decoder has already resynchronised."""


class CobsError(StreamError):
    reason = "cobs"

    def __init__(self, detail: str) -> None:
        super().__init__(f"invalid COBS frame: {detail}")
        self.detail = detail


class StreamOverflow(StreamError):
    reason = "overflow"

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes without a frame delimiter; discarding to next")
        self.limit = limit


class EncodeError(ProtocolError):
    """A message could not be encoded: a field is out of range or too long."""

    reason = "encode"


REASONS: tuple[str, ...] = (
    "truncated", "oversize", "bad_version", "unknown_type", "wrong_direction", "unknown_device",
    "resync_required", "bad_tag", "replayed", "too_old", "malformed", "cobs", "overflow",
    "counter_exhausted",
)
