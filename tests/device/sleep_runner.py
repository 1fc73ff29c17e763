"""Deep sleep on a real node board, on the unix port: the real sleep driver (sw/hal/sleep.py), the
node's state in RTC memory (sw/app/retain.py) and the boot that resumes from it
(sw/app/wake.py), with stand-ins for `machine` and `esp32` at the layer seam only.

MicroPython script: micropython tests/device/sleep_runner.py FLASH_DIR [repo_root]
Prints one line per failed check and, last, exactly "N passed, M failed".
"""
import select
import socket
import sys


from checks import ROOT, check, counts  # noqa: E402, F401 - device/ on sys.path

FLASH = sys.argv[1]

from sw.app import events, power, wake  # noqa: E402
from sw.hal.clock import SoftClock  # noqa: E402
from sw.hal.sleep import MachineSleep  # noqa: E402


# --- stand-ins at the seam ------------------------------------------------------------------

class Reset(Exception):
    """What machine.deepsleep() does to a program: it never returns."""


class FakeRTC:
    mem = b""

    def memory(self, data=None):
        if data is None:
            return FakeRTC.mem
        FakeRTC.mem = bytes(data)
        return None


class FakeMachine:
    PWRON_RESET = 1
    DEEPSLEEP_RESET = 4
    SLEEP = 2
    DEEPSLEEP = 4

    def __init__(self):
        self.cause = self.PWRON_RESET
        self.calls = []
        self.rtc_ms = 1_000_000

    def reset_cause(self):
        return self.cause

    def RTC(self):  # noqa: N802 - machine.RTC
        return FakeRTC()

    def lightsleep(self, ms):
        self.calls.append(("lightsleep", ms))
        self.rtc_ms += ms

    def deepsleep(self, ms):
        self.calls.append(("deepsleep", ms))
        raise Reset()


class FakeEsp32:
    def __init__(self):
        self.ext0 = None

    def wake_on_ext0(self, pin, level):
        self.ext0 = level


class FakePin:
    IRQ_RISING = 1
    IRQ_FALLING = 2
    level = 0

    def value(self):
        return self.level

    def irq(self, handler, trigger=None, wake=None):
        pass


class FakePir:
    """The board's PIR as the sleep driver sees it (pin, irq) and the node uses it."""

    def __init__(self):
        self.pin = FakePin()
        self.holdoff_ms = 0
        self.edges = 0

    def irq(self, pin):
        pass

    def edge(self):
        return None

    def present(self):
        return False

    def wake_ms(self):
        return 60000


class FakeLink:
    def __init__(self):
        self.sent = []
        self._s = None

    def open(self, poller):
        self._s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        poller.register(self._s, select.POLLIN)

    def close(self):
        if self._s is not None:
            self._s.close()
            self._s = None

    def send(self, frame):
        self.sent.append(bytes(frame))
        return True

    def recv(self):
        return None


class FakeSensors:
    window_ms = 0

    def read_mv(self):
        return 3700

    def read_power(self):
        return 0, -20

    def read_env(self):
        return 800, 150

    def rssi(self):
        return -60

    def confidence(self):
        return 90

    def read_cc(self):
        return 3100


class Board:
    pass


MACHINE = FakeMachine()
ESP32 = FakeEsp32()
IDENT = {"device_id": 0x00C0FFEE, "tag_len": 8, "master_key": (bytes(32), bytes(32), bytes(16),
                                                             bytes(16))}
CFG = {"report_interval_s": 300, "update_interval_s": 0, "config_version": 3,
       "detection_sensitivity": 50, "pir_holdoff_s": 0, "battery_low_mv": 3300,
       "radar_window_ms": 2000, "run_for_s": None,
       "link": {"ack_timeout_s": 2, "max_retries": 3}}
INFO = ("esp32c3_node", 1, 4, 0x3B)


def board():
    b = Board()
    b.clock = SoftClock()
    b.pir = FakePir()
    b.sleep = MachineSleep(MACHINE, b.pir, 10000, ESP32, rtc_ms=lambda: MACHINE.rtc_ms)
    b.link = FakeLink()
    b.battery = b.power = b.env = b.radio = b.confirm = b.thermo = FakeSensors()
    return b


def boot():
    n = wake.node(FLASH, dict(IDENT), dict(CFG), board(), INFO)
    check("boot gives a node", not isinstance(n, int), repr(n))
    return n


# --- the sleep driver on its own ------------------------------------------------------------

b = board()
p = select.poll()
b.link.open(p)
MACHINE.calls = []
b.sleep.wait(p, 5000, True)
check("an idle wait is a light sleep", MACHINE.calls == [("lightsleep", 5000)],
      repr(MACHINE.calls))
check("the PIR pin wakes it at its next edge (rising)", ESP32.ext0 == 1, repr(ESP32.ext0))
MACHINE.calls = []
b.sleep.wait(p, 5000, False)
check("an awaited wait stays awake (no sleep)", MACHINE.calls == [], repr(MACHINE.calls))
b.pir.pin.level = 1
b.sleep.wait(p, 5000, True)
check("a presence in progress wakes it when it ends", ESP32.ext0 == 0, repr(ESP32.ext0))
b.pir.pin.level = 0
check("a power-on boot has nothing kept", b.sleep.retained() is None)
b.link.close()

# --- boot, sleep, wake --------------------------------------------------------------------

FakeRTC.mem = b""
n = boot()
check("a first boot counts", n.boot_count == 1, repr(n.boot_count))
check("and reserves a counter block", n.counter.writes == 1, repr(n.counter.writes))
for _ in range(10):
    n.counter.next()
# a session, a mode, three stored events (one in flight), as the loop would leave them
n.window.reset(1234)
n.synced = True
n.board.clock.set(1_797_868_800, 500)
n._tm_due = n.now() + 300000
n.mode = power.SAVING
n._seq = 5
n.overflow = True
n.link_ok = False
st = n.store
for k in range(3):
    st.add((1 << 16) | (k + 1), k % 3, 70 + k, 3100 + k, 1_797_868_000 + k, 10 * k, False)
st.set_tries(2, 1)
next_before = n.counter.peek()
MACHINE.calls = []
try:
    n._deep_sleep(60000)
    check("deep sleep does not return", False)
except Reset:
    check("deep sleep does not return", True)
check("deep sleep for the wait", MACHINE.calls == [("deepsleep", 60000)], repr(MACHINE.calls))
check("the state is in RTC memory", 66 + 3 * events.SIZE < len(FakeRTC.mem) < 2048,
      repr(len(FakeRTC.mem)))
n.board.link.close()

# the wake: a reset from deep sleep, 60 s later by the RTC
MACHINE.cause = MACHINE.DEEPSLEEP_RESET
MACHINE.rtc_ms += 60000
m = boot()
check("a wake is not a boot", m.boot_count == 1, repr(m.boot_count))
check("the counter block goes on without a flash write",
      m.counter.peek() == next_before and m.counter.writes == 0,
      "%d %d" % (m.counter.peek(), m.counter.writes))
check("the session goes on", m.synced and m.window.highest == 1234, repr(m.window.highest))
unix_s, _ = m.board.clock.at(m.now())
check("the wall clock counts the sleep", 1_797_868_860 <= unix_s <= 1_797_868_862, repr(unix_s))
check("uptime counts the sleep", m._uptime_s() >= 60, repr(m._uptime_s()))
due = m._tm_due - m.now()
check("the next TELEMETRY is where it was", 239000 <= due <= 240500, repr(due))
check("mode, overflow and link state are kept",
      m.mode == power.SAVING and m.overflow and not m.link_ok)
check("the events are kept, in order", m.store.n == 3
      and [m.store.get(i)[0] for i in range(3)] == [65537, 65538, 65539])
check("and all held again (nothing is in flight after a reset)",
      all(m.store.tries(i) == 0 for i in range(3)) and m.store.held() == 3)
check("event ids go on from the sequence", m._seq == 5)
check("the radar window of the kept mode", m.board.confirm.window_ms == power.RADAR_MS[1])
m.board.link.close()

# RTC memory that does not check out, or a reset that is no wake, restores nothing
FakeRTC.mem = FakeRTC.mem[:-1] + bytes([FakeRTC.mem[-1] ^ 1])
k = boot()
check("a corrupt image boots as new", k.boot_count == 2 and k.counter.writes == 1
      and not k.synced and k.store.n == 0, "%d %d" % (k.boot_count, k.counter.writes))
k.board.link.close()
try:
    k._deep_sleep(30000)
except Reset:
    pass
MACHINE.cause = MACHINE.PWRON_RESET  # a brown-out or a power cut: RTC memory is not trusted
j = boot()
check("a power-on keeps nothing", j.boot_count == 3 and not j.synced and j.store.n == 0)
check("and starts above every counter used before", j.counter.peek() >= k.counter.peek())
j.board.link.close()

print(f"{counts[0]} passed, {counts[1]} failed")
sys.exit(1 if counts[1] else 0)
