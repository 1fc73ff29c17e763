"""A corpus of malformed, forged and replayed datagrams, each labelled with what the gateway must
count it as (``shorewatch_frames_rejected_total{reason}``, docs/protocol.md section 3).

Most classes have exactly one possible reason, chosen by construction: truncated, oversize,
bad_version, unknown_type, wrong_direction, unknown_device, resync_required (a registered device
that never said HELLO), bad_tag (a long-header HELLO under a wrong key), malformed (authentic
frames of a device whose keys the attacker holds, with bodies the codec refuses), replayed and
too_old (re-sent frames of a device that has gone quiet). Random garbage, bit flips and replays
of frames of devices that keep talking may be rejected for several reasons: their label lists
the reasons allowed (empty = any reason), never "accepted".
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from protocol import DeviceKeys, Malformed, decode_body, seal
from protocol.limits import MAX_FRAME_SIZE, REPLAY_WINDOW_BITS, SHORT_HEADER
from protocol.messages import DOWNLINK_TYPES, UPLINK_TYPES, Direction, MessageType

from .loadgen import Identity, SimDevice

_SHORT: Final = struct.Struct("<BIH")
_LONG: Final = struct.Struct("<BII")
_VERSION_BITS: Final = 0x40
_UP_TELEMETRY: Final = _VERSION_BITS | int(MessageType.TELEMETRY)
_UP_HELLO: Final = _VERSION_BITS | int(MessageType.HELLO)
# Largest datagram the corpus sends: well past MAX_FRAME_SIZE, well under the UDP limit.
MAX_OVERSIZE: Final = 4000
_RESERVED_TYPES: Final = (0, 14, 15)
_TELEMETRY_LEN: Final = 7 + 19 + 8

# Bodies the codec refuses although the frame is authentic (checked at construction).
_MALFORMED_BODIES: Final = (
    (MessageType.DETECTION, struct.pack("<IBBBBBBBhBIH", 7, 9, 1, 80, 0, 0, 0, 0, 3100, 1,
                                        1_800_000_000, 0)),  # lifecycle 9
    (MessageType.DETECTION, struct.pack("<IBBBBBBBhBIH", 7, 0, 1, 150, 0, 0, 0, 0, 3100, 1,
                                        1_800_000_000, 0)),  # confidence 150 %
    (MessageType.DETECTION, struct.pack("<IBBBBBBBhBIH", 7, 0, 1, 80, 0, 0, 0, 0, 3100, 1,
                                        1_800_000_000, 1500)),  # ts_ms 1500
    (MessageType.DETECTION, bytes(11)),  # core cut short
    (MessageType.TELEMETRY, bytes(12)),  # core cut short
    (MessageType.CONFIG_ACK, bytes([1, 0, 9, 0])),  # status 9
    (MessageType.LOG, bytes([1, 3]) + b"\xff\xfe\xfd"),  # invalid UTF-8
    (MessageType.LOG, bytes([7, 2]) + b"hi"),  # level 7
    (MessageType.FW_REQUEST, struct.pack("<HIH", 1, 0, 0)),  # length 0
)


@dataclass(frozen=True, slots=True)
class Bad:
    """One hostile datagram: its class, the reasons it may be counted under, its bytes."""

    kind: str
    reasons: frozenset[str]  # empty: any rejection reason (never an acceptance)
    data: bytes
    counter: int = -1  # full counter of an authentic frame (malformed class), else -1


def _one(reason: str) -> frozenset[str]:
    return frozenset((reason,))


ANY: Final = frozenset[str]()
REPLAY_REASONS: Final = frozenset(("replayed", "too_old"))


class Attacker:
    """Builds bad datagrams for a gateway whose registry holds ``registered``.

    ``silent`` is registered and never sends anything authentic (its short frames need a
    resync). ``replay_victim`` and ``malformed_victim`` are welcomed devices whose keys the
    attacker holds; the victim of replays must have recorded its frames (``record_frames``) and
    must send nothing after them; the malformed victim's counter goes on with each frame built.
    """

    def __init__(self, rng: random.Random, registered: Iterable[int], *, silent: Identity,
                 replay_victim: SimDevice, malformed_victim: SimDevice) -> None:
        self._rng = rng
        self._registered = set(registered)
        self._registered_list = sorted(self._registered)
        self._silent = silent
        self._replay = replay_victim
        self._malformed = malformed_victim
        self._wrong_key = DeviceKeys.from_master(rng.randbytes(32))
        for mtype, body in _MALFORMED_BODIES:
            try:
                decode_body(mtype, body)
            except Malformed:
                continue
            raise ValueError(f"{mtype.name} body {body.hex()} decodes: not malformed")
        frames = replay_victim.frames
        if not frames:
            raise ValueError("the replay victim recorded no frames (LoadProfile.record_frames)")
        self._victim_frames = frames
        self._victim_highest = frames[-1][0]

    # --- one datagram per class -----------------------------------------------------------

    def truncated(self) -> Bad:
        r = self._rng
        choice = r.randrange(3)
        if choice == 0:  # shorter than any header (0..6 bytes, even empty)
            data = r.randbytes(r.randrange(SHORT_HEADER))
        elif choice == 1:  # a HELLO header cut inside the 32-bit counter
            data = bytes([_UP_HELLO]) + r.randbytes(r.randrange(SHORT_HEADER - 1, 8))
        else:  # a registered device's telemetry cut inside its tag
            dev = self._pick_registered()
            n = r.randrange(SHORT_HEADER, SHORT_HEADER + 4)  # short even for 4-byte tags
            data = (_SHORT.pack(_UP_TELEMETRY, dev, r.randrange(65536)) + r.randbytes(8))[:n]
        return Bad("truncated", _one("truncated"), data)

    def oversize(self) -> Bad:
        r = self._rng
        data = r.randbytes(r.randrange(MAX_FRAME_SIZE + 1, MAX_OVERSIZE))
        return Bad("oversize", _one("oversize"), data)

    def bad_version(self) -> Bad:
        r = self._rng
        hdr = (r.choice((0, 2, 3)) << 6) | r.randrange(64)
        return Bad("bad_version", _one("bad_version"), bytes([hdr]) + r.randbytes(
            r.randrange(SHORT_HEADER - 1, 64)))

    def unknown_type(self) -> Bad:
        r = self._rng
        hdr = _VERSION_BITS | (r.randrange(4) << 4) | r.choice(_RESERVED_TYPES)
        return Bad("unknown_type", _one("unknown_type"), bytes([hdr]) + r.randbytes(
            r.randrange(SHORT_HEADER - 1, 64)))

    def wrong_direction(self) -> Bad:
        r = self._rng
        if r.randrange(2):  # anything marked downlink
            mtype = r.choice(sorted(UPLINK_TYPES | DOWNLINK_TYPES))
            hdr = _VERSION_BITS | 0x20 | int(mtype)
        else:  # a downlink-only type marked uplink
            mtype = r.choice(sorted(DOWNLINK_TYPES - UPLINK_TYPES))
            hdr = _VERSION_BITS | int(mtype)
        dev = self._pick_registered()
        data = _SHORT.pack(hdr, dev, r.randrange(65536)) + r.randbytes(r.randrange(0, 40))
        return Bad("wrong_direction", _one("wrong_direction"), data)

    def unknown_device(self) -> Bad:
        r = self._rng
        dev = r.randrange(1 << 32)
        for _ in range(64):  # a registered id is drawn with odds of (devices / 2**32)
            if dev not in self._registered:
                break
            dev = r.randrange(1 << 32)
        else:
            raise ValueError("no unregistered device id found")
        if r.randrange(2):
            data = _LONG.pack(_UP_HELLO, dev, r.randrange(1 << 32)) + r.randbytes(28)
        else:
            data = _SHORT.pack(_UP_TELEMETRY, dev, r.randrange(65536)) + r.randbytes(27)
        return Bad("unknown_device", _one("unknown_device"), data)

    def resync_required(self) -> Bad:
        """Short-header frames of a device with no session: the counter cannot be rebuilt."""
        r = self._rng
        data = _SHORT.pack(_UP_TELEMETRY, self._silent.device_id, r.randrange(65536))
        return Bad("resync_required", _one("resync_required"),
                   data + r.randbytes(_TELEMETRY_LEN - len(data)))

    def forged(self) -> Bad:
        """A well-formed HELLO of a registered device under a key the attacker made up."""
        r = self._rng
        body = r.randbytes(20)
        data = seal(MessageType.HELLO, body, keys=self._wrong_key, direction=Direction.UP,
                    device_id=self._pick_registered(), counter=r.randrange(1 << 32))
        return Bad("forged", _one("bad_tag"), data)

    def malformed(self) -> Bad:
        """An authentic frame of the malformed victim whose body the codec refuses."""
        mtype, body = self._rng.choice(_MALFORMED_BODIES)
        counter, data = self._malformed.seal(mtype, body)
        return Bad("malformed", _one("malformed"), data, counter)

    def replayed(self) -> Bad:
        """A frame the (now quiet) victim had sent and the gateway accepted, within the window."""
        lo = max(0, len(self._victim_frames) - REPLAY_WINDOW_BITS)
        counter, data = self._victim_frames[self._rng.randrange(lo, len(self._victim_frames))]
        reason = "too_old" if self._victim_highest - counter >= REPLAY_WINDOW_BITS else "replayed"
        return Bad("replayed", _one(reason), data)

    def too_old(self) -> Bad:
        """A frame of the victim older than the replay window."""
        old = [f for f in self._victim_frames
               if self._victim_highest - f[0] >= REPLAY_WINDOW_BITS]
        if not old:
            raise ValueError(f"the replay victim needs more than {REPLAY_WINDOW_BITS} frames")
        _, data = self._rng.choice(old)
        return Bad("too_old", _one("too_old"), data)

    def garbage(self) -> Bad:
        r = self._rng
        return Bad("garbage", ANY, r.randbytes(r.randrange(0, MAX_FRAME_SIZE + 64)))

    def bit_flip(self, frames: list[bytes]) -> Bad:
        """One authentic frame (from ``frames``) with one bit flipped."""
        r = self._rng
        data = bytearray(r.choice(frames))
        bit = r.randrange(len(data) * 8)
        data[bit // 8] ^= 1 << (bit % 8)
        return Bad("bit_flip", ANY, bytes(data))

    # --- mixes ------------------------------------------------------------------------------

    def corpus(self, count: int, *, flip_sources: list[bytes] | None = None) -> list[Bad]:
        """``count`` datagrams, the classes in equal shares, shuffled (malformed frames keep
        their counter order, since each consumed an authentic counter)."""
        makers = [self.truncated, self.oversize, self.bad_version, self.unknown_type,
                  self.wrong_direction, self.unknown_device, self.resync_required, self.forged,
                  self.malformed, self.replayed, self.too_old, self.garbage]
        sources = flip_sources or [f for _, f in self._victim_frames]
        out: list[Bad] = []
        for i in range(count):
            k = i % (len(makers) + 1)
            out.append(self.bit_flip(sources) if k == len(makers) else makers[k]())
        self._rng.shuffle(out)
        # A malformed frame is authentic: a later counter accepted first would make an earlier
        # one "replayed" or "too_old". Put the malformed ones back in counter order.
        slots = [i for i, b in enumerate(out) if b.kind == "malformed"]
        ordered = sorted((out[i] for i in slots), key=lambda b: b.counter)
        for i, b in zip(slots, ordered, strict=True):
            out[i] = b
        return out

    def _pick_registered(self) -> int:
        return self._rng.choice(self._registered_list)


def check_counts(bad: Iterable[Bad], got: Mapping[str, float]) -> list[str]:
    """What is wrong (nothing: empty) with rejection counts ``got`` (by reason) for ``bad``.

    Every datagram must be counted exactly once; a reason may be counted at least as often as
    the datagrams that can only be that reason, at most that plus those that may be it.
    """
    exact: Counter[str] = Counter()
    flexible: Counter[str] = Counter()
    anything = total = 0
    for b in bad:
        total += 1
        if len(b.reasons) == 1:
            exact.update(b.reasons)
        elif b.reasons:
            flexible.update(b.reasons)
        else:
            anything += 1
    problems = []
    counted = sum(got.values())
    if counted != total:
        problems.append(f"{counted:.0f} rejections counted for {total} bad datagrams")
    for reason in sorted(set(exact) | set(flexible) | {r for r, v in got.items() if v}):
        low = exact[reason]
        high = low + flexible[reason] + anything
        value = got.get(reason, 0)
        if not low <= value <= high:
            problems.append(f"{reason}: counted {value:.0f}, corpus allows {low}..{high}")
    return problems
