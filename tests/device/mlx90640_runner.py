"""MLX90640 driver (device/sw/hal/mlx90640.py) against a synthetic sensor, under MicroPython.

MicroPython script: micropython tests/device/mlx90640_runner.py <fixture_dir> [repo_root]
The fixture (written by test_drivers.py from mlx90640_model.py) holds recordings of the I2C
traffic (EEPROM, control and status registers, frames) and the expected results: the
calibration parameters and the scene temperatures. Prints one line per failed check, a
`heap` line, and last exactly "N passed, M failed".
"""
import gc
import json
import math
import sys


from checks import ROOT, check, counts  # noqa: E402, F401 - device/ on sys.path

FIX = sys.argv[1]
sys.path.insert(0, ROOT + "/tests/device")

from fakebus import Replay, ReplayI2C  # noqa: E402
from sw.hal.mlx90640 import NOT_MEASURED, Mlx90640  # noqa: E402


def close(a, b, rel=1e-9):
    if isinstance(b, list):
        pairs = zip(a, b)  # noqa: B905 - MicroPython's zip has no strict
        return len(a) == len(b) and all(close(x, y, rel) for x, y in pairs)
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-30)


def check_params(name, drv, expected):
    for key in expected:
        got = getattr(drv, key)
        got = list(got) if isinstance(got, tuple) else got
        check(f"{name} param {key}", close(got, expected[key]),
              f"{got!r} != {expected[key]!r}")


def check_pixels(name, drv, expected):
    bad = 0
    first = ""
    for p in range(768):
        got = drv.pixel(p)
        want = expected[p]
        ok = (got is None) if want is None else (
            got is not None and got[0] == want[0] and close(got[1], want[1])
            and close(got[2], want[2]) and close(got[3], want[3]) and got[4] == want[4])
        if not ok:
            bad += 1
            first = first or f"pixel {p}: {got!r} != {want!r}"
    check(name + " per-pixel parameters (768)", not bad, f"{bad} wrong, {first}")


def check_frame(name, drv, scene, tol_cc, only=None):
    """cc against the scene: within tol for pixels of subpage `only` (all if None); pixels of
    the other subpage still NOT_MEASURED. Returns the largest error in cc."""
    worst = 0
    bad = 0
    first = ""
    for p in range(768):
        want = scene[p]
        got = drv.cc[p]
        mine = only is None or ((p >> 5) + (p & 31)) & 1 == only
        if not mine or want is None:
            ok = got == NOT_MEASURED
        else:
            err = abs(got - want * 100)
            worst = max(worst, err)
            ok = err <= tol_cc
        if not ok:
            bad += 1
            first = first or f"pixel {p}: {got} cc, scene {want!r}"
    check(name, not bad, f"{bad} wrong, {first}")
    return worst


def run_scene(fx, key):
    sc = fx[key]
    r = Replay.load(FIX + "/" + sc["recording"])
    tol = int(fx["tolerance_k"] * 100)
    gc.collect()
    before = gc.mem_alloc()
    drv = Mlx90640(ReplayI2C(r), emissivity=sc["emissivity"])
    drv.begin()
    gc.collect()
    resident = gc.mem_alloc() - before
    check_params(key, drv, sc["params"])
    check_pixels(key, drv, sc["pixels"])
    check(key + " chess mode selected", drv.ctrl == sc["ctrl"], f"{drv.ctrl:04x}")
    worst = 0
    # The first subpage turns Ta and Vdd from the 0.0 constants into heap floats (two GC
    # blocks, 64 bytes on a 64-bit port); after that a subpage must leave nothing behind.
    allowed = 64
    for step in sc["steps"]:
        if step == "refresh":
            drv.set_refresh(3)
            check(key + " refresh code 3", (drv.ctrl >> 7) & 7 == 3 and drv.ctrl & 0x1000,
                  f"{drv.ctrl:04x}")
            continue
        if step == "idle":
            check(key + " no new data", drv.poll() == -1)
            continue
        if step == "torn":
            torn = drv.torn
            check(key + " torn three times: dropped", drv.poll() == -1 and drv.torn == torn + 1)
            continue
        sub, ta, vdd, only = step
        gc.collect()
        held = gc.mem_alloc()
        got = drv.poll()
        gc.collect()
        grown = gc.mem_alloc() - held
        check(f"{key} poll -> subpage {sub}", got == sub, repr(got))
        check(f"{key} subpage {sub} keeps no memory", grown <= allowed, f"{grown} bytes")
        allowed = 0
        check(f"{key} Ta", abs(drv.ta - ta) < 1e-6, f"{drv.ta!r} {ta!r}")
        check(f"{key} Vdd", abs(drv.vdd - vdd) < 1e-9, f"{drv.vdd!r} {vdd!r}")
        worst = max(worst, check_frame(f"{key} subpage {sub} temperatures", drv,
                                       fx["scenes"][sc["scene"]], tol, only))
    peak = max(t for t in fx["scenes"][sc["scene"]] if t is not None)
    check(key + " read_cc peak", abs(drv.read_cc() - peak * 100) <= tol, repr(drv.read_cc()))
    left = r.done()
    check(key + " whole recording replayed", left is None, left or "")
    print(f"heap {key} resident {resident} bytes, worst error {math.ceil(worst)} cc")
    return resident


with open(FIX + "/fixture.json") as f:  # noqa: PTH123 - MicroPython has no pathlib
    fx = json.load(f)

for key in ("main", "cold19bit"):
    try:
        run_scene(fx, key)
    except Exception as e:
        counts[1] += 1
        print("FAIL", key, "raised", repr(e))
        sys.print_exception(e)

# extraction at the edges: most negative fields, largest scale exponents
try:
    r = Replay.load(FIX + "/edge.txt")
    drv = Mlx90640(ReplayI2C(r))
    drv.begin()
    check_params("edge", drv, fx["edge"]["params"])
    check_pixels("edge", drv, fx["edge"]["pixels"])
    check("edge recording replayed", r.done() is None, r.done() or "")
except Exception as e:
    counts[1] += 1
    print("FAIL edge raised", repr(e))
    sys.print_exception(e)

# a blank EEPROM (sensor not powered, bus stuck low) is an error, not a division by zero
r = Replay.load(FIX + "/blank.txt")
drv = Mlx90640(ReplayI2C(r))
try:
    drv.begin()
    check("blank EEPROM refused", False, "begin() accepted it")
except OSError as e:
    check("blank EEPROM refused", "EEPROM" in str(e), repr(e))

print(f"{counts[0]} passed, {counts[1]} failed")
sys.exit(1 if counts[1] else 0)
