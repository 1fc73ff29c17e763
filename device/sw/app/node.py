"""Sensor node application: session (HELLO/WELCOME), telemetry, PIR detections, downlink, and
the duty cycle of sw/app/power.py.

A deadline loop: every activity keeps the tick at which it is next due; the loop runs what is
due, then hands the wait to the board's sleep driver: select.poll on the unix port, simulated
time on the accelerated virtual board (hal/warp.py), light or deep sleep on a real board
(hal/sleep.py) when nothing is awaited. Ticks come from the board's clock (clock.now()), never
from time.ticks_ms directly, so a virtual board can run a night in seconds.

Code size matters: bytecode is loaded into the heap on the unix port, and every class and
method costs there. Detections live packed in sw/app/events.py, not as objects.
"""
import gc
import json
import os
import sys
from time import ticks_add, ticks_diff

from micropython import const

from .. import log, proto
from . import events, power

# True for the type checker only (device/mypy.ini always_true): MicroPython folds `if 0:` away,
# so the device never imports typing (it has none).
_TYPES = const(0)
if _TYPES:
    from typing import Any

FW_VERSION = (0, 1, 0)

_INFLIGHT = const(8)  # detections sent and not yet ACKed, at most
_MAX_SLEEP_MS = const(60000)  # the loop looks around at least this often
_NOT_MEASURED = const(-32768)
_OOM_FATAL = const(20)  # MemoryErrors in a row before the node gives up (a watchdog resets it)

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
_F_POWER_SAVE = const(4)
_F_SENSOR_FAULT = const(8)
_F_CLOCK_UNSYNCED = const(16)
_F_STORE_OVERFLOW = const(32)
_F_LINK_DEGRADED = const(64)
_TELEMETRY_FIELDS = ("battery_mv", "solar_mv", "charge_ma", "temperature_cc",
                     "humidity_half_pct", "rssi_dbm", "uptime_s", "boot_count", "free_heap_64",
                     "flags")

# The settings the node keeps, by index into Node.cfg (config.json keys; link.* are nested).
# The rest of config.json is for boot only: the dict itself is not kept (~2 KB of heap).
_CFG = ("report_interval_s", "update_interval_s", "config_version", "detection_sensitivity",
        "pir_holdoff_s", "battery_low_mv", "radar_window_ms", "run_for_s")
_REPORT = const(0)
_UPDATE_S = const(1)
_VERSION = const(2)
_SENSITIVITY = const(3)
_HOLDOFF = const(4)
_LOW_MV = const(5)
_RADAR = const(6)
_RUN_FOR = const(7)
_ACK_MS = const(8)
_RETRIES = const(9)

_TAG = "app"
# Node.info: (board name, hw_kind, boot_reason, capabilities, device_id, tag_len)
_DEV = const(4)
_TAG_LEN = const(5)


class Node:
    """The running node: built and attached to its board by sw/app/wake.py (boot code, kept
    out of this module so it is not resident), then main()."""

    # The state wake.py sets, for the type checker only: MicroPython compiles bare
    # annotations to no code.
    flash: str
    cfg: list[Any]  # settings by _CFG index
    keys: Any  # proto.Keys
    window: Any  # proto.Window (downlink)
    poller: Any
    store: events.Store
    board: Any  # sw.boards.Board: drivers by role
    info: tuple[Any, ...]  # (board name, hw_kind, boot_reason, capabilities, device_id, tag_len)
    now: Any  # the board clock's now()
    boot_count: int
    counter: Any  # sw.counter.Counter
    mode: int
    link_ok: bool
    overflow: bool
    synced: bool
    rejected: int
    oom: int
    exit_code: int | None
    _deliver: bool
    _inflight: int
    _uptime_ms: int
    _uptime_t: int
    _up_at_down: int
    _hello: Any  # sw/app/hello.py's round while there is no session
    _tm_due: Any
    _seq: int
    _eid: int | None
    _conf: int
    _upd_due: int

    # --- the loop ---------------------------------------------------------------------------

    def main(self):
        """Run until run_for_s, a fatal error or Ctrl-C; the process exit code."""
        run_for = self.cfg[_RUN_FOR]
        end = ticks_add(self.now(), int(run_for * 1000)) if run_for else None
        # a wake from deep sleep goes on with the reserved counter block: no write
        log.info(_TAG, "%s: device %d, board %s, boot %d, counter %d, fw %d.%d.%d",
                 "boot" if self.counter.writes else "resumed", self.info[_DEV], self.info[0],
                 self.boot_count, self.counter.peek(), *FW_VERSION)
        sleep = self.board.sleep
        streak = 0  # MemoryErrors in a row
        try:
            while self.exit_code is None:
                try:
                    wait = self._step()
                    if end is not None:
                        left = ticks_diff(end, self.now())
                        if left <= 0:
                            self.exit_code = 0
                            break
                        wait = min(wait, left)
                    h = self._hello
                    idle = not (self._inflight or (h is not None and h.waiting()))
                    if idle:
                        gc.collect()  # asleep with a clean heap: the garbage of a wake goes
                        if sleep.deep_ms and wait >= sleep.deep_ms:
                            self._deep_sleep(wait)
                    if sleep.wait(self.poller, wait, idle):
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
                    log.error(_TAG, "out of memory (%d)", self.oom)
                    if streak >= _OOM_FATAL:
                        self._fatal("out of memory")
        except KeyboardInterrupt:
            log.info(_TAG, "interrupted")
            self.exit_code = 0
        finally:
            self.board.link.close()
        log.info(_TAG, "stopped: uptime %ds, next counter %d, %d downlinks rejected, "
                 "%d detections pending, %d out of memory", self._uptime_s(),
                 self.counter.peek(), self.rejected, self.store.n, self.oom)
        return self.exit_code

    def _step(self):
        """Run whatever is due; ms until the next deadline."""
        now = self.now()
        wait = _MAX_SLEEP_MS
        if not self.synced:
            wait = min(wait, self._session(now))
        elif ticks_diff(self._tm_due, now) <= 0:
            self._send_telemetry(now)
        if self.synced:
            wait = min(wait, ticks_diff(self._tm_due, now))
        wait = min(wait, self._presence(now))
        if self.synced:
            nxt = self._flush(now)
            if nxt is not None and nxt < wait:
                wait = nxt
        return wait

    def _deep_sleep(self, ms):
        """Keep the state in RTC memory and deep-sleep; returns only if the board could not."""
        import sw.app
        from . import retain

        try:
            retain.sleep(self, ms)
        finally:
            _forget(sw.app, "retain")

    def _fatal(self, why):
        log.error(_TAG, "stopping: %s", why)
        self.exit_code = 1

    # --- uplink -----------------------------------------------------------------------------

    def _send(self, mtype, body, encrypt=False):
        """Frame and send one uplink; its counter, or None if no counter could be had."""
        try:
            c = self.counter.next()
            i = self.info
            frame = proto.encode_frame(self.keys, mtype, proto.UP, i[_DEV], c, body,
                                       i[_TAG_LEN], encrypt)
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
        if self._hello is not None:  # a round in progress starts over
            import sw.app

            _forget(sw.app, "hello")
            self._hello = None

    def _session(self, now):
        """HELLO round (sw/app/hello.py, loaded while there is no session); ms to wait."""
        if self._hello is None:
            from . import hello

            self._hello = hello
        return self._hello.step(self, now)

    def _on_welcome(self, counter, body):
        h = self._hello
        if h is None:  # in session: no HELLO to answer (a replay)
            log.debug("rx", "WELCOME with a foreign nonce ignored")
            return
        if h.welcome(self, counter, body):
            import sw.app

            _forget(sw.app, "hello")  # in session: the code goes until the next resync
            self._hello = None
            self._rearm()

    # --- downlink ---------------------------------------------------------------------------

    def _on_datagram(self, data):
        """Verify, then parse, then act; whatever the codec rejects is counted and dropped."""
        try:
            win = self.window
            i = self.info
            if proto.peek_header(data, i[_TAG_LEN])[3] == proto.WELCOME:
                # A fresh receiver: for a WELCOME the nonce decides, and a stale (replayed) one
                # must not move the real window. Rare (boot, resync), so the allocation is fine.
                win = proto.Window()
            mtype, counter, body = proto.decode_frame(self.keys, data, proto.DOWN, i[_DEV],
                                                      win, i[_TAG_LEN])
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

    def _take(self, counter, why):
        """Remove the stored event sent with this counter; False if there is none."""
        st = self.store
        i = st.find(counter)
        if i < 0:
            return False
        e = st.get(i)
        st.remove(i)
        log.info(_TAG, "event %d %s %s", e[0], _LIFECYCLES[e[4] & events.LIFE], why)
        return True

    def _on_ack(self, acked, acked_type):
        if not self._take(acked, "acked"):
            log.debug("rx", "ACK of %d: nothing pending", acked)

    def _on_nack(self, nacked, code):
        if code == _NACK_RESYNC:
            self._resync("gateway NACK of %d" % nacked)
            return
        if code not in _NACK_FINAL or not self._take(nacked, "dropped: NACK"):
            log.warning(_TAG, "NACK code %d of %d", code, nacked)

    def _on_config(self, version, entries):
        from . import config_push  # loaded at boot (main.py), kept apart for its size

        config_push.handle(self, version, entries)

    # --- telemetry and the duty cycle -------------------------------------------------------

    def _send_telemetry(self, now):
        b = self.board
        battery_mv = b.battery.read_mv()  # at rest, before the radio is used
        mode = power.next_mode(self.mode, power.soc_pct(battery_mv))
        if mode != self.mode:
            self.mode = mode
            self._drivers()
            log.info(_TAG, "power: %s mode at %d mV", power.MODES[mode], battery_mv)
        solar_mv, charge_ma = b.power.read_power()
        temp_cc, rh_half = b.env.read_env()
        flags = 0
        if charge_ma > 0:
            flags |= _F_CHARGING
        if battery_mv < self.cfg[_LOW_MV]:
            flags |= _F_BATTERY_LOW
        if mode != power.NORMAL:
            flags |= _F_POWER_SAVE
        if charge_ma == _NOT_MEASURED or temp_cc == _NOT_MEASURED:
            flags |= _F_SENSOR_FAULT
        if not b.clock.synced:
            flags |= _F_CLOCK_UNSYNCED
        if self.overflow:
            flags |= _F_STORE_OVERFLOW
        st = self.store
        for i in range(st.n):
            if st.state(i) & events.PARKED:
                flags |= _F_LINK_DEGRADED  # events ran out of retries
        gc.collect()  # report what is really free, not garbage waiting for collection
        vals = (battery_mv, solar_mv, charge_ma, temp_cc, rh_half, b.radio.rssi(),
                self._uptime_s(), self.boot_count, min(gc.mem_free() // 64, 0xFFFF), flags)
        if self._send(proto.TELEMETRY, proto.pack_telemetry(*vals)) is not None:
            print("TELEMETRY", json.dumps(dict(zip(_TELEMETRY_FIELDS, vals))))
        if log.level == 0:
            import micropython

            micropython.mem_info()  # debug: "max free sz" is the largest free block
        self._tm_due = ticks_add(now, self._interval_ms())
        # stored events ride along; parked ones get this one more round (power.py)
        st.unpark()
        self._deliver = True

    def _configure(self, d):
        """Take the settings in d (config.json, or what a CONFIG_PUSH changed)."""
        c = self.cfg
        for i in range(len(_CFG)):
            if _CFG[i] in d:
                c[i] = d[_CFG[i]]
        link = d.get("link")
        if link is not None:
            c[_ACK_MS] = int(link["ack_timeout_s"] * 1000)
            c[_RETRIES] = link["max_retries"]

    def _interval_ms(self):
        return int(power.interval_s(self.mode, self.cfg[_REPORT]) * 1000)

    def _drivers(self):
        """Hand the settings drivers hold to them: PIR hold-off, radar window of the mode
        (radar_window_ms is the normal mode's; saving and recovery only shorten it)."""
        b = self.board
        b.pir.holdoff_ms = self.cfg[_HOLDOFF] * 1000
        b.confirm.window_ms = min(self.cfg[_RADAR], power.radar_ms(self.mode))

    def _uptime_s(self):
        # accumulated, so the tick wrap-around (days) never shows
        t = self.now()
        self._uptime_ms += ticks_diff(t, self._uptime_t)
        self._uptime_t = t
        return self._uptime_ms // 1000

    # --- detections -------------------------------------------------------------------------

    def _presence(self, now):
        """PIR edge -> confirm -> DETECTION new, updates while present, end; ms to wait."""
        pir = self.board.pir
        every = int(self.cfg[_UPDATE_S] * 1000)
        if self._eid is None:
            t = pir.edge()
            if t is not None:
                self._conf = self.board.confirm.confidence()
                if self._conf < 100 - self.cfg[_SENSITIVITY]:
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
        clock = self.board.clock
        ts_s, ts_ms = clock.at(ticks)
        st = self.store
        gone = st.add(self._eid, life, self._conf, self.board.thermo.read_cc(), ts_s, ts_ms,
                      not clock.synced)
        if gone is not None:
            self.overflow = True  # the oldest goes: fresh events matter more on a beach
            log.warning(_TAG, "store full: event %d dropped", gone)
        if power.deliver_now(self.mode, st.held(), self.link_ok):
            self._deliver = True

    def _rearm(self):
        # the gateway answers again: parked events get a new round if the mode wants them now
        self.link_ok = True
        if self.store.unpark() and power.deliver_now(self.mode, self.store.held(), True):
            self._deliver = True

    def _flush(self, now):
        """Send what is due, park what ran out of retries; ms until the next due entry."""
        st = self.store
        # after a failed delivery the link is suspect: one send each, no retries, until an
        # ACK shows it works again (an outage then costs one datagram per event per TELEMETRY)
        retries = self.cfg[_RETRIES] if self.link_ok else 0
        nxt = None
        inflight = 0
        held = 0
        for i in range(st.n):
            if st.state(i) & events.PARKED:
                continue
            tries = st.tries(i)
            if not tries:
                if not self._deliver or inflight >= _INFLIGHT:
                    held += 1
                    continue
                d = 0
            else:
                d = st.due_in(i, now)
            if d <= 0:
                e = st.get(i)
                if tries > retries:
                    st.flag(i, events.PARKED, True)
                    self.link_ok = False  # only the next TELEMETRY tries again (power.py)
                    log.warning(_TAG, "event %d %s: no ACK after %d sends, parked", e[0],
                                _LIFECYCLES[e[4] & events.LIFE], tries)
                    continue
                if tries:
                    log.info(_TAG, "event %d %s: no ACK, resend", e[0],
                             _LIFECYCLES[e[4] & events.LIFE])
                c = self._send(proto.DETECTION, self._body(i, e))
                if c is None:
                    return None
                st.sent(i, c)
                # exponential backoff with jitter: ack_timeout, 2x, 4x, ...
                d = _jitter(self.cfg[_ACK_MS] << tries)
                st.set_due(i, ticks_add(now, d))
            inflight += 1
            if nxt is None or d < nxt:
                nxt = d
        self._inflight = inflight
        if not held:
            self._deliver = False
        return nxt

    def _body(self, i, e):
        """DETECTION body of entry i (fields e); the EVENT line at its first send. Every
        resend packs the same fields: the same bytes."""
        eid, ts_s, ts_ms, peak, state, conf = e[0], e[1], e[2], e[3], e[4], e[5]
        life = state & events.LIFE
        if not state & events.SENT:
            self.store.flag(i, events.SENT, True)
            print("EVENT", json.dumps({
                "event_id": eid, "lifecycle": _LIFECYCLES[life], "kind": "person",
                "confidence_pct": conf, "count": 1, "peak_cc": peak, "ts_s": ts_s,
                "ts_ms": ts_ms, "box": [0, 0, 0, 0]}))
        return proto.pack_detection(eid, life, _PERSON, conf, 0, 0, 0, 0, peak, 1, ts_s, ts_ms)


def _forget(pkg, name):
    """Drop a submodule imported on demand so its code can be collected."""
    sys.modules.pop(pkg.__name__ + "." + name, None)
    if hasattr(pkg, name):
        delattr(pkg, name)


def _jitter(ms):
    """ms +- 25 %, from the hardware random source, so a fleet rebooting together spreads out."""
    return ms * 3 // 4 + ms * os.urandom(1)[0] // 512
