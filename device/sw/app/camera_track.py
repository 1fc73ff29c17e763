"""Tracking, classification and the event lifecycle of the camera pipeline (camera.py).

Tracks live in one preallocated array('i') (MAX_TRACKS slots of _TF fields, named by _T_*
constants): a class per track would cost heap and an allocation per new track.

Track states:
    tentative   seen, not reported yet: must persist (hits over confirm_s, mostly every frame)
                AND move (net displacement), or be big and stay long, to be confirmed;
    confirmed   reported: `new` at confirmation, an `update` when its box moved 2 px or its
                kind or count changed, at most every update_min_s and at least every
                update_max_s, `end` once lost for end_after_s (at once when it left the
                frame, or turned out to be a kind that is not reported);
    follower    a confirmed track that merged into another one's blob (people meeting): it
                rides with its host, which reports a group; when a blob splits off the group,
                a follower takes it back and its event continues with the same id;
    suppressed  tracked but never reported: heat sources that do not move (fires, engines),
                wave streaks on the sea band, and kinds the configuration does not report.
"""
from array import array

from micropython import const

from . import camera_shape as shape

MAX_TRACKS = const(16)  # people + distractors in one 32x24 view; more blobs stay untracked

# track fields
_TF = const(49)
_T_STATE = const(0)
_T_ID = const(1)
_T_AGE = const(2)
_T_HITS = const(3)
_T_MISS = const(4)
_T_X = const(5)  # centroid, 1/16 px
_T_Y = const(6)
_T_VX = const(7)  # velocity, 1/16 px per frame
_T_VY = const(8)
_T_X0 = const(9)  # where it was born
_T_Y0 = const(10)
_T_DISP = const(11)  # largest distance from birth, 1/16 px (Chebyshev)
_T_BX = const(12)
_T_BY = const(13)
_T_BW = const(14)
_T_BH = const(15)
_T_AREA = const(16)
_T_PEAK = const(17)  # |contrast| at the blob's peak, centi-K
_T_PEAKCC = const(18)  # temperature there, centi-C
_T_POL = const(19)
_T_HOST = const(20)
_T_KIND = const(21)
_T_CONF = const(22)
_T_SENT = const(23)  # frame of the last message
_T_SBX = const(24)  # box, kind and count of the last message
_T_SBY = const(25)
_T_SBW = const(26)
_T_SBH = const(27)
_T_SKIND = const(28)
_T_SCOUNT = const(29)
_T_HOT = const(30)  # frames with a heat-source peak
_T_VOTE = const(31)  # 8 kind votes, _T_VOTE + kind
_T_COUNT = const(39)  # individuals by size
_T_SAX = const(40)  # where it was suppressed
_T_AX = const(41)  # anchor of the stillness counter
_T_AY = const(42)
_T_STILL = const(43)  # frames without moving a pixel from the anchor
_T_WCM = const(44)  # effective width in cm, smoothed
_T_REL = const(45)  # effective height / a standing person's height at that range, x256, smoothed
_T_ASP = const(46)  # effective height / effective width, x256, smoothed
_T_BLOB = const(47)  # blob assigned this frame, -1 none
_T_SPEED = const(48)  # ground speed, cm/s, smoothed

_FREE = const(0)
_TENT = const(1)
_CONF = const(2)
_FOLLOW = const(3)
_SUPP = const(4)

# kinds: DETECTION numbers 0-5, then internal classes never reported
_UNKNOWN = const(0)
_PERSON = const(1)
_GROUP = const(2)
_BOAT = const(3)
_VEHICLE = const(4)
_ANIMAL = const(5)
_HEAT = const(6)  # fire, engine: not a detection
_CLUTTER = const(7)  # waves and foam

# blob features (camera_fast.py)
_NF = const(14)
_F_AREA = const(0)
_F_X0 = const(1)
_F_Y0 = const(2)
_F_X1 = const(3)
_F_Y1 = const(4)
_F_PEAK = const(5)
_F_PEAKI = const(6)
_F_SUM = const(7)
_F_SX = const(8)
_F_SY = const(9)
_F_POL = const(10)
_F_SXX = const(11)
_F_SYY = const(12)
_F_XS = const(13)

_MAXB = const(24)  # camera.MAX_BLOBS
_MOVE16 = const(24)  # 1.5 px net displacement confirms motion
_HOT_CC = const(1400)  # 14 K over the background: more than any person (body + head + running)
# Upright-person score = (effective height / a 1.7 m person's height at that range) x
# (effective height / effective width), both x256. People score 1-2, dogs and gulls 0.2-0.7
# (a far dog looks taller than it is: one pixel row is a metre at 40 m). Tuned on the tuning
# families (bench/detection.py).
_PERSON_SCORE = const(52429)  # 0.8 * 65536
_PERSON_ASP = const(384)  # x256: without geometry, upright = 1.5 times taller than wide
_PERSON_CM = const(170)
_FAST_CMS = const(800)  # 8 m/s: a bird or a dashing dog (runners reach 4.5 m/s)
_DASH_CMS = const(500)  # faster than this, only a clearly upright shape is a (running) person
_RUNNER_SCORE = const(65536)  # 1.0: runners score 1.1-1.8, dashing dogs under 0.6
_EDGE_ASP = const(384)  # x256: cut by the bottom edge, a person is at least 1.5x taller than wide
_BIG_AREA = const(10)  # pixels: confirmed without moving if it stays long enough
_VOTE_STEP = const(64)
_VOTES_MIN = const(240)  # about four votes for the winning kind before a track is reported
_NO_RANGE = const(0)


ZERO_WORDS = const(_TF * MAX_TRACKS)  # length of T, zero until the first frame


class Tracker:
    """Blobs of each frame -> tracks -> event messages queued on the pipeline."""

    TF = _TF  # fields per track in T (tests read T)

    def __init__(self, pl):
        self.pl = pl
        self.T = array("i", bytes(4 * _TF * MAX_TRACKS))
        z = memoryview(self.T)  # zeros: the other buffers are copies (no bytes() each)
        self.bcx = array("i", z[:_MAXB])
        self.bcy = array("i", z[:_MAXB])
        self.btr = array("b", z[:_MAXB])  # track of each blob, -1 none, -2 rejected
        self.pairs = array("i", z[:MAX_TRACKS * _MAXB])
        self.report = bytearray(8)

    def configure(self, cfg):
        """Settings from the pipeline's configuration (Pipeline.configure, pl.fps set)."""
        fps = self.pl.fps

        def frames(key, default, least=1):
            return max(least, int(cfg.get(key, default) * fps + 0.5))

        self.confirm_n = frames("confirm_s", 1.5, 3)
        self.end_n = frames("end_after_s", 2.0, 2)
        self.tent_miss = frames("tentative_miss_s", 0.5)
        self.upd_min = frames("update_min_s", 1.0)
        self.upd_max = frames("update_max_s", 10.0)
        self.tent_max = frames("tentative_max_s", 20.0)
        self.follow_max = frames("follow_max_s", 300.0)
        self.still_max = frames("hold_still_max_s", 600.0)
        self.still_vote = frames("still_keeps_kind_s", 2.0)
        self.fps100 = int(fps * 100 + 0.5)
        self.id_base = cfg.get("id_base", 0) & 0xFFFF0000
        self.seq = 0
        # Animals and unknowns are tracked (so a dog is not re-detected every second) but not
        # reported: a beach camera must ignore dogs and gulls, and "unknown" is mostly a warm
        # mover too far away to tell a person from a dog. Listing them reports them.
        names = cfg.get("report", ("person", "group", "boat", "vehicle"))
        self.person_max = int(cfg.get("person_max_m", 30) * 100)
        kinds = ("unknown", "person", "group", "boat", "vehicle", "animal")
        for i in range(6):
            self.report[i] = 1 if kinds[i] in names else 0
        (self.rng, self.geo, self.sea, self.fx100, self.fx16, self.fy16) = shape.geometry(
            cfg.get("geometry"), self.pl.rows, self.pl.cols)

    # --- per frame ------------------------------------------------------------------------

    def step(self, nb, frame):
        """One frame's blobs (pipeline.feat, nb of them) against the tracks."""
        self._blobs(nb)
        self._associate(nb)
        self._merge_and_split(nb)
        T = self.T
        for t in range(MAX_TRACKS):
            base = t * _TF
            st = T[base + _T_STATE]
            if st == _FREE:
                continue
            T[base + _T_AGE] += 1
            b = T[base + _T_BLOB]
            if b >= 0:
                self._hit(t, b, frame)
            elif st != _FOLLOW:
                m = T[base + _T_MISS] = T[base + _T_MISS] + 1
                # gone out of the frame on its way: no point waiting for it to come back
                x = T[base + _T_X] + T[base + _T_VX] * m
                y = T[base + _T_Y] + T[base + _T_VY] * m
                if x < 0 or y < 0 or x >= self.pl.cols * 16 or y >= self.pl.rows * 16:
                    T[base + _T_MISS] = self.end_n
        for b in range(nb):
            if self.btr[b] == -1:
                self._spawn(b, frame)
        for t in range(MAX_TRACKS):
            if T[t * _TF + _T_STATE] != _FREE:
                self._lifecycle(t, frame)

    def end_all(self):
        """Close every open event (sensor off)."""
        T = self.T
        for t in range(MAX_TRACKS):
            base = t * _TF
            if T[base + _T_STATE] in (_CONF, _FOLLOW):
                self._end(t)
            T[base + _T_STATE] = _FREE

    def slots(self):
        return MAX_TRACKS

    def reported(self, t):
        """(event_id, x, y, w, h, kind) of slot t if it is a reported track, else None."""
        T = self.T
        b = t * _TF
        if T[b + _T_STATE] not in (_CONF, _FOLLOW):
            return None
        return (T[b + _T_ID], T[b + _T_BX], T[b + _T_BY], T[b + _T_BW], T[b + _T_BH],
                self._reported_kind(t))

    # --- steps ----------------------------------------------------------------------------

    def _blobs(self, nb):
        """Join blobs split by a cooler band, then the centroids of those that pass the strong
        thresholds; weak ones are marked -2, joined ones -3."""
        pl = self.pl
        f = pl.feat
        btr = self.btr
        for b in range(nb):
            btr[b] = -1
        # A person's legs and body often come apart by a row (a cooler belt, legs seen against
        # the wet-sand mirror): same polarity, overlapping columns, at most one row between.
        for i in range(nb):
            if btr[i] == -3:
                continue
            fi = i * _NF
            for j in range(i + 1, nb):
                fj = j * _NF
                if btr[j] == -3 or f[fj + _F_POL] != f[fi + _F_POL] or \
                        f[fj + _F_X0] > f[fi + _F_X1] or f[fj + _F_X1] < f[fi + _F_X0] or \
                        f[fj + _F_Y0] > f[fi + _F_Y1] + 2 or f[fi + _F_Y0] > f[fj + _F_Y1] + 2:
                    continue
                shape.join(f, fi, fj)
                btr[j] = -3
        for b in range(nb):
            if btr[b] == -3:
                continue
            base = b * _NF
            if not pl.strong(b):
                btr[b] = -2
                continue
            s = f[base + _F_SUM]
            if s <= 0:
                s = 1
            sx = f[base + _F_SX]
            sy = f[base + _F_SY]
            # x*16 + 8 (pixel centre) without products beyond 2**30 on 32-bit boards
            self.bcx[b] = (sx // s) * 16 + ((sx % s) * 16) // s + 8
            self.bcy[b] = (sy // s) * 16 + ((sy % s) * 16) // s + 8

    def _associate(self, nb):
        """Greedy nearest-first assignment of blobs to live tracks inside a gate that grows
        with the track's size and speed; overlapping boxes are always candidates."""
        T = self.T
        f = self.pl.feat
        pairs = self.pairs
        np = 0
        for t in range(MAX_TRACKS):
            base = t * _TF
            T[base + _T_BLOB] = -1
            st = T[base + _T_STATE]
            if st == _FREE or st == _FOLLOW:
                continue
            ahead = T[base + _T_MISS] + 1
            vx = T[base + _T_VX]
            vy = T[base + _T_VY]
            px = T[base + _T_X] + vx * ahead
            py = T[base + _T_Y] + vy * ahead
            bw = T[base + _T_BW]
            bh = T[base + _T_BH]
            gate = 32 + 8 * max(bw, bh) + 2 * max(abs(vx), abs(vy)) * ahead
            # predicted box, grown by one pixel
            qx0 = T[base + _T_BX] + (vx * ahead) // 16 - 1
            qy0 = T[base + _T_BY] + (vy * ahead) // 16 - 1
            qx1 = qx0 + bw + 1
            qy1 = qy0 + bh + 1
            for b in range(nb):
                if self.btr[b] != -1:
                    continue
                fb = b * _NF
                if f[fb + _F_POL] != T[base + _T_POL]:
                    continue
                cost = max(abs(self.bcx[b] - px), abs(self.bcy[b] - py))
                if cost > gate and (f[fb + _F_X0] > qx1 or f[fb + _F_X1] < qx0
                                    or f[fb + _F_Y0] > qy1 or f[fb + _F_Y1] < qy0):
                    continue
                if cost > 1023:
                    cost = 1023
                code = (cost << 10) | (t << 5) | b
                # insertion sort: a handful of candidate pairs per frame
                j = np
                while j > 0 and pairs[j - 1] > code:
                    pairs[j] = pairs[j - 1]
                    j -= 1
                pairs[j] = code
                np += 1
        for j in range(np):
            code = pairs[j]
            t = (code >> 5) & 31
            b = code & 31
            if T[t * _TF + _T_BLOB] < 0 and self.btr[b] == -1:
                T[t * _TF + _T_BLOB] = b
                self.btr[b] = t

    def _merge_and_split(self, nb):
        """A confirmed track left without a blob while its predicted box overlaps a blob taken
        by another confirmed track has merged into it (people meeting): it follows that host.
        A blob left without a track next to a host with followers gives one of them back."""
        T = self.T
        f = self.pl.feat
        for t in range(MAX_TRACKS):
            base = t * _TF
            if T[base + _T_STATE] != _CONF or T[base + _T_BLOB] >= 0:
                continue
            x0 = T[base + _T_BX] + T[base + _T_VX] // 16 - 1
            y0 = T[base + _T_BY] + T[base + _T_VY] // 16 - 1
            x1 = x0 + T[base + _T_BW] + 1
            y1 = y0 + T[base + _T_BH] + 1
            for b in range(nb):
                h = self.btr[b]
                if h < 0 or h == t or T[h * _TF + _T_STATE] != _CONF:
                    continue
                fb = b * _NF
                if f[fb + _F_X0] > x1 or f[fb + _F_X1] < x0 or f[fb + _F_Y0] > y1 or \
                        f[fb + _F_Y1] < y0:
                    continue
                T[base + _T_STATE] = _FOLLOW
                T[base + _T_HOST] = h
                T[base + _T_MISS] = 0
                T[base + _T_AGE] = 0  # counts the time spent following
                for g in range(MAX_TRACKS):  # its own followers now ride with the new host
                    if T[g * _TF + _T_STATE] == _FOLLOW and T[g * _TF + _T_HOST] == t:
                        T[g * _TF + _T_HOST] = h
                break
        for b in range(nb):
            if self.btr[b] != -1:
                continue
            fb = b * _NF
            for g in range(MAX_TRACKS):
                gb = g * _TF
                if T[gb + _T_STATE] != _FOLLOW:
                    continue
                hb = T[gb + _T_HOST] * _TF
                if f[fb + _F_X0] > T[hb + _T_BX] + T[hb + _T_BW] + 1 or \
                        f[fb + _F_X1] < T[hb + _T_BX] - 2 or \
                        f[fb + _F_Y0] > T[hb + _T_BY] + T[hb + _T_BH] + 1 or \
                        f[fb + _F_Y1] < T[hb + _T_BY] - 2:
                    continue
                T[gb + _T_STATE] = _CONF
                T[gb + _T_BLOB] = b
                T[gb + _T_MISS] = 0
                T[gb + _T_X] = self.bcx[b]
                T[gb + _T_Y] = self.bcy[b]
                T[gb + _T_VX] = 0
                T[gb + _T_VY] = 0
                self.btr[b] = g
                break

    def _hit(self, t, b, frame):
        """Track t saw blob b: position, velocity, box, features, kind votes."""
        T = self.T
        f = self.pl.feat
        base = t * _TF
        fb = b * _NF
        dt = T[base + _T_MISS] + 1
        cx = self.bcx[b]
        cy = self.bcy[b]
        ivx = (cx - T[base + _T_X]) // dt
        ivy = (cy - T[base + _T_Y]) // dt
        if T[base + _T_HITS] <= 1:
            T[base + _T_VX] = ivx if T[base + _T_HITS] else 0
            T[base + _T_VY] = ivy if T[base + _T_HITS] else 0
        else:
            T[base + _T_VX] += (ivx - T[base + _T_VX]) >> 1
            T[base + _T_VY] += (ivy - T[base + _T_VY]) >> 1
        T[base + _T_X] = cx
        T[base + _T_Y] = cy
        T[base + _T_HITS] += 1
        T[base + _T_MISS] = 0
        T[base + _T_BX] = f[fb + _F_X0]
        T[base + _T_BY] = f[fb + _F_Y0]
        w = T[base + _T_BW] = f[fb + _F_X1] - f[fb + _F_X0] + 1
        h = T[base + _T_BH] = f[fb + _F_Y1] - f[fb + _F_Y0] + 1
        T[base + _T_AREA] = f[fb + _F_AREA]
        peak = T[base + _T_PEAK] = f[fb + _F_PEAK]
        T[base + _T_PEAKCC] = frame[f[fb + _F_PEAKI]]
        T[base + _T_POL] = f[fb + _F_POL]
        d = max(abs(cx - T[base + _T_X0]), abs(cy - T[base + _T_Y0]))
        if d > T[base + _T_DISP]:
            T[base + _T_DISP] = d
        if max(abs(cx - T[base + _T_AX]), abs(cy - T[base + _T_AY])) >= 16:
            T[base + _T_AX] = cx
            T[base + _T_AY] = cy
            T[base + _T_STILL] = 0
        else:
            T[base + _T_STILL] += 1
        if peak >= _HOT_CC:
            T[base + _T_HOT] += 1
        # Effective size from the contrast-weighted second moments: a uniform bar of H pixels
        # measures H, and partly covered rim pixels count for what they hold, so the size does
        # not grow with the contrast the way the thresholded box does. 1/16 px.
        s = f[fb + _F_SUM]
        if s <= 0:
            s = 1
        # a fast mover tears across the two chess subpages: half its step is not its size
        h16 = max(shape.spread(f[fb + _F_SY], f[fb + _F_SYY], s, f[fb + _F_Y0])
                  - abs(T[base + _T_VY]) // 2, 16)
        w16 = max(shape.spread(f[fb + _F_SX], f[fb + _F_SXX], s, f[fb + _F_XS])
                  - abs(T[base + _T_VX]) // 2, 16)
        yb = min(T[base + _T_BY] + h - 1, self.pl.rows - 1)
        r = self.rng[yb]
        if r:
            # ground speed: across from the column rate, along from the row rate times the
            # range step between rows (ignored where one row spans more than 4 m)
            sx = abs(T[base + _T_VX]) * self.fps100 * r // (16 * self.fx100)
            g = self.rng[yb - 1] - r if yb > 0 and self.rng[yb - 1] else 0
            sy = abs(T[base + _T_VY]) * self.fps100 * g // 1600 if 0 < g <= 400 else 0
            sp = max(sx, sy) + min(sx, sy) // 2
            if T[base + _T_HITS] <= 2:
                T[base + _T_SPEED] = sp
            else:
                T[base + _T_SPEED] += (sp - T[base + _T_SPEED]) >> 2
        # width in cm less the half-pixel blur, at the range of the bottom row (the feet)
        wcm = (w16 - 8) * r // self.fx16 if r else 0
        # (height in cm) / 1.7 m, x256; the order keeps products under 2**30 up to 20 km
        rel = (h16 * r // self.fy16) * 256 // _PERSON_CM if r else 0
        asp = h16 * 256 // w16
        if T[base + _T_HITS] <= 1:
            T[base + _T_WCM] = wcm
            T[base + _T_REL] = rel
            T[base + _T_ASP] = asp
        else:
            T[base + _T_WCM] += (wcm - T[base + _T_WCM]) >> 2
            T[base + _T_REL] += (rel - T[base + _T_REL]) >> 2
            T[base + _T_ASP] += (asp - T[base + _T_ASP]) >> 2
        # people side by side stand ~0.6 m apart: 1.3 m is two, 1.9 m three...
        wcm = T[base + _T_WCM]
        T[base + _T_COUNT] = 1 if wcm < 130 else (wcm + 40) // 60
        if T[base + _T_STATE] == _CONF and T[base + _T_STILL] >= self.still_vote:
            return  # a person who stopped, crouched or lay down keeps the kind it had moving
        if f[fb + _F_X0] == 0 or f[fb + _F_X1] == self.pl.cols - 1 or f[fb + _F_Y0] == 0:
            return  # cut by a side or the top of the frame: its shape says nothing yet
        k = self._classify(t, r)
        if k < 0:
            return
        v = base + _T_VOTE
        for i in range(8):
            T[v + i] -= T[v + i] >> 5
        T[v + k] += _VOTE_STEP

    def _spawn(self, b, frame):
        """A new tentative track for an unassigned blob, if a slot is free."""
        T = self.T
        for t in range(MAX_TRACKS):
            base = t * _TF
            if T[base + _T_STATE] != _FREE:
                continue
            for i in range(_TF):
                T[base + i] = 0
            T[base + _T_STATE] = _TENT
            T[base + _T_HOST] = -1
            T[base + _T_X] = T[base + _T_X0] = T[base + _T_AX] = self.bcx[b]
            T[base + _T_Y] = T[base + _T_Y0] = T[base + _T_AY] = self.bcy[b]
            T[base + _T_POL] = self.pl.feat[b * _NF + _F_POL]
            self._hit(t, b, frame)
            T[base + _T_AGE] = 1
            T[base + _T_BLOB] = b
            self.btr[b] = t
            return

    def _lifecycle(self, t, frame):
        """Confirm, suppress, follow, update or end track t after this frame's hit or miss."""
        T = self.T
        base = t * _TF
        st = T[base + _T_STATE]
        hit = T[base + _T_BLOB] >= 0
        if st == _FOLLOW:
            h = T[base + _T_HOST]
            hb = h * _TF
            if T[hb + _T_STATE] == _CONF and T[base + _T_AGE] < self.follow_max:
                T[base + _T_X] = T[hb + _T_X]
                T[base + _T_Y] = T[hb + _T_Y]
                T[base + _T_BX] = T[hb + _T_BX]
                T[base + _T_BY] = T[hb + _T_BY]
                T[base + _T_BW] = T[hb + _T_BW]
                T[base + _T_BH] = T[hb + _T_BH]
                T[base + _T_MISS] = 0
                return
            T[base + _T_STATE] = st = _CONF  # host gone: on its own, ends unless seen again
            T[base + _T_VX] = T[base + _T_VY] = 0
        if st == _TENT:
            if T[base + _T_MISS] > self.tent_miss or T[base + _T_AGE] > self.tent_max:
                T[base + _T_STATE] = _SUPP if T[base + _T_AGE] > self.tent_max else _FREE
                T[base + _T_SAX] = T[base + _T_X]
                return
            if hit and self._confirmable(t):
                self._confirm(t, frame)
            return
        if st == _SUPP:
            if T[base + _T_MISS] >= self.end_n:
                T[base + _T_STATE] = _FREE
            elif hit and T[base + _T_AGE] % self.confirm_n == 0 and \
                    abs(T[base + _T_X] - T[base + _T_SAX]) >= 2 * _MOVE16 and \
                    self._reportable(self._winner(t)):
                self._confirm(t, frame)
            return
        # confirmed
        if T[base + _T_MISS] >= self.end_n:
            self._end(t)
            T[base + _T_STATE] = _FREE
            return
        if T[base + _T_STILL] < self.still_max:
            self.pl.hold_box(T[base + _T_BX], T[base + _T_BY], T[base + _T_BW], T[base + _T_BH])
        if not hit:
            return
        w = self._winner(t)
        kind = T[base + _T_KIND]
        if w != kind and T[base + _T_VOTE + w] * 2 > T[base + _T_VOTE + kind] * 3:
            if not self._reportable(w):
                # it was a dog after all: close the event, keep tracking it quietly
                self._end(t)
                T[base + _T_STATE] = _SUPP
                T[base + _T_SAX] = T[base + _T_X]
                return
            T[base + _T_KIND] = kind = w
        since = self.pl.frame_no - T[base + _T_SENT]
        if since < self.upd_min:
            return
        rk = self._reported_kind(t)
        moved = max(abs(T[base + _T_BX] - T[base + _T_SBX]),
                    abs(T[base + _T_BY] - T[base + _T_SBY]),
                    abs(T[base + _T_BW] - T[base + _T_SBW]),
                    abs(T[base + _T_BH] - T[base + _T_SBH]))
        if rk != T[base + _T_SKIND] or self._count(t) != T[base + _T_SCOUNT] or moved >= 2 or \
                since >= self.upd_max:
            self._send(t, 1, None)

    # --- decisions ------------------------------------------------------------------------

    def _confirmable(self, t):
        T = self.T
        base = t * _TF
        hits = T[base + _T_HITS]
        if hits < self.confirm_n or hits * 4 < T[base + _T_AGE] * 3:
            return False
        vx = T[base + _T_VX]
        if (T[base + _T_BX] == 0 and vx < 0) or \
                (T[base + _T_BX] + T[base + _T_BW] >= self.pl.cols and vx > 0):
            return False  # on its way out of the view: too late to report
        if T[base + _T_DISP] >= _MOVE16:
            return True
        return T[base + _T_AREA] >= _BIG_AREA and hits >= 2 * self.confirm_n

    def _confirm(self, t, frame):
        T = self.T
        base = t * _TF
        w = self._winner(t)
        v = base + _T_VOTE
        if T[v + w] < _VOTES_MIN:
            return  # not seen whole often enough yet
        for k in range(8):
            if k != w and T[v + k] * 2 > T[v + w]:
                return  # not clear yet what it is: wait (tentative_max_s at most)
        if not self._reportable(w):
            T[base + _T_STATE] = _SUPP
            T[base + _T_SAX] = T[base + _T_X]
            return
        T[base + _T_STATE] = _CONF
        T[base + _T_KIND] = w
        self.seq = self.seq + 1 if self.seq < 0xFFFF else 1
        T[base + _T_ID] = self.id_base | self.seq
        self._send(t, 0, frame)

    def _end(self, t):
        self._send(t, 2, None)

    def _send(self, t, life, frame):
        T = self.T
        base = t * _TF
        kind = self._reported_kind(t)
        count = self._count(t)
        T[base + _T_SENT] = self.pl.frame_no
        T[base + _T_SBX] = T[base + _T_BX]
        T[base + _T_SBY] = T[base + _T_BY]
        T[base + _T_SBW] = T[base + _T_BW]
        T[base + _T_SBH] = T[base + _T_BH]
        T[base + _T_SKIND] = kind
        T[base + _T_SCOUNT] = count
        self.pl.emit(life, T[base + _T_ID], kind, self._confidence(t), T[base + _T_BX],
                     T[base + _T_BY], T[base + _T_BW], T[base + _T_BH], T[base + _T_PEAKCC],
                     count, frame)

    def _winner(self, t):
        T = self.T
        v = t * _TF + _T_VOTE
        best = 0
        for k in range(1, 8):
            if T[v + k] > T[v + best]:
                best = k
        return best

    def _reportable(self, k):
        return k < 6 and self.report[k]

    def _count(self, t):
        """Individuals in the track: its size estimate, or itself plus its followers."""
        T = self.T
        n = 1
        for g in range(MAX_TRACKS):
            if T[g * _TF + _T_STATE] == _FOLLOW and T[g * _TF + _T_HOST] == t:
                n += 1
        own = T[t * _TF + _T_COUNT]
        return min(max(n, own), 255)

    def _reported_kind(self, t):
        k = self.T[t * _TF + _T_KIND]
        if k == _PERSON or k == _GROUP:
            return _GROUP if self._count(t) >= 2 else _PERSON
        return k

    def _confidence(self, t):
        """0..100 from persistence, contrast over the threshold and how clear the kind is."""
        T = self.T
        base = t * _TF
        cn = self.confirm_n
        c = 30 + min(T[base + _T_HITS], 4 * cn) * 25 // (4 * cn)
        c += min(T[base + _T_PEAK] * 10 // max(self.pl.cs, 1), 40) // 2
        v = base + _T_VOTE
        tot = 0
        for i in range(8):
            tot += T[v + i]
        if tot:
            c += T[v + T[base + _T_KIND]] * 20 // tot - 10
        return min(max(c, 1), 99)

    def _classify(self, t, r):
        """The kind this frame's blob looks like (votes accumulate over frames). r: range in cm
        of the bottom row, 0 above the horizon or without geometry."""
        T = self.T
        base = t * _TF
        moved = T[base + _T_DISP] >= _MOVE16
        on_sea = self.sea and r >= self.sea
        wcm = T[base + _T_WCM]
        if T[base + _T_PEAK] >= _HOT_CC and T[base + _T_POL] == 1:
            if not moved:
                return _HEAT
            if on_sea:
                return _BOAT
            return _VEHICLE if wcm >= 250 else _UNKNOWN
        if not self.geo:
            # pixels only: an upright target is clearly taller than wide
            if T[base + _T_POL] == 1 and T[base + _T_ASP] >= _PERSON_ASP:
                return _PERSON
            return _UNKNOWN
        if r == _NO_RANGE:
            return _ANIMAL if T[base + _T_POL] == 1 else _CLUTTER  # in the sky: a bird
        if on_sea:
            # boats come in narrow and keep coming; wave crests are wide streaks
            if wcm <= 800 and moved:
                return _BOAT
            return _CLUTTER
        if T[base + _T_POL] != 1:
            return _UNKNOWN
        speed = T[base + _T_SPEED]
        if speed >= _FAST_CMS:
            return _VEHICLE if wcm >= 300 else _ANIMAL
        score = T[base + _T_REL] * T[base + _T_ASP]
        if score >= _PERSON_SCORE and (speed < _DASH_CMS or score >= _RUNNER_SCORE):
            # beyond ~30 m a person is under 2 px tall: a dog looks the same
            return _PERSON if r <= self.person_max else _UNKNOWN
        if T[base + _T_BY] + T[base + _T_BH] >= self.pl.rows:
            # cut by the bottom edge: tall and narrow is a person walking out (or in); anything
            # else is not known yet
            return _PERSON if T[base + _T_BH] >= 3 and T[base + _T_ASP] >= _EDGE_ASP else -1
        return _ANIMAL
