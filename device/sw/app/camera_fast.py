"""Per-pixel kernels of the camera pipeline in viper: machine-word integer loops over the frame.

Each function has a plain-Python twin of the same name in camera_plain.py that gives identical
results on the same inputs (tests/device/camera_runner.py checks it on simulated frames).
camera.py imports this module when the port has the viper emitter and the .mpy matches the
CPU, and falls back to camera_plain otherwise.

Viper facts the code relies on (checked on the unix port, x86-64):
- ptr16 and ptr32 loads are zero-extended on 64-bit ports, so every 32-bit buffer holds values
  that are never negative (temperatures carry _OFF), and int16 loads are sign-corrected by hand;
- `>>` on an int is an arithmetic shift (floor), like Python's;
- intermediate products stay below 2**31 (differences clamped to +-_DCLAMP, variance capped at
  P[_P_VMAX], ZZ <= 4096), so 32-bit boards wrap nowhere.

Buffers (n = rows * cols pixels, all preallocated by camera.Pipeline):
    frame  array('h')  centi-degrees C from the sensor
    fast   array('i')  (temperature + _OFF) * 4, temporally smoothed frame
    mean   array('i')  (temperature + _OFF) * 16, background mean
    var    array('i')  background variance of the smoothed difference, centi-K**2
    diff   array('h')  smoothed difference to the background, centi-K
    mask   bytearray   0 background, 1 warm, 2 cold foreground, 3 invalid pixel
    run    bytearray   frames the pixel has repeated its value (stuck-pixel detector)
    prev   array('h')  previous raw value
    hold   bytearray   1 = do not learn this pixel this frame (confirmed target); cleared
    labels bytearray   0 none, 1..max blob label, 255 past the blob cap
    stack  array('H')  flood-fill stack, n entries (every pixel is pushed at most once)
    feat   array('i')  _NF features per blob
    P      array('i')  parameters and outputs, indices _P_* below (same in camera.py);
                       P[_P_INIT] 1 starts the background from this frame, 2 restarts only
                       the smoothing (after a glitch frame)
"""
import micropython
from micropython import const

# parameter block indices: keep in step with camera.py and camera_plain.py
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

_OFF = const(8192)  # keeps (temperature + _OFF) > 0 for -40..300 C
_DCLAMP = const(4000)  # |difference| cap, 40 K: d*d*16 stays < 2**31
_INVALID_LO = const(-3999)  # -40 C is the sensor's floor: a reading there is not a measurement

# blob features (camera.py reads them with the same indices)
_NF = const(14)
_F_AREA = const(0)
_F_X0 = const(1)
_F_Y0 = const(2)
_F_X1 = const(3)
_F_Y1 = const(4)
_F_PEAK = const(5)  # largest |diff|, centi-K
_F_PEAKI = const(6)  # pixel index of the peak
_F_SUM = const(7)  # sum of |diff|
_F_SX = const(8)  # sum of x * |diff|
_F_SY = const(9)  # sum of y * |diff|
_F_POL = const(10)  # 1 warm, 2 cold
_F_SXX = const(11)  # sum of (x - seed x)**2 * |diff|
_F_SYY = const(12)  # sum of (y - seed y)**2 * |diff| (the seed is in the top row)
_F_XS = const(13)  # seed column


@micropython.viper
def detect(frame: ptr16, fast: ptr32, mean: ptr32, var: ptr32, diff: ptr16, mask: ptr8,
           run: ptr8, prev: ptr16, p: ptr32) -> int:
    """Smooth the frame, difference it to the background, threshold (z-score AND minimum
    contrast, warm and cold), track stuck pixels. Returns the foreground pixel count."""
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
        x = int(frame[i])
        if x > 32767:
            x -= 65536
        r = int(run[i])
        if (x & 0xFFFF) == int(prev[i]):
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
            f = int(fast[i])
            f += (xo - f) >> fs
        fast[i] = f
        d = ((f << 2) - int(mean[i])) >> 4
        if d > _DCLAMP:
            d = _DCLAMP
        elif d < -_DCLAMP:
            d = -_DCLAMP
        diff[i] = d
        m = 0
        if not learn:
            if d * d * 16 > zz * int(var[i]):
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


@micropython.viper
def update(fast: ptr32, mean: ptr32, var: ptr32, mask: ptr8, hold: ptr8, p: ptr32) -> int:
    """Learn the background: EMA of mean and variance by integer shifts; foreground pixels learn
    slowly (so a parked object is absorbed eventually), held pixels not at all. Clears hold.
    Returns the number of pixels learned at the full rate."""
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
        h = int(hold[i])
        if h:
            hold[i] = 0
        m = int(mask[i])
        if h or m == 3:
            continue
        mu = int(mean[i])
        d16 = (int(fast[i]) << 2) - mu
        d = d16 >> 4
        if d > _DCLAMP:
            d = _DCLAMP
        elif d < -_DCLAMP:
            d = -_DCLAMP
        v = int(var[i])
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


@micropython.viper
def label(mask: ptr8, labels: ptr8, stack: ptr16, feat: ptr32, diff: ptr16, p: ptr32) -> int:
    """Connected components of equal foreground (1 warm, 2 cold), 4- or 8-connected, by an
    iterative flood fill on a bounded stack; features per blob in feat. Returns the number of
    blobs (at most P[_P_MAXB]; pixels beyond the cap get label 255 and count in P[_P_OVER])."""
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
        pol = int(mask[i])
        if pol == 0 or pol == 3 or int(labels[i]) != 0:
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
            j = int(stack[sp])
            y = j // cols
            x = j - y * cols
            a = int(diff[j])
            if a > 32767:
                a = 65536 - a
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
                    if int(mask[k]) == pol and int(labels[k]) == 0:
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
