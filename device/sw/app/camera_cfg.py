"""Boot step 1, camera part: validate config.json's "camera" and "thermal" sections.

Imported by boot.py for a thermal_camera identity only and unloaded with it, so a sensor node
never holds this code.
"""
from micropython import const

from .boot import BootError, _int, _num, _obj

# full frames per second the MLX90640 delivers in chess mode: half its refresh rates
FPS = (0.25, 0.5, 1, 2, 4, 8, 16, 32)
_KINDS = ("unknown", "person", "group", "boat", "vehicle", "animal")
# pipeline tuning (device/README.md, "Thermal camera"): seconds, metres or frames, all >= 0
_TUNING = ("person_max_m", "learn_s", "background_s", "variance_s", "powerup_frames",
           "confirm_s", "end_after_s", "update_min_s", "update_max_s", "tentative_max_s",
           "tentative_miss_s", "follow_max_s", "hold_still_max_s", "still_keeps_kind_s")
_ROWS = const(24)  # the MLX90640's frame; the pipeline is built for it


def check(cfg, where):
    """Fill in the defaults of cfg["camera"] (and cfg["thermal"] when present); BootError
    naming the field otherwise."""
    w = where + "camera."
    cam = _obj(cfg, "camera", where, {})
    for key in cam:
        if key not in ("fps", "thumbnails", "geometry", "report", "connectivity") and \
                key not in _TUNING:
            raise BootError(w + key + ": unknown key")
    fps = cam.setdefault("fps", 4)
    if isinstance(fps, bool) or fps not in FPS:
        raise BootError(w + "fps must be one of 0.25, 0.5, 1, 2, 4, 8, 16, 32 "
                        "(half an MLX90640 refresh rate)")
    if not isinstance(cam.setdefault("thumbnails", False), bool):
        raise BootError(w + "thumbnails must be true or false")
    if cam.setdefault("connectivity", 8) not in (4, 8) or isinstance(cam["connectivity"], bool):
        raise BootError(w + "connectivity must be 4 or 8")
    report = cam.setdefault("report", ["person", "group", "boat", "vehicle"])
    if not isinstance(report, list) or not all(k in _KINDS for k in report):
        raise BootError(w + "report must list kinds among " + ", ".join(_KINDS))
    for key in _TUNING:
        if key in cam:
            _num(cam, key, 0, 86400, None, w)
    if "geometry" in cam:
        _geometry(_obj(cam, "geometry", w), w + "geometry.")
    if "thermal" in cfg:
        t = _obj(cfg, "thermal", where)
        rec = t.get("recording")
        if not isinstance(rec, str) or not rec:
            raise BootError(where + "thermal.recording must name a recording file (.raw)")
        _num(t, "speed", 0.01, 100000, 1, where + "thermal.")
        if not isinstance(t.setdefault("loop", True), bool):
            raise BootError(where + "thermal.loop must be true or false")
        _int(t, "loop_from", 0, 10000000, where + "thermal.", 0)
        _int(t, "frames", 0, 100000000, where + "thermal.", 0)


def _geometry(geo, w):
    rng = geo.get("row_range_m")
    if not isinstance(rng, list) or len(rng) != _ROWS or not all(
            r is None or (isinstance(r, (int, float)) and not isinstance(r, bool) and r > 0)
            for r in rng):
        raise BootError(w + "row_range_m must list 24 distances in metres (null above the "
                        "horizon)")
    for key in geo:
        if key not in ("row_range_m", "hfov_deg", "vfov_deg", "sea_from_m"):
            raise BootError(w + key + ": unknown key")
    if "hfov_deg" in geo:
        _num(geo, "hfov_deg", 1, 179, None, w)
    if "vfov_deg" in geo:
        _num(geo, "vfov_deg", 1, 179, None, w)
    if "sea_from_m" in geo:
        _num(geo, "sea_from_m", 0.5, 10000, None, w)
