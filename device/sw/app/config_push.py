"""CONFIG_PUSH: apply the known keys, persist config.json. Rare, so the node imports this
module only when a push arrives and forgets it afterwards (its code then costs no heap)."""
from .. import log, store

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


def apply(cfg, version, entries, fname):
    """-> (config now in force, status, bad_key).

    Each entry stands alone: good keys are applied even when another is bad (partial), bad_key
    names the first key not applied. Nothing is applied unless it was persisted first.
    """
    new = dict(cfg)
    applied = 0
    bad = None
    for key, value in entries:
        spec = _KEYS.get(key)
        v = -1
        if spec is not None and len(value) == spec[1]:
            v = value[0] if spec[1] == 1 else value[0] | (value[1] << 8)
        if spec is not None and spec[2] <= v <= spec[3]:
            new[spec[0]] = v
            applied += 1
        elif bad is None:
            bad = key
    if bad is not None and not applied:
        return cfg, REJECTED, bad
    new["config_version"] = version
    try:
        store.write_json(fname, new)
    except OSError as e:
        log.error("config", "version %d not saved: %s", version, e)
        return cfg, REJECTED, entries[0][0]
    return new, (APPLIED if bad is None else PARTIAL), bad or 0
