"""WiFi bring-up (sw/hal/wifi.py) and the COBS serial link (sw/hal/serial_link.py) under
MicroPython, against fakes at their seams: a scripted `network` module with a fake clock, and
a scripted UART.

MicroPython script: micropython tests/device/links_runner.py [repo_root]
Prints log lines, one line per failed check and, last, exactly "N passed, M failed". Exit
status 1 on failure.
"""
import io
import select
import sys


from checks import ROOT, check, counts  # noqa: E402, F401 - device/ on sys.path

from sw import cobs  # noqa: E402
from sw.hal import wifi  # noqa: E402
from sw.hal.serial_link import SerialLink  # noqa: E402

PSK = "s3cret-beach-psk"  # the test fails if this ever appears in the output


# --- fake network module ------------------------------------------------------------------

class Clock:
    """Fake time: sleep_ms advances it and records the pauses."""

    def __init__(self):
        self.now = 0
        self.sleeps = []

    def sleep_ms(self, ms):
        self.sleeps.append(ms)
        self.now += ms

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b


class Port:
    """A `network` module with one port's STAT_* numbering; WLAN plays a script of attempts:
    each entry is the list of statuses successive status() calls return (the last repeats)."""

    def __init__(self, stats, script):
        for name, value in stats.items():
            setattr(self, name, value)
        self.STA_IF = 0
        self.script = script
        self.calls = []
        self.wlan = None

    def WLAN(self, iface):  # noqa: N802 - the name network.WLAN has
        self.calls.append(("WLAN", iface))
        if self.wlan is None:
            self.wlan = Wlan(self)
        return self.wlan


class Wlan:
    def __init__(self, port):
        self.port = port
        self.on = False
        self.seq = None
        self.i = 0
        self.got_ip = port.STAT_GOT_IP
        self.refuse = False  # connect() raises, like ESP32's "Wifi Internal Error"

    def active(self, *a):
        if a:
            self.on = bool(a[0])
            self.port.calls.append(("active", self.on))
            return None
        return self.on

    def connect(self, ssid, key):
        self.port.calls.append(("connect", ssid, key == PSK))
        if not self.on or self.refuse:
            raise OSError(1)
        self.seq = self.port.script.pop(0)
        self.i = 0

    def status(self, *a):
        if a:
            return -61 if a[0] == "rssi" else None
        if self.seq is None:
            return self.port.STAT_IDLE
        s = self.seq[min(self.i, len(self.seq) - 1)]
        self.i += 1
        return s

    def isconnected(self):
        return self.seq is not None and self.seq[min(self.i, len(self.seq) - 1)] == self.got_ip

    def disconnect(self):
        self.port.calls.append(("disconnect",))
        self.seq = None


ESP32 = {"STAT_IDLE": 1000, "STAT_CONNECTING": 1001, "STAT_GOT_IP": 1010,
         "STAT_WRONG_PASSWORD": 202, "STAT_NO_AP_FOUND": 201, "STAT_CONNECT_FAIL": 203,
         "STAT_ASSOC_FAIL": 203, "STAT_HANDSHAKE_TIMEOUT": 204, "STAT_BEACON_TIMEOUT": 200}
RP2 = {"STAT_IDLE": 0, "STAT_CONNECTING": 1, "STAT_GOT_IP": 3, "STAT_WRONG_PASSWORD": -3,
       "STAT_NO_AP_FOUND": -2, "STAT_CONNECT_FAIL": -1}


def make(stats, script, rands=(32768,), **kw):
    net = Port(stats, script)
    clk = Clock()
    r = list(rands)
    w = wifi.Wifi("beach", PSK, net=net, sleep_ms=clk.sleep_ms, ticks_ms=clk.ticks_ms,
                  ticks_diff=clk.ticks_diff, rand16=lambda: r.pop(0) if len(r) > 1 else r[0],
                  **kw)
    return w, net, clk


def backoffs(clk):
    """The pauses between attempts (the 100 ms status polls left out)."""
    return [s for s in clk.sleeps if s != 100]


def test_wifi_success_first_try():
    for name, st in (("esp32", ESP32), ("rp2", RP2)):
        w, net, clk = make(st, [[st["STAT_CONNECTING"]] * 3 + [st["STAT_GOT_IP"]]])
        got = w.up()
        check(name + " connected", got == wifi.CONNECTED and w.reason == got, got)
        check(name + " one try, no backoff", w.tries == 1 and backoffs(clk) == [],
              repr((w.tries, clk.sleeps)))
        check(name + " polled while associating", clk.sleeps == [100] * 3, repr(clk.sleeps))
        check(name + " activated, then connect with the passphrase",
              net.calls[:3] == [("WLAN", 0), ("active", True), ("connect", "beach", True)],
              repr(net.calls))
        check(name + " rssi", w.rssi() == -61)
        n = len(net.calls)
        check(name + " already up: no new connect", w.up() == wifi.CONNECTED
              and len(net.calls) == n, repr(net.calls[n:]))
        w.off()
        check(name + " off: disconnect, radio down",
              net.calls[-2:] == [("disconnect",), ("active", False)], repr(net.calls[-2:]))
        check(name + " rssi when off", w.rssi() == -128)


def test_wifi_retries_with_growing_jittered_delays():
    st = ESP32
    fail = [st["STAT_CONNECTING"], st["STAT_NO_AP_FOUND"]]
    # rand16 0 -> -25 %, 65535 -> ~+25 %, 32768 -> exact
    w, net, clk = make(st, [fail, fail, fail, [st["STAT_GOT_IP"]]], rands=(32768, 0, 65535),
                       attempts=5, backoff_ms=1000, backoff_max_ms=30000)
    got = w.up()
    check("retry: connected on try 4", got == wifi.CONNECTED and w.tries == 4,
          repr((got, w.tries)))
    check("retry: delays 1000, 2000*0.75, 4000*~1.25", backoffs(clk) == [1000, 1500, 4999],
          repr(backoffs(clk)))
    check("retry: disconnect after each failure",
          sum(1 for c in net.calls if c == ("disconnect",)) == 3, repr(net.calls))

    # the cap: 8 failed tries, delays double up to backoff_max_ms and stay there
    w, net, clk = make(st, [[st["STAT_CONNECT_FAIL"]]] * 8, attempts=8, backoff_ms=1000,
                       backoff_max_ms=5000)
    got = w.up()
    check("cap: gives up with the reason", got == wifi.FAILED and w.tries == 8,
          repr((got, w.tries)))
    check("cap: delays capped", backoffs(clk) == [1000, 2000, 4000, 5000, 5000, 5000, 5000],
          repr(backoffs(clk)))
    check("cap: radio left disconnected", net.calls[-1] == ("disconnect",), repr(net.calls[-1]))


def test_wifi_timeout_is_bounded():
    st = RP2
    w, _net, clk = make(st, [[2], [2]], attempts=2, timeout_ms=1000, backoff_ms=500)
    got = w.up()  # 2 = link up without an address, forever: a timeout, not a hang
    check("timeout: reason", got == wifi.TIMEOUT and w.tries == 2, repr((got, w.tries)))
    check("timeout: bounded time", clk.now <= 2 * 1100 + 500, repr(clk.now))
    check("timeout: one backoff", backoffs(clk) == [500], repr(backoffs(clk)))


def test_wifi_wrong_password_gives_up_at_once():
    for name, st, code in (("esp32", ESP32, 202), ("esp32 handshake", ESP32, 204),
                           ("rp2", RP2, -3)):
        w, net, clk = make(st, [[st["STAT_CONNECTING"], code]] * 4)
        got = w.up()
        check(name + ": wrong password", got == wifi.WRONG_PASSWORD and w.tries == 1,
              repr((got, w.tries)))
        check(name + ": no backoff", backoffs(clk) == [], repr(clk.sleeps))
    w, _net, clk = make(RP2, [[-2]] * 4)
    check("rp2: no AP found after 4 tries", w.up() == wifi.NO_AP and w.tries == 4)


def test_wifi_connect_refused_and_config():
    st = ESP32
    w, net, clk = make(st, [[st["STAT_GOT_IP"]]])
    net.WLAN(0).refuse = True
    got = w.up()
    check("connect refused: failed, bounded", got == wifi.FAILED and w.tries == 4,
          repr((got, w.tries)))
    check("from_config without ssid", wifi.from_config({"report_interval_s": 60}) is None)
    try:
        wifi.station({"report_interval_s": 60}, "esp32c3_node")
        check("station without ssid refused", False)
    except wifi.WifiConfigError as e:
        check("station without ssid refused", "wifi_ssid is required on board esp32c3_node"
              in str(e), str(e))
    net = Port(st, [[st["STAT_GOT_IP"]]])
    clk = Clock()
    w = wifi.station({"wifi_ssid": "beach", "wifi_psk": PSK}, "esp32c3_node", net=net,
                     sleep_ms=clk.sleep_ms, ticks_ms=clk.ticks_ms, ticks_diff=clk.ticks_diff)
    check("station is up when built", w.reason == wifi.CONNECTED and w.rssi() == -61,
          repr(w.reason))
    for cfg in ({"wifi_ssid": ""}, {"wifi_ssid": "x" * 33},
                {"wifi_ssid": "beach", "wifi_psk": "short"}, {"wifi_ssid": 7}):
        try:
            wifi.from_config(cfg, net=net)
            e = None
        except wifi.WifiConfigError as x:
            e = x
        check(f"bad config refused: {sorted(cfg)}", e is not None)
        check("bad config message has no secret", e is None or "short" not in str(e))
    w2 = wifi.from_config({"wifi_ssid": "beach", "wifi_psk": PSK}, net=net,
                          sleep_ms=clk.sleep_ms, ticks_ms=clk.ticks_ms,
                          ticks_diff=clk.ticks_diff)
    check("from_config builds", w2 is not None and w2.ssid == "beach")
    check("repr has no secret", PSK not in repr(w2))
    check("open network accepted", wifi.from_config({"wifi_ssid": "open"}, net=net) is not None)


# --- serial link --------------------------------------------------------------------------

class Uart:
    """machine.UART with timeout=0: readinto returns None when empty; write may be cut."""

    def __init__(self, chunks=(), room=None):
        self.chunks = list(chunks)
        self.out = bytearray()
        self.room = room  # bytes the TX buffer takes per write; None: all

    def readinto(self, buf):
        if not self.chunks:
            return None
        c = self.chunks.pop(0)
        if isinstance(c, Exception):
            raise c
        n = min(len(c), len(buf))
        buf[:n] = c[:n]
        if n < len(c):
            self.chunks.insert(0, c[n:])
        return n

    def write(self, data):
        n = len(data) if self.room is None else min(self.room, len(data))
        self.out += data[:n]
        return n or None


class Poller:
    """Records register/unregister like select.poll; ready() lists what would be readable."""

    def __init__(self):
        self.objs = []

    def register(self, o, mask):
        check("poller mask", mask == select.POLLIN)
        if o not in self.objs:
            self.objs.append(o)

    def unregister(self, o):
        self.objs.remove(o)


def drain(link, limit=20):
    out = []
    for _ in range(limit):  # bounded: recv() must run dry
        f = link.recv()
        if f is None:
            return out
        out.append(f)
    check("drain bounded", False, "recv never ran dry")
    return out


def test_serial_frames_garbage_and_oversize():
    a, b, c = b"\x01\x00\x02hello", b"\x00" * 5, bytes(range(1, 255))  # c: the longest kept
    stream = (b"\x00\x00" + b"\x07ab\x00" + cobs.encode(a) + cobs.encode(b)[:3])
    rest = cobs.encode(b)[3:] + b"\x05" * 300 + b"\x00" + cobs.encode(c)
    chunks = [stream[i:i + 7] for i in range(0, len(stream), 7)] + [rest]
    u = Uart(chunks)
    link = SerialLink(u)
    p = Poller()
    link.open(p)
    check("open registers the UART", p.objs == [u])
    got = []
    for _ in range(60):  # one recv per poll event, as the node does
        f = link.recv()
        if f is not None:
            got.append(f)
    check("frames in order, garbage skipped", got == [a, b, c], repr([len(x) for x in got]))
    check("bad COBS counted", link.cobs_errors == 1, repr(link.cobs_errors))
    check("oversize counted once", link.overflows == 1, repr(link.overflows))
    check("errors total", link.errors == 2, repr(link.errors))
    link.close()
    check("close unregisters", p.objs == [])


def test_serial_burst_keeps_the_poller_awake():
    frames = [bytes([i + 1]) * (10 + i) for i in range(6)]
    u = Uart([b"".join(cobs.encode(f) for f in frames)])
    link = SerialLink(u)
    p = Poller()
    link.open(p)
    first = link.recv()
    check("burst: first frame", first == frames[0])
    check("burst: pending frames keep a ready object registered", len(p.objs) == 2)
    rest = drain(link)
    check("burst: queue bounded, the rest counted", rest == frames[1:4] and link.dropped == 2,
          repr((len(rest), link.dropped)))
    check("burst: ready object gone once drained", p.objs == [u])


class PollableUart(io.IOBase):
    """A scripted UART the real select.poll can watch: readable while chunks are left."""

    def __init__(self, chunks):
        self.u = Uart(chunks)

    def readinto(self, buf):
        return self.u.readinto(buf)

    def write(self, data):
        return self.u.write(data)

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL
            return arg & select.POLLIN if self.u.chunks else 0
        return -1


def test_serial_burst_under_the_real_poller():
    """As the node's loop: one recv() per event of select.poll's ipoll; a burst read in one
    chunk is delivered whole although the UART has nothing left to say."""
    frames = [bytes([0x40 + i]) * 20 for i in range(3)]
    uart = PollableUart([b"".join(cobs.encode(f) for f in frames)])
    link = SerialLink(uart)
    poller = select.poll()
    link.open(poller)
    got = []
    for _ in range(10):  # bounded: each pass is one wake-up of the node's loop
        for _ in poller.ipoll(0):
            f = link.recv()
            if f is not None:
                got.append(f)
    check("real poller: burst delivered", got == frames, repr(got))
    check("real poller: nothing left armed", poller.poll(0) == [], repr(poller.poll(0)))
    link.close()


def test_serial_send_and_cut_writes():
    u = Uart()
    link = SerialLink(u)
    link.open(Poller())
    big = bytes(range(256)) * 3
    ok = link.send(b"\x11\x00\x22") and link.send(big)
    check("send ok", ok)
    want = cobs.encode(b"\x11\x00\x22") + cobs.encode(big)
    check("send encodes with delimiters", bytes(u.out) == want, repr(bytes(u.out[:12])))
    u.out = bytearray()
    u.room = 3
    check("cut write refused", not link.send(b"abcdef") and link.errors == 1)
    u.room = None
    check("next send starts with a delimiter", link.send(b"xyz")
          and bytes(u.out) == b"\x07ab" + b"\x00" + cobs.encode(b"xyz"), repr(bytes(u.out)))
    u2 = Uart([OSError(5)])
    link2 = SerialLink(u2)
    link2.open(Poller())
    check("read error counted", link2.recv() is None and link2.errors == 1)


def main():
    tests = [(k, v) for k, v in sorted(globals().items()) if k.startswith("test_")]
    for _, fn in tests:
        fn()
    print(f"{counts[0]} passed, {counts[1]} failed")
    sys.exit(1 if counts[1] else 0)


main()
