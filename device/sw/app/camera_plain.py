"""Plain-Python twins of the viper kernels in camera_fast.py: same names, same arguments, same
results (checked frame by frame in tests/device/camera_runner.py).

This module is what the pipeline runs on a port without the native emitter, and the reference
the viper code is read against: change both together. Buffer layouts and parameter indices are
described in camera_fast.py.
"""
from micropython import const

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

_OFF = const(8192)
_DCLAMP = const(4000)
_INVALID_LO = const(-3999)

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


def detect(frame, fast, mean, var, diff, mask, run, prev, p):
    """Twin of camera_fast.detect."""
    n = p[_P_N]
    fs = p[_P_FAST]
    zz = p[_P_ZZ]
    cwarm = p[_P_CWARM]
    ccold = p[_P_CCOLD]
    learn = p[_P_LEARN]
    init = p[_P_INIT]
    vinit = p[_P_VINIT]
    stuck = p[_P_STUCK]
    fg = 0
    nstuck = 0
    for i in range(n):
        x = frame[i]
        r = run[i]
        if x == prev[i]:
            if r < 255:
                r += 1
                run[i] = r
                if r == stuck:
                    nstuck += 1
        else:
            r = 0
            run[i] = 0
        prev[i] = x
        if x <= _INVALID_LO or r >= stuck:
            mask[i] = 3
            diff[i] = 0
            continue
        xo = (x + _OFF) << 2
        if init:
            f = xo
            if init == 1:
                mean[i] = xo << 2
                var[i] = vinit
        else:
            f = fast[i]
            f += (xo - f) >> fs
        fast[i] = f
        d = ((f << 2) - mean[i]) >> 4
        if d > _DCLAMP:
            d = _DCLAMP
        elif d < -_DCLAMP:
            d = -_DCLAMP
        diff[i] = d
        m = 0
        if not learn and d * d * 16 > zz * var[i]:
            if d >= cwarm:
                m = 1
            elif -d >= ccold:
                m = 2
        mask[i] = m
        if m:
            fg += 1
    p[_P_FG] = fg
    p[_P_NSTUCK] = nstuck
    return fg


def update(fast, mean, var, mask, hold, p):
    """Twin of camera_fast.update."""
    n = p[_P_N]
    ms = p[_P_MS]
    vs = p[_P_VS]
    fms = p[_P_FMS]
    fvs = p[_P_FVS]
    vmin = p[_P_VMIN]
    vmax = p[_P_VMAX]
    zz = p[_P_ZZ]
    learned = 0
    for i in range(n):
        h = hold[i]
        if h:
            hold[i] = 0
        m = mask[i]
        if h or m == 3:
            continue
        mu = mean[i]
        d16 = (fast[i] << 2) - mu
        d = d16 >> 4
        if d > _DCLAMP:
            d = _DCLAMP
        elif d < -_DCLAMP:
            d = -_DCLAMP
        v = var[i]
        e = d * d
        if m == 0:
            mean[i] = mu + (d16 >> ms)
            v += (e - v) >> vs
            learned += 1
        else:
            mean[i] = mu + (d16 >> fms)
            cap = (zz * v) >> 4
            if e > cap:
                e = cap
            v += (e - v) >> fvs
        if v < vmin:
            v = vmin
        elif v > vmax:
            v = vmax
        var[i] = v
    return learned


def label(mask, labels, stack, feat, diff, p):
    """Twin of camera_fast.label."""
    n = p[_P_N]
    cols = p[_P_COLS]
    rows = p[_P_ROWS]
    conn8 = p[_P_CONN8]
    maxb = p[_P_MAXB]
    for i in range(n):
        labels[i] = 0
    nb = 0
    over = 0
    for i in range(n):
        pol = mask[i]
        if pol == 0 or pol == 3 or labels[i] != 0:
            continue
        if nb >= maxb:
            labels[i] = 255
            over += 1
            continue
        nb += 1
        base = (nb - 1) * _NF
        lab = nb
        area = 0
        x0 = cols
        y0 = rows
        x1 = 0
        y1 = 0
        peak = -1
        peaki = 0
        sm = 0
        sx = 0
        sy = 0
        sxx = 0
        syy = 0
        ys = i // cols
        xs = i - ys * cols
        labels[i] = lab
        stack[0] = i
        sp = 1
        while sp > 0:
            sp -= 1
            j = stack[sp]
            y = j // cols
            x = j - y * cols
            a = diff[j]
            if a < 0:
                a = -a
            area += 1
            if x < x0:
                x0 = x
            if x > x1:
                x1 = x
            if y < y0:
                y0 = y
            if y > y1:
                y1 = y
            if a > peak:
                peak = a
                peaki = j
            sm += a
            sx += x * a
            sy += y * a
            sxx += (x - xs) * (x - xs) * a
            syy += (y - ys) * (y - ys) * a
            for dy in range(-1, 2):
                yy = y + dy
                if yy < 0 or yy >= rows:
                    continue
                for dx in range(-1, 2):
                    if dx == 0 and dy == 0:
                        continue
                    if not conn8 and dx != 0 and dy != 0:
                        continue
                    xx = x + dx
                    if xx < 0 or xx >= cols:
                        continue
                    k = yy * cols + xx
                    if mask[k] == pol and labels[k] == 0:
                        labels[k] = lab
                        stack[sp] = k
                        sp += 1
        feat[base + _F_AREA] = area
        feat[base + _F_X0] = x0
        feat[base + _F_Y0] = y0
        feat[base + _F_X1] = x1
        feat[base + _F_Y1] = y1
        feat[base + _F_PEAK] = peak
        feat[base + _F_PEAKI] = peaki
        feat[base + _F_SUM] = sm
        feat[base + _F_SX] = sx
        feat[base + _F_SY] = sy
        feat[base + _F_POL] = pol
        feat[base + _F_SXX] = sxx
        feat[base + _F_SYY] = syy
        feat[base + _F_XS] = xs
    p[_P_OVER] = over
    return nb
