"""Codec throughput and frame sizes, against baselines measured in the same run.

    python bench/codec.py [--seconds N] [--repeats N] [--profile]

Measures, on one core and on the same frames: telemetry encode (``encode_frame``), verify+decode
(``peek_header`` + ``open_frame``) with compiled and with interpreted construct, a plain
``struct`` unpack of the same 19-byte body (the floor for any decoder), and the HMAC alone. Then
prints the on-wire size of every message type next to LoRaWAN and signed MAVLink 2 for the same
telemetry body. The last line is machine-readable (bench/README.md).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import hmac
import io
import os
import pstats
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    import protocol  # noqa: F401 - installed, or run from the repository root with -m
except ImportError:  # ``python bench/codec.py`` from a checkout: the repo root is not on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol import (
    DeviceKeys,
    ReplayWindow,
    cobs_encode,
    encode_body,
    encode_frame,
    open_frame,
    peek_header,
    schema,
)
from protocol.messages import (
    DOWNLINK_TYPES,
    Ack,
    BootReason,
    Capability,
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
    Nack,
    NackCode,
    Telemetry,
    ThumbFormat,
    Thumbnail,
    Welcome,
)

TARGET_PER_S = 100_000
# LoRaWAN 1.0 uplink: MHDR 1 + FHDR 7 (DevAddr 4, FCtrl 1, FCnt 2) + FPort 1 + MIC 4.
LORAWAN_OVERHEAD = 13
# MAVLink 2 signed: header 10 + checksum 2 + signature 13 (link id 1, timestamp 6, sig 6).
MAVLINK2_SIGNED_OVERHEAD = 25

MASTER = hashlib.sha256(b"shorewatch bench: not a device key").digest()
KEYS = DeviceKeys.from_master(MASTER)
DEVICE = 0x5A17C0DE
UP = Direction.UP
TELEMETRY = Telemetry(3712, 5120, -85, 1275, 142, -67, 86400, 12, 480, 0x11)
TELEMETRY_BODY = struct.Struct("<HHhhBbIHHB")  # the hand-written equivalent of the 19-byte core
FRAMES_PER_PASS = 4096  # distinct counters 1..4096: every frame is new to a window at H = 0

TYPICAL: list[Message] = [
    Hello(1, 4, 2, HardwareKind.THERMAL_CAMERA, BootReason.DEEP_SLEEP,
          int(Capability.THERMAL | Capability.ENCRYPTION | Capability.OTA),
          schema.SCHEMA_FINGERPRINT, bytes(range(8)), 42),
    Welcome(bytes(range(8)), 1795680000, 250, 42, 0),
    TELEMETRY,
    Detection(7, Lifecycle.NEW, DetectionKind.PERSON, 87, 12, 5, 3, 7, 3150, 1, 1795680123, 250),
    Detection(8, Lifecycle.UPDATE, DetectionKind.GROUP, 64, 2, 3, 9, 8, 3010, 3, 1795680124, 5,
              Thumbnail(ThumbFormat.DEFLATE, 32, 24, bytes(500))),
    ConfigPush(42, (ConfigEntry(1, (900).to_bytes(2, "little")), ConfigEntry(2, bytes([70])),
                    ConfigEntry(7, b"beach-gw-3"), ConfigEntry(8, b"correct horse battery"))),
    ConfigAck(42, ConfigStatus.APPLIED, 0),
    FwOffer(3, 1, 4, 2, 412_000, 512, bytes(32)),
    FwRequest(3, 4096, 512),
    FwChunk(3, 4096, bytes(512)),
    FwResult(3, FwStatus.INSTALLED, 1, 4, 2),
    Ack(1234, 4),
    Nack(1234, NackCode.BUSY),
    Log(LogLevel.WARNING, "radar: no echo for 3 cycles, falling back to PIR"),
]


def _pin_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to cpu {cpu}"


def _rate(body: Callable[[int], int], seconds: float, repeats: int) -> tuple[float, int]:
    """Best-of-``repeats`` operations per second of ``body(n)``, which returns the ops it did.

    One untimed warmup, then the pass count is calibrated so each repeat runs ~seconds/repeats.
    """
    body(1)
    passes = 1
    while True:
        t0 = time.perf_counter()
        body(passes)
        elapsed = time.perf_counter() - t0
        if elapsed >= 0.05:
            break
        passes *= 2
    passes = max(1, round(passes * (seconds / repeats) / elapsed))
    best = 0.0
    ops = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        ops = body(passes)
        best = max(best, ops / (time.perf_counter() - t0))
    return best, ops


def _frames() -> list[bytes]:
    return [encode_frame(TELEMETRY, keys=KEYS, direction=UP, device_id=DEVICE, counter=c)
            for c in range(1, FRAMES_PER_PASS + 1)]


def bench_encode(passes: int) -> int:
    ops = 0
    for _ in range(passes):
        for counter in range(1, FRAMES_PER_PASS + 1):
            encode_frame(TELEMETRY, keys=KEYS, direction=UP, device_id=DEVICE, counter=counter)
            ops += 1
    return ops


def make_verify_decode(frames: list[bytes]) -> Callable[[int], int]:
    """peek_header + open_frame; each pass starts a receiver at H = 0, so no frame is a replay."""

    def run(passes: int) -> int:
        ok = 0
        for _ in range(passes):
            window = ReplayWindow(0)
            for frame in frames:
                header = peek_header(frame, UP)
                received = open_frame(frame, header, KEYS, window, 8)
                ok += 1
            if received.message != TELEMETRY or window.highest != len(frames):
                raise AssertionError(f"decoded {received.message}, window {window}")
        if ok != passes * len(frames):
            raise AssertionError(f"{ok} decodes for {passes * len(frames)} frames")
        return ok

    return run


def make_struct(frames: list[bytes]) -> Callable[[int], int]:
    unpack = TELEMETRY_BODY.unpack_from

    def run(passes: int) -> int:
        ops = 0
        for _ in range(passes):
            for frame in frames:
                unpack(frame, 7)
                ops += 1
        return ops

    return run


def make_hmac(frames: list[bytes]) -> Callable[[int], int]:
    mac = KEYS.mac_up
    counters = [(c).to_bytes(4, "little") for c in range(1, len(frames) + 1)]
    pairs = list(zip(counters, [f[:-8] for f in frames], strict=True))

    def run(passes: int) -> int:
        ops = 0
        for _ in range(passes):
            for counter, signed in pairs:
                mac.digest(counter, signed)
                ops += 1
        return ops

    return run


def make_stdlib_hmac(frames: list[bytes]) -> Callable[[int], int]:
    key = hmac.new(MASTER, b"sw1 mac up", hashlib.sha256).digest()
    inputs = [c.to_bytes(4, "little") + f[:-8] for c, f in enumerate(frames, 1)]
    one_shot = hmac.digest

    def run(passes: int) -> int:
        ops = 0
        for _ in range(passes):
            for data in inputs:
                one_shot(key, data, "sha256")
                ops += 1
        return ops

    return run


def _size_rows() -> list[tuple[str, int, int, int, int]]:
    rows = []
    for msg in TYPICAL:
        direction = Direction.DOWN if msg.TYPE in DOWNLINK_TYPES else UP
        std = encode_frame(msg, keys=KEYS, direction=direction, device_id=DEVICE, counter=70000)
        lora = encode_frame(msg, keys=KEYS, direction=direction, device_id=DEVICE, counter=70000,
                            tag_len=4)
        name = msg.TYPE.name + ("+thumb" if isinstance(msg, Detection) and msg.thumbnail else "")
        rows.append((name, len(encode_body(msg)), len(std), len(lora), len(cobs_encode(lora))))
    return rows


def _profile(frames: list[bytes]) -> str:
    profiler = cProfile.Profile()
    run = make_verify_decode(frames)
    profiler.enable()
    run(25)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="timed seconds per measurement, split over the repeats (default 1)")
    parser.add_argument("--repeats", type=int, default=5, help="best of N (default 5)")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of compiled verify+decode")
    args = parser.parse_args(argv)

    pinned = _pin_one_core()
    frames = _frames()
    telemetry_bytes = len(frames[0])
    print(f"Python {sys.version.split()[0]}, {pinned}, best of {args.repeats}, "
          f"~{args.seconds:g} s per row, {len(frames)} telemetry frames of {telemetry_bytes} B")

    rates: dict[str, float] = {}
    rates["encode"], _ = _rate(bench_encode, args.seconds, args.repeats)
    for mode in schema.MODES:
        schema.use_mode(mode)
        rates[f"verify_decode_{mode}"], _ = _rate(make_verify_decode(frames), args.seconds,
                                                  args.repeats)
    schema.use_mode("packed")
    rates["struct"], _ = _rate(make_struct(frames), args.seconds, args.repeats)
    rates["hmac"], _ = _rate(make_hmac(frames), args.seconds, args.repeats)
    rates["hmac_stdlib"], _ = _rate(make_stdlib_hmac(frames), args.seconds, args.repeats)

    labels = [
        ("encode", "encode_frame (telemetry, 8 B tag)"),
        ("verify_decode_packed", "peek_header + open_frame, packed (default)"),
        ("verify_decode_compiled", "peek_header + open_frame, compiled construct"),
        ("verify_decode_interpreted", "peek_header + open_frame, interpreted construct"),
        ("struct", "baseline: struct.unpack_from of the 19-byte body"),
        ("hmac", "HMAC-SHA256 only (protocol.crypto.Mac, precomputed pads)"),
        ("hmac_stdlib", "HMAC-SHA256 only (stdlib hmac.digest, one shot)"),
    ]
    print()
    print(f"{'operation':<58} {'frames/s':>12} {'us/frame':>9}")
    print("-" * 81)
    for key, label in labels:
        print(f"{label:<58} {rates[key]:>12,.0f} {1e6 / rates[key]:>9.2f}")
    verify = rates["verify_decode_packed"]
    print()
    print(f"verify+decode / struct:  packed {verify / rates['struct']:.3f}, "
          f"compiled {rates['verify_decode_compiled'] / rates['struct']:.3f}, "
          f"interpreted {rates['verify_decode_interpreted'] / rates['struct']:.3f}")
    print(f"packed / interpreted:  {verify / rates['verify_decode_interpreted']:.2f}x")
    print(f"target {TARGET_PER_S:,} verify+decode/s on one core: "
          f"{'met' if verify >= TARGET_PER_S else 'NOT met'}")

    print()
    print(f"{'message (typical)':<20} {'body':>5} {'std 8B tag':>11} {'lora 4B tag':>12} "
          f"{'lora COBS':>10}")
    print("-" * 62)
    for name, body, std, lora, cobs in _size_rows():
        print(f"{name:<20} {body:>5} {std:>11} {lora:>12} {cobs:>10}")

    body = len(encode_body(TELEMETRY))
    print()
    print(f"telemetry ({body} B body) on the wire:")
    for label, size in [
        ("Shorewatch std (7 B header + 8 B tag)", telemetry_bytes),
        ("Shorewatch lora (7 B header + 4 B tag)", body + 7 + 4),
        (f"LoRaWAN ({LORAWAN_OVERHEAD} B overhead incl. 4 B MIC)", body + LORAWAN_OVERHEAD),
        (f"MAVLink 2 signed ({MAVLINK2_SIGNED_OVERHEAD} B overhead)",
         body + MAVLINK2_SIGNED_OVERHEAD),
    ]:
        print(f"  {label:<48} {size:>4} B")

    if args.profile:
        print()
        print(_profile(frames))

    print(f"RESULT telemetry_frame_bytes={telemetry_bytes} verify_decode_per_s={verify:.0f} "
          f"struct_decode_per_s={rates['struct']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
