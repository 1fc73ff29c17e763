"""Camera pipeline unit tests, run by the real MicroPython interpreter (unix port).

    MICROPYPATH=device micropython tests/device/camera_runner.py

Synthetic frames (a flat beach with noise, rectangles for targets) make each behaviour easy to
see; the simulator is exercised by the pytest side. Prints one line per failure and ends with
exactly "N passed, M failed" (tests/device/test_camera.py checks N).
"""
import gc
import sys
from array import array

from sw.app import camera, camera_fast, camera_plain

ROWS = 24
COLS = 32
N = ROWS * COLS
FPS = 4
# 55x35 lens, 4 m pole, horizon at row 4 (docs/thermal-recordings.md)
RANGES = [None, None, None, None, 317.1, 105.1, 62.7, 44.6, 34.5, 28.1, 23.6, 20.4, 17.9, 15.9,
          14.3, 13.0, 11.9, 10.9, 10.1, 9.4, 8.8, 8.2, 7.8, 7.3]
GEO = {"row_range_m": RANGES, "hfov_deg": 55.0, "vfov_deg": 35.0, "sea_from_m": 40.0}
BASE = 1500  # 15.00 C

_seed = [12345]


def rnd():
    """Deterministic 0..1023 (LCG): the same frames on every run and port."""
    _seed[0] = (_seed[0] * 1103515245 + 12345) & 0x7FFFFFFF
    return (_seed[0] >> 16) & 1023


def noise():
    # sum of three uniforms: ~N(0, 0.28 K) like the MLX90640 at 4 Hz
    return (rnd() + rnd() + rnd() - 1536) * 28 // 512


class Scene:
    """Background plus rectangles; frame() draws one noisy frame into a reused buffer."""

    def __init__(self, base=BASE):
        self.base = base
        self.buf = array("h", bytes(2 * N))
        self.rects = []  # [x, y, w, h, contrast_centi]
        self.stuck = {}

    def frame(self):
        b = self.buf
        for i in range(N):
            b[i] = self.base + noise()
        for x, y, w, h, c in self.rects:
            for r in range(max(int(y), 0), min(int(y) + h, ROWS)):
                for col in range(max(int(x), 0), min(int(x) + w, COLS)):
                    b[r * COLS + col] += c
        for i, v in self.stuck.items():
            b[i] = v
        return b


def pipeline(fast=True, **kw):
    cfg = {"fps": FPS, "geometry": GEO}
    cfg.update(kw)
    return camera.Pipeline(cfg, fast=fast)


def run(pl, scene, frames, events=None, step=None):
    """Process `frames` frames; collect (frame, event tuple) in events; step(k) moves things."""
    for k in range(frames):
        if step is not None:
            step(k)
        n = pl.process(scene.frame())
        if events is not None:
            for j in range(n):
                events.append((pl.frame_no, pl.event(j)))
    return events


def learned(pl, scene, frames=40):
    run(pl, scene, frames)


# --- tests ---------------------------------------------------------------------------------


def test_background_adapts_to_a_slow_drift():
    scene = Scene()
    pl = pipeline()
    learned(pl, scene)
    ev = []

    def drift(k):
        scene.base = BASE + k * 3 // 4  # +3 K in 100 s: faster than any night cools
    run(pl, scene, 400, ev, drift)
    assert ev == [], ev
    i = 12 * COLS + 16
    mean_c = pl.mean[i] // 16 - 8192
    assert abs(mean_c - scene.base) < 60, (mean_c, scene.base)


def test_glitch_frame_is_skipped():
    scene = Scene()
    pl = pipeline()
    learned(pl, scene)
    skipped = pl.skipped
    scene.base += 600  # everything 6 K warmer for one frame: not a scene
    ev = run(pl, scene, 1, [])
    scene.base -= 600
    ev = run(pl, scene, 20, ev)
    assert ev == [], ev
    assert pl.skipped == skipped + 1, (pl.skipped, skipped)


def _walker(scene, y, x0, speed, contrast=400, w=2, h=5):
    rect = [x0, y, w, h, contrast]
    scene.rects.append(rect)

    def step(k):
        rect[0] = x0 + k * speed
    return rect, step


def test_warm_blob_is_tracked_with_new_update_end_and_a_stable_id():
    scene = Scene()
    pl = pipeline()
    learned(pl, scene)
    rect, step = _walker(scene, 8, 2.0, 0.25)  # rows 8-12: feet at ~18 m, 1.3 m/s
    ev = run(pl, scene, 100, [], step)
    scene.rects.remove(rect)
    ev = run(pl, scene, 20, ev)
    lives = [e[1][1] for e in ev]
    ids = {e[1][0] for e in ev}
    assert len(ids) == 1, ev
    assert lives[0] == 0 and lives[-1] == 2 and lives.count(0) == 1 and lives.count(2) == 1, lives
    assert lives.count(1) >= 3, lives  # updates while it walks
    new = ev[0][1]
    assert camera.KINDS[new[2]] == "person", new
    assert new[9] == 1, new  # count
    assert 0 < new[3] <= 100, new  # confidence
    assert new[5] <= 10 and new[5] + new[7] >= 11, new  # box rows cover the walker
    end_frame = ev[-1][0]
    assert 101 + 40 <= end_frame <= 101 + 40 + 3 * FPS, end_frame  # lost for end_after_s
    sent = [e[0] for e in ev if e[1][1] != 2]
    gaps = [sent[k + 1] - sent[k] for k in range(len(sent) - 1)]
    assert min(gaps) >= FPS, gaps  # update_min_s = 1 s


def test_event_ids_carry_the_boot_count():
    scene = Scene()
    pl = pipeline(id_base=7 << 16)
    learned(pl, scene)
    step = _walker(scene, 8, 4.0, 0.25)[1]
    ev = run(pl, scene, 40, [], step)
    assert ev and ev[0][1][0] == (7 << 16) | 1, ev


def test_gull_is_not_confirmed():
    scene = Scene()
    pl = pipeline()
    learned(pl, scene)
    # tiny, fast, short: 1x1 at +3 K crossing 3 px per frame for 10 frames
    rect, step = _walker(scene, 9, 1.0, 3.0, contrast=300, w=1, h=1)
    ev = run(pl, scene, 10, [], step)
    scene.rects.remove(rect)
    ev = run(pl, scene, 20, ev)
    assert ev == [], ev


def test_landed_gull_is_not_reported():
    scene = Scene()
    pl = pipeline()
    learned(pl, scene)
    rect, step = _walker(scene, 16, 2.0, 2.0, contrast=300, w=1, h=1)
    ev = run(pl, scene, 4, [], step)
    ev = run(pl, scene, 20, ev)  # stands 5 s
    scene.rects.remove(rect)
    ev = run(pl, scene, 20, ev)
    assert ev == [], ev


def test_static_hot_fire_is_suppressed():
    # Policy: a heat source far above any person (>= 14 K) that does not move is a fire or an
    # engine: tracked, never reported, and absorbed into the background over minutes.
    scene = Scene()
    pl = pipeline()
    learned(pl, scene)
    scene.rects.append([14, 14, 2, 2, 15000])  # lit after start-up: 150 K above the sand
    ev = run(pl, scene, 60, [])
    assert ev == [], ev
    tr = pl.tracker
    kinds = [tr._winner(t) for t in range(tr.slots()) if tr.T[t * tr.TF] != 0]
    assert 6 in kinds, kinds  # 6: heat, an internal class that is never sent


def test_fire_present_at_start_up_is_background():
    scene = Scene()
    scene.rects.append([14, 14, 2, 2, 15000])
    pl = pipeline()
    ev = run(pl, scene, 80, [])
    assert ev == [], ev


def test_dead_pixel_is_found_and_bridged():
    scene = Scene()
    i = 10 * COLS + 16
    scene.stuck[i] = -4000 + 7  # stuck just above the floor: only the repeat gives it away
    pl = pipeline()
    learned(pl, scene)
    assert pl.ndead == 1 and pl.dead[0] == i, (pl.ndead, list(pl.dead))
    step = _walker(scene, 8, 8.0, 0.25)[1]  # walks over column 16, rows 8-12
    ev = run(pl, scene, 90, [], step)
    ids = {e[1][0] for e in ev}
    assert len(ids) == 1, ev  # one person, not two halves


def test_power_up_frames_are_ignored():
    scene = Scene()
    pl = pipeline()
    garbage = array("h", bytes(2 * N))  # subpage 1 still zero, like the MLX90640's first frame
    assert pl.process(garbage) == 0 and pl.process(garbage) == 0
    learned(pl, scene)
    assert pl.skipped == 2, pl.skipped
    pl.power_up()
    pl.process(garbage)
    pl.process(garbage)
    ev = run(pl, scene, 40, [])
    assert ev == [] and pl.skipped == 4, (ev, pl.skipped)


def test_groups_merge_and_split_with_stable_ids():
    scene = Scene()
    pl = pipeline()
    learned(pl, scene)
    a = [3.0, 8, 1, 5, 400]  # 1 px at 18 m: 0.6 m wide
    b = [27.0, 8, 1, 5, 400]
    scene.rects += [a, b]

    def step(k):
        if k < 48:  # walk towards each other, meet at 14..16
            a[0] = 3.0 + k * 0.25
            b[0] = 27.0 - k * 0.25
        elif k >= 88:  # stand together 10 s, then walk apart
            a[0] = 15.0 - (k - 88) * 0.5
            b[0] = 15.0 + (k - 88) * 0.5
    ev = run(pl, scene, 110, [], step)
    news = [e for e in ev if e[1][1] == 0]
    assert len(news) == 2, ev
    ids = {e[1][0] for e in news}
    assert {e[1][0] for e in ev} == ids, ev  # no new id after the split
    groups = [e for e in ev if camera.KINDS[e[1][2]] == "group"]
    # count 2 while together (a blob bridging them as they part can read wider for a moment)
    assert groups and 2 in [e[1][9] for e in groups], ev
    last = {}
    for e in ev:
        last[e[1][0]] = e[1]
    assert all(camera.KINDS[e[2]] == "person" for e in last.values()), last


def test_pixel_shape_alone_without_geometry():
    scene = Scene()
    pl = camera.Pipeline({"fps": FPS})
    learned(pl, scene)
    step = _walker(scene, 10, 3.0, 0.25, w=2, h=6)[1]
    ev = run(pl, scene, 40, [], step)
    assert ev and camera.KINDS[ev[0][1][2]] == "person", ev


def test_thumbnail_on_new_only():
    scene = Scene()
    pl = pipeline(thumbnails=True)
    learned(pl, scene)
    step = _walker(scene, 8, 4.0, 0.25)[1]
    ev = run(pl, scene, 60, [], step)
    new = next(e[1] for e in ev if e[1][1] == 0)
    fmt, w, h, data = new[10]
    assert fmt in (1, 2) and 1 <= w <= 16 and 1 <= h <= 16, new[10]
    assert fmt == 1 or len(data) == w * h, (fmt, w, h, len(data))
    assert all(e[1][10] is None for e in ev if e[1][1] != 0)


def test_sensitivity_maps_to_thresholds():
    prev = None
    for s in range(0, 101, 10):
        t = camera.thresholds(s)
        if prev is not None:
            assert all(t[k] <= prev[k] for k in range(4)), (s, t, prev)
        assert t[0] < t[2] and t[1] < t[3], t  # weak below strong
        prev = t
    assert camera.thresholds(150) == camera.thresholds(100)
    pl = pipeline(sensitivity=90)
    assert pl.p[3] == camera.thresholds(90)[0]


def test_twin_kernels_are_identical():
    """Same frames through camera_fast and camera_plain: every buffer equal after every call."""
    scene = Scene()
    scene.stuck[5 * COLS + 7] = 2222
    scene.stuck[20 * COLS + 30] = -4000
    cfg = {"fps": FPS, "geometry": GEO}
    pls = [camera.Pipeline(cfg, fast=True), camera.Pipeline(cfg, fast=False)]
    assert pls[0].k is camera_fast and pls[1].k is camera_plain
    a = [2.0, 8, 2, 5, 500]
    b = [29.0, 14, 3, 3, -600]
    c = [10.0, 3, 1, 1, 250]
    scene.rects += [a, b, c]
    names = ("fastbuf", "mean", "var", "diff", "mask", "run", "prev", "labels", "feat", "p")
    checked = 0
    for k in range(260):
        a[0] = 2.0 + k * 0.3
        b[0] = 29.0 - k * 0.11
        c[0] = (k * 3) % 32
        if k == 150:
            scene.base += 900  # one glitch frame
        fr = scene.frame()
        if k == 150:
            scene.base -= 900
        outs = []
        for pl in pls:
            n = pl.process(fr)
            outs.append([pl.event(j) for j in range(n)])
        assert outs[0] == outs[1], (k, outs)
        for name in names:
            x = getattr(pls[0], name)
            y = getattr(pls[1], name)
            if name == "feat":
                x = x[:14 * 24]
                y = y[:14 * 24]
            assert list(x) == list(y), (k, name)
            checked += 1
    # the kernels one by one, on buffers made to hit every branch (clamps, invalid, cap)
    p0 = pls[0]
    for seed in (1, 2, 3):
        _seed[0] = seed
        bufs = []
        for k in (camera_fast, camera_plain):
            fr = array("h", [(-4000 if rnd() < 30 else 30000 if rnd() < 30 else
                              BASE + (rnd() - 512) * 2) for _ in range(N)])
            _seed[0] = seed  # same frame for both
            st = [array("i", p0.fastbuf), array("i", p0.mean), array("i", p0.var),
                  array("h", p0.diff), bytearray(p0.mask), bytearray(p0.run),
                  array("h", p0.prev), bytearray(N), bytearray(N), array("H", bytes(2 * N)),
                  array("i", bytes(4 * 14 * 24)), array("i", p0.p)]
            f, mu, v, d, m, r, pv, hold, lab, stk, feat, p = st
            for i in range(0, N, 7):
                hold[i] = 1
            p[2] = 1
            ret = [k.detect(fr, f, mu, v, d, m, r, pv, p)]
            ret.append(k.label(m, lab, stk, feat, d, p))
            ret.append(k.update(f, mu, v, m, hold, p))
            bufs.append((ret, [list(x) for x in st]))
        assert bufs[0] == bufs[1], seed
        checked += 1
    assert checked == 260 * len(names) + 3, checked


def test_no_allocation_per_frame_in_steady_state():
    for fast in (True, False):
        scene = Scene()
        pl = pipeline(fast=fast)
        learned(pl, scene)
        step = _walker(scene, 8, 4.0, 0.25)[1]
        run(pl, scene, 30, None, step)  # confirmed and tracked by now
        frames = []
        for k in range(12):  # drawn beforehand: drawing allocates, the pipeline must not
            step(30 + k)
            frames.append(array("h", scene.frame()))
        quiet = 0
        for fr in frames:
            gc.collect()
            gc.disable()
            try:
                before = gc.mem_alloc()
                n = pl.process(fr)
                grown = gc.mem_alloc() - before
            finally:
                gc.enable()
            # a frame that sends a message allocates its tuple; the others nothing at all
            if n == 0:
                quiet += 1
                assert grown == 0, (fast, grown)
        assert quiet >= 6, quiet


def main():
    tests = [(k, v) for k, v in sorted(globals().items()) if k.startswith("test_")]
    passed = failed = 0
    for name, fn in tests:
        _seed[0] = 12345
        try:
            fn()
            passed += 1
        except Exception as e:  # the runner reports every failure and goes on
            failed += 1
            print("FAIL", name, repr(e)[:600])
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


sys.exit(main())
