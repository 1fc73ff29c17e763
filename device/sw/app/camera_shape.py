"""Blob shape and camera geometry for the camera tracker (camera_track.py): effective sizes
from the contrast-weighted moments, joining blobs split by a cooler band, and the per-row
ground range table of the board's camera geometry. Integer arithmetic only."""
from array import array

from micropython import const

# blob features (camera_fast.py)
_F_X0 = const(1)
_F_Y0 = const(2)
_F_X1 = const(3)
_F_Y1 = const(4)
_F_AREA = const(0)
_F_PEAK = const(5)
_F_PEAKI = const(6)
_F_SUM = const(7)
_F_SX = const(8)
_F_SY = const(9)
_F_SXX = const(11)
_F_SYY = const(12)
_F_XS = const(13)

# Ranges further than this are not ground (a row at the horizon reads kilometres).
_MAX_RANGE_M = const(20000)


def geometry(geo, rows, cols):
    """(range_cm per row, has_geometry, sea_from_cm, fx*100, fx*16, fy*16) from the board's
    camera geometry {"row_range_m": [m or None per row], "hfov_deg", "vfov_deg",
    "sea_from_m"}; range 0 means above the horizon or unknown. Without geometry the lens
    defaults to the MLX90640's 55x35 degrees."""
    import math

    rng = array("i", bytes(4 * rows))
    geo = geo or {}
    hfov = geo.get("hfov_deg", 55.0)
    vfov = geo.get("vfov_deg", 35.0)
    fx = (cols / 2) / math.tan(math.radians(hfov) / 2)
    fy = (rows / 2) / math.tan(math.radians(vfov) / 2)
    rr = geo.get("row_range_m")
    if rr:
        for r in range(min(rows, len(rr))):
            v = rr[r]
            rng[r] = int(v * 100) if v is not None and 0 < v < _MAX_RANGE_M else 0
    sea = int(geo["sea_from_m"] * 100) if rr and geo.get("sea_from_m") else 0
    return rng, bool(rr), sea, int(fx * 100), int(fx * 16), int(fy * 16)


def spread(s1, s2, s, origin):
    """Effective extent (1/16 px) along one axis of a blob from its weighted sums s1 = sum(a*v),
    s2 = sum(a*(v - origin)**2), s = sum(a): sqrt(12 * variance + 1), so a uniform run of H
    pixels gives H, and partly covered rim pixels count for what they hold. No product past
    2**30 for blobs the pipeline labels (no long ints on 32-bit boards)."""
    m16 = (s1 // s) * 16 + ((s1 % s) * 16) // s - origin * 16
    v256 = (s2 // s) * 256 + ((s2 % s) * 256) // s - m16 * m16
    if v256 < 0:
        v256 = 0
    return isqrt(12 * v256 + 256)


def isqrt(n):
    """floor(sqrt(n)) for n >= 1 (Newton's method on integers)."""
    x = n
    y = (x + 1) >> 1
    while y < x:
        x = y
        y = (x + n // x) >> 1
    return x


def join(f, fi, fj):
    """Add the features of the blob at offset fj of f to the blob at fi (fi seeded first, so its
    seed row is the top row of both); second moments move to fi's origins."""
    s = f[fj + _F_SUM]
    dx = f[fj + _F_XS] - f[fi + _F_XS]
    dy = f[fj + _F_Y0] - f[fi + _F_Y0]
    f[fi + _F_SXX] += f[fj + _F_SXX] + 2 * dx * (f[fj + _F_SX] - f[fj + _F_XS] * s) + dx * dx * s
    f[fi + _F_SYY] += f[fj + _F_SYY] + 2 * dy * (f[fj + _F_SY] - f[fj + _F_Y0] * s) + dy * dy * s
    f[fi + _F_SUM] += s
    f[fi + _F_SX] += f[fj + _F_SX]
    f[fi + _F_SY] += f[fj + _F_SY]
    f[fi + _F_AREA] += f[fj + _F_AREA]
    f[fi + _F_X0] = min(f[fi + _F_X0], f[fj + _F_X0])
    f[fi + _F_Y0] = min(f[fi + _F_Y0], f[fj + _F_Y0])
    f[fi + _F_X1] = max(f[fi + _F_X1], f[fj + _F_X1])
    f[fi + _F_Y1] = max(f[fi + _F_Y1], f[fj + _F_Y1])
    if f[fj + _F_PEAK] > f[fi + _F_PEAK]:
        f[fi + _F_PEAK] = f[fj + _F_PEAK]
        f[fi + _F_PEAKI] = f[fj + _F_PEAKI]
