"""The CPython codec against the golden vectors (docs/protocol.md s. 9), in both codec modes."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from protocol import (
    DeviceKeys,
    ProtocolError,
    Received,
    ReplayWindow,
    StreamDecoder,
    UnknownDevice,
    cobs_decode,
    cobs_encode,
    encode_frame,
    open_frame,
    peek_header,
)
from protocol import errors as errors_module
from protocol.errors import REASONS, FrameError, StreamError
from protocol.messages import (
    DOWNLINK_TYPES,
    LONG_HEADER_TYPES,
    UPLINK_TYPES,
    Direction,
    MessageType,
)
from protocol.vectors import DIR, FILES, from_json, load, to_json
from protocol.vectors.__main__ import render

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "protocol.md"

MESSAGES = load("messages.json")
DECODE = load("decode.json")
REPLAY = load("replay.json")
FRAMING = load("framing.json")

MESSAGE_VECTORS: list[dict[str, Any]] = MESSAGES["vectors"]
DECODE_VECTORS: list[dict[str, Any]] = DECODE["vectors"]
REPLAY_VECTORS: list[dict[str, Any]] = REPLAY["vectors"]
COBS_VECTORS: list[dict[str, Any]] = FRAMING["cobs"]
STREAM_VECTORS: list[dict[str, Any]] = FRAMING["streams"]

KEYS = DeviceKeys.from_master(bytes.fromhex(MESSAGES["master_key"]))

# Floors: the number of vectors v1 shipped with. A regenerated file may add vectors, never lose
# them silently.
FLOORS = {"messages": 33, "decode": 66, "replay": 9, "cobs": 12, "streams": 10}


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["id"] for v in vectors]


def _direction(name: str) -> Direction:
    return Direction[name.upper()]


def _receive(frame: bytes, direction: Direction, device_id: int, window: ReplayWindow,
             tag_len: int) -> Received | ProtocolError:
    """The receive pipeline of ``protocol.vectors`` (a registry holding exactly one device)."""
    try:
        header = peek_header(frame, direction)
        if header.device_id != device_id:
            raise UnknownDevice(header.device_id)
        return open_frame(frame, header, KEYS, window, tag_len)
    except ProtocolError as exc:
        return exc


def _fresh_window(mtype: MessageType, counter: int) -> ReplayWindow:
    """A receiver that has not seen ``counter`` yet and can reconstruct it from a short header."""
    if mtype in LONG_HEADER_TYPES:
        return ReplayWindow()
    return ReplayWindow(counter - 1)


def _outputs(decoder_outputs: list[bytes | StreamError]) -> list[dict[str, str]]:
    """Stream decoder outputs in the ``framing.json`` notation."""
    return [{"error": o.reason} if isinstance(o, StreamError) else {"frame": o.hex()}
            for o in decoder_outputs]


def _random_chunks(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(1, 12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


# --- messages.json ------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", MESSAGE_VECTORS, ids=_ids(MESSAGE_VECTORS))
def test_message_vector_encodes_to_exact_frame(vector: dict[str, Any], codec_mode: str) -> None:
    msg = from_json(vector["type"], vector["fields"])
    frame = encode_frame(msg, keys=KEYS, direction=_direction(vector["direction"]),
                         device_id=vector["device_id"], counter=vector["counter"],
                         tag_len=vector["tag_len"], encrypt=vector["encrypt"])
    assert frame.hex() == vector["frame"]


@pytest.mark.parametrize("vector", MESSAGE_VECTORS, ids=_ids(MESSAGE_VECTORS))
def test_message_vector_decodes_to_same_fields(vector: dict[str, Any], codec_mode: str) -> None:
    mtype = MessageType[vector["type"]]
    window = _fresh_window(mtype, vector["counter"])
    frame = bytes.fromhex(vector["frame"])
    received = _receive(frame, _direction(vector["direction"]), vector["device_id"], window,
                        vector["tag_len"])
    assert isinstance(received, Received), received
    assert received.message.TYPE is mtype
    assert to_json(received.message) == vector["fields"]
    assert received.counter == vector["counter"]
    assert received.header.encrypted is vector["encrypt"]
    assert window.highest == vector["counter"]


@pytest.mark.parametrize("vector", MESSAGE_VECTORS, ids=_ids(MESSAGE_VECTORS))
def test_message_vector_survives_stream_fed_one_byte_at_a_time(
    vector: dict[str, Any], codec_mode: str
) -> None:
    frame = bytes.fromhex(vector["frame"])
    decoder = StreamDecoder()
    outputs: list[bytes | StreamError] = []
    for byte in cobs_encode(frame):
        outputs += decoder.feed(bytes([byte]))
    assert outputs == [frame]
    mtype = MessageType[vector["type"]]
    received = _receive(frame, _direction(vector["direction"]), vector["device_id"],
                        _fresh_window(mtype, vector["counter"]), vector["tag_len"])
    assert isinstance(received, Received), received
    assert to_json(received.message) == vector["fields"]


# --- decode.json --------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", DECODE_VECTORS, ids=_ids(DECODE_VECTORS))
def test_decode_vector(vector: dict[str, Any], codec_mode: str) -> None:
    window = ReplayWindow(vector["highest"])
    outcome = _receive(bytes.fromhex(vector["frame"]), _direction(vector["direction"]),
                       vector["device_id"], window, vector["tag_len"])
    if "error" in vector:
        assert isinstance(outcome, ProtocolError), f"expected {vector['error']}, got {outcome}"
        assert outcome.reason == vector["error"]
        if outcome.reason != "malformed":
            # Only an authenticated frame moves the window; malformed bodies are parsed after it.
            assert window.highest == vector["highest"]
    else:
        assert isinstance(outcome, Received), outcome
        assert outcome.message.TYPE.name == vector["type"]
        assert to_json(outcome.message) == vector["fields"]
        assert outcome.counter == vector["counter"]
        assert window.highest == vector["highest_after"]


# --- replay.json --------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", REPLAY_VECTORS, ids=_ids(REPLAY_VECTORS))
def test_replay_vector(vector: dict[str, Any], codec_mode: str) -> None:
    window = ReplayWindow(vector["highest"])
    direction = _direction(vector["direction"])
    assert vector["steps"], "a replay vector without steps checks nothing"
    for i, step in enumerate(vector["steps"]):
        outcome = _receive(bytes.fromhex(step["frame"]), direction, vector["device_id"], window,
                           vector["tag_len"])
        got = outcome.reason if isinstance(outcome, ProtocolError) else "accept"
        assert (i, got, window.highest) == (i, step["expect"], step["highest_after"])


# --- framing.json -------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", COBS_VECTORS, ids=_ids(COBS_VECTORS))
def test_cobs_vector(vector: dict[str, Any], codec_mode: str) -> None:
    frame = bytes.fromhex(vector["frame"])
    encoded = cobs_encode(frame)
    assert encoded.hex() == vector["encoded"]
    assert cobs_decode(encoded[:-1]) == frame


@pytest.mark.parametrize("vector", STREAM_VECTORS, ids=_ids(STREAM_VECTORS))
def test_stream_vector_fed_whole(vector: dict[str, Any], codec_mode: str) -> None:
    assert _outputs(StreamDecoder().feed(bytes.fromhex(vector["stream"]))) == vector["expect"]


@pytest.mark.parametrize("vector", STREAM_VECTORS, ids=_ids(STREAM_VECTORS))
def test_stream_vector_fed_one_byte_at_a_time(vector: dict[str, Any], codec_mode: str) -> None:
    decoder = StreamDecoder()
    outputs: list[bytes | StreamError] = []
    for byte in bytes.fromhex(vector["stream"]):
        outputs += decoder.feed(bytes([byte]))
    assert _outputs(outputs) == vector["expect"]


@pytest.mark.parametrize("vector", STREAM_VECTORS, ids=_ids(STREAM_VECTORS))
def test_stream_vector_fed_in_random_chunks(vector: dict[str, Any], codec_mode: str) -> None:
    stream = bytes.fromhex(vector["stream"])
    rng = random.Random(vector["id"])  # deterministic per vector
    for _ in range(20):
        decoder = StreamDecoder()
        outputs: list[bytes | StreamError] = []
        for chunk in _random_chunks(stream, rng):
            outputs += decoder.feed(chunk)
        assert _outputs(outputs) == vector["expect"]


# --- the vector files themselves ----------------------------------------------------------------

def test_committed_vectors_equal_regenerated() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "protocol.vectors", "--check"], cwd=ROOT, capture_output=True,
        text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr


def test_vector_check_detects_a_stale_file(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "protocol", tmp_path / "protocol",
                    ignore=shutil.ignore_patterns("__pycache__"))
    stale = tmp_path / "protocol" / "vectors" / "replay.json"
    stale.write_text(stale.read_text(encoding="utf-8").replace('"accept"', '"replayed"', 1),
                     encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "protocol.vectors", "--check"], cwd=tmp_path, capture_output=True,
        text=True, timeout=120, check=False,
    )
    assert (result.returncode, result.stderr.split(":")[0]) == (1, "stale vectors")
    assert "replay.json" in result.stderr
    assert "messages.json" not in result.stderr


@pytest.mark.parametrize("name", FILES)
def test_vector_generation_does_not_depend_on_codec_mode(name: str, codec_mode: str) -> None:
    assert render(name) == (DIR / name).read_text(encoding="utf-8")


VECTOR_TESTS = {
    test_message_vector_encodes_to_exact_frame: ("messages.json", "vectors", "messages"),
    test_message_vector_decodes_to_same_fields: ("messages.json", "vectors", "messages"),
    test_message_vector_survives_stream_fed_one_byte_at_a_time:
        ("messages.json", "vectors", "messages"),
    test_decode_vector: ("decode.json", "vectors", "decode"),
    test_replay_vector: ("replay.json", "vectors", "replay"),
    test_cobs_vector: ("framing.json", "cobs", "cobs"),
    test_stream_vector_fed_whole: ("framing.json", "streams", "streams"),
    test_stream_vector_fed_one_byte_at_a_time: ("framing.json", "streams", "streams"),
    test_stream_vector_fed_in_random_chunks: ("framing.json", "streams", "streams"),
}


@pytest.mark.parametrize("test", VECTOR_TESTS, ids=lambda t: t.__name__)
def test_every_vector_in_the_files_is_parametrized(test: Any) -> None:
    file, key, floor = VECTOR_TESTS[test]
    raw = json.loads((DIR / file).read_text(encoding="utf-8"))[key]  # independent of load()
    (mark,) = [mk for mk in test.pytestmark if mk.name == "parametrize"]
    params = mark.args[1]
    assert len(params) == len(raw) >= FLOORS[floor]
    assert [p["id"] for p in params] == [v["id"] for v in raw]
    assert len(set(_ids(params))) == len(params), "vector ids must be unique"


def test_all_vector_files_share_the_public_test_key() -> None:
    assert MESSAGES["master_key"] == DECODE["master_key"] == REPLAY["master_key"]
    assert {v["device_id"] for v in DECODE_VECTORS + REPLAY_VECTORS} == {MESSAGES["device_id"]}


def test_every_message_type_has_a_vector_in_each_allowed_direction() -> None:
    seen = {(v["type"], v["direction"]) for v in MESSAGE_VECTORS}
    expected = {(t.name, "up") for t in UPLINK_TYPES} | {(t.name, "down") for t in DOWNLINK_TYPES}
    assert {t for t, _ in seen} == {t.name for t in MessageType}
    assert seen == expected


def test_message_vectors_cover_both_tag_lengths_and_encryption() -> None:
    assert {v["tag_len"] for v in MESSAGE_VECTORS} == {4, 8}
    assert {v["encrypt"] for v in MESSAGE_VECTORS} == {True, False}


def _spec_reasons() -> list[str]:
    text = SPEC.read_text(encoding="utf-8")
    section = text.split("## 8. Rejection reasons", 1)[1].split("\n## ", 1)[0]
    listing = section.split("`shorewatch_frames_rejected_total{reason}`:", 1)[1]
    return re.findall(r"`([a-z_]+)`", listing)


def test_codec_reasons_are_the_spec_reasons() -> None:
    assert list(REASONS) == _spec_reasons()
    leaves = [
        cls for cls in vars(errors_module).values()
        if isinstance(cls, type) and issubclass(cls, (FrameError, StreamError))
        and cls not in (FrameError, StreamError)
    ]
    assert len(leaves) == 13
    assert {cls.reason for cls in leaves} | {errors_module.CounterExhausted.reason} == set(REASONS)


def test_every_receive_side_reason_appears_in_the_vectors() -> None:
    seen = {v["error"] for v in DECODE_VECTORS if "error" in v}
    seen |= {s["expect"] for v in REPLAY_VECTORS for s in v["steps"]} - {"accept"}
    seen |= {o["error"] for v in STREAM_VECTORS for o in v["expect"] if "error" in o}
    # counter_exhausted is raised by the sender only: test_protocol_encode covers it.
    assert seen == set(_spec_reasons()) - {"counter_exhausted"}
