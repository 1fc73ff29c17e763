"""CONFIG_PUSH: apply the known keys, persist them, answer with CONFIG_ACK. Part of the node
(sw/app/node.py), in a module of its own to keep that one short; main.py loads it at boot
(loading it when a push arrives would need blocks the heap may no longer have in one piece).

Pushed settings go to pushed.json, which boot reads over config.json (sw/app/boot.py):
config.json stays as provisioned, a push writes a few bytes (less flash wear), and it needs no
copy of the whole configuration in RAM."""
from time import ticks_add, ticks_diff

from .. import log, proto, store

# key -> (config name, value bytes, lo, hi), spec section 5 (values little-endian). Key 6
# (thermal_fps_x10) means nothing on a sensor node and 7/8 (WiFi) need a WiFi board: those are
# answered as not applied, like unknown keys.
_KEYS = {
    1: ("report_interval_s", 2, 1, 0xFFFF),
    2: ("detection_sensitivity", 1, 0, 100),
    3: ("pir_holdoff_s", 2, 0, 0xFFFF),
    4: ("battery_low_mv", 2, 0, 0xFFFF),
    5: ("radar_window_ms", 2, 0, 0xFFFF),
}

APPLIED = 0
REJECTED = 1
PARTIAL = 2


def handle(node, version, entries):
    """Apply a push to the node (settings, PIR hold-off, radar window, telemetry due) and
    answer it."""
    new, status, bad = apply(store.path(node.flash, "pushed.json"), version, entries)
    if new is not None:
        node._configure(new)
    node._drivers()
    log.info("app", "config %d: status %d, bad key %d", version, status, bad)
    node._send(proto.CONFIG_ACK, proto.pack_config_ack(version, status, bad))
    # a shorter interval takes effect now, not after the old (maybe hour-long) one
    due = ticks_add(node.now(), node._interval_ms())
    if node._tm_due is None or ticks_diff(due, node._tm_due) < 0:
        node._tm_due = due


def apply(fname, version, entries):
    """-> (the settings changed, by name, or None; status; bad_key).

    Each entry stands alone: good keys are applied even when another is bad (partial), bad_key
    names the first key not applied. Nothing is applied unless it was persisted first, with
    the settings pushed before (fname: pushed.json).
    """
    import json

    applied = {}
    bad = None
    for key, value in entries:
        spec = _KEYS.get(key)
        v = -1
        if spec is not None and len(value) == spec[1]:
            v = value[0] if spec[1] == 1 else value[0] | (value[1] << 8)
        if spec is not None and spec[2] <= v <= spec[3]:
            applied[spec[0]] = v
        elif bad is None:
            bad = key
    if bad is not None and not applied:
        return None, REJECTED, bad
    applied["config_version"] = version
    doc = {}
    try:
        with open(fname) as f:
            doc = json.load(f)  # the settings pushed before: a few keys
    except (OSError, ValueError):
        pass  # none yet (or unreadable, which boot ignores too): this push starts anew
    doc.update(applied)
    try:
        store.write_atomic(fname, doc, json.dump)
    except OSError as e:
        log.error("config", "version %d not saved: %s", version, e)
        return None, REJECTED, entries[0][0] if entries else 0
    return applied, (APPLIED if bad is None else PARTIAL), bad or 0
