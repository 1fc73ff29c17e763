"""HMAC-SHA256, key derivation and AES-128-CTR for the Shorewatch v1 protocol (spec sections 2-4).

Runs on MicroPython (hashlib, cryptolib) and, without encryption, on CPython.
"""
import hashlib
import struct

try:
    from micropython import const
except ImportError:  # CPython: const() is only a compiler hint
    def const(x):  # type: ignore[misc]  # the stub's generic signature, same behaviour
        return x

try:
    from cryptolib import aes as _aes
except ImportError:  # CPython has no cryptolib: encryption is a device-only feature here
    _aes = None  # type: ignore[assignment, misc]  # CPython only: the stubs have cryptolib

_SHA_BLOCK = const(64)  # SHA-256 block size: HMAC pads the key to this
_AES_BLOCK = const(16)
_ECB = const(1)  # cryptolib mode 1 = ECB (the unix port has no CTR)
KEY_LEN = const(32)  # master key length fixed at provisioning (spec section 2)


class Hmac:
    """HMAC-SHA256 with the key pads computed once.

    hashlib.sha256 has no .copy() on MicroPython, so the padded key blocks are kept instead of
    hash states: each MAC costs two fresh hash objects and no key processing.
    """

    def __init__(self, key):
        if len(key) > _SHA_BLOCK:
            key = hashlib.sha256(key).digest()
        ipad = bytearray(_SHA_BLOCK)
        opad = bytearray(_SHA_BLOCK)
        for i in range(_SHA_BLOCK):
            k = key[i] if i < len(key) else 0
            ipad[i] = k ^ 0x36
            opad[i] = k ^ 0x5C
        self._ipad = bytes(ipad)
        self._opad = bytes(opad)

    def digest(self, a, b=None):
        """MAC of a || b (two parts so the tag input needs no concatenated copy)."""
        h = hashlib.sha256(self._ipad)
        h.update(a)
        if b is not None:
            h.update(b)
        outer = hashlib.sha256(self._opad)
        outer.update(h.digest())
        return outer.digest()


def ct_equal(a, b):
    """Compare in time independent of where the bytes differ (lengths are public).

    Every byte is compared whatever the first mismatch, so the time does not tell an attacker
    how much of a forged tag was right.
    """
    if len(a) != len(b):
        return False
    acc = 0
    for i in range(len(a)):
        acc |= a[i] ^ b[i]
    return acc == 0


def derive(master):
    """(mac_up, mac_down, enc_up, enc_down) from the 32-byte master key, spec section 2."""
    if len(master) != KEY_LEN:
        raise ValueError("master key must be 32 bytes, got %d" % len(master))
    h = Hmac(master)
    return (
        h.digest(b"sw1 mac up"),
        h.digest(b"sw1 mac down"),
        h.digest(b"sw1 enc up")[:16],
        h.digest(b"sw1 enc down")[:16],
    )


class Ctr:
    """AES-128-CTR keystream from ECB, spec section 4; one instance per key, reused.

    The cipher and its blocks are made at the first use: a sensor node never encrypts an
    uplink and rarely receives an encrypted downlink, and an AES context is ~400 bytes of a
    64 KB heap."""

    def __init__(self, key):
        self._key = key
        self._ecb = None

    def xor(self, buf, start, end, counter, device_id):
        """XOR buf[start:end] in place with the keystream of (counter, device_id)."""
        if self._ecb is None:
            if _aes is None:
                raise NotImplementedError("body encryption needs cryptolib (MicroPython); "
                                          "this interpreter has none")
            self._ecb = _aes(self._key, _ECB)
            # counter block and keystream block, reused for every frame
            self._cb = bytearray(_AES_BLOCK)
            self._ks = bytearray(_AES_BLOCK)
        cb = self._cb
        struct.pack_into("<III", cb, 0, counter, device_id, 0)
        ks = self._ks
        block = 0
        pos = start
        while pos < end:
            struct.pack_into(">I", cb, 12, block)  # block index is big-endian (section 4)
            self._ecb.encrypt(cb, ks)
            n = end - pos
            if n > _AES_BLOCK:
                n = _AES_BLOCK
            for i in range(n):
                buf[pos + i] ^= ks[i]
            pos += n
            block += 1
