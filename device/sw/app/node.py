"""Sensor node application: session (HELLO/WELCOME), telemetry, PIR detections, downlink.

A deadline loop: every activity keeps the ticks_ms at which it is next due; the loop runs what
is due, then sleeps in select.poll until the earliest deadline or a datagram. No busy waiting,
no threads, and it maps directly onto light/deep sleep later ("sleep until the next deadline").
It replaced an asyncio version that needed ~9 KB more heap (tasks, events, wait_for).

Code size matters: bytecode is loaded into the heap on the unix port, and every class and
method costs there, hence lists with named indices instead of small record classes.
"""
import gc
import json
import os
import select
import sys
from time import ticks_add, ticks_diff, ticks_ms

from micropython import const

from .. import log, proto, store
from ..counter import Counter

FW_VERSION = (0, 1, 0)

_HELLO_TRIES = const(6)  # per round; then _HELLO_PAUSE_MS and a new round
_HELLO_FIRST_MS = const(500)  # a gateway on the LAN answers within a few ms
_HELLO_MAX_MS = const(8000)
_HELLO_PAUSE_MS = const(60000)
_QUEUE_MAX = const(8)  # detections awaiting ACK, ~150 bytes each
_KEEP_COUNTERS = const(4)  # an ACK naming an older send of the same detection still counts
_MAX_SLEEP_MS = const(60000)  # the loop looks around at least this often
_NOT_MEASURED = const(-32768)
_OOM_FATAL = const(20)  # MemoryErrors in a row before the node gives up (a watchdog resets it)

# A queued detection is a list: fields fixed at creation, body packed at the first send.
_EID = const(0)
_LIFE = const(1)
_CONF = const(2)
_PEAK = const(3)
_TICKS = const(4)  # when it happened: ts_s/ts_ms come from the clock at the first send
_BODY = const(5)
_SENT = const(6)  # counters it was sent with
_TRIES = const(7)  # sends in the current round
_DUE = const(8)  # ticks_ms of the next (re)send; None while parked

# wire numbers (spec section 5)
_PERSON = const(1)
_NEW = const(0)
_UPDATE = const(1)
_END = const(2)
_LIFECYCLES = ("new", "update", "end")
_NACK_UNSUPPORTED = const(2)
_NACK_RESYNC = const(4)
_NACK_FINAL = (1, 2, 7)  # malformed, unsupported, too_large: resending cannot help
# TELEMETRY flags
_F_CHARGING = const(1)
_F_BATTERY_LOW = const(2)
_F_SENSOR_FAULT = const(8)
_F_CLOCK_UNSYNCED = const(16)
_F_STORE_OVERFLOW = const(32)
_F_LINK_DEGRADED = const(64)
_TELEMETRY_FIELDS = ("battery_mv", "solar_mv", "charge_ma", "temperature_cc",
                     "humidity_half_pct", "rssi_dbm", "uptime_s", "boot_count", "free_heap_64",
                     "flags")

_TAG = "app"


class Node:
    """The running node: Node(...), then attach(board, info), then main()."""

    def __init__(self, flash, ident, cfg, boot_count):
        # Only what needs no board: start.py builds the Node before the board code is loaded
        # and dropped again, so these long-lived objects sit below it (fewer heap holes).
        self.flash = flash
        self.cfg = cfg
        self.boot_count = boot_count
        self.dev = ident["device_id"]
        self.tag_len = ident["tag_len"]
        self.keys = proto.Keys(ident["master_key"])
        # counter, board and info are set by attach(): the counters are reserved once the
        # board is known to exist
        self.window = proto.Window()  # downlink; H comes from the WELCOME
        self.poller = select.poll()
        self.queue = []  # detections awaiting ACK, oldest first
        self.overflow = False  # a detection was dropped: TELEMETRY store_overflow (sticky)
        self.synced = False
        self.rejected = 0  # downlink datagrams the codec refused
        self.oom = 0  # MemoryErrors survived
        self.exit_code = None  # set to stop the loop
        now = ticks_ms()
        self._uptime_ms = 0
        self._uptime_t = now
        self._up_at_down = 0  # uplink counter when the last authenticated downlink arrived
        self._nonces = []  # nonces of the HELLOs of the current round
        self._hello_due = now
        self._hello_tries = 0
        self._hello_wait = _HELLO_FIRST_MS
        self._tm_due = None  # first telemetry when the WELCOME arrives
        self._seq = 0
        self._eid = None  # presence: None idle, 0 unconfirmed, else the open event_id
        self._conf = 0
        self._upd_due = now

    def attach(self, board, info):
        """Reserve the frame counters, take the board's drivers (info = (name, hw_kind,
        boot_reason, capabilities)) and open the link."""
        self.counter = Counter(store.path(self.flash, "counter"))  # CounterFileError: no boot
        self.board = board
        self.info = info
        board.pir.holdoff_ms = self.cfg["pir_holdoff_s"] * 1000
        board.link.open(self.poller)

    # --- the loop ---------------------------------------------------------------------------

    def main(self):
        """Run until run_for_s, a fatal error or Ctrl-C; the process exit code."""
        run_for = self.cfg.get("run_for_s")
        end = ticks_add(ticks_ms(), int(run_for * 1000)) if run_for else None
        log.info(_TAG, "boot: device %d, board %s, boot %d, counter %d, fw %d.%d.%d",
                 self.dev, self.info[0], self.boot_count, self.counter.peek(), *FW_VERSION)
        streak = 0  # MemoryErrors in a row
        try:
            while self.exit_code is None:
                try:
                    wait = self._step()
                    if end is not None:
                        left = ticks_diff(end, ticks_ms())
                        if left <= 0:
                            self.exit_code = 0
                            break
                        wait = min(wait, left)
                    for _ in self.poller.ipoll(max(wait, 0)):
                        data = self.board.link.recv()
                        if data is not None:
                            self._on_datagram(data)
                    streak = 0
                except MemoryError:
                    # A fragmented heap can refuse one allocation now and grant it after a
                    # collection: drop this step (the protocol retries), give up if it persists.
                    self.oom += 1
                    streak += 1
                    gc.collect()
                    log.error(_TAG, "out of memory (%d), free %d", self.oom, gc.mem_free())
                    if streak >= _OOM_FATAL:
                        self._fatal("out of memory")
        except KeyboardInterrupt:
            log.info(_TAG, "interrupted")
            self.exit_code = 0
        finally:
            self.board.link.close()
        log.info(_TAG, "stopped: uptime %ds, next counter %d, %d downlinks rejected, "
                 "%d detections pending, %d out of memory", self._uptime_s(),
                 self.counter.peek(), self.rejected, len(self.queue), self.oom)
        return self.exit_code

    def _step(self):
        """Run whatever is due; ms until the next deadline."""
        now = ticks_ms()
        wait = _MAX_SLEEP_MS
        if not self.synced:
            wait = min(wait, self._session(now))
        elif ticks_diff(self._tm_due, now) <= 0:
            self._send_telemetry()
            self._tm_due = ticks_add(now, int(self.cfg["report_interval_s"] * 1000))
        if self.synced:
            wait = min(wait, ticks_diff(self._tm_due, now))
        wait = min(wait, self._presence(now))
        nxt = self._flush(now) if self.synced else None
        return wait if nxt is None else min(wait, nxt)

    def _fatal(self, why):
        log.error(_TAG, "stopping: %s", why)
        self.exit_code = 1

    # --- uplink -----------------------------------------------------------------------------

    def _send(self, mtype, body, encrypt=False):
        """Frame and send one uplink; its counter, or None if no counter could be had."""
        try:
            c = self.counter.next()
            frame = proto.encode_frame(self.keys, mtype, proto.UP, self.dev, c, body,
                                       self.tag_len, encrypt)
        except (proto.ProtoError, OSError) as e:
            # counter_exhausted (re-key needed) or the next counter block could not be
            # persisted: sending anyway could reuse a counter after a reboot.
            self._fatal("no frame counter: %s" % e)
            return None
        self.board.link.send(frame)
        log.debug("tx", "%s counter %d", proto.TYPE_NAMES[mtype], c)
        if self.synced and c - self._up_at_down >= proto.RESYNC_AFTER:
            # the gateway could soon fail to rebuild our 32-bit counter from 16 bits
            self._resync("no downlink for %d frames" % (c - self._up_at_down))
        return c

    # --- session: HELLO / WELCOME -----------------------------------------------------------

    def _resync(self, why):
        log.warning(_TAG, "resync: %s", why)
        self.synced = False
        self._hello_tries = 0
        self._hello_wait = _HELLO_FIRST_MS
        self._hello_due = ticks_ms()

    def _session(self, now):
        """HELLO with exponential backoff and jitter, _HELLO_TRIES per round; ms to wait."""
        if ticks_diff(self._hello_due, now) > 0:
            return ticks_diff(self._hello_due, now)
        if self._hello_tries == _HELLO_TRIES:
            log.warning(_TAG, "no WELCOME after %d HELLOs", _HELLO_TRIES)
            self._hello_tries = 0
            self._hello_wait = _HELLO_FIRST_MS
            self._hello_due = ticks_add(now, _HELLO_PAUSE_MS)
            return _HELLO_PAUSE_MS
        if self._hello_tries == 0:
            self._nonces = []
        nonce = os.urandom(8)  # fresh per HELLO (spec section 3)
        self._nonces.append(nonce)
        i = self.info
        self._send(proto.HELLO, proto.pack_hello(
            FW_VERSION[0], FW_VERSION[1], FW_VERSION[2], i[1], i[2], i[3],
            proto.SCHEMA_FINGERPRINT, nonce, self.cfg["config_version"]))
        self._hello_tries += 1
        wait = _jitter(self._hello_wait)
        self._hello_wait = min(self._hello_wait * 2, _HELLO_MAX_MS)
        self._hello_due = ticks_add(now, wait)
        return wait

    def _on_welcome(self, counter, body):
        nonce, unix_s, unix_ms, config_version, flags = proto.unpack_welcome(body)
        if nonce not in self._nonces:
            # authentic, but not for a HELLO of this round: a replay, or a late answer to an
            # earlier round. It was checked on a fresh window: the real one is untouched.
            log.debug("rx", "WELCOME with a foreign nonce ignored")
            return
        self._nonces = []
        self.window.reset(counter)
        self.board.clock.set(unix_s, unix_ms)
        self.synced = True
        self._up_at_down = self.counter.peek()
        log.info(_TAG, "welcome: downlink counter %d, time %d.%03d, config %d (have %d), "
                 "flags %d", counter, unix_s, unix_ms, config_version,
                 self.cfg["config_version"], flags)
        self._tm_due = ticks_ms()  # first telemetry right away
        self._rearm()

    # --- downlink ---------------------------------------------------------------------------

    def _on_datagram(self, data):
        """Verify, then parse, then act; whatever the codec rejects is counted and dropped."""
        try:
            win = self.window
            if proto.peek_header(data, self.tag_len)[3] == proto.WELCOME:
                # A fresh receiver: for a WELCOME the nonce decides, and a stale (replayed) one
                # must not move the real window. Rare (boot, resync), so the allocation is fine.
                win = proto.Window()
            mtype, counter, body = proto.decode_frame(self.keys, data, proto.DOWN, self.dev,
                                                      win, self.tag_len)
            if mtype == proto.WELCOME:
                self._on_welcome(counter, body)
                return
            # any other authenticated downlink: the gateway hears us
            self._up_at_down = self.counter.peek()
            self._rearm()
            if mtype == proto.ACK:
                self._on_ack(*proto.unpack_ack(body))
            elif mtype == proto.NACK:
                self._on_nack(*proto.unpack_nack(body))
            elif mtype == proto.CONFIG_PUSH:
                self._on_config(*proto.unpack_config_push(body))
            else:
                # FW_OFFER / FW_CHUNK: no OTA in this firmware yet; say so instead of letting
                # the gateway time out
                log.info(_TAG, "%s not supported", proto.TYPE_NAMES[mtype])
                self._send(proto.NACK, proto.pack_nack(counter, _NACK_UNSUPPORTED))
        except proto.ProtoError as e:
            self.rejected += 1
            log.debug("rx", "rejected %s: %d bytes", e.reason, len(data))

    def _take(self, counter):
        """Remove and return the queued detection sent with this counter, or None."""
        for p in self.queue:
            if counter in p[_SENT]:
                self.queue.remove(p)
                return p
        return None

    def _on_ack(self, acked, acked_type):
        p = self._take(acked)
        if p is None:
            log.debug("rx", "ACK of %d (type %d): nothing pending", acked, acked_type)
        else:
            log.info(_TAG, "event %d %s acked", p[_EID], _LIFECYCLES[p[_LIFE]])

    def _on_nack(self, nacked, code):
        if code == _NACK_RESYNC:
            self._resync("gateway NACK of %d" % nacked)
            return
        p = self._take(nacked) if code in _NACK_FINAL else None
        if p is None:
            log.warning(_TAG, "NACK code %d of %d", code, nacked)
        else:
            log.error(_TAG, "event %d dropped: NACK code %d", p[_EID], code)

    def _on_config(self, version, entries):
        import sw.app
        from . import config_push

        try:
            self.cfg, status, bad = config_push.apply(self.cfg, version, entries,
                                                      store.path(self.flash, "config.json"))
        finally:
            _forget(sw.app, "config_push")
        self.board.pir.holdoff_ms = self.cfg["pir_holdoff_s"] * 1000
        log.info(_TAG, "config %d: status %d, bad key %d", version, status, bad)
        self._send(proto.CONFIG_ACK, proto.pack_config_ack(version, status, bad))
        # a shorter interval takes effect now, not after the old (maybe hour-long) one
        due = ticks_add(ticks_ms(), int(self.cfg["report_interval_s"] * 1000))
        if self._tm_due is None or ticks_diff(due, self._tm_due) < 0:
            self._tm_due = due

    # --- telemetry --------------------------------------------------------------------------

    def _send_telemetry(self):
        b = self.board
        battery_mv = b.battery.read_mv()
        solar_mv, charge_ma = b.power.read_power()
        temp_cc, rh_half = b.env.read_env()
        flags = 0
        if charge_ma > 0:
            flags |= _F_CHARGING
        if battery_mv < self.cfg["battery_low_mv"]:
            flags |= _F_BATTERY_LOW
        if charge_ma == _NOT_MEASURED or temp_cc == _NOT_MEASURED:
            flags |= _F_SENSOR_FAULT
        if not b.clock.synced:
            flags |= _F_CLOCK_UNSYNCED
        if self.overflow:
            flags |= _F_STORE_OVERFLOW
        for p in self.queue:
            if p[_DUE] is None:
                flags |= _F_LINK_DEGRADED  # detections ran out of retries
        gc.collect()  # report what is really free, not garbage waiting for collection
        vals = (battery_mv, solar_mv, charge_ma, temp_cc, rh_half, b.radio.rssi(),
                self._uptime_s(), self.boot_count, min(gc.mem_free() // 64, 0xFFFF), flags)
        if self._send(proto.TELEMETRY, proto.pack_telemetry(*vals)) is not None:
            print("TELEMETRY", json.dumps(dict(zip(_TELEMETRY_FIELDS, vals))))

    def _uptime_s(self):
        # accumulated, so the ticks_ms wrap-around (days) never shows
        t = ticks_ms()
        self._uptime_ms += ticks_diff(t, self._uptime_t)
        self._uptime_t = t
        return self._uptime_ms // 1000

    # --- detections -------------------------------------------------------------------------

    def _presence(self, now):
        """PIR edge -> confirm -> DETECTION new, updates while present, end; ms to wait."""
        pir = self.board.pir
        every = int(self.cfg["update_interval_s"] * 1000)
        if self._eid is None:
            t = pir.edge()
            if t is not None:
                self._conf = self.board.confirm.confidence()
                if self._conf < 100 - self.cfg["detection_sensitivity"]:
                    log.info(_TAG, "PIR trigger not confirmed (%d%%)", self._conf)
                    self._eid = 0  # sit this presence out
                else:
                    self._seq = (self._seq + 1) & 0xFFFF
                    self._eid = (self.boot_count << 16) | self._seq
                    self._detect(_NEW, t)
                    self._upd_due = ticks_add(now, every)
        if self._eid is not None:
            if not pir.present():
                if self._eid:
                    self._detect(_END, now)
                self._eid = None
                return 0  # the next presence may already be due
            if self._eid and every:
                if ticks_diff(self._upd_due, now) <= 0:
                    self._conf = self.board.confirm.confidence()
                    self._detect(_UPDATE, now)
                    self._upd_due = ticks_add(now, every)
                return min(pir.wake_ms(), ticks_diff(self._upd_due, now))
        return pir.wake_ms()

    def _detect(self, life, ticks):
        q = self.queue
        if len(q) >= _QUEUE_MAX:
            old = q.pop(0)  # drop the oldest: fresh events matter more on a beach at night
            self.overflow = True
            log.warning(_TAG, "queue full: event %d %s dropped", old[_EID],
                        _LIFECYCLES[old[_LIFE]])
        q.append([self._eid, life, self._conf, self.board.thermo.read_cc(), ticks, None, [], 0,
                  ticks_ms()])

    def _rearm(self):
        # the gateway answers again: parked detections get a new round of retries
        now = ticks_ms()
        for p in self.queue:
            if p[_DUE] is None:
                p[_DUE] = now
                p[_TRIES] = 0

    def _flush(self, now):
        """Send what is due, park what ran out of retries; ms until the next due entry."""
        link = self.cfg["link"]
        nxt = None
        for p in self.queue:
            due = p[_DUE]
            if due is None:
                continue
            if ticks_diff(due, now) <= 0:
                if p[_TRIES] > link["max_retries"]:
                    p[_DUE] = None
                    log.warning(_TAG, "event %d %s: no ACK after %d sends, parked", p[_EID],
                                _LIFECYCLES[p[_LIFE]], p[_TRIES])
                    continue
                if p[_TRIES]:
                    log.info(_TAG, "event %d %s: no ACK, resend", p[_EID], _LIFECYCLES[p[_LIFE]])
                c = self._send(proto.DETECTION, self._body(p))
                if c is None:
                    return None
                p[_SENT].append(c)
                if len(p[_SENT]) > _KEEP_COUNTERS:
                    p[_SENT].pop(0)
                p[_TRIES] += 1
                # exponential backoff with jitter: ack_timeout, 2x, 4x, ...
                due = p[_DUE] = ticks_add(now, _jitter(int(link["ack_timeout_s"] * 1000)
                                                       << (p[_TRIES] - 1)))
            d = ticks_diff(due, now)
            if nxt is None or d < nxt:
                nxt = d
        return nxt

    def _body(self, p):
        if p[_BODY] is None:
            # First send: the timestamp comes from the clock now (the event may predate the
            # WELCOME); every resend carries exactly these bytes.
            ts_s, ts_ms = self.board.clock.at(p[_TICKS])
            p[_BODY] = proto.pack_detection(p[_EID], p[_LIFE], _PERSON, p[_CONF], 0, 0, 0, 0,
                                            p[_PEAK], 1, ts_s, ts_ms)
            print("EVENT", json.dumps({
                "event_id": p[_EID], "lifecycle": _LIFECYCLES[p[_LIFE]], "kind": "person",
                "confidence_pct": p[_CONF], "count": 1, "peak_cc": p[_PEAK], "ts_s": ts_s,
                "ts_ms": ts_ms, "box": [0, 0, 0, 0]}))
        return p[_BODY]


def _forget(pkg, name):
    """Drop a submodule imported on demand so its code can be collected."""
    sys.modules.pop(pkg.__name__ + "." + name, None)
    if hasattr(pkg, name):
        delattr(pkg, name)


def _jitter(ms):
    """ms +- 25 %, from the hardware random source, so a fleet rebooting together spreads out."""
    return ms * 3 // 4 + ms * os.urandom(1)[0] // 512
