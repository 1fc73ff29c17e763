"""Board definitions on the unix port, which has no machine.Pin/I2C/UART/ADC, under MicroPython.

MicroPython script: micropython tests/device/boards_runner.py [repo_root [scratch_file]]
Checks per real board: it imports, declares itself, fails make() with HardwareMissing here, and
with a stand-in `machine` module wires every HAL role to the pins of its docstring. Also: the
virtual board loads none of the real drivers (they must not cost the sensor node heap).
Last line exactly "N passed, M failed".
"""
import sys


from checks import ROOT, check, counts  # noqa: E402, F401 - device/ on sys.path

from sw.hal.hw import HardwareMissing  # noqa: E402

IDENTITY = {"gateway": {"host": "127.0.0.1", "port": 47001}}
CONFIG = {"radar_window_ms": 700, "wifi_ssid": "beach", "wifi_psk": "sand-and-salt-2026",
          "pir": {"seed": 1, "mean_interval_s": 600, "duration_s": 5},
          "battery": {"initial_mv": 3950},
          "sim": {"warp": False, "start_s": 0, "panel": 1.0, "outages": []}}
ROLES = (("battery", "read_mv"), ("power", "read_power"), ("env", "read_env"),
         ("radio", "rssi"), ("thermo", "read_cc"), ("clock", "now"), ("link", "send"))
NODE_ROLES = (("confirm", "confidence"), ("pir", "edge"), ("sleep", "wait"))
DRIVERS = ("sw.hal.mlx90640", "sw.hal.ld2410", "sw.hal.ld2410_virtual", "sw.hal.ina219",
           "sw.hal.battery_adc", "sw.hal.pir_pin", "sw.hal.hw", "sw.hal.sleep")


# --- a stand-in `machine` that records what the board builds ------------------------------

built = []


class Pin:
    IN = 1
    OUT = 2
    IRQ_RISING = 4
    IRQ_FALLING = 8

    def __init__(self, n, mode=None):
        self.n = n
        self.mode = mode
        built.append(("Pin", n, mode))

    def irq(self, handler, trigger=None, wake=None):
        built.append(("irq", self.n, trigger))

    def value(self, v=None):
        return 0


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin, atten=None):
        built.append(("ADC", pin.n, atten))

    def read_uv(self):
        return 1900000


class I2C:
    def __init__(self, bus, sda=None, scl=None, freq=None):
        built.append(("I2C", bus, sda.n, scl.n, freq))


class UART:
    def __init__(self, bus, baudrate=None, tx=None, rx=None, timeout=None, rxbuf=None):
        tx = tx.n if isinstance(tx, Pin) else tx
        rx = rx.n if isinstance(rx, Pin) else rx
        built.append(("UART", bus, baudrate, tx, rx, timeout))


class FakeMachine:
    pass


fake = FakeMachine()
for cls in (Pin, ADC, I2C, UART):
    setattr(fake, cls.__name__, cls)


class Station:
    """network.WLAN stand-in: associates at once; records what the board asked."""

    def __init__(self, iface):
        self.on = False
        self.joined = None

    def active(self, on=None):
        if on is not None:
            self.on = on
        return self.on

    def connect(self, ssid, key):
        self.joined = ssid

    def isconnected(self):
        return self.joined is not None

    def status(self, what=None):
        return -58 if what == "rssi" else 3

    def disconnect(self):
        self.joined = None


class FakeNetwork:
    STA_IF = 0
    STAT_IDLE = 0
    STAT_CONNECTING = 1
    STAT_GOT_IP = 3
    STAT_WRONG_PASSWORD = -3
    STAT_NO_AP_FOUND = -2
    STAT_CONNECT_FAIL = -1
    WLAN = Station

# (module, hw_kind, capabilities, roles, what make() must build)
BOARDS = (
    ("esp32c3_node", 1, 0x3B, NODE_ROLES,
     (("ADC", 0, 3), ("Pin", 1, Pin.OUT), ("I2C", 0, 6, 7, 400000),
      ("UART", 1, 256000, 21, 20, 0), ("Pin", 10, Pin.OUT), ("Pin", 3, Pin.IN),
      ("irq", 3, Pin.IRQ_RISING))),
    ("picow_node", 1, 0x3B, NODE_ROLES,
     (("ADC", 26, None), ("Pin", 17, Pin.OUT), ("I2C", 0, 4, 5, 400000),
      ("UART", 0, 256000, 0, 1, 0), ("Pin", 16, Pin.OUT), ("Pin", 15, Pin.IN))),
    ("esp32s3_camera", 2, 0xBC, (),
     (("ADC", 1, 3), ("Pin", 2, Pin.OUT), ("I2C", 1, 4, 5, 400000),
      ("I2C", 0, 8, 9, 800000))),
)

for name, kind, caps, extra, wiring in BOARDS:
    try:
        mod = __import__("sw.boards." + name, None, None, ("make",))
        check(name + " declares itself", name == mod.NAME and kind == mod.HW_KIND
              and caps == mod.CAPABILITIES,
              f"{mod.NAME} {mod.HW_KIND} {mod.CAPABILITIES:x}")
        check(name + " boot_reason unknown here", mod.boot_reason() == 0)
        # the unix port's own machine module: a clear error naming what is missing
        try:
            mod.make("", IDENTITY, CONFIG)
            check(name + " refuses the unix port", False, "make() succeeded")
        except HardwareMissing as e:
            check(name + " refuses the unix port", "machine." in str(e) and name in str(e),
                  str(e))
        real = sys.modules.get("machine")
        real_net = sys.modules.get("network")
        sys.modules["machine"] = fake
        sys.modules["network"] = FakeNetwork
        del built[:]
        try:
            b = mod.make("", IDENTITY, CONFIG)
        finally:
            for m, was in (("machine", real), ("network", real_net)):
                if was is None:
                    del sys.modules[m]
                else:
                    sys.modules[m] = was
        missing = [r for r, m in ROLES + extra if not hasattr(getattr(b, r, None), m)]
        check(name + " fills every role", not missing, repr(missing))
        pins = [w for w in wiring if w not in built]
        check(name + " wiring as documented", not pins, f"missing {pins!r} in {built!r}")
        if extra:
            check(name + " radar window from config", b.confirm.window_ms == 700)
        else:
            check(name + " camera emissivity", b.thermo.emissivity == 0.95)
        check(name + " mV from the ADC", b.battery.read_mv() == 3800, repr(b.battery.read_mv()))
        check(name + " WiFi up before the link, its RSSI the radio role",
              b.radio.reason == "connected" and b.radio.rssi() == -58, repr(b.radio.reason))
    except Exception as e:
        counts[1] += 1
        print("FAIL", name, "raised", repr(e))
        sys.print_exception(e)

# the virtual board (the 64 KB sensor node) does not load any real driver
for m in DRIVERS:
    sys.modules.pop(m, None)
from sw.boards import virtual  # noqa: E402

b = virtual.make("", IDENTITY, CONFIG)
loaded = [m for m in DRIVERS if m in sys.modules]
check("virtual board loads no real driver", not loaded, repr(loaded))
check("virtual board still complete", all(hasattr(getattr(b, r), m) for r, m in
                                          ROLES + NODE_ROLES))

# the virtual camera: the MLX90640's twin, none of the real drivers either
for m in DRIVERS:
    sys.modules.pop(m, None)
import os  # noqa: E402

recording = sys.argv[2] if len(sys.argv) > 2 else "boards-runner.raw"  # a scratch file
with open(recording, "wb") as f:
    f.write(bytes(3 * 1536))
try:
    from sw.boards import virtual_camera  # noqa: E402

    b = virtual_camera.make("", IDENTITY, dict(CONFIG, thermal={
        "recording": recording, "speed": 1, "loop": True, "loop_from": 0, "frames": 0}))
    loaded = [m for m in DRIVERS if m in sys.modules]
    check("virtual camera loads no real driver", not loaded, repr(loaded))
    check("virtual camera fills the camera's roles", virtual_camera.HW_KIND == 2 and all(
        hasattr(getattr(b, r), m) for r, m in ROLES + (("thermo", "poll"), ("thermo", "due_ms"))))
finally:
    os.remove(recording)

print(f"{counts[0]} passed, {counts[1]} failed")
sys.exit(1 if counts[1] else 0)
