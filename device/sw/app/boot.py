"""Boot step 1: read and validate identity.json / config.json, count the boot.

main.py unloads this module once the files are read: on a 64 KB heap the validation code would
otherwise hold several KB for nothing.
"""
import sys

from .. import store


class BootError(Exception):
    """Bad provisioning; the message is one line naming the file and the field."""


# (name, lo, hi, default) of the settings a CONFIG_PUSH may change and config.json may omit;
# report_interval_s is pushable too, but required.
_PUSHABLE = (
    ("detection_sensitivity", 0, 100, 50),
    ("pir_holdoff_s", 0, 0xFFFF, 0),
    ("battery_low_mv", 0, 0xFFFF, 3300),
    ("radar_window_ms", 0, 0xFFFF, 500),
)


def load(argv):
    """(flash, identity, config, boot_count) for the flash directory argv[1] ("" = current
    directory, as on a board), or exit code 2 after a one-line reason on stderr."""
    flash = argv[1] if len(argv) > 1 else ""
    try:
        ident = load_identity(store.path(flash, "identity.json"))
        fname = store.path(flash, "config.json")
        cfg = load_config(fname)
        if ident["hw_kind"] == "thermal_camera":
            from . import camera_cfg  # unloaded with this module

            camera_cfg.check(cfg, fname + ": ")
        return flash, ident, cfg, _bump(store.path(flash, "boot_count"))
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
    """Provisioned identity; master_key comes back as 32 bytes."""
    import binascii

    doc = _read_json(fname)
    w = fname + ": "
    _int(doc, "device_id", 1, 0xFFFFFFFE, w)  # 0 and 0xFFFFFFFF are reserved
    key = doc.get("master_key")
    if not isinstance(key, str) or len(key) != 64:
        raise BootError(w + "master_key must be 64 hex characters")
    try:
        doc["master_key"] = binascii.unhexlify(key)
    except ValueError:
        raise BootError(w + "master_key is not hexadecimal")
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


def load_config(fname):
    """Device configuration with every default filled in (the dict is written back as is)."""
    from .. import log

    doc = _read_json(fname)
    w = fname + ": "
    _num(doc, "report_interval_s", 0.01, 0xFFFF, None, w)  # required: no silent default
    if doc.get("run_for_s") is not None:
        _num(doc, "run_for_s", 0.01, 1e7, None, w)
    _num(doc, "update_interval_s", 0, 0xFFFF, 0, w)
    _int(doc, "config_version", 0, 0xFFFF, w, 0)
    for name, lo, hi, default in _PUSHABLE:
        _int(doc, name, lo, hi, w, default)
    if doc.setdefault("log_level", "info") not in log.NAMES:
        raise BootError(w + "log_level must be one of " + ", ".join(log.NAMES))
    pir = _obj(doc, "pir", w, {})
    _int(pir, "seed", 0, 0xFFFFFFFF, w + "pir.", 1)
    _num(pir, "mean_interval_s", 0.01, 1e6, 600, w + "pir.")
    _num(pir, "duration_s", 0, 1e5, 5, w + "pir.")
    bat = _obj(doc, "battery", w, {})
    _int(bat, "initial_mv", 2800, 4500, w + "battery.", 3950)
    _num(bat, "discharge_mv_per_h", 0, 1000, 2, w + "battery.")
    link = _obj(doc, "link", w, {})
    _num(link, "ack_timeout_s", 0.05, 600, 2, w + "link.")
    _int(link, "max_retries", 0, 10, w + "link.", 3)
    return doc


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


def _bump(fname):
    """Boot count + 1 (u16, wraps), persisted before anything is sent: it is part of every
    event_id of this boot, so a reused value would collide with an earlier boot's events."""
    n = 0
    try:
        with open(fname) as f:
            n = int(f.read())
    except OSError:
        pass  # first boot
    except ValueError:
        print("W boot: %s unreadable, boot count restarts" % fname)
    n = (n + 1) & 0xFFFF
    store.write_atomic(fname, str(n))
    return n


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
