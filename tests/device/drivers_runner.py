"""Real drivers (device/sw/hal) against recorded bus traffic, under MicroPython.

MicroPython script: micropython tests/device/drivers_runner.py [repo_root]
Prints one line per failed check and, last, exactly "N passed, M failed". Exit status 1 on
failure. Recordings: tests/device/recordings/ (format in fakebus.py).
"""
import sys
from time import ticks_diff, ticks_ms


from checks import ROOT, check, counts  # noqa: E402, F401 - device/ on sys.path
sys.path.insert(0, ROOT + "/tests/device")

from fakebus import (  # noqa: E402
    Replay,
    ReplayAdc,
    ReplayAdcU16,
    ReplayError,
    ReplayI2C,
    ReplayPin,
    ReplayUart,
)
from sw.hal import ld2410  # noqa: E402
from sw.hal.battery_adc import AdcBattery  # noqa: E402
from sw.hal.ina219 import Ina219  # noqa: E402
from sw.hal.ld2410_virtual import VirtualLd2410  # noqa: E402

REC = ROOT + "/tests/device/recordings/"


def replayed(name, r):
    """The recording was played to its end: nothing the chip expected was skipped."""
    left = r.done()
    check(name + ": whole recording replayed", left is None, left or "")


def raises(fn, exc):
    try:
        fn()
    except exc as e:
        return e
    return None


# --- INA219 -------------------------------------------------------------------------------

def test_ina219():
    r = Replay.load(REC + "ina219_charge.txt")
    dev = Ina219(ReplayI2C(r), shunt_mohm=100, max_ma=400)
    check("ina219 cal", dev.cal == 0x7B12 and dev.lsb_ua == 13, f"{dev.cal:x} {dev.lsb_ua}")
    got = dev.read_power()
    check("ina219 charge", got == (5200, 123), repr(got))
    check("ina219 shunt uv", dev.shunt_uv == 12340 and dev.current_ua == 123383,
          f"{dev.shunt_uv} {dev.current_ua}")
    replayed("ina219 charge", r)

    r = Replay.load(REC + "ina219_discharge.txt")
    dev = Ina219(ReplayI2C(r), shunt_mohm=10, max_ma=3200)
    got = dev.read_power()
    check("ina219 discharge", got == (0, -1500), repr(got))
    got = dev.read_power()
    check("ina219 nack", got == (0, -32768), repr(got))
    got = dev.read_power()
    check("ina219 overflow", got == (5200, -32768), repr(got))
    replayed("ina219 discharge", r)

    r = Replay.load(REC + "ina219_pga.txt")
    dev = Ina219(ReplayI2C(r), shunt_mohm=100, max_ma=1000)
    got = dev.read_power()
    check("ina219 no conversion", got == (0, -32768), repr(got))
    replayed("ina219 pga", r)


# --- battery ADC --------------------------------------------------------------------------

def test_battery():
    r = Replay.load(REC + "battery_esp32.txt")
    bat = AdcBattery(ReplayAdc(r), 2000, samples=8, en_pin=ReplayPin(r, "en"))
    got = bat.read_mv()
    check("battery esp32", got == 3810, repr(got))
    replayed("battery esp32", r)

    r = Replay.load(REC + "battery_rp2.txt")
    bat = AdcBattery(ReplayAdcU16(r), 3000, samples=4, vref_mv=3300)
    got = bat.read_mv()
    check("battery rp2", got == 5589, repr(got))
    replayed("battery rp2", r)

    # the divider is switched off even when the ADC fails half-way
    r = Replay([["PIN", 1, "en", "0"], ["PIN", 2, "en", "1"], ["ADC.UV", 3, "1900000"],
                ["PIN", 4, "en", "0"]])
    bat = AdcBattery(ReplayAdc(r), 2000, samples=2, en_pin=ReplayPin(r, "en"))
    e = raises(bat.read_mv, ReplayError)
    check("battery en off after error", e is not None and r.done() is None, repr(e))


# --- LD2410 parser and driver -------------------------------------------------------------

def test_ld2410_recorded():
    r = Replay.load(REC + "ld2410_firmware.txt")
    radar = ld2410.Ld2410(ReplayUart(r))
    got = radar.firmware()
    check("ld2410 firmware", got == "V1.07.22091615", repr(got))
    replayed("ld2410 firmware", r)

    r = Replay.load(REC + "ld2410_engineering.txt")
    radar = ld2410.Ld2410(ReplayUart(r))
    radar.set_engineering(True)
    p = radar.parser
    check("ld2410 report beside ack", p.reports == 1 and p.move_cm == 250 and p.cmds == 3,
          f"{p.reports} {p.move_cm} {p.cmds}")
    e = raises(lambda: radar.config_mode(True), OSError)
    check("ld2410 refused command", e is not None and "status 1" in str(e), repr(e))
    replayed("ld2410 engineering", r)

    r = Replay.load(REC + "ld2410_reports.txt")
    radar = ld2410.Ld2410(ReplayUart(r))
    p = radar.parser
    n = radar.poll()
    check("ld2410 poll 1", n == 1 and p.state == ld2410.MOVING and p.move_cm == 250
          and p.move_energy == 70 and p.detect_cm == 250 and p.dropped == 7,
          f"{n} {p.state} {p.move_cm} {p.dropped}")
    n = radar.poll()
    check("ld2410 poll 2 resync", n == 2 and p.bad == 1 and p.state == ld2410.BOTH
          and p.still_cm == 310 and p.still_energy == 61 and p.move_energy == 33
          and p.dropped == 7 + 14 + 6, f"{n} bad {p.bad} dropped {p.dropped}")
    check("ld2410 static report kept", p.reports == 3, repr(p.reports))
    n = radar.poll()
    check("ld2410 engineering report", n == 1 and p.engineering and p.n_move == 9
          and p.move_gates[2] == 88 and p.n_still == 9 and p.still_gates[8] == 9
          and p.detect_cm == 180, f"{n} {p.n_move} {p.move_gates[2]}")
    check("ld2410 peak", p.peak == 88, repr(p.peak))
    replayed("ld2410 reports", r)

    # no ACK at all: OSError after the timeout, not a hang
    r = Replay([["UART.TX", 1, "fdfcfbfa04 00ff00010004030201"]])
    radar = ld2410.Ld2410(ReplayUart(r))
    t = ticks_ms()
    e = raises(lambda: radar.command(ld2410.CMD_CONFIG_ON, b"\x01\x00", timeout_ms=60),
               OSError)
    waited = ticks_diff(ticks_ms(), t)
    check("ld2410 ack timeout", e is not None and 60 <= waited < 1000, f"{e!r} {waited}")


def _frame(body, report=True):
    hdr = b"\xf4\xf3\xf2\xf1" if report else b"\xfd\xfc\xfb\xfa"
    tail = b"\xf8\xf7\xf6\xf5" if report else b"\x04\x03\x02\x01"
    return hdr + bytes((len(body) & 0xFF, len(body) >> 8)) + body + tail


_BASIC = b"\x02\xaa\x01\xfa\x00\x46\x00\x00\x00\xfa\x00\x55\x00"


def test_ld2410_parser():
    good = _frame(_BASIC)
    # one byte at a time
    p = ld2410.Parser()
    for b in good:
        p.feed(bytes((b,)))
    check("parser byte by byte", p.reports == 1 and p.move_energy == 70, repr(p.reports))
    # every truncated prefix is incomplete: nothing reported, nothing counted bad
    ok = True
    for k in range(len(good)):
        p = ld2410.Parser()
        p.feed(good[:k])
        ok = ok and p.reports == 0 and p.bad == 0
    check("parser truncated prefixes", ok)
    # malformed table: each is rejected and the good frame after it still parses
    cases = (
        ("bad tail", good[:-1] + b"\x00"),
        ("length 1", b"\xf4\xf3\xf2\xf1\x01\x00"),
        ("length over cap", b"\xf4\xf3\xf2\xf1\x41\x00"),
        ("unknown type", _frame(b"\x07" + _BASIC[1:])),
        ("no 55 00", _frame(_BASIC[:-2] + b"\x00\x00")),
        ("basic too long", _frame(_BASIC[:-2] + b"\x00\x55\x00")),
        ("engineering gates overflow", _frame(b"\x01\xaa" + _BASIC[2:11] + b"\x09\x00"
                                              + bytes(11) + b"\x55\x00")),
        ("engineering short", _frame(b"\x01\xaa" + _BASIC[2:11] + b"\x08\x08\x55\x00")),
        ("header only", b"\xf4\xf3\xf2\xf1"),
        ("command header junk", b"\xfd\xfc\xfb\x00"),
    )
    for name, junk in cases:
        p = ld2410.Parser()
        p.feed(junk + good)
        check("parser " + name, p.reports == 1 and p.move_cm == 250,
              f"reports {p.reports} bad {p.bad} dropped {p.dropped}")
    # random garbage never raises and the frame after it is found
    x = 12345
    garbage = bytearray(2000)
    for i in range(len(garbage)):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        garbage[i] = (x >> 16) & 0xFF if i % 7 else 0xF4  # many false header starts
    p = ld2410.Parser()
    p.feed(garbage)
    before = p.reports
    p.feed(b"\x00" * 80 + good)  # longer than any frame: a pending false start is flushed
    check("parser after garbage", p.reports == before + 1 and p.move_cm == 250,
          f"{before} -> {p.reports}")
    # an ACK between reports is kept apart
    p = ld2410.Parser()
    p.feed(good + _frame(b"\xa0\x01\x00\x00", report=False) + good)
    check("parser ack between reports", p.reports == 2 and p.cmds == 1 and p.cmd == 0x01A0
          and p.cmd_len == 2)


def test_ld2410_virtual():
    # the real driver on the virtual radar: scripted presence 0..0.6 s moving at 250 cm
    script = ((0, 600, 250, 70, True), (600, 700, 120, 40, False))
    uart = VirtualLd2410(script, period_ms=50)
    radar = ld2410.Ld2410(uart, window_ms=200, warmup_ms=0)
    check("virtual firmware", radar.firmware() == "V1.07.22091615")
    check("virtual protocol", radar.config_mode(True) == 1)
    radar.config_mode(False)
    got = radar.confidence()
    check("virtual confidence present", got == 70, repr(got))
    radar.set_engineering(True)
    radar.parser.reports = 0
    t = ticks_ms()
    while radar.parser.reports < 2 and ticks_diff(ticks_ms(), t) < 1000:
        radar.poll()
    p = radar.parser
    check("virtual engineering gates", p.engineering and p.move_gates[3] == 70
          and p.move_gates[0] == 4, f"{p.engineering!r} {bytes(p.move_gates)!r}")
    radar.set_engineering(False)
    # wait until the script has ended: then no target
    while ticks_diff(ticks_ms(), t) < 800:
        radar.poll()
    got = radar.confidence()
    check("virtual confidence empty", got == 0 and radar.parser.state == 0, repr(got))
    # nobody reads for a while: the UART buffer overruns, the parser resynchronises
    uart2 = VirtualLd2410(((0, 10000, 250, 70, True),), period_ms=2)
    r2 = ld2410.Ld2410(uart2, window_ms=0, warmup_ms=0)
    t = ticks_ms()
    while ticks_diff(ticks_ms(), t) < 80:
        uart2.any()  # the radar keeps sending, nobody reads
    # read in odd-sized pieces so frames split everywhere
    buf = bytearray(7)
    for _ in range(200):
        n = uart2.readinto(buf)
        if n:
            r2.parser.feed(buf, n)
    p = r2.parser
    check("virtual overrun resync", uart2.overruns > 0 and p.reports >= 5 and p.bad == 0
          and p.dropped > 0, f"{uart2.overruns} {p.reports} {p.dropped}")
    # a silent radar: powered, nothing heard, PIR decides (50), counted
    r = Replay([["PIN", 1, "pwr", "0"], ["PIN", 2, "pwr", "1"], ["PIN", 3, "pwr", "0"]])
    silent = ld2410.Ld2410(ReplayUart(r), en_pin=ReplayPin(r, "pwr"), window_ms=30,
                           warmup_ms=30)
    got = silent.confidence()
    check("silent radar", got == 50 and silent.silent == 1 and r.done() is None, repr(got))


for test in (test_ina219, test_battery, test_ld2410_recorded, test_ld2410_parser,
             test_ld2410_virtual):
    try:
        test()
    except Exception as e:  # a crash is one failure with its message, then the next test
        counts[1] += 1
        print("FAIL", test.__name__, "raised", repr(e))
        sys.print_exception(e)

print(f"{counts[0]} passed, {counts[1]} failed")
sys.exit(1 if counts[1] else 0)
