"""The node's HELLO round and its WELCOME: the session part of sw/app/node.py that runs only
while the node has no session (at boot, after a resync).

Loaded by the node while it is unsynced and forgotten once a WELCOME is taken, so a node in
session does not hold this code (on the unix port bytecode lives in the 64 KB heap). The
round's state lives here too: a fresh import is a fresh round.

HELLO with exponential backoff and jitter: 0.5, 1, 2, 4, 8, 8 s (+-25 %), _TRIES per round,
then _PAUSE_MS and a new round. A WELCOME counts if its tag verifies (on a fresh window: a
stale one must not move the real window) and its nonce is one of this round's.
"""
import os
from time import ticks_add, ticks_diff

from micropython import const

from .. import log, proto
from .node import FW_VERSION, _jitter

_TRIES = const(6)  # per round; then _PAUSE_MS and a new round
_FIRST_MS = const(500)  # a gateway on the LAN answers within a few ms
_MAX_MS = const(8000)
_PAUSE_MS = const(60000)

_tries = 0  # HELLOs sent in this round (the backoff follows from it)
_due = None  # type: int | None  # tick of the next HELLO; None: now
_nonces = []  # type: list[bytes]  # nonces of this round's HELLOs


def waiting():
    """True while a HELLO of this round awaits its WELCOME (the node stays awake)."""
    return _tries > 0


def step(node, now):
    """Send the next HELLO of the round when it is due; ms to wait."""
    global _tries, _due, _nonces
    if _due is not None and ticks_diff(_due, now) > 0:
        return ticks_diff(_due, now)
    if _tries == _TRIES:
        log.warning("app", "no WELCOME after %d HELLOs", _TRIES)
        _tries = 0
        _due = ticks_add(now, _PAUSE_MS)
        return _PAUSE_MS
    if _tries == 0:
        _nonces = []
    nonce = os.urandom(8)  # fresh per HELLO (spec section 3)
    _nonces.append(nonce)
    i = node.info
    node._send(proto.HELLO, proto.pack_hello(
        FW_VERSION[0], FW_VERSION[1], FW_VERSION[2], i[1], i[2], i[3],
        proto.SCHEMA_FINGERPRINT, nonce, node.cfg[2]))  # node._VERSION
    wait = _jitter(min(_FIRST_MS << _tries, _MAX_MS))
    _tries += 1
    _due = ticks_add(now, wait)
    return wait


def welcome(node, counter, body):
    """Take an authentic WELCOME if it answers a HELLO of this round; True if taken."""
    global _tries, _nonces
    nonce, unix_s, unix_ms, config_version, flags = proto.unpack_welcome(body)
    if nonce not in _nonces:
        # authentic, but not for a HELLO of this round: a replay, or a late answer to an
        # earlier round. It was checked on a fresh window: the real one is untouched.
        log.debug("rx", "WELCOME with a foreign nonce ignored")
        return False
    _nonces = []
    node.window.reset(counter)
    clock = node.board.clock
    first = not clock.synced
    moved = clock.set(unix_s, unix_ms)
    if first:
        node.store.resync(moved)  # events timed by the unsynced clock: now on real time
    node.synced = True
    _tries = 0
    node._up_at_down = node.counter.peek()
    log.info("app", "welcome: downlink counter %d, time %d, config %d (have %d)", counter,
             unix_s, config_version, node.cfg[2])
    node._tm_due = node.now()  # first telemetry right away
    return True
