"""Keys, tags and encryption, checked against independent stdlib/cryptography computations."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocol import (
    BadTag,
    DeviceKeys,
    ReplayWindow,
    encode_body,
    encode_frame,
    open_frame,
    peek_header,
    seal,
)
from protocol.crypto import Mac
from protocol.messages import (
    Ack,
    ConfigEntry,
    ConfigPush,
    Direction,
    MessageType,
    Telemetry,
)

MASTER_A = hashlib.sha256(b"shorewatch unit tests: device A").digest()
MASTER_B = hashlib.sha256(b"shorewatch unit tests: device B").digest()
KEYS_A = DeviceKeys.from_master(MASTER_A)
KEYS_B = DeviceKeys.from_master(MASTER_B)
DEV_A, DEV_B = 0x0000A11A, 0x0000B22B
UP, DOWN = Direction.UP, Direction.DOWN
TELEMETRY = Telemetry(3712, 5120, -85, 1275, 142, -67, 86400, 12, 480, 0x11)
SECRET_PUSH = ConfigPush(7, (ConfigEntry(8, b"correct horse battery staple"),))


def _working_key(master: bytes, label: bytes) -> bytes:
    return hmac.new(master, label, hashlib.sha256).digest()


def _receive(frame: bytes, keys: DeviceKeys, expect: Direction, window: ReplayWindow,
             tag_len: int = 8) -> object:
    return open_frame(frame, peek_header(frame, expect), keys, window, tag_len).message


# --- keys ---------------------------------------------------------------------------------------

def test_working_keys_follow_section_2() -> None:
    assert KEYS_A.enc_up == _working_key(MASTER_A, b"sw1 enc up")[:16]
    assert KEYS_A.enc_down == _working_key(MASTER_A, b"sw1 enc down")[:16]
    for mac, label in [(KEYS_A.mac_up, b"sw1 mac up"), (KEYS_A.mac_down, b"sw1 mac down")]:
        key = _working_key(MASTER_A, label)
        assert mac.digest(b"abc", b"def") == hmac.new(key, b"abcdef", hashlib.sha256).digest()


@pytest.mark.parametrize("key_len", [0, 16, 32, 64, 65, 200])
def test_mac_is_hmac_sha256_for_any_key_length(key_len: int) -> None:
    key = bytes(range(256))[:key_len]
    assert Mac(key).digest(b"x" * 100) == hmac.new(key, b"x" * 100, hashlib.sha256).digest()


def test_tag_is_truncated_hmac_over_full_counter_and_frame() -> None:
    counter = 0x00012345  # the short header carries only 0x2345
    for tag_len in (8, 4):
        frame = encode_frame(TELEMETRY, keys=KEYS_A, direction=UP, device_id=DEV_A,
                             counter=counter, tag_len=tag_len)
        key = _working_key(MASTER_A, b"sw1 mac up")
        mac = hmac.new(key, counter.to_bytes(4, "little") + frame[:-tag_len], hashlib.sha256)
        assert frame[-tag_len:] == mac.digest()[:tag_len]


@pytest.mark.parametrize("length", [15, 65])
def test_master_key_length_is_checked_without_echoing_it(length: int) -> None:
    master = bytes([0xA5]) * length
    with pytest.raises(ValueError, match="master key must be") as info:
        DeviceKeys.from_master(master)
    assert "a5a5" not in str(info.value).lower()


def _secrets(master: bytes) -> list[bytes]:
    labels = [b"sw1 mac up", b"sw1 mac down", b"sw1 enc up", b"sw1 enc down"]
    return [master, *(_working_key(master, label) for label in labels),
            *(_working_key(master, label)[:16] for label in labels)]


def test_keys_never_appear_in_repr() -> None:
    shown = [repr(KEYS_A), str(KEYS_A), f"{KEYS_A!r}", repr(KEYS_A.mac_up),
             repr(KEYS_A.mac_down), str(KEYS_A.mac_up), repr([KEYS_A]), repr({"k": KEYS_A})]
    for text in shown:
        for secret in _secrets(MASTER_A):
            for rendering in (secret.hex(), repr(secret), secret[:8].hex(), secret[:6].hex()):
                assert rendering not in text
    assert "<secret>" in repr(KEYS_A.mac_up)


# --- direction, device binding, key separation --------------------------------------------------

def test_uplink_key_with_downlink_direction_bit_is_bad_tag() -> None:
    body = encode_body(Ack(5, int(MessageType.TELEMETRY)))
    forged = seal(MessageType.ACK, body, keys=KEYS_A, direction=UP, device_id=DEV_A, counter=9,
                  hdr=0x40 | 0x20 | int(MessageType.ACK))
    window = ReplayWindow(8)
    with pytest.raises(BadTag):
        _receive(forged, KEYS_A, DOWN, window)
    assert window.highest == 8


def test_frame_reflected_back_at_its_sender_is_bad_tag() -> None:
    uplink = encode_frame(Ack(5, 3), keys=KEYS_A, direction=UP, device_id=DEV_A, counter=9)
    reflected = bytes([uplink[0] | 0x20]) + uplink[1:]
    assert peek_header(reflected, DOWN).direction is DOWN
    with pytest.raises(BadTag):
        _receive(reflected, KEYS_A, DOWN, ReplayWindow(8))


@pytest.mark.parametrize("verifier", [KEYS_B, KEYS_A], ids=["b-keys", "a-keys"])
def test_frame_of_device_a_replayed_as_device_b_is_bad_tag(verifier: DeviceKeys) -> None:
    frame = encode_frame(TELEMETRY, keys=KEYS_A, direction=UP, device_id=DEV_A, counter=9)
    assert _receive(frame, KEYS_A, UP, ReplayWindow(8)) == TELEMETRY
    as_b = frame[:1] + DEV_B.to_bytes(4, "little") + frame[5:]
    assert peek_header(as_b, UP).device_id == DEV_B
    # B's keys (what a gateway looks up), and even A's: the device id is inside the MAC.
    with pytest.raises(BadTag) as info:
        _receive(as_b, verifier, UP, ReplayWindow(8))
    assert (info.value.device_id, info.value.counter) == (DEV_B, 9)


def test_frame_under_another_devices_key_is_bad_tag() -> None:
    frame = encode_frame(TELEMETRY, keys=KEYS_B, direction=UP, device_id=DEV_A, counter=9)
    with pytest.raises(BadTag):
        _receive(frame, KEYS_A, UP, ReplayWindow(8))


def test_counter_is_authenticated_beyond_the_16_bits_on_the_wire() -> None:
    """Same low 16 bits, different full counter: the receiver's reconstruction is inside the MAC."""
    frame = encode_frame(TELEMETRY, keys=KEYS_A, direction=UP, device_id=DEV_A, counter=0x10009)
    with pytest.raises(BadTag) as info:
        _receive(frame, KEYS_A, UP, ReplayWindow(8))  # reconstructs 9, not 0x10009
    assert info.value.counter == 9


# --- encryption (section 4) ---------------------------------------------------------------------

def _ciphertext(frame: bytes, header: int = 7, tag_len: int = 8) -> bytes:
    return frame[header:-tag_len]


def test_encrypted_body_is_aes_128_ctr_with_the_section_4_counter_block() -> None:
    body = encode_body(SECRET_PUSH)
    frame = encode_frame(SECRET_PUSH, keys=KEYS_A, direction=DOWN, device_id=DEV_A,
                         counter=0x01020304, encrypt=True)
    block0 = (0x01020304).to_bytes(4, "little") + DEV_A.to_bytes(4, "little") + bytes(8)
    ctr = Cipher(algorithms.AES(KEYS_A.enc_down), modes.CTR(block0)).encryptor()
    assert _ciphertext(frame) == ctr.update(body) + ctr.finalize()
    assert KEYS_A.enc_down == _working_key(MASTER_A, b"sw1 enc down")[:16]


def test_ciphertext_differs_from_plaintext_and_hides_the_secret() -> None:
    frame = encode_frame(SECRET_PUSH, keys=KEYS_A, direction=DOWN, device_id=DEV_A, counter=3,
                         encrypt=True)
    plain = encode_body(SECRET_PUSH)
    assert len(_ciphertext(frame)) == len(plain)
    assert _ciphertext(frame) != plain
    assert b"correct horse" not in frame
    assert _receive(frame, KEYS_A, DOWN, ReplayWindow(2)) == SECRET_PUSH


def test_same_plaintext_at_two_counters_gives_different_ciphertext() -> None:
    a, b = (encode_frame(TELEMETRY, keys=KEYS_A, direction=UP, device_id=DEV_A, counter=c,
                         encrypt=True) for c in (10, 11))
    assert _ciphertext(a) != _ciphertext(b)
    assert _ciphertext(a) != encode_body(TELEMETRY)


@pytest.mark.parametrize(("other_device", "other_direction"), [(DEV_B, UP), (DEV_A, DOWN)])
def test_keystream_depends_on_device_and_direction(other_device: int,
                                                   other_direction: Direction) -> None:
    msg = Ack(1, 3)  # allowed both ways
    a = encode_frame(msg, keys=KEYS_A, direction=UP, device_id=DEV_A, counter=10, encrypt=True)
    b = encode_frame(msg, keys=KEYS_A, direction=other_direction, device_id=other_device,
                     counter=10, encrypt=True)
    assert _ciphertext(a) != _ciphertext(b)


def test_bit_flip_in_ciphertext_is_bad_tag_before_decryption() -> None:
    frame = encode_frame(SECRET_PUSH, keys=KEYS_A, direction=DOWN, device_id=DEV_A, counter=3,
                         encrypt=True)
    flips = 0
    for index in range(7, len(frame) - 8):
        tampered = frame[:index] + bytes([frame[index] ^ 0x01]) + frame[index + 1:]
        window = ReplayWindow(2)
        with pytest.raises(BadTag):
            _receive(tampered, KEYS_A, DOWN, window)
        assert window.highest == 2
        flips += 1
    assert flips == len(encode_body(SECRET_PUSH))


def test_tag_covers_the_ciphertext_not_the_plaintext() -> None:
    """Encrypt-then-MAC: the tag is recomputable from the wire bytes alone."""
    frame = encode_frame(TELEMETRY, keys=KEYS_A, direction=UP, device_id=DEV_A, counter=12,
                         encrypt=True)
    key = _working_key(MASTER_A, b"sw1 mac up")
    tag = hmac.new(key, (12).to_bytes(4, "little") + frame[:-8], hashlib.sha256).digest()[:8]
    assert frame[-8:] == tag
    assert frame[0] & 0x10


def test_empty_body_encrypts_to_empty() -> None:
    plain = encode_frame(Ack(1, 3), keys=KEYS_A, direction=UP, device_id=DEV_A, counter=4)
    sealed = seal(MessageType.ACK, b"", keys=KEYS_A, direction=UP, device_id=DEV_A, counter=4,
                  encrypt=True)
    assert len(sealed) == 7 + 8
    assert sealed[0] == plain[0] | 0x10
