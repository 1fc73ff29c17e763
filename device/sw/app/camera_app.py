"""Thermal camera application: the sensor node's session and delivery, the camera pipeline
(camera.py) in place of the PIR.

Camera is a Node (node.py): HELLO/WELCOME with backoff, TELEMETRY and the duty cycle, the
event store retransmitted until ACKed (parked after max_retries, re-armed by the next
downlink), NACK and CONFIG_PUSH handling all run unchanged. The store's packed 16-byte entries
hold what a PIR event has; the camera keeps the rest of a DETECTION (kind, box, count,
thumbnail) beside it, by the entry's tag. The camera replaces the node's sensing step
(`_presence`, called by the node's deadline loop): poll the thermal sensor, run the pipeline on
each full frame (two chess subpages), queue its messages. The node's loop sleeps until the
sensor's next subpage is due, so a camera at 4 frames/s wakes 8 times a second.

Differences from the node: a DETECTION carries the pipeline's kind, box, count and peak
temperature (and a thumbnail on `new` when configured, sent encrypted: it is a picture of
people); CONFIG_PUSH detection_sensitivity changes the pipeline's thresholds at once; a frame
source that ends (a recording on the virtual board, never a real sensor) ends the open events
and stops the board once every message was ACKed or parked.

Output (stdout), besides the node's log, EVENT and TELEMETRY lines: one `CAMERA {...}` line
after every TELEMETRY and at the end: frames, frames_per_s (since the sensor came up),
us_per_frame and us_worst (time in the pipeline), skipped, heap_free (bytes, after a
collection), pending (messages awaiting an ACK).

Few attribute and method names on purpose: every new name is interned for good, in the heap on
the unix port, where the virtual camera runs in 128 KB.
"""
import gc
from time import ticks_add, ticks_diff, ticks_ms, ticks_us

from micropython import const

from .. import log, proto
from . import events, power
from .camera import KINDS, LIFECYCLES, Pipeline
from .node import Node

_SENSITIVITY = const(3)  # node.py's index of detection_sensitivity in Node.cfg
# Messages held at once: a few new/update/end per second at most on a beach. Fewer than the
# node's store holds: each keeps its box and maybe a thumbnail beside the store entry.
_QUEUE_MAX = const(8)
_CORE = const(20)  # DETECTION core body; a longer one carries a thumbnail
_BEGIN_RETRY_MS = const(5000)  # a sensor that does not answer is tried again this often
# sensor states
_DOWN = const(0)  # not started, or lost: begin() is due at _t
_UP = const(1)  # delivering frames since _t
_ENDED = const(2)  # the frame source ran out (a recording) and the open events were ended
_TAG = "cam"


_reserved = None  # a pipeline allocated early by reserve(), taken by Camera()


def reserve():
    """Allocate the pipeline's frame buffers (~27 KB on the unix port) now, as one piece:
    main.py calls it right after the boot step, once every module is loaded. Camera()
    configures them."""
    global _reserved
    _reserved = Pipeline({})


class Camera(Node):
    """The running camera: built and attached by sw/app/wake.py like the node, then setup(cfg)
    (config.json's dict: the camera section), then main()."""

    def setup(self, cfg):
        global _reserved
        pcfg = dict(cfg["camera"])  # validated at boot (camera_cfg.py)
        pcfg["sensitivity"] = self.cfg[_SENSITIVITY]
        pcfg["id_base"] = self.boot_count << 16  # event ids unique across boots, as the node's
        pl = _reserved
        _reserved = None
        if pl is None:
            pl = Pipeline(pcfg)  # every frame buffer, allocated once, here
        else:
            pl.configure(pcfg)
        self.pl = pl
        # MLX90640 refresh code: 0.5 * 2**code subpages per second, two per frame
        self._refresh = 0
        while 0.25 * (1 << self._refresh) < self.pl.fps and self._refresh < 7:
            self._refresh += 1
        self._state = _DOWN
        self._t = ticks_ms()
        self._last = -1  # last subpage read
        self.frames = 0  # full frames given to the pipeline
        self._us = 0  # time spent in the pipeline
        self._worst = 0
        self._extra = {}  # store entry tag -> (kind, x, y, w, h, count, thumbnail)

    def main(self):
        """The node's loop; one CAMERA line with the run's figures at the end."""
        code = Node.main(self)
        self._stats()
        return code

    # --- the sensing step, called by the node's loop ----------------------------------------

    def _presence(self, now):
        """Due subpages -> full frames -> pipeline -> queued messages; ms to the next one."""
        t = self.board.thermo
        if self._state == _DOWN:
            left = ticks_diff(self._t, now)
            if left > 0:
                return left
            try:
                t.begin()  # reads the EEPROM on a real sensor: may fail while it powers up
                t.set_refresh(self._refresh)
            except OSError as e:
                log.error(_TAG, "thermal sensor: %s; again in %d s", e, _BEGIN_RETRY_MS // 1000)
                self._t = ticks_add(now, _BEGIN_RETRY_MS)
                return _BEGIN_RETRY_MS
            self._state = _UP
            self._t = ticks_ms()
            self._last = -1
            self.pl.power_up()  # its first frames are garbage; the scene may have changed
            log.info(_TAG, "thermal sensor up: %s frames/s, sensitivity %d", self.pl.fps,
                     self.pl.sensitivity)
        elif self._state == _ENDED:
            st = self.store
            for i in range(st.n):
                if not st.state(i) & events.PARKED:
                    return 1000  # still delivering (the node's _flush keeps the deadlines)
            self.exit_code = 0  # every message ACKed or parked: nothing more will happen
            return 0
        try:
            # at most one frame per step: downlinks (ACKs) are read in between
            for _ in range(2):
                sub = t.poll()
                if sub < 0:
                    break
                if sub == 1 and self._last == 0:
                    t0 = ticks_us()
                    n = self.pl.process(t.cc, True)
                    dt = ticks_diff(ticks_us(), t0)
                    self._us += dt
                    if dt > self._worst:
                        self._worst = dt
                    self.frames += 1
                    self._emit(n)
                self._last = sub
        except OSError as e:
            # the bus failed mid-read (loose wire, brown-out): end what is open, start again
            log.error(_TAG, "thermal sensor lost: %s", e)
            self._state = _DOWN
            self._t = ticks_add(now, _BEGIN_RETRY_MS)
            self._emit(self.pl.finish())
            return _BEGIN_RETRY_MS
        if t.ended:
            self._state = _ENDED
            self._emit(self.pl.finish())
            log.info(_TAG, "thermal: the recording ended after %d frames", self.frames)
            return 0
        return t.due_ms()

    # --- detections -------------------------------------------------------------------------

    def _emit(self, n):
        """Store the pipeline's last n messages (the oldest dropped when full, as the node)."""
        st = self.store
        clock = self.board.clock
        extra = self._extra
        for k in range(n):
            eid, life, kind, conf, x, y, w, h, peak, count, thumb = self.pl.event(k)
            if st.n >= _QUEUE_MAX:
                old = st.get(0)
                st.remove(0)
                extra.pop(old[7], None)
                self.overflow = True
                log.warning(_TAG, "queue full: event %d %s dropped%s", old[0],
                            LIFECYCLES[old[4] & events.LIFE],
                            "" if old[4] & events.SENT else " before its first send")
            ts_s, ts_ms = clock.at(ticks_ms())
            # clamped to the wire's ranges, so packing never fails in the middle of _flush
            st.add(eid, life, min(max(conf, 0), 100), min(max(peak, -32767), 32767), ts_s,
                   ts_ms, not clock.synced)
            extra[st.get(st.n - 1)[7]] = (kind, min(x, 255), min(y, 255), min(w, 255),
                                          min(h, 255), min(count, 255), thumb)
            if len(extra) > _QUEUE_MAX:  # entries acknowledged since: forget theirs
                live = [st.get(i)[7] for i in range(st.n)]
                for tag in list(extra):
                    if tag not in live:
                        del extra[tag]
            if power.deliver_now(self.mode, st.held(), self.link_ok):
                self._deliver = True

    def _body(self, i, e):
        """DETECTION body of store entry i (fields e); the EVENT line at its first send."""
        eid, ts_s, ts_ms, peak, state, conf = e[0], e[1], e[2], e[3], e[4], e[5]
        life = state & events.LIFE
        kind, x, y, w, h, count, thumb = self._extra.get(e[7], (0, 0, 0, 0, 0, 1, None))
        if not state & events.SENT:
            self.store.flag(i, events.SENT, True)
            line = ('EVENT {"event_id": %d, "lifecycle": "%s", "kind": "%s", '
                    '"confidence_pct": %d, "count": %d, "peak_cc": %d, "ts_s": %d, "ts_ms": %d, '
                    '"box": [%d, %d, %d, %d]' % (
                        eid, LIFECYCLES[life], KINDS[kind], conf, count, peak, ts_s, ts_ms,
                        x, y, w, h))
            if thumb is not None:
                line += ', "thumbnail": {"format": %d, "w": %d, "h": %d, "bytes": %d}' % (
                    thumb[0], thumb[1], thumb[2], len(thumb[3]))
            print(line + "}")
        return proto.pack_detection(eid, life, kind, conf, x, y, w, h, peak, count, ts_s,
                                    ts_ms, thumb)

    def _send(self, mtype, body, encrypt=False):
        # a thumbnail is a picture of people: its DETECTION travels encrypted (spec section 4)
        return Node._send(self, mtype, body,
                          encrypt or (mtype == proto.DETECTION and len(body) > _CORE))

    # --- configuration and reports ----------------------------------------------------------

    def _on_config(self, version, entries):
        Node._on_config(self, version, entries)
        s = self.cfg[_SENSITIVITY]
        if s != self.pl.sensitivity:
            self.pl.set_sensitivity(s)  # from the next frame
            log.info(_TAG, "sensitivity %d", s)

    def _send_telemetry(self, now):
        Node._send_telemetry(self, now)
        self._stats()

    def _stats(self):
        gc.collect()
        ms = ticks_diff(ticks_ms(), self._t) if self._state != _DOWN else 0
        n = self.frames
        print('CAMERA {"frames": %d, "frames_per_s": %d.%d, "us_per_frame": %d, '
              '"us_worst": %d, "skipped": %d, "heap_free": %d, "pending": %d}' % (
                  n, n * 1000 // ms if ms > 0 else 0, n * 10000 // ms % 10 if ms > 0 else 0,
                  self._us // n if n else 0, self._worst, self.pl.skipped, gc.mem_free(),
                  self.store.n))
