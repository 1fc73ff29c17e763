"""The device side of a serial session: sw/hal/serial_link.py on a tty, frames built and checked
with the device codec (sw/proto.py), as the node does.

MicroPython script:
    micropython tests/device/serial_peer_runner.py ROOT TTY DEVICE_ID KEY_HEX TAG_LEN
Sends HELLO (a burst of line noise first), waits for the WELCOME (bounded), then TELEMETRY.
Prints one record per step ("SENT HELLO ...", "WELCOME ...", "SENT TELEMETRY ...", "LINK ...");
a failure prints "ERROR <what>" and exits with status 1.
"""
import binascii
import select
import sys
from time import ticks_add, ticks_diff, ticks_ms

sys.path.insert(0, sys.argv[1] + "/device")

from sw import proto
from sw.hal.serial_link import SerialLink

_WAIT_MS = 10000  # generous: two shared cores; a healthy exchange takes milliseconds
# pir | power_monitor | battery_adc | encryption | stream_link (HELLO bits 0, 3, 4, 5, 8)
_CAPS = (1 << 0) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 8)
TEL = (3700, 5000, -20, 1500, 120, -60, 100, 1, 300, 0)


def fail(what):
    print("ERROR", what)
    sys.exit(1)


def main():
    path, dev = sys.argv[2], int(sys.argv[3])
    keys = proto.Keys(binascii.unhexlify(sys.argv[4]))
    tag_len = int(sys.argv[5])
    link = SerialLink(path)
    poller = select.poll()
    link.open(poller)
    # line noise before the first frame: the gateway must resynchronise on the delimiter
    link._stream.write(b"\x07noise\x00\x00")
    nonce = b"serial-1"
    hello = proto.pack_hello(0, 1, 0, 1, 1, _CAPS, proto.SCHEMA_FINGERPRINT, nonce)
    if not link.send(proto.encode_frame(keys, proto.HELLO, proto.UP, dev, 1, hello,
                                        tag_len=tag_len)):
        fail("HELLO not written")
    print("SENT HELLO", binascii.hexlify(nonce).decode())
    window = proto.Window()
    end = ticks_add(ticks_ms(), _WAIT_MS)
    welcome = None
    while welcome is None:
        left = ticks_diff(end, ticks_ms())
        if left <= 0:
            fail(f"no WELCOME within {_WAIT_MS} ms (link errors {link.errors})")
        for _ in poller.ipoll(left):
            frame = link.recv()
            if frame is None:
                continue
            try:
                mtype, counter, body = proto.decode_frame(keys, frame, proto.DOWN, dev, window,
                                                          tag_len)
            except proto.ProtoError as e:
                fail(f"downlink refused: {e.reason}")
            if mtype != proto.WELCOME:
                fail(f"expected WELCOME, got type {mtype}")
            welcome = proto.unpack_welcome(body)
            if welcome[0] != nonce:
                fail("WELCOME for another nonce")
            print(f"WELCOME counter {counter} unix_s {welcome[1]} frame {len(frame)} bytes")
            break
    if not link.send(proto.encode_frame(keys, proto.TELEMETRY, proto.UP, dev, 2,
                                        proto.pack_telemetry(*TEL), tag_len=tag_len)):
        fail("TELEMETRY not written")
    print("SENT TELEMETRY")
    print(f"LINK errors {link.errors} cobs {link.cobs_errors} overflows {link.overflows} "
          f"dropped {link.dropped}")
    link.close()


main()
