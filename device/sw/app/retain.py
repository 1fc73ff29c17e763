"""The node's state over a deep sleep: packed into RTC memory before, restored at the wake.

Deep sleep powers the CPU and the RAM down; the board comes back through a reset and boots
again, with only the RTC memory (8 KB slow RAM on an ESP32, 2 KB of it for MicroPython) and
the flash kept. What the node needs to go on as if it had only waited:

- the event store (1 KB: 64 packed events) - RTC memory, not flash: it changes on every wake,
  and flash wears (the counter file is already written once per 256 frames);
- the frame counter and its reserved block (next, limit): the flash holds the limit, so after
  a wake the block goes on without a flash write (sw/counter.py checks the limit against the
  file: anything else reserves a new block, which only skips counters);
- the session: the downlink window (H and its bitmap), the uplink counter of the last
  authenticated downlink, the wall clock (set again from the RTC's count of the time slept);
  so a wake sends TELEMETRY at once with a short header, no HELLO round trip (the gateway's
  replay window and ours go on as if nothing happened: every counter is still new);
- boot_count and the event sequence: a wake is not a boot (event ids go on, boot_count is
  not written to flash on every wake), uptime counts the sleep;
- the duty-cycle mode, the store_overflow and link flags, an open presence (event id).

What a deep sleep loses: in-flight sends (events go back to "held" and are delivered again
by the policy; the gateway recognises a retransmission by its event id), a HELLO round in
progress (the wake starts a new one), the HELLO backoff and everything else in RAM.

A reset that is not a wake from deep sleep (power-on, brown-out, watchdog), or an image that
fails its check, restores nothing: the node boots as new (boot_count + 1, a new counter
block from flash, HELLO), and the events held in RTC memory are lost with it - the brown-out
case of docs/energy.md. The image is checked with a SHA-256 prefix, so stale or half-written
RTC memory is never taken for state.

Loaded only by boards that deep-sleep (board.sleep.deep_ms > 0), at the wake and before a
sleep, then forgotten: the virtual boards never hold this code.
"""
import hashlib
import struct

from micropython import const

from .. import store
from ..counter import Counter

_MAGIC = b"SWR1"
# magic, boot_count, seq, mode, flags, events, conf, next, limit, H, up_at_down, uptime_ms,
# telemetry due in ms, wall clock s, ms, open event id, window bitmap
_HEAD = "<4sHHBBBBQQIIQiIHI8s"
_HEAD_SIZE = const(66)
_CHECK = const(4)  # SHA-256 prefix at the end
# flags
_SYNCED = const(1)
_OVERFLOW = const(2)
_LINK_OK = const(4)
_PRESENCE = const(8)  # an event is open (the PIR was high at the sleep)
_CLOCK = const(16)  # the wall clock had been set by a WELCOME


def pack(node, ms):
    """The RTC memory image of the node going to sleep for ms."""
    from time import ticks_diff

    now = node.now()
    st = node.store
    flags = 0
    if node.synced:
        flags |= _SYNCED
    if node.overflow:
        flags |= _OVERFLOW
    if node.link_ok:
        flags |= _LINK_OK
    if node._eid:
        flags |= _PRESENCE
    clock = node.board.clock
    if clock.synced:
        flags |= _CLOCK
    unix_s, unix_ms = clock.at(now)
    win = node.window
    tm_left = ticks_diff(node._tm_due, now) if node._tm_due is not None else 0
    nxt, limit = node.counter.state()
    head = struct.pack(_HEAD, _MAGIC, node.boot_count, node._seq, node.mode, flags, st.n,
                       node._conf, nxt, limit, win.highest or 0, node._up_at_down,
                       node._uptime_ms + ticks_diff(now, node._uptime_t), tm_left, unix_s,
                       unix_ms, node._eid or 0, bytes(win._bits))
    data = head + bytes(memoryview(st.buf)[:st.n * 16])
    return data + hashlib.sha256(data).digest()[:_CHECK]


def restore(node, data, slept_ms):
    """Take the state of an image from pack() after slept_ms asleep; False (nothing taken)
    if the image is not one."""
    from time import ticks_add

    if data is None or len(data) < _HEAD_SIZE + _CHECK:
        return False
    body = memoryview(data)[:len(data) - _CHECK]
    if hashlib.sha256(body).digest()[:_CHECK] != bytes(memoryview(data)[len(data) - _CHECK:]):
        return False
    (magic, boot_count, seq, mode, flags, n, conf, nxt, limit, highest, up_at_down, uptime_ms,
     tm_left, unix_s, unix_ms, eid, bits) = struct.unpack_from(_HEAD, body)
    if magic != _MAGIC or len(body) != _HEAD_SIZE + n * 16:
        return False
    node.counter = Counter(store.path(node.flash, "counter"), (nxt, limit))
    node.boot_count = boot_count
    node._seq = seq
    node.mode = mode
    node.overflow = bool(flags & _OVERFLOW)
    node.link_ok = bool(flags & _LINK_OK)
    _load(node.store, memoryview(body)[_HEAD_SIZE:], n)
    node._uptime_ms = uptime_ms + slept_ms
    now = node.now()
    if flags & _CLOCK:
        ms = unix_ms + slept_ms
        node.board.clock.set(unix_s + ms // 1000, ms % 1000)
    if flags & _SYNCED:
        node.window.reset(highest)
        node.window._bits[:] = bits
        node._up_at_down = up_at_down
        node.synced = True
        node._tm_due = ticks_add(now, max(0, tm_left - slept_ms))
    if flags & _PRESENCE:
        node._eid = eid
        node._conf = conf
        node.board.pir.edge()  # the level that woke us belongs to the open event
    node._drivers()  # the radar window of the kept mode
    return True


def _load(st, data, n):
    """Entries packed by pack(): held again (nothing is in flight after a reset)."""
    n = min(n, st.cap)
    st.buf[:n * 16] = data[:n * 16]
    st.n = n
    for i in range(n):
        st.set_tries(i, 0)
    if n:
        st._tag = st.buf[(n - 1) * 16 + 15]  # the youngest entry's: tags go on from it


def sleep(node, ms):
    """Deep-sleep for ms with the node's state in RTC memory; returns only if the board did
    not go down (then the node goes on awake)."""
    from .. import log

    data = pack(node, ms)
    log.info("app", "deep sleep %d ms: %d events kept", ms, node.store.n)
    node.board.sleep.deep(ms, data)
