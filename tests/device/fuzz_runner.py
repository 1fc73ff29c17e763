"""Fuzz the device codec: only ProtoError may ever escape it.

MicroPython script: micropython fuzz_runner.py SEED COUNT [CODEC_DIR]
CODEC_DIR holds the `sw` package (default: <repo>/device; tests pass a directory of .mpy files).

Each of COUNT inputs is one of:
  retagged - a valid body of a random type, mutated, then framed and tagged correctly, so the
             body parser really runs (half of the corpus);
  frame    - a valid frame mutated after tagging (bit flips, cuts, extensions, insert/delete);
  header   - random bytes behind a plausible header byte and this device's id;
  stream   - valid frames COBS-encoded, glued with noise, mutated, fed in random chunks.
Frames go through peek_header and decode_frame, accepted bodies through unpack_body and a
pack_body/unpack_body round trip. Any other exception prints the input hex and exits 1.
Prints per-category and per-reason counts, then exactly "N passed, 0 failed".
"""
import gc
import hashlib
import sys
from binascii import hexlify


def _root():
    here = sys.path[0]  # the script's directory
    for _ in range(2):
        here = here[:here.rfind("/")]
    return here


sys.path.insert(0, sys.argv[3] if len(sys.argv) > 3 else _root() + "/device")

from sw import cobs, proto  # noqa: E402  (needs the path set above)
from sw.proto import ProtoError  # noqa: E402

DEV = 0x5A17C0DE
KEYS = proto.Keys(b"\x5a" * 32)  # one Keys object: each costs ~2.4 KB of a 64 KB heap
# Directions each type may travel (bit 0 up, bit 1 down), written out again from the spec
# rather than borrowed from the codec under test.
TYPE_DIRS = (0, 1, 2, 1, 1, 2, 1, 2, 1, 2, 1, 3, 3, 1)
INTERESTING_U8 = (0, 1, 2, 3, 5, 8, 0x20, 0x40, 0x64, 0x65, 0x7F, 0x80, 0xC0, 0xC1, 0xC3, 0xE0,
                  0xED, 0xF0, 0xF4, 0xF5, 0xFE, 0xFF)
INTERESTING_U16 = (0, 1, 192, 193, 999, 1000, 1024, 1025, 0x7FFF, 0x8000, 0xFFFF)
LOG_CHARS = "aZ0 .é€\u00ff\u2028😀"
MAX_BODY = proto.MAX_FRAME_SIZE - proto.LONG_HEADER - proto.TAG_STD
# No delimiter for longer than MAX_STREAM_FRAME: an overflow. Sent as 21 references to one
# 64-byte piece, so the heap never holds it whole.
NOISE = b"\x01" * 64
NOISE_PIECES = 21


class Rng:
    """xorshift32: the same sequence on every port, so a seed reproduces a failure."""

    def __init__(self, seed):
        self.s = (seed * 2654435761 + 0x9E3779B9) & 0xFFFFFFFF or 1

    def u32(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s

    def below(self, n):
        return self.u32() % n

    def chance(self, pct):
        return self.below(100) < pct

    def blob(self, n):
        out = bytearray(n)
        for i in range(n):
            out[i] = self.u32() & 0xFF
        return out

    def pick(self, seq):
        return seq[self.below(len(seq))]


# --- valid bodies ---------------------------------------------------------------------------

def s16(r):
    return r.below(0x10000) - 0x8000


def gen_body(r, t):
    """A valid v1 body of type t with random field values."""
    if t == proto.HELLO:
        return proto.pack_hello(r.below(256), r.below(256), r.below(0x10000), r.below(4),
                                r.below(9), r.below(0x200), proto.SCHEMA_FINGERPRINT,
                                r.blob(8), r.below(0x10000) if r.chance(50) else 0)
    if t == proto.WELCOME:
        return proto.pack_welcome(r.blob(8), r.u32(), r.below(1000), r.below(0x10000),
                                  r.below(4))
    if t == proto.TELEMETRY:
        return proto.pack_telemetry(r.below(0x10000), r.below(0x10000), s16(r), s16(r),
                                    r.below(256), r.below(256) - 128, r.u32(),
                                    r.below(0x10000), r.below(0x10000), r.below(128))
    if t == proto.DETECTION:
        return gen_detection(r)
    if t == proto.CONFIG_PUSH:
        return gen_config_push(r)
    if t == proto.CONFIG_ACK:
        return proto.pack_config_ack(r.below(0x10000), r.below(3), r.below(256))
    if t == proto.FW_OFFER:
        return proto.pack_fw_offer(r.below(0x10000), r.below(256), r.below(256),
                                   r.below(0x10000), r.u32(), 1 + r.below(proto.MAX_FW_CHUNK),
                                   r.blob(32))
    if t == proto.FW_REQUEST:
        return proto.pack_fw_request(r.below(0x10000), r.u32(), 1 + r.below(proto.MAX_FW_CHUNK))
    if t == proto.FW_CHUNK:
        n = r.below(proto.MAX_FW_CHUNK + 1) if r.chance(10) else r.below(48)
        return proto.pack_fw_chunk(r.below(0x10000), r.u32(), r.blob(n))
    if t == proto.FW_RESULT:
        return proto.pack_fw_result(r.below(0x10000), r.below(8), r.below(256), r.below(256),
                                    r.below(0x10000))
    if t == proto.ACK:
        return proto.pack_ack(r.u32(), 1 + r.below(13))
    if t == proto.NACK:
        return proto.pack_nack(r.u32(), r.below(10))
    return proto.pack_log(r.below(5), "".join(r.pick(LOG_CHARS) for _ in range(r.below(40))))


def gen_detection(r):
    thumb = None
    if r.chance(50):
        n = r.below(proto.MAX_THUMBNAIL + 1) if r.chance(10) else r.below(48)
        thumb = (1 + r.below(2), r.below(256), r.below(256), r.blob(n))
    return proto.pack_detection(r.u32(), r.below(3), r.below(8), r.below(101), r.below(256),
                                r.below(256), r.below(256), r.below(256), s16(r), r.below(256),
                                r.u32(), r.below(1000), thumb)


def gen_config_push(r):
    many = r.chance(20)
    entries = []
    key = 0
    for _ in range(r.below(proto.MAX_CONFIG_ENTRIES + 1) if many else r.below(6)):
        key += 1 + r.below(7)
        if key > 255:
            break
        size = r.below(9) if many else r.below(proto.MAX_CONFIG_VALUE + 1)
        entries.append((key, r.blob(size)))
    return proto.pack_config_push(r.below(0x10000), entries)


# --- mutations ------------------------------------------------------------------------------
# In place on a bytearray: slices resize it without building new objects, which keeps the heap
# unfragmented under -X heapsize=64k.

def mutate(r, b, limit):
    """1-3 random edits of the bytearray b; the result is at most limit bytes."""
    for _ in range(1 + r.below(3)):
        edit(r, b)
    if len(b) > limit:
        b[limit:] = b""
    return b


def edit(r, b):
    n = len(b)
    op = r.below(8)
    if op == 0 and n:
        b[r.below(n)] ^= 1 << r.below(8)
    elif op == 1:
        b[r.below(n + 1):] = b""
    elif op == 2:
        b.extend(r.blob(1 + r.below(8 if r.chance(90) else 300)))
    elif op == 3:
        i = r.below(n + 1)
        b[i:i] = bytes((r.u32() & 0xFF,))
    elif op == 4 and n:
        i = r.below(n)
        b[i:i + 1] = b""
    elif op == 5 and n:
        b[r.below(n)] = r.pick(INTERESTING_U8)
    elif op == 6 and n > 1:
        i = r.below(n - 1)
        v = r.pick(INTERESTING_U16)
        b[i] = v & 0xFF
        b[i + 1] = v >> 8
    elif op == 7 and n:
        b[r.below(n)] = r.u32() & 0xFF


# --- cases ----------------------------------------------------------------------------------

class Fuzz:
    def __init__(self, seed):
        self.r = Rng(seed)
        self.window = proto.Window()
        self.reasons = {}
        self.categories = {}
        self.current = b""  # the input being processed, printed if the codec crashes
        self.decoder = cobs.StreamDecoder()  # allocated once: it holds MAX_STREAM_FRAME bytes

    def count(self, table, key):
        table[key] = table.get(key, 0) + 1

    def setup(self):
        """Type, direction, counter and tag length of a plausible frame."""
        r = self.r
        t = 1 + r.below(13)
        d = 0 if TYPE_DIRS[t] == 1 else 1 if TYPE_DIRS[t] == 2 else r.below(2)
        c = r.pick((r.u32(), r.below(70000), 0xFFFFFFFF - r.below(70000), r.below(64)))
        if r.chance(1):
            c = proto.MAX_COUNTER + 1 + r.below(4)  # the sender must refuse
        return t, d, c, 8 if r.chance(75) else 4

    def prime(self, c):
        """Receiver state that accepts counter c; now and then none, or one that saw c."""
        if c == 0 or self.r.chance(3):
            self.window.reset()
        elif self.r.chance(3):
            self.window.reset(c)  # seen already: a replay
        else:
            self.window.reset(c - 1 - self.r.below(min(c, 40)))

    def receive(self, frame, d, tag_len):
        """Everything a frame meets on a device or gateway, counted by outcome."""
        self.current = frame
        if self.r.chance(5):
            d ^= 1  # receiver expecting the other direction
        peeked = None
        try:
            proto.peek_header(frame, tag_len, d)
        except ProtoError as e:
            peeked = e.reason  # decode_frame starts with the same checks: same verdict
        try:
            mtype, _, body = proto.decode_frame(KEYS, frame, d, DEV, self.window, tag_len)
            fields = proto.unpack_body(mtype, body)
            body = None
        except ProtoError as e:
            if peeked is not None and e.reason != peeked:
                fail(frame, f"peek_header said {peeked}, decode_frame {e.reason}")
            self.count(self.reasons, e.reason)
            return
        if peeked is not None:
            fail(frame, f"peek_header said {peeked}, decode_frame accepted")
        self.round_trip(mtype, fields)
        self.count(self.reasons, "accept")

    def round_trip(self, mtype, fields):
        try:
            again = proto.unpack_body(mtype, proto.pack_body(mtype, fields))
        except ProtoError as e:  # not a verdict on the input: the codec contradicts itself
            fail(self.current, f"decoded fields do not encode again: {e}")
        if again != fields:
            fail(self.current, f"round trip changed {fields} into {again}")

    def valid_body(self, t):
        """gen_body, where a ProtoError is a bug (of the generator or of pack_*), not a count."""
        try:
            return gen_body(self.r, t)
        except ProtoError as e:
            fail(b"", f"valid {proto.TYPE_NAMES[t]} body refused: {e}")

    def retagged(self):
        r = self.r
        t, d, c, tag_len = self.setup()
        body = mutate(r, bytearray(self.valid_body(t)), MAX_BODY)
        frame = proto.encode_frame(KEYS, t, d, DEV, c, body, tag_len, r.chance(20))
        body = None  # let it go before decoding: bodies reach 1 KB on a 64 KB heap
        self.prime(c)
        self.receive(frame, d, tag_len)

    def frame(self):
        r = self.r
        t, d, c, tag_len = self.setup()
        frame = bytearray(proto.encode_frame(KEYS, t, d, DEV, c, self.valid_body(t), tag_len,
                                             r.chance(20)))
        self.prime(c)
        self.receive(mutate(r, frame, proto.MAX_FRAME_SIZE + 20), d, tag_len)

    def header(self):
        r = self.r
        n = r.below(64) if r.chance(90) else r.pick((r.below(1300), 1230 + r.below(8)))
        frame = r.blob(n)
        if n:
            frame[0] = r.u32() & 0xFF if r.chance(20) else 0x40 | (r.u32() & 0x3F)
        if n >= 5:
            frame[1:5] = DEV.to_bytes(4, "little")
        self.window.reset(r.u32())
        self.receive(frame, (frame[0] >> 5) & 1 if n else 0, 8 if r.chance(75) else 4)

    def stream(self):
        """Frames, noise and cuts fed as separate parts: never one big joined buffer."""
        r = self.r
        parts = []
        tag_lens = []
        for _ in range(1 + r.below(3)):
            t, d, c, tag_len = self.setup()
            frame = proto.encode_frame(KEYS, t, d, DEV, c, self.valid_body(t), tag_len)
            part = cobs.encode(frame)
            if r.chance(40):
                part = mutate(r, bytearray(part), proto.MAX_STREAM_FRAME + 2)
            parts.append(part)
            tag_lens.append(tag_len)
            if r.chance(30):
                if r.chance(85):
                    parts.append(r.blob(r.below(8)))
                else:
                    parts.extend([NOISE] * NOISE_PIECES)
        self.current = parts
        whole = self.feed_stream(parts, False, tag_lens)
        if whole != self.feed_stream(parts, True, None):
            fail(parts, "chunked feed differs from a single feed")

    def feed_stream(self, parts, chunked, tag_lens):
        """Feed parts whole or in random chunks; returns a digest of the decoder's outputs.

        Outputs are digested, not kept, and frames are received as they come out (first pass
        only): at most one frame is alive at a time.
        """
        dec = self.decoder
        dec.reset()
        digest = hashlib.sha256()
        n = 0
        for p in parts:
            mv = memoryview(p)
            i = 0
            while i < len(p):  # advances by at least 1 each time
                step = 1 + self.r.below(64) if chunked else len(p)
                for frame, reason in dec.feed(mv[i:i + step]):
                    if reason is None:
                        digest.update(len(frame).to_bytes(2, "little"))
                        digest.update(frame)
                    else:
                        digest.update(b"\xff\xff" + reason.encode())
                    if tag_lens is not None:
                        self.stream_output(frame, reason, tag_lens[min(n, len(tag_lens) - 1)])
                    n += 1
                i += step
        return digest.digest()

    def stream_output(self, frame, reason, tag_len):
        if reason is not None:
            self.count(self.reasons, reason)
            return
        self.window.reset(self.r.u32())
        self.receive(frame, self.r.below(2), tag_len)

    def one(self):
        """One input of a random category; counted before it runs, whatever it raises."""
        k = self.r.below(100)
        for limit, name, case in ((50, "retagged", self.retagged), (75, "frame", self.frame),
                                  (85, "header", self.header), (100, "stream", self.stream)):
            if k < limit:
                self.count(self.categories, name)
                case()
                return


def fail(data, why):
    """Print the input (a frame, or the parts of a stream in order) and exit 1."""
    gc.collect()  # this may follow a MemoryError: print in small pieces
    print("FAIL input ", end="")
    for part in data if isinstance(data, list) else (data,):
        for i in range(0, len(part), 64):
            print(hexlify(part[i:i + 64]).decode(), end="")
    print()
    print(f"FAIL {why}")
    sys.exit(1)


def main():
    seed = int(sys.argv[1])
    count = int(sys.argv[2])
    fz = Fuzz(seed)
    for _ in range(count):
        # Collect between inputs, while nothing of the last one is live: the next input then
        # finds the free heap in large pieces. Its 1 KB bodies are copied up to four times
        # (frame, decoded body, round trip), which a fragmented 64 KB heap cannot place.
        gc.collect()
        try:
            fz.one()
        except ProtoError as e:
            # what reaches here is encode_frame refusing to send (oversize, counter_exhausted)
            fz.count(fz.reasons, e.reason)
        except Exception as e:  # anything else is a codec bug: show the input
            fail(fz.current, f"{type(e).__name__}: {e}")
    for table, label in ((fz.categories, "category"), (fz.reasons, "reason")):
        for key in sorted(table):
            print(f"{label} {key} {table[key]}")
    print(f"{count} passed, 0 failed")


main()
