"""Boot step 3: the Node on its board - its state, the frame counters, the link - either new
(a boot: boot_count + 1, a counter block reserved in flash) or as a deep sleep kept it
(sw/app/retain.py). main.py unloads this module once the node runs: boot code costs a 64 KB
heap on the unix port as long as it is loaded."""
import select
import sys

from .. import proto, store
from ..counter import Counter, CounterFileError
from . import events, power
from .node import Node, _forget


def node(flash, ident, cfg, board, info, kept_store=None):
    """The attached Node, or exit code 2 after a one-line reason on stderr (a counter file
    that cannot be trusted, a link that cannot be opened). info = (board name, hw_kind,
    boot_reason, capabilities); kept_store: the event store made early by main.py."""
    try:
        cam = None
        if info[1] == 2:  # thermal_camera: a Node with the pipeline in place of the PIR
            from .camera_app import Camera

            cam = Camera()
        n = cam or Node()
        _state(n, flash, ident, cfg, kept_store)
        _attach(n, board, info)
        if cam is not None:
            cam.setup(cfg)
        return n
    except (CounterFileError, OSError) as e:
        print("shorewatch: %s" % e, file=sys.stderr)
        return 2


def unload():
    """Forget this module so the garbage collector can reclaim its code."""
    import sw.app

    _forget(sw.app, "wake")


def _state(n, flash, ident, cfg, kept_store):
    # Every attribute from the start: the instance table grows to its size here, at boot, not
    # in the middle of the run.
    n.flash = flash
    n.cfg = [None] * 10
    n._configure(cfg)
    n.keys = proto.Keys(ident["master_key"])  # the working keys, derived at boot
    n.window = proto.Window()  # downlink; H comes from the WELCOME
    n.poller = select.poll()
    # the event store: main.py makes it first, while the heap is in one piece
    n.store = kept_store or events.Store(power.STORE_MAX)
    n.board = None
    n.info = (None, None, None, None, ident["device_id"], ident["tag_len"])
    n.now = None  # the board's ticks (clock.now)
    n.boot_count = 0  # from flash, or kept over a deep sleep
    n.counter = None  # reserved once the board is known to exist
    n.mode = power.NORMAL
    n.link_ok = True  # the last delivery got through (power.deliver_now)
    n.overflow = False  # an event was dropped: TELEMETRY store_overflow (sticky)
    n.synced = False
    n.rejected = 0  # downlink datagrams the codec refused
    n.oom = 0  # MemoryErrors survived
    n.exit_code = None  # set to stop the loop
    n._deliver = False  # held events go out now (else with the next TELEMETRY)
    n._inflight = 0  # events sent and not acknowledged
    n._uptime_ms = 0
    n._uptime_t = 0
    n._up_at_down = 0  # uplink counter when the last authenticated downlink arrived
    n._hello = None  # sw/app/hello.py while there is no session
    n._tm_due = None  # first telemetry when the WELCOME arrives
    n._seq = 0
    n._eid = None  # presence: None idle, 0 unconfirmed, else the open event_id
    n._conf = 0
    n._upd_due = 0


def _attach(n, board, info):
    # the board's drivers; resume from deep sleep, or count a boot and reserve counters
    n.board = board
    n.info = info + n.info[4:]  # + device_id, tag_len
    n.now = board.clock.now
    now = n.now()
    n._uptime_t = n._upd_due = now
    n._drivers()
    kept = board.sleep.retained() if board.sleep.deep_ms else None
    if kept is not None:
        import sw.app

        from . import retain  # only boards that deep-sleep load this code

        kept = retain.restore(n, kept[0], kept[1])
        _forget(sw.app, "retain")
    if not kept:
        n.boot_count = _bump(store.path(n.flash, "boot_count"))
        n.counter = Counter(store.path(n.flash, "counter"))  # CounterFileError: no boot
    board.link.open(n.poller)


def _bump(fname):
    """Boot count + 1 (u16, wraps), persisted before anything is sent: it is part of every
    event_id of this boot, so a reused value would collide with an earlier boot's events."""
    n = 0
    try:
        with open(fname) as f:
            n = int(f.read())
    except OSError:
        pass  # first boot
    except ValueError:
        print("W boot: %s unreadable, boot count restarts" % fname)
    n = (n + 1) & 0xFFFF
    store.write_atomic(fname, str(n))
    return n
