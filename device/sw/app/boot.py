"""Boot step 1: read and validate identity.json / config.json, count the boot.

main.py unloads this module once the files are read: on a 64 KB heap the validation code would
otherwise hold several KB for nothing.
"""
import sys

from .. import store


class BootError(Exception):
    """Bad provisioning; the message is one line naming the file and the field."""


# (name, lo, hi, default) of the settings a CONFIG_PUSH may change and config.json may omit;
# report_interval_s is pushable too, but required in config.json.
_PUSHABLE = (
    ("detection_sensitivity", 0, 100, 50),
    ("pir_holdoff_s", 0, 0xFFFF, 0),
    ("battery_low_mv", 0, 0xFFFF, 3300),
    ("radar_window_ms", 0, 0xFFFF, 2000),  # the policy's normal-mode window (power.py)
)
_PUSHED = ("report_interval_s", "config_version", "detection_sensitivity", "pir_holdoff_s",
           "battery_low_mv", "radar_window_ms")  # what pushed.json may hold


def load(argv):
    """(flash, identity, config) for the flash directory argv[1] ("" = current directory, as
    on a board), or exit code 2 after a one-line reason on stderr. The boot is counted later,
    by the node: a wake from deep sleep that kept its state is not a boot."""
    flash = argv[1] if len(argv) > 1 else ""
    try:
        ident = load_identity(store.path(flash, "identity.json"))
        fname = store.path(flash, "config.json")
        cfg = load_config(fname, store.path(flash, "pushed.json"))
        if ident["hw_kind"] == "thermal_camera":
            from . import camera_cfg  # unloaded with this module

            camera_cfg.check(cfg, fname + ": ")
        return flash, ident, cfg
    except (BootError, OSError) as e:
        print("shorewatch: %s" % e, file=sys.stderr)
        return 2


def unload():
    """Forget this module so the garbage collector can reclaim its code."""
    import sw.app

    for name in ("boot", "camera_cfg"):
        sys.modules.pop("sw.app." + name, None)
        if hasattr(sw.app, name):
            delattr(sw.app, name)


def load_identity(fname):
    """Provisioned identity; master_key comes back as its four working keys (derive())."""
    import binascii

    doc = _read_json(fname)
    w = fname + ": "
    _int(doc, "device_id", 1, 0xFFFFFFFE, w)  # 0 and 0xFFFFFFFF are reserved
    key = doc.get("master_key")
    if not isinstance(key, str) or len(key) != 64:
        raise BootError(w + "master_key must be 64 hex characters")
    try:
        master = binascii.unhexlify(key)
    except ValueError:
        raise BootError(w + "master_key is not hexadecimal")
    # the working keys now, while the heap is empty (derivation makes garbage); the master key
    # is not kept in RAM after this
    from ..crypto import derive

    doc["master_key"] = derive(master)
    tag = doc.get("tag_len")
    if not isinstance(tag, int) or isinstance(tag, bool) or tag not in (4, 8):
        raise BootError(w + "tag_len must be 8 (std) or 4 (lora)")
    if doc.get("hw_kind") not in ("sensor_node", "thermal_camera"):
        raise BootError(w + "hw_kind must be \"sensor_node\" or \"thermal_camera\"")
    gw = _obj(doc, "gateway", w)
    host = gw.get("host")
    if not isinstance(host, str) or not host:
        raise BootError(w + "gateway.host must be a non-empty string")
    _int(gw, "port", 1, 0xFFFF, w + "gateway.")
    board = doc.setdefault("board", "virtual")
    # the name becomes a module path: letters, digits and "_" only, no dots or slashes
    if not isinstance(board, str) or not board or \
            not all(c.isalpha() or c.isdigit() or c == "_" for c in board):
        raise BootError(w + "board must be a board module name like \"virtual\"")
    return doc


def load_config(fname, pushed=None):
    """Device configuration with every default filled in, and the settings of the last
    CONFIG_PUSH (pushed.json, sw/app/config_push.py) over it. config.json stays as it was
    provisioned; a pushed.json that does not pass the checks is ignored with a warning."""
    from .. import log

    doc = _read_json(fname)
    w = fname + ": "
    _num(doc, "report_interval_s", 0.01, 0xFFFF, None, w)  # required: no silent default
    if doc.get("run_for_s") is not None:
        _num(doc, "run_for_s", 0.01, 1e7, None, w)
    _num(doc, "update_interval_s", 0, 0xFFFF, 0, w)
    _pushable(doc, w)
    if pushed is not None and _exists(pushed):  # none pushed yet is the usual case
        try:
            over = _read_json(pushed)
            trial = dict(doc)
            for name in _PUSHED:
                if name in over:
                    trial[name] = over[name]
            _pushable(trial, pushed + ": ")
            doc = trial
        except BootError as e:
            print("W boot: %s: ignored" % e)
    if doc.setdefault("log_level", "info") not in log.NAMES:
        raise BootError(w + "log_level must be one of " + ", ".join(log.NAMES))
    pir = _obj(doc, "pir", w, {})
    _int(pir, "seed", 0, 0xFFFFFFFF, w + "pir.", 1)
    _num(pir, "mean_interval_s", 0.01, 1e6, 600, w + "pir.")
    _num(pir, "duration_s", 0, 1e5, 5, w + "pir.")
    bat = _obj(doc, "battery", w, {})
    _int(bat, "initial_mv", 2800, 4500, w + "battery.", 3950)
    sim = _obj(doc, "sim", w, {})
    if sim.setdefault("warp", False) not in (True, False):
        raise BootError(w + "sim.warp must be true or false")
    _int(sim, "start_s", 0, 0xFFFFFFFF, w + "sim.", 0)
    _num(sim, "panel", 0, 1, 1.0, w + "sim.")
    out = sim.setdefault("outages", [])
    if not isinstance(out, list) or len(out) > 32 or not all(
            isinstance(o, list) and len(o) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in o)
            for o in out):
        raise BootError(w + "sim.outages must be a list of at most 32 [from_s, to_s] pairs")
    link = _obj(doc, "link", w, {})
    _num(link, "ack_timeout_s", 0.05, 600, 2, w + "link.")
    _int(link, "max_retries", 0, 10, w + "link.", 3)
    return doc


def _exists(fname):
    import os

    try:
        os.stat(fname)
        return True
    except OSError:
        return False


def _pushable(doc, w):
    """Check (and default) the settings a CONFIG_PUSH may change."""
    _num(doc, "report_interval_s", 0.01, 0xFFFF, None, w)
    _int(doc, "config_version", 0, 0xFFFF, w, 0)
    for name, lo, hi, default in _PUSHABLE:
        _int(doc, name, lo, hi, w, default)


def _read_json(fname):
    import json

    try:
        with open(fname) as f:
            doc = json.load(f)
    except OSError:
        raise BootError(fname + ": cannot read (missing?)")
    except ValueError:
        raise BootError(fname + ": not valid JSON")
    if not isinstance(doc, dict):
        raise BootError(fname + ": not a JSON object")
    return doc


def _obj(doc, name, where, default=None):
    v = doc.get(name)
    if v is None and default is not None:
        v = doc[name] = default
    if not isinstance(v, dict):
        raise BootError("%s%s must be an object" % (where, name))
    return v


def _int(doc, name, lo, hi, where, default=None):
    v = doc.get(name)
    if v is None and default is not None:
        doc[name] = default
        return
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise BootError("%s%s must be an integer in %d..%d" % (where, name, lo, hi))


def _num(doc, name, lo, hi, default, where):
    v = doc.get(name)
    if v is None and default is not None:
        doc[name] = default
        return
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi:
        raise BootError("%s%s must be a number in %s..%s" % (where, name, lo, hi))
