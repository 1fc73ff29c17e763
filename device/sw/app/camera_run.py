"""Run the camera pipeline over a recording file and print its DETECTION events as JSON lines.

    micropython device/camera_main.py RECORDING.raw [SETTINGS.json]

This is what `shorewatch detect` runs (it validates the recording and writes SETTINGS.json). The
.raw holds little-endian int16 centi-degree frames (docs/thermal-recordings.md); each frame is
read with readinto into one preallocated buffer, so memory does not grow with the recording.
Every MicroPython target we build for (x86-64, Xtensa, Cortex-M) is little-endian.

SETTINGS.json (all optional): the pipeline configuration (camera.py: rows, cols, fps,
sensitivity, geometry, connectivity, thumbnails, ...) plus
    invalid_frames  frame numbers to skip (power-up frames listed by the sidecar)
    plain           true: the plain-Python kernels instead of viper
    tracks          true: also print "T <frame> <event_id> <x> <y> <w> <h> <kind>" for every
                    reported track in every frame (the detection bench scores frames with it)
    stats           true: end with "STATS {...}": frames, time in process(), heap
    max_frames      stop after this many frames

Output on stdout, one line per event message:
    {"frame": 41, "t": 10.25, "event_id": 65537, "lifecycle": "new", "kind": "person",
     "box": [13, 12, 2, 7], "confidence": 73, "count": 1, "peak_cc": 1893}
plus "thumbnail": {"format", "w", "h", "data" (base64)} on `new` when thumbnails are on.
Errors: one line "camera: <problem>" on stderr, exit code 2.
"""
import gc
import json
import sys
import time
from array import array


def main(argv):
    if len(argv) < 2:
        print("usage: camera_main.py RECORDING.raw [SETTINGS.json]", file=sys.stderr)
        return 2
    cfg = {}
    if len(argv) > 2:
        try:
            with open(argv[2]) as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            print("camera: %s: %s" % (argv[2], e), file=sys.stderr)
            return 2
    from .camera import KINDS, LIFECYCLES, Pipeline

    pl = Pipeline(cfg, fast=not cfg.get("plain", False))
    n = pl.n
    invalid = set(cfg.get("invalid_frames", ()))
    tracks = cfg.get("tracks", False)
    fps = pl.fps
    limit = cfg.get("max_frames", -1)
    buf = array("h", bytes(2 * n))
    frame_bytes = 2 * n
    spent = 0
    worst = 0
    count = 0
    try:
        raw = open(argv[1], "rb")
    except OSError as e:
        print("camera: %s: %s" % (argv[1], e), file=sys.stderr)
        return 2
    gc.collect()
    with raw:
        while count != limit:
            got = raw.readinto(buf)
            if not got:
                break
            if got != frame_bytes:
                print("camera: %s: partial frame %d (%d of %d bytes)" % (
                    argv[1], count, got, frame_bytes), file=sys.stderr)
                return 2
            t0 = time.ticks_us()
            ne = pl.process(buf, count not in invalid)
            dt = time.ticks_diff(time.ticks_us(), t0)
            spent += dt
            worst = max(worst, dt)
            for k in range(ne):
                _print_event(pl.event(k), count, fps, KINDS, LIFECYCLES)
            if tracks:
                _print_tracks(pl, count)
            count += 1
    ne = pl.finish()
    for k in range(ne):
        _print_event(pl.event(k), max(count - 1, 0), fps, KINDS, LIFECYCLES)
    if cfg.get("stats", False):
        gc.collect()
        print("STATS " + json.dumps({
            "frames": count, "skipped": pl.skipped, "fast": pl.fast, "us_total": spent,
            "us_per_frame": spent // max(count, 1), "us_worst": worst,
            "heap_free": gc.mem_free(), "heap_used": gc.mem_alloc(), "dead_pixels": pl.ndead}))
    return 0


def _print_event(e, frame, fps, kinds, lifecycles):
    eid, life, kind, conf, x, y, w, h, peak, cnt, thumb = e
    line = ('{"frame": %d, "t": %s, "event_id": %d, "lifecycle": "%s", "kind": "%s", '
            '"box": [%d, %d, %d, %d], "confidence": %d, "count": %d, "peak_cc": %d' % (
                frame, _seconds(frame, fps), eid, lifecycles[life], kinds[kind], x, y, w, h,
                conf, cnt, peak))
    if thumb is not None:
        import binascii

        fmt, tw, th, data = thumb
        line += ', "thumbnail": {"format": "%s", "w": %d, "h": %d, "data": "%s"}' % (
            "deflate" if fmt == 1 else "raw", tw, th,
            binascii.b2a_base64(data).decode().strip())
    print(line + "}")


def _print_tracks(pl, frame):
    tr = pl.tracker
    for t in range(tr.slots()):
        r = tr.reported(t)
        if r is not None:
            print("T %d %d %d %d %d %d %d" % ((frame,) + r))


def _seconds(frame, fps):
    ms = int(frame * 1000 / fps + 0.5)
    return "%d.%03d" % (ms // 1000, ms % 1000)
