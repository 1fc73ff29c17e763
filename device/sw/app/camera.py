"""Thermal camera pipeline: frames of centi-degrees in, DETECTION events (new/update/end) out.

    p = Pipeline(cfg)                  # buffers allocated once, here (configure(cfg) before
                                       # the first frame applies other settings)
    n = p.process(frame, valid=True)   # frame: array('h') of rows*cols centi-degrees C
    for k in range(n): p.event(k)      # (event_id, lifecycle, kind, confidence_pct,
                                       #  x, y, w, h, peak_cc, count, thumbnail)
    p.power_up()                       # the sensor was powered up: skip its first frames
    n = p.finish()                     # end every open event (sensor switched off)

Steps per frame (docs: device/README.md, "Thermal camera"):
1. per-pixel kernels (camera_fast, viper; camera_plain, their plain-Python twins): temporal
   smoothing, difference to a per-pixel background mean, foreground where the difference passes
   a z-score (against the per-pixel variance) AND a minimum contrast, warm or cold; stuck and
   out-of-range pixels marked invalid;
2. dead pixels bridged from their neighbours, whole-frame glitches (power-up garbage, a sudden
   change of everything) skipped;
3. connected components (4/8-connected) with area, box, peak, contrast and centroid; a blob
   counts when its peak passes the stronger (hysteresis) thresholds;
4. tracking (camera_track): association by distance and overlap, merge into groups and split
   back, confirmation by persistence AND motion (or size), classification from size in pixels
   and metres (per-row range of the camera geometry), temperature, speed and position;
5. events: `new` at confirmation, `update`s rate-limited, `end` after the track is lost for a
   while; optional thumbnail (8-bit crop, deflated when the port can compress);
6. background learning (EMA by integer shifts), frozen under confirmed targets.

No allocation per frame in steady state: all buffers are preallocated; only an emitted event
(its thumbnail) allocates.
"""
from array import array

from micropython import const

from . import camera_track as trk

try:
    from . import camera_fast as kernels  # viper: needs the native emitter and a matching .mpy

    FAST = True
except:  # noqa: E722 - optional module: no emitter, or an .mpy for another CPU
    from . import camera_plain as kernels  # type: ignore[no-redef]  # the twin: same functions

    FAST = False

# parameter block (see camera_fast.py)
_P_N = const(0)
_P_COLS = const(1)
_P_FAST = const(2)
_P_ZZ = const(3)
_P_CWARM = const(4)
_P_CCOLD = const(5)
_P_LEARN = const(6)
_P_INIT = const(7)
_P_MS = const(8)
_P_VS = const(9)
_P_FMS = const(10)
_P_FVS = const(11)
_P_VMIN = const(12)
_P_VMAX = const(13)
_P_VINIT = const(14)
_P_CONN8 = const(15)
_P_MAXB = const(16)
_P_STUCK = const(17)
_P_FG = const(18)
_P_NSTUCK = const(19)
_P_OVER = const(20)
_P_ROWS = const(21)
_P_SIZE = const(22)

_NF = const(14)
_F_PEAK = const(5)
_F_PEAKI = const(6)
_F_POL = const(10)

MAX_BLOBS = const(24)  # a 32x24 beach scene with more blobs than this is clutter, not people
MAX_DEAD = const(16)  # Melexis drivers carry 4 broken + 4 outlier pixels; twice that is a fault
_STUCK_RUN = const(12)  # identical readings in a row: noise >= 0.1 K makes this ~1e-15 by chance
_GLITCH_PCT = const(25)  # more foreground than this share of the frame: not a scene, a glitch
_RELEARN_GLITCHES = const(8)  # glitches in a row: the scene really changed, learn it again
_VAR_INIT = const(900)  # 0.3 K rms until measured (MLX90640 at 4 Hz)
_VAR_MIN = const(64)  # 0.08 K: no pixel is quieter than the sensor's NETD
_VAR_MAX = const(250000)  # 5 K rms cap keeps zz * var < 2**31 (see camera_fast)
_OFF = const(8192)  # see camera_fast

# event record: fields of one emitted message
EV_FIELDS = const(10)
_E_ID = const(0)
_E_LIFE = const(1)
_E_KIND = const(2)
_E_CONF = const(3)
_E_X = const(4)
_E_Y = const(5)
_E_W = const(6)
_E_H = const(7)
_E_PEAK = const(8)
_E_COUNT = const(9)
MAX_EVENTS = const(40)  # per frame: every track ends at once, plus new ones

KINDS = ("unknown", "person", "group", "boat", "vehicle", "animal")  # DETECTION kind numbers
LIFECYCLES = ("new", "update", "end")

# sensitivity 0..100 -> thresholds, interpolated between these points (index = sensitivity/25).
# z is stored as z*z*16; contrasts in centi-K. "weak" makes the foreground mask, "strong" is what
# the peak of a blob must pass (hysteresis: faint edges join a blob that has a clear core).
_SENS_ZW = (7.0, 5.0, 3.5, 2.8, 2.2)
_SENS_CW = (90, 55, 35, 25, 18)
_SENS_ZS = (9.0, 7.0, 5.0, 4.0, 3.2)
_SENS_CS = (180, 110, 70, 50, 38)
_COLD_FACTOR = const(2)  # cold blobs (a wet hull, a person against the warm winter sea) need
                         # twice the contrast: waves make most cold streaks


def thresholds(sensitivity):
    """(zz_weak, cmin_weak, zz_strong, cmin_strong) for a sensitivity 0..100."""
    s = min(max(int(sensitivity), 0), 100)
    i = min(s // 25, 3)
    f = (s - 25 * i) / 25

    def lerp(t):
        return t[i] + (t[i + 1] - t[i]) * f

    zw = lerp(_SENS_ZW)
    zs = lerp(_SENS_ZS)
    return (int(zw * zw * 16 + 0.5), int(lerp(_SENS_CW) + 0.5), int(zs * zs * 16 + 0.5),
            int(lerp(_SENS_CS) + 0.5))


def _shift_for(frames):
    """Largest s with 2**s <= frames (at least 1): an EMA time constant of `frames` frames."""
    s = 1
    while (2 << s) <= frames:
        s += 1
    return s


class Pipeline:
    """The camera pipeline of one sensor; see the module docstring."""

    def __init__(self, cfg, fast=True):
        self.k = kernels if fast else _plain()
        self.fast = fast and FAST
        rows = self.rows = cfg.get("rows", 24)
        cols = self.cols = cfg.get("cols", 32)
        n = self.n = rows * cols
        # buffers (layouts in camera_fast.py): every one depends on the frame size only, so a
        # board can allocate them early, while the heap is still in one piece, and configure()
        # them once its settings are read. They are copied from the tracker's zeroed track
        # table, element by element: array(t, bytes(k)) for each would leave a hole the size
        # of each buffer between them (its bytes), 27 KB of holes where one contiguous 27 KB
        # region was needed.
        self.tracker = trk.Tracker(self)
        z = memoryview(self.tracker.T)  # ZERO_WORDS zeros
        if n > trk.ZERO_WORDS:
            z = memoryview(array("i", bytes(4 * n)))  # a sensor larger than the MLX90640
        self.fastbuf = array("i", z[:n])
        self.mean = array("i", z[:n])
        self.var = array("i", z[:n])
        self.diff = array("h", z[:n])
        self.prev = array("h", z[:n])
        self.mask = bytearray(n)
        self.run = bytearray(n)
        self.hold = bytearray(n)
        self.labels = bytearray(n)
        self.stack = array("H", z[:n])
        self.feat = array("i", z[:_NF * MAX_BLOBS])
        self.dead = array("h", z[:MAX_DEAD])
        self.p = array("i", z[:_P_SIZE])
        self.ev = array("i", z[:EV_FIELDS * MAX_EVENTS])
        self.ev_thumb = [None] * MAX_EVENTS
        self.configure(cfg)

    def configure(self, cfg):
        """Apply a configuration (every key but rows and cols, which size the buffers) to a
        pipeline that has not seen a frame yet."""
        fps = self.fps = float(cfg.get("fps", 4.0))
        self.frame_no = 0
        self.ndead = 0
        p = self.p
        p[_P_N] = self.n
        p[_P_COLS] = self.cols
        p[_P_ROWS] = self.rows
        p[_P_CONN8] = 0 if cfg.get("connectivity", 8) == 4 else 1
        p[_P_MAXB] = MAX_BLOBS
        p[_P_STUCK] = _STUCK_RUN
        p[_P_VMIN] = _VAR_MIN
        p[_P_VMAX] = _VAR_MAX
        p[_P_VINIT] = _VAR_INIT
        # time constants in frames: they are seconds on the beach whatever the frame rate
        p[_P_FAST] = 1 if fps >= 2 else 0  # 2-frame smoothing; none below 2 fps
        self.ms = _shift_for(int(cfg.get("background_s", 16) * fps))
        self.vs = _shift_for(int(cfg.get("variance_s", 32) * fps))
        p[_P_FMS] = self.ms + 4  # foreground is absorbed 16x slower (a parked car, a fire)
        p[_P_FVS] = self.vs + 2
        self.learn_n = max(4, int(cfg.get("learn_s", 5) * fps))
        self.powerup_n = cfg.get("powerup_frames", 2)
        self.set_sensitivity(cfg.get("sensitivity", 50))
        self.thumbs = cfg.get("thumbnails", False)
        self.nev = 0
        self.tracker.configure(cfg)
        self.glitches = 0
        self.skipped = 0  # frames not used: invalid, power-up, glitch
        self.power_up()

    # --- public ---------------------------------------------------------------------------

    def set_sensitivity(self, sensitivity):
        """Apply a sensitivity 0..100 (config key detection_sensitivity) from the next frame."""
        zw, cw, zs, cs = thresholds(sensitivity)
        p = self.p
        p[_P_ZZ] = zw
        p[_P_CWARM] = cw
        p[_P_CCOLD] = cw * _COLD_FACTOR
        self.zzs = zs
        self.cs = cs
        self.sensitivity = sensitivity

    def power_up(self):
        """The sensor was (re)started: its first frames are garbage and the scene may have
        changed while it was off, so skip those frames and learn the background again."""
        self.skip = self.powerup_n
        self.init = True
        self.learn = self.learn_n

    def process(self, frame, valid=True):
        """Run one frame; returns the number of event messages, read with event(k)."""
        self.nev = 0
        self.frame_no += 1
        if not valid or self.skip > 0:
            if self.skip > 0:
                self.skip -= 1
            self.skipped += 1
            return 0
        p = self.p
        k = self.k
        learning = self.learn > 0
        p[_P_INIT] = 1 if self.init else 2 if self.glitches else 0
        p[_P_LEARN] = 1 if learning else 0
        fg = k.detect(frame, self.fastbuf, self.mean, self.var, self.diff, self.mask,
                      self.run, self.prev, p)
        self.init = False
        if p[_P_NSTUCK] or (self.ndead and self.frame_no & 63 == 0):
            self._find_dead()
        if learning:
            # cumulative average at first, then the EMA: the mean settles within a few frames
            step = self.learn_n - self.learn + 1
            p[_P_MS] = min(self.ms, _shift_for(step))
            p[_P_VS] = min(self.vs, _shift_for(step))
            k.update(self.fastbuf, self.mean, self.var, self.mask, self.hold, p)
            self.learn -= 1
            return 0
        if fg * 100 > (self.n - self.ndead) * _GLITCH_PCT:
            # the smoothing took the glitch in: the next frame restarts it (P_INIT 2)
            self.glitches += 1
            self.skipped += 1
            if self.glitches >= _RELEARN_GLITCHES:
                self.glitches = 0
                self.init = True
                self.learn = self.learn_n
            return 0
        self.glitches = 0
        if self.ndead:
            self._bridge_dead()
        nb = k.label(self.mask, self.labels, self.stack, self.feat, self.diff, p)
        self.tracker.step(nb, frame)
        p[_P_MS] = self.ms
        p[_P_VS] = self.vs
        k.update(self.fastbuf, self.mean, self.var, self.mask, self.hold, p)
        return self.nev

    def finish(self):
        """End every open event; call it before the sensor is switched off (a later power_up()
        starts from an empty scene). Returns the number of messages, read with event(k)."""
        self.nev = 0
        self.tracker.end_all()
        return self.nev

    def event(self, k):
        """Message k of the last process()/finish() as a tuple (allocates: messages are rare)."""
        b = k * EV_FIELDS
        e = self.ev
        return (e[b + _E_ID], e[b + _E_LIFE], e[b + _E_KIND], e[b + _E_CONF], e[b + _E_X],
                e[b + _E_Y], e[b + _E_W], e[b + _E_H], e[b + _E_PEAK], e[b + _E_COUNT],
                self.ev_thumb[k])

    def strong(self, b):
        """Does blob b pass the strong thresholds at its peak (z-score AND contrast)?"""
        f = self.feat
        base = b * _NF
        d = f[base + _F_PEAK]
        c = self.cs if f[base + _F_POL] == 1 else self.cs * _COLD_FACTOR
        return d >= c and d * d * 16 > self.zzs * self.var[f[base + _F_PEAKI]]

    # --- used by the tracker ----------------------------------------------------------------

    def emit(self, life, eid, kind, conf, x, y, w, h, peak_cc, count, frame=None):
        """Queue one message for the caller of process()."""
        if self.nev >= MAX_EVENTS:
            return  # cannot happen with MAX_EVENTS >= 2 * tracks; never overrun
        i = self.nev
        b = i * EV_FIELDS
        e = self.ev
        e[b + _E_ID] = eid
        e[b + _E_LIFE] = life
        e[b + _E_KIND] = kind
        e[b + _E_CONF] = conf
        e[b + _E_X] = x
        e[b + _E_Y] = y
        e[b + _E_W] = w
        e[b + _E_H] = h
        e[b + _E_PEAK] = peak_cc
        e[b + _E_COUNT] = count
        self.ev_thumb[i] = self._thumbnail(frame, x, y, w, h) if (
            frame is not None and self.thumbs and life == 0) else None
        self.nev = i + 1

    def hold_box(self, x, y, w, h):
        """Do not learn the box (grown by one pixel) this frame: a confirmed target is there."""
        cols = self.cols
        x0 = max(x - 1, 0)
        x1 = min(x + w + 1, cols)
        y1 = min(y + h + 1, self.rows)
        hold = self.hold
        for r in range(max(y - 1, 0), y1):
            base = r * cols
            for c in range(x0, x1):
                hold[base + c] = 1

    # --- private ------------------------------------------------------------------------------

    def _find_dead(self):
        """List the pixels the kernel marked stuck (run >= _STUCK_RUN), at most MAX_DEAD."""
        run = self.run
        nd = 0
        for i in range(self.n):
            if run[i] >= _STUCK_RUN and nd < MAX_DEAD:
                self.dead[nd] = i
                nd += 1
        self.ndead = nd

    def _bridge_dead(self):
        """A dead pixel takes the foreground of its 4-neighbours when at least two agree, so a
        person walking over it is not cut in two."""
        cols = self.cols
        n = self.n
        mask = self.mask
        diff = self.diff
        for j in range(self.ndead):
            i = self.dead[j]
            if mask[i] != 3:
                continue
            c = i % cols
            warm = cold = 0
            s = 0
            for q in range(4):  # up, down, left, right (no tuple: nothing allocated per frame)
                k = i - cols if q == 0 else i + cols if q == 1 else \
                    (i - 1 if c > 0 else -1) if q == 2 else (i + 1 if c < cols - 1 else -1)
                if 0 <= k < n:
                    m = mask[k]
                    if m == 1:
                        warm += 1
                        s += diff[k]
                    elif m == 2:
                        cold += 1
                        s += diff[k]
            if warm >= 2 or cold >= 2:
                mask[i] = 1 if warm >= cold else 2
                diff[i] = s // (warm + cold)

    def _thumbnail(self, frame, x, y, w, h):
        """(format, w, h, data): the box grown by 2 px, 8-bit from its min..max, 2x2-binned
        when larger than 16x16; deflated (format 1) when this port can compress, else raw (2)."""
        cols = self.cols
        x0 = max(x - 2, 0)
        y0 = max(y - 2, 0)
        x1 = min(x + w + 2, cols)
        y1 = min(y + h + 2, self.rows)
        step = 2 if (x1 - x0) * (y1 - y0) > 256 else 1
        tw = (x1 - x0 + step - 1) // step
        th = (y1 - y0 + step - 1) // step
        lo = 32767
        hi = -32768
        for r in range(y0, y1):
            for c in range(x0, x1):
                v = frame[r * cols + c]
                lo = min(lo, v)
                hi = max(hi, v)
        span = max(hi - lo, 1)
        out = bytearray(tw * th)
        for ty in range(th):
            for tx in range(tw):
                r = y0 + ty * step
                c = x0 + tx * step
                out[ty * tw + tx] = (frame[r * cols + c] - lo) * 255 // span
        try:
            import deflate
            import io

            buf = io.BytesIO()
            z = deflate.DeflateIO(buf, deflate.RAW, 8)
            # AttributeError: decompression only, as in the stock ESP32, RP2 and unix builds
            z.write(out)  # type: ignore[attr-defined]
            z.close()
            return (1, tw, th, buf.getvalue())
        except (ImportError, AttributeError):
            return (2, tw, th, bytes(out))


def _plain():
    from . import camera_plain

    return camera_plain
