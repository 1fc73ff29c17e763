"""Regenerate the golden vectors from the CPython codec: ``python -m protocol.vectors [--check]``.

Every input is fixed here, so the output is byte-for-byte reproducible. ``--check`` exits 1 when
a committed file differs from what the codec produces now.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from typing import Any

from .. import messages as m
from ..cobs import StreamDecoder, cobs_encode
from ..crypto import DeviceKeys
from ..errors import ProtocolError, UnknownDevice
from ..frame import Received, encode_frame, open_frame, peek_header, seal
from ..limits import MAX_CONFIG_VALUE, MAX_FRAME_SIZE, MAX_FW_CHUNK, MAX_LOG_TEXT, MAX_THUMBNAIL
from ..replay import ReplayWindow
from ..schema import SCHEMA_FINGERPRINT, encode_body
from . import DIR, FILES, to_json

# A public, well-known key: vectors must be reproducible, and no device ever uses it.
MASTER = hashlib.sha256(b"shorewatch golden vectors: public test key, never provisioned").digest()
KEYS = DeviceKeys.from_master(MASTER)
DEV = 0x5A17C0DE
UP, DOWN = m.Direction.UP, m.Direction.DOWN


def _pattern(n: int, seed: int) -> bytes:
    out = b""
    while len(out) < n:
        out += hashlib.sha256(seed.to_bytes(4, "little") + len(out).to_bytes(4, "little")).digest()
    return out[:n]


TELEMETRY = m.Telemetry(3712, 5120, -85, 1275, 142, -67, 86400, 12, 480, 0x11)
TELEMETRY_EXTREMES = m.Telemetry(65535, 0, -32768, -32768, 255, -128, 0xFFFFFFFF, 65535, 65535,
                                 0x7F)
TELEMETRY_ZERO = m.Telemetry(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
HELLO = m.Hello(1, 2, 3, m.HardwareKind.SENSOR_NODE, m.BootReason.POWER_ON,
                int(m.Capability.PIR | m.Capability.POWER_MONITOR | m.Capability.ENCRYPTION),
                SCHEMA_FINGERPRINT, bytes.fromhex("0102030405060708"), 0)
HELLO_CFG = m.Hello(255, 255, 65535, m.HardwareKind.THERMAL_CAMERA, m.BootReason.DEEP_SLEEP,
                    0x1FF, SCHEMA_FINGERPRINT, bytes.fromhex("f0e1d2c3b4a59687"), 42)
WELCOME = m.Welcome(bytes.fromhex("0102030405060708"), 1795680000, 999, 42,
                    int(m.WelcomeFlag.CONFIG_PENDING))
THUMB = m.Thumbnail(m.ThumbFormat.RAW, 8, 6, _pattern(48, 1))
DETECTION = m.Detection(7, m.Lifecycle.NEW, m.DetectionKind.PERSON, 87, 12, 5, 3, 7, 3150, 1,
                        1795680123, 250)
DETECTION_END = m.Detection(0xFFFFFFFF, m.Lifecycle.END, m.DetectionKind.BOAT, 100, 255, 255, 255,
                            255, -2000, 255, 0, 0)
DETECTION_THUMB = m.Detection(8, m.Lifecycle.UPDATE, m.DetectionKind.GROUP, 64, 2, 3, 9, 8, 3010, 3,
                              1795680124, 5, THUMB)
DETECTION_MAX_THUMB = m.Detection(
    9, m.Lifecycle.NEW, m.DetectionKind.ANIMAL, 50, 0, 0, 32, 24, 2900, 1, 1795680125, 0,
    m.Thumbnail(m.ThumbFormat.DEFLATE, 32, 24, _pattern(MAX_THUMBNAIL, 2)))
CONFIG_PUSH = m.ConfigPush(42, (
    m.ConfigEntry(1, (900).to_bytes(2, "little")), m.ConfigEntry(2, bytes([70])),
    m.ConfigEntry(8, b"correct horse battery staple"),
))
CONFIG_PUSH_EMPTY = m.ConfigPush(0, ())
CONFIG_PUSH_MAX = m.ConfigPush(65535, tuple(
    m.ConfigEntry(k, _pattern(MAX_CONFIG_VALUE, k)) for k in range(1, 18)))
LOG_MAX = m.Log(m.LogLevel.CRITICAL, ("é" * (MAX_LOG_TEXT // 2)))


def _v(vid: str, msg: m.Message, direction: m.Direction, counter: int, *, tag_len: int = 8,
       encrypt: bool = False) -> dict[str, Any]:
    frame = encode_frame(msg, keys=KEYS, direction=direction, device_id=DEV, counter=counter,
                         tag_len=tag_len, encrypt=encrypt)
    return {"id": vid, "type": msg.TYPE.name, "direction": direction.name.lower(),
            "device_id": DEV, "counter": counter, "tag_len": tag_len, "encrypt": encrypt,
            "fields": to_json(msg), "frame": frame.hex()}


def messages() -> dict[str, Any]:
    vs = [
        _v("hello-basic", HELLO, UP, 0),
        _v("hello-config-version", HELLO_CFG, UP, 4096),
        _v("hello-counter-max", HELLO, UP, 0xFFFFFFFF),
        _v("welcome-basic", WELCOME, DOWN, 17),
        _v("welcome-lora", WELCOME, DOWN, 70000, tag_len=4),
        _v("telemetry-basic", TELEMETRY, UP, 5),
        _v("telemetry-extremes-negative", TELEMETRY_EXTREMES, UP, 65535),
        _v("telemetry-zero", TELEMETRY_ZERO, UP, 65536),
        _v("telemetry-lora", TELEMETRY, UP, 0x12345678, tag_len=4),
        _v("telemetry-encrypted", TELEMETRY, UP, 6, encrypt=True),
        _v("detection-new", DETECTION, UP, 100),
        _v("detection-end-extremes", DETECTION_END, UP, 101),
        _v("detection-thumbnail", DETECTION_THUMB, UP, 102),
        _v("detection-thumbnail-encrypted", DETECTION_THUMB, UP, 103, encrypt=True),
        _v("detection-max-thumbnail-encrypted", DETECTION_MAX_THUMB, UP, 104, encrypt=True),
        _v("config-push-secret-encrypted", CONFIG_PUSH, DOWN, 18, encrypt=True),
        _v("config-push-empty", CONFIG_PUSH_EMPTY, DOWN, 19),
        _v("config-push-max", CONFIG_PUSH_MAX, DOWN, 20),
        _v("config-ack-applied", m.ConfigAck(42, m.ConfigStatus.APPLIED, 0), UP, 105),
        _v("config-ack-partial", m.ConfigAck(43, m.ConfigStatus.PARTIAL, 200), UP, 106),
        _v("fw-offer", m.FwOffer(3, 1, 3, 0, 123456, 512, _pattern(32, 3)), DOWN, 21),
        _v("fw-request", m.FwRequest(3, 1024, 512), UP, 107),
        _v("fw-chunk-max", m.FwChunk(3, 0xFFFFFFFF, _pattern(MAX_FW_CHUNK, 4)), DOWN, 22),
        _v("fw-chunk-empty", m.FwChunk(3, 0, b""), DOWN, 23),
        _v("fw-result-installed", m.FwResult(3, m.FwStatus.INSTALLED, 1, 3, 0), UP, 108),
        _v("fw-result-trial-failed", m.FwResult(3, m.FwStatus.TRIAL_FAILED, 1, 3, 0), UP, 109),
        _v("ack-up", m.Ack(21, int(m.MessageType.FW_OFFER)), UP, 110),
        _v("ack-down", m.Ack(101, int(m.MessageType.DETECTION)), DOWN, 24),
        _v("nack-down", m.Nack(5, m.NackCode.RESYNC_REQUIRED), DOWN, 25),
        _v("nack-up", m.Nack(22, m.NackCode.TOO_LARGE), UP, 111),
        _v("log-info", m.Log(m.LogLevel.INFO, "pir fired, radar confirms"), UP, 112),
        _v("log-empty", m.Log(m.LogLevel.DEBUG, ""), UP, 113),
        _v("log-max-utf8", LOG_MAX, UP, 114),
    ]
    return {"master_key": MASTER.hex(), "device_id": DEV,
            "schema_fingerprint": SCHEMA_FINGERPRINT, "vectors": vs}


def _receive(frame: bytes, direction: m.Direction, window: ReplayWindow,
             tag_len: int) -> Received | ProtocolError:
    try:
        header = peek_header(frame, direction)
        if header.device_id != DEV:
            raise UnknownDevice(header.device_id)
        return open_frame(frame, header, KEYS, window, tag_len)
    except ProtocolError as exc:
        return exc


def _d(vid: str, frame: bytes, *, direction: m.Direction = UP, highest: int | None = 0,
       tag_len: int = 8) -> dict[str, Any]:
    window = ReplayWindow(highest)
    outcome = _receive(frame, direction, window, tag_len)
    vector: dict[str, Any] = {"id": vid, "direction": direction.name.lower(), "device_id": DEV,
                              "tag_len": tag_len, "highest": highest, "frame": frame.hex()}
    if isinstance(outcome, ProtocolError):
        vector["error"] = outcome.reason
    else:
        vector["type"] = outcome.message.TYPE.name
        vector["counter"] = outcome.counter
        vector["highest_after"] = window.highest
        vector["fields"] = to_json(outcome.message)
    return vector


def _raw(mtype: m.MessageType, body: bytes, counter: int = 7, *, direction: m.Direction = UP,
         **kw: Any) -> bytes:
    return seal(mtype, body, keys=KEYS, direction=direction, device_id=DEV, counter=counter, **kw)


def _flip(frame: bytes, index: int, mask: int = 1) -> bytes:
    b = bytearray(frame)
    b[index] ^= mask
    return bytes(b)


def decode() -> dict[str, Any]:
    T = m.MessageType  # noqa: N806 - short alias for a long table
    tel = encode_body(TELEMETRY)
    tel_frame = _raw(T.TELEMETRY, tel)
    det = encode_body(DETECTION)
    det_thumb = encode_body(DETECTION_THUMB)
    hello = encode_body(HELLO)
    down_keys = DeviceKeys.from_master(MASTER)
    cases = [
        _d("ok-telemetry", tel_frame),
        _d("truncated-empty", b""),
        _d("truncated-short-header", tel_frame[:6]),
        _d("truncated-no-tag", tel_frame[:10]),
        _d("truncated-long-header", _raw(T.HELLO, hello)[:8], highest=None),
        _d("cut-tag-is-bad-tag", tel_frame[:-1]),
        # Section 3 order: the header byte is judged before the device, the device before the
        # header + tag length (the tag length is a property of the device).
        _d("order-bad-version-before-length", bytes([0xC3]) + tel_frame[1:14]),
        _d("order-unknown-type-before-length", bytes([0x4F]) + tel_frame[1:14]),
        _d("order-wrong-direction-before-length", bytes([0x6B]) + tel_frame[1:14]),
        _d("order-unknown-device-before-length", tel_frame[:1] + (DEV + 1).to_bytes(4, "little")
           + tel_frame[5:7]),
        _d("order-known-device-short-of-tag", tel_frame[:14]),
        _d("order-wrong-direction-before-long-header-length", bytes([0x42]) + bytes(6)),
        _d("oversize", _raw(T.LOG, b"\x01\x00") + bytes(MAX_FRAME_SIZE)),
        _d("bad-version-0", _flip(tel_frame, 0, 0x40)),
        _d("bad-version-2", _raw(T.TELEMETRY, tel, hdr=0x83)),
        _d("bad-version-3", _raw(T.TELEMETRY, tel, hdr=0xC3)),
        _d("unknown-type-0", _raw(T.TELEMETRY, tel, hdr=0x40)),
        _d("unknown-type-14", _raw(T.TELEMETRY, tel, hdr=0x4E)),
        _d("unknown-type-15", _raw(T.TELEMETRY, tel, hdr=0x4F)),
        _d("downlink-at-uplink-receiver", _raw(T.ACK, encode_body(m.Ack(1, 3)), direction=DOWN)),
        _d("welcome-sent-uplink", _raw(T.WELCOME, encode_body(WELCOME), hdr=0x42),
           highest=None),
        _d("telemetry-sent-downlink", _raw(T.TELEMETRY, tel, direction=DOWN), direction=DOWN),
        _d("wrong-direction-key", _raw(T.TELEMETRY, tel, direction=DOWN, hdr=0x43)),
        _d("unknown-device", seal(T.TELEMETRY, tel, keys=KEYS, direction=UP, device_id=DEV + 1,
                                  counter=7)),
        _d("resync-required-short-header", tel_frame, highest=None),
        _d("bad-tag-bit-in-tag", _flip(tel_frame, len(tel_frame) - 1)),
        _d("bad-tag-bit-in-body", _flip(tel_frame, 10)),
        _d("bad-tag-bit-in-header-counter", _flip(tel_frame, 5)),
        _d("bad-tag-encryption-bit-flipped", _flip(tel_frame, 0, 0x10)),
        _d("bad-tag-other-key", seal(T.TELEMETRY, tel,
                                     keys=DeviceKeys.from_master(bytes(32)), direction=UP,
                                     device_id=DEV, counter=7)),
        _d("lora-frame-at-std-receiver", _raw(T.TELEMETRY, tel, tag_len=4)),
        _d("lora-receiver", _raw(T.TELEMETRY, tel, tag_len=4), tag_len=4),
        _d("replayed-equal-to-highest", _raw(T.TELEMETRY, tel, counter=0)),
        _d("too-old-64", _raw(T.TELEMETRY, tel, counter=36), highest=100),
        _d("in-window-63", _raw(T.TELEMETRY, tel, counter=37), highest=100),
        _d("longer-body-ignored-tail", _raw(T.TELEMETRY, tel + b"\xde\xad\xbe\xef\x01")),
        _d("telemetry-core-truncated", _raw(T.TELEMETRY, tel[:-1])),
        _d("telemetry-empty-body", _raw(T.TELEMETRY, b"")),
        _d("hello-without-trailing-group", _raw(T.HELLO, hello), highest=None),
        _d("hello-half-trailing-group", _raw(T.HELLO, hello + b"\x2a"), highest=None),
        _d("hello-trailing-group-and-newer-fields",
           _raw(T.HELLO, encode_body(HELLO_CFG) + b"\x00\x01\x02"), highest=None),
        _d("hello-open-enums-unknown", _raw(T.HELLO, hello[:4] + b"\x09\x63" + hello[6:]),
           highest=None),
        _d("detection-without-thumbnail", _raw(T.DETECTION, det)),
        _d("detection-partial-thumbnail-header", _raw(T.DETECTION, det + b"\x01\x08\x06")),
        _d("detection-thumbnail-short-data", _raw(T.DETECTION, det_thumb[:-1])),
        _d("detection-thumbnail-plus-newer-fields", _raw(T.DETECTION, det_thumb + b"\x05\x06")),
        _d("detection-thumbnail-over-cap", _raw(
            T.DETECTION, det + bytes([2, 32, 32]) + (MAX_THUMBNAIL + 1).to_bytes(2, "little")
            + bytes(MAX_THUMBNAIL + 1))),
        _d("detection-thumbnail-format-0", _raw(T.DETECTION, det + bytes([0, 1, 1, 1, 0, 9]))),
        _d("detection-thumbnail-format-3", _raw(T.DETECTION, det + bytes([3, 1, 1, 1, 0, 9]))),
        _d("detection-lifecycle-3", _raw(T.DETECTION, det[:4] + b"\x03" + det[5:])),
        _d("detection-kind-unknown-value", _raw(T.DETECTION, det[:5] + b"\x63" + det[6:])),
        _d("detection-confidence-101", _raw(T.DETECTION, det[:6] + b"\x65" + det[7:])),
        _d("detection-ts-ms-1000", _raw(T.DETECTION, det[:18] + b"\xe8\x03")),
        _d("detection-encrypted", _raw(T.DETECTION, det_thumb, encrypt=True)),
        _d("welcome-unix-ms-1000", _raw(T.WELCOME, encode_body(WELCOME)[:12] + b"\xe8\x03"
                                        + encode_body(WELCOME)[14:], direction=DOWN),
           direction=DOWN, highest=None),
        _d("config-push-33-entries", _raw(T.CONFIG_PUSH, b"\x01\x00\x21" + b"\x01\x00" * 33,
                                          direction=DOWN), direction=DOWN),
        _d("config-push-value-65", _raw(T.CONFIG_PUSH, b"\x01\x00\x01\x07\x41" + bytes(65),
                                        direction=DOWN), direction=DOWN),
        _d("config-push-keys-not-increasing", _raw(
            T.CONFIG_PUSH, b"\x01\x00\x02\x02\x01\x05\x01\x01\x05", direction=DOWN),
           direction=DOWN),
        _d("config-push-entry-truncated", _raw(T.CONFIG_PUSH, b"\x01\x00\x01\x07\x05abc",
                                               direction=DOWN), direction=DOWN),
        _d("config-push-encrypted", _raw(T.CONFIG_PUSH, encode_body(CONFIG_PUSH), direction=DOWN,
                                         encrypt=True), direction=DOWN),
        _d("config-ack-status-3", _raw(T.CONFIG_ACK, b"\x01\x00\x03\x00")),
        _d("fw-offer-chunk-size-0", _raw(T.FW_OFFER, encode_body(
            m.FwOffer(1, 1, 0, 0, 10, 1, bytes(32)))[:10] + b"\x00\x00" + bytes(32),
            direction=DOWN), direction=DOWN),
        _d("fw-offer-chunk-size-1025", _raw(T.FW_OFFER, encode_body(
            m.FwOffer(1, 1, 0, 0, 10, 1, bytes(32)))[:10] + b"\x01\x04" + bytes(32),
            direction=DOWN), direction=DOWN),
        _d("fw-request-length-0", _raw(T.FW_REQUEST, b"\x01\x00" + bytes(4) + b"\x00\x00")),
        _d("fw-chunk-length-1025", _raw(T.FW_CHUNK, b"\x01\x00" + bytes(4) + b"\x01\x04"
                                        + bytes(1025 - 30), direction=DOWN), direction=DOWN),
        _d("fw-chunk-data-short", _raw(T.FW_CHUNK, b"\x01\x00" + bytes(4) + b"\x10\x00"
                                       + bytes(15), direction=DOWN), direction=DOWN),
        _d("fw-result-status-8", _raw(T.FW_RESULT, b"\x01\x00\x08\x01\x00\x00\x00")),
        _d("nack-code-unknown-value", _raw(T.NACK, b"\x05\x00\x00\x00\x63", direction=DOWN),
           direction=DOWN),
        _d("log-level-5", _raw(T.LOG, b"\x05\x02hi")),
        _d("log-length-193", _raw(T.LOG, b"\x01\xc1" + b"a" * 193)),
        _d("log-invalid-utf8", _raw(T.LOG, b"\x01\x02\xc3\x28")),
        _d("log-text-short", _raw(T.LOG, b"\x01\x05abc")),
    ]
    del down_keys
    return {"master_key": MASTER.hex(), "vectors": cases}


def replay() -> dict[str, Any]:
    T = m.MessageType  # noqa: N806 - short alias for a long table
    tel = encode_body(TELEMETRY)
    hello = encode_body(HELLO)

    def tf(counter: int) -> bytes:
        return _raw(T.TELEMETRY, tel, counter)

    def hf(counter: int) -> bytes:
        return _raw(T.HELLO, hello, counter)

    forged = _flip(tf(20), len(tf(20)) - 1)
    sequences: list[tuple[str, int | None, list[bytes]]] = [
        ("duplicate", 9, [tf(10), tf(10)]),
        ("out-of-order-in-window", 0, [tf(100), tf(90), tf(95), tf(90), tf(37), tf(36)]),
        ("low16-wrap", 0xFFFE, [tf(0xFFFF), tf(0x10000), tf(0x10001), tf(0xFFFF)]),
        ("hello-jump-then-short", 5, [hf(100000), tf(100001), tf(99999), hf(100000)]),
        ("short-header-jump-beyond-half-range", 0, [tf(40000), tf(32767)]),
        ("resync-via-hello", None, [tf(3), hf(4), tf(5), tf(3)]),
        ("bad-tag-does-not-advance", 10, [forged, tf(15), tf(20), tf(20)]),
        ("window-shift-beyond-64", 10, [tf(200), tf(150), tf(137), tf(136), tf(10)]),
        ("counter-top", 0xFFFFFFF0, [hf(0xFFFFFFFF), tf(0xFFFFFFFE), tf(0xFFFFFFFF)]),
    ]
    out = []
    for vid, highest, frames in sequences:
        window = ReplayWindow(highest)
        steps = []
        for frame in frames:
            result = _receive(frame, UP, window, 8)
            expect = result.reason if isinstance(result, ProtocolError) else "accept"
            steps.append({"frame": frame.hex(), "expect": expect, "highest_after": window.highest})
        out.append({"id": vid, "direction": "up", "device_id": DEV, "tag_len": 8,
                    "highest": highest, "steps": steps})
    return {"master_key": MASTER.hex(), "vectors": out}


def framing() -> dict[str, Any]:
    frames = {
        "empty": b"", "one-zero": b"\x00", "two-zeros": b"\x00\x00", "one-byte": b"\x01",
        "zero-at-ends": b"\x00\x11\x22\x00", "run-253": bytes(range(1, 254)),
        "run-254": bytes((i % 255) + 1 for i in range(254)),
        "run-255": bytes((i % 255) + 1 for i in range(255)),
        "run-254-then-zero": bytes((i % 255) + 1 for i in range(254)) + b"\x00",
        "telemetry-frame": bytes.fromhex(_v("x", TELEMETRY, UP, 5)["frame"]),
        "max-frame": _pattern(MAX_FRAME_SIZE, 9),
        "max-frame-zeros": bytes(MAX_FRAME_SIZE),
    }
    cobs = [{"id": k, "frame": v.hex(), "encoded": cobs_encode(v).hex()} for k, v in frames.items()]
    tel = frames["telemetry-frame"]
    enc = cobs_encode(tel)
    streams_in: dict[str, bytes] = {
        "two-frames": enc + enc,
        "idle-zeros-between": b"\x00\x00" + enc + b"\x00\x00\x00" + enc,
        "garbage-glued-to-first-frame": b"\x13\x37\x42" + enc + enc,
        "invalid-cobs-then-frame": b"\x05\x01\x02\x00" + enc,
        "zero-code-in-garbage-resyncs": b"\xff" * 10 + b"\x00" + enc,
        "overflow-then-frame": b"\x01" * 1300 + b"\x00" + enc,
        # MAX_STREAM_FRAME bytes are kept; one more is an overflow.
        "exactly-limit": (b"\xff" + b"\x07" * 254) * 4 + b"\xd9" + b"\x07" * 216 + b"\x00" + enc,
        "one-over-limit": (b"\xff" + b"\x07" * 254) * 4 + b"\xda" + b"\x07" * 217 + b"\x00" + enc,
        "partial-at-end": enc + enc[:10],
        "max-frame": cobs_encode(frames["max-frame"]) + enc,
    }
    streams = []
    for vid, data in streams_in.items():
        outputs = StreamDecoder().feed(data)
        streams.append({"id": vid, "stream": data.hex(), "expect": [
            {"error": o.reason} if isinstance(o, ProtocolError) else {"frame": o.hex()}
            for o in outputs
        ]})
    return {"cobs": cobs, "streams": streams}


GENERATORS: dict[str, Callable[[], dict[str, Any]]] = {
    "messages.json": messages, "decode.json": decode, "replay.json": replay,
    "framing.json": framing,
}


def render(name: str) -> str:
    return json.dumps(GENERATORS[name](), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name in FILES:
        text = render(name)
        path = DIR / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        sys.stderr.write(f"stale vectors: {', '.join(stale)} (run python -m protocol.vectors)\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
