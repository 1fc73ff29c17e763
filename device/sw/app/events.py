"""Detection events kept until the gateway has them: a bounded store of packed entries.

Each event is 16 bytes in one preallocated bytearray (64 events: 1 KB, the size of the RTC
memory a deep-sleeping board keeps, see sw/app/retain.py), oldest first. Nothing is allocated
per event: on a 64 KB heap that is never compacted, objects created at run time and kept for
minutes are what fragments it.

Entry layout, little-endian ("<IIHhBBBB"):

    0  u32 event_id          8  u16 ts_ms          12 u8 state (below)    14 u8 tries
    4  u32 ts_s             10  i16 peak_cc        13 u8 confidence_pct   15 u8 tag

state: bits 0-1 lifecycle, UNSYNCED (timestamp from a clock no WELCOME had set yet), SENT
(its EVENT line is printed), PARKED (ran out of retries: waits for a sign of the gateway).
tries counts the sends of the current round; 0 means held (not sent in this round). tag tells
entries apart in the ring of recent sends, which maps a frame counter (what an ACK names) to
its entry: an event survives at most STORE_MAX newer ones, so a tag that counts to 256 is
unique among the stored events (tags run 1..255; a ring record never written holds 0).
"""
import struct

from micropython import const

SIZE = const(16)
FORMAT = "<IIHhBBBB"
LIFE = const(3)
UNSYNCED = const(4)
SENT = const(8)
PARKED = const(16)
_STATE = const(12)
_TRIES = const(14)
_TAG = const(15)
_RING = const(32)  # sends remembered: >= in-flight events x sends of a round
_REC = const(5)  # ring record: u32 counter, u8 tag


class Store:
    def __init__(self, capacity):
        self.cap = capacity
        self.buf = bytearray(capacity * SIZE)
        self.n = 0
        # next resend per entry, in 64 ms ticks mod 2**16 (RAM only: +-35 min of range, far
        # more than any backoff; 2 bytes where a list of ints costs 8 each)
        self._due = bytearray(capacity * 2)
        self._ring = bytearray(_RING * _REC)
        self._pos = 0  # next ring record to overwrite
        self._tag = 0

    def add(self, eid, life, conf, peak, ts_s, ts_ms, unsynced):
        """Store a new event (held); the event_id of the oldest one if it had to go."""
        gone = None
        if self.n == self.cap:
            gone = self.get(0)[0]
            self.remove(0)
        self._tag = self._tag % 255 + 1  # 1..255: a ring record never written holds tag 0
        struct.pack_into(FORMAT, self.buf, self.n * SIZE, eid, ts_s, ts_ms, peak,
                         life | (UNSYNCED if unsynced else 0), conf, 0, self._tag)
        self.n += 1
        return gone

    def get(self, i):
        """(event_id, ts_s, ts_ms, peak_cc, state, confidence_pct, tries, tag) of entry i."""
        return struct.unpack_from(FORMAT, self.buf, i * SIZE)

    def state(self, i):
        return self.buf[i * SIZE + _STATE]

    def flag(self, i, bits, on):
        o = i * SIZE + _STATE
        self.buf[o] = (self.buf[o] | bits) if on else (self.buf[o] & ~bits)

    def tries(self, i):
        return self.buf[i * SIZE + _TRIES]

    def set_tries(self, i, n):
        self.buf[i * SIZE + _TRIES] = n if n < 255 else 255

    def set_due(self, i, ticks):
        """Entry i is due for a resend at this tick (rounded up to 64 ms)."""
        struct.pack_into("<H", self._due, 2 * i, ((ticks + 63) >> 6) & 0xFFFF)

    def due_in(self, i, now):
        """ms until entry i is due for a resend (<= 0: it is due)."""
        d = (struct.unpack_from("<H", self._due, 2 * i)[0] - (now >> 6)) & 0xFFFF
        return (d - 0x10000 if d >= 0x8000 else d) << 6

    def remove(self, i):
        """Drop entry i; the younger ones move up (a copy inside the buffer)."""
        n = self.n
        if i < n - 1:
            mv = memoryview(self.buf)
            mv[i * SIZE:(n - 1) * SIZE] = mv[(i + 1) * SIZE:n * SIZE]
            mv = memoryview(self._due)
            mv[i * 2:(n - 1) * 2] = mv[(i + 1) * 2:n * 2]
        self.n = n - 1

    def held(self):
        """Entries waiting for a delivery (not sent in this round, not parked)."""
        k = 0
        b = self.buf
        for o in range(0, self.n * SIZE, SIZE):
            if not b[o + _TRIES] and not b[o + _STATE] & PARKED:
                k += 1
        return k

    def unpark(self):
        """Parked entries become held again (the gateway answers); how many."""
        k = 0
        b = self.buf
        for o in range(0, self.n * SIZE, SIZE):
            if b[o + _STATE] & PARKED:
                b[o + _STATE] &= ~PARKED
                b[o + _TRIES] = 0
                k += 1
        return k

    def resync(self, delta_s):
        """The clock moved by delta_s at its first WELCOME: correct the timestamps taken
        before it."""
        b = self.buf
        for o in range(0, self.n * SIZE, SIZE):
            if b[o + _STATE] & UNSYNCED:
                struct.pack_into("<I", b, o + 4, struct.unpack_from("<I", b, o + 4)[0] + delta_s)
                b[o + _STATE] &= ~UNSYNCED

    def sent(self, i, counter):
        """Entry i went out with this frame counter: one more try, remembered in the ring."""
        o = i * SIZE
        self.set_tries(i, self.buf[o + _TRIES] + 1)
        r = self._pos * _REC
        struct.pack_into("<IB", self._ring, r, counter, self.buf[o + _TAG])
        self._pos = (self._pos + 1) % _RING

    def find(self, counter):
        """Index of the stored entry last sent with this counter, or -1."""
        ring = self._ring
        for r in range(0, _RING * _REC, _REC):
            if struct.unpack_from("<I", ring, r)[0] == counter:
                tag = ring[r + 4]
                b = self.buf
                for i in range(self.n):
                    if b[i * SIZE + _TAG] == tag and b[i * SIZE + _STATE] & SENT:
                        return i
                return -1
        return -1
