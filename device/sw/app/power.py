"""Duty-cycle policy of the solar sensor node: pure functions of the battery, no I/O, no clock.

The same file runs on the node (MicroPython) and in bench/energy.py (CPython), which imports
it from here: the bench measures the firmware's policy, not a copy. The figures behind every
number are in docs/energy.md.

    mode = next_mode(mode, soc_pct(battery_mv))     once per telemetry wake
    telemetry_s(mode)      seconds until the next TELEMETRY
    interval_s(mode, configured_s)   the same with the configured report_interval_s
    radar_ms(mode)         radar confirmation window after a PIR trigger
    deliver_now(mode, stored, link_ok)   wake the radio for stored events now, or let them
                                         ride along with the next TELEMETRY
"""
try:
    from micropython import const
except ImportError:  # CPython: bench/energy.py and the host tests
    def const(x):  # type: ignore[misc]  # the stub's generic signature, same behaviour
        return x

NORMAL = const(0)
SAVING = const(1)
RECOVERY = const(2)
MODES = ("normal", "saving", "recovery")

# Hysteresis, % state of charge: enter below the first value, leave at or above the second.
# The estimate moves by a few % with load, charge current and temperature; without the gap a
# node sitting at a threshold would change mode on every wake.
_SAVING_IN = const(30)
_SAVING_OUT = const(40)
_RECOVERY_IN = const(10)  # ~3.55 V at rest: brown-out (3.45 V) is still ~5 % of charge away
_RECOVERY_OUT = const(15)

# Per mode (NORMAL, SAVING, RECOVERY). Telemetry never waits more than 15 min, the fleet's
# liveness promise, even in recovery: one report is ~0.4 J, 38 J a day at 15 min.
TELEMETRY_S = (300, 600, 900)
# The radar draws ~0.4 W: its window (after a ~1 s warm-up) is the largest cost of an event.
RADAR_MS = (2000, 1000, 500)
# Stored events that justify a radio wake of their own; fewer ride along with the next
# TELEMETRY (at most TELEMETRY_S later), saving a WiFi connection (~0.4 J) each.
FLUSH_AT = (1, 4, 8)
# Events kept until the gateway has them: 16 bytes each packed, 1 KB in RTC memory. Sized
# for a gateway outage of ~8 h at the busiest daytime rate (docs/energy.md).
STORE_MAX = const(64)

# Open-circuit voltage of an NMC 18650 at rest and ~20 C: mV, % state of charge pairs, rising.
# Typical of Samsung/LG/Panasonic cell datasheets; a cold cell reads a little low, which only
# makes the policy more careful. One flat tuple of small ints: a tuple per pair would cost
# ~1 KB more heap on the unix port.
OCV = (3000, 0, 3300, 2, 3450, 5, 3550, 10, 3620, 15, 3680, 20, 3730, 30,
       3770, 40, 3800, 50, 3850, 60, 3920, 70, 3990, 80, 4080, 90, 4200, 100)


def soc_pct(mv):
    """State of charge 0..100 from the battery voltage (integer interpolation in OCV).
    An unreadable battery (-32768) reads as empty: the careful side."""
    if mv <= OCV[0]:
        return 0
    for i in range(2, len(OCV), 2):
        if mv <= OCV[i]:
            lo_mv = OCV[i - 2]
            lo_pct = OCV[i - 1]
            return lo_pct + (mv - lo_mv) * (OCV[i + 1] - lo_pct) // (OCV[i] - lo_mv)
    return 100


def next_mode(mode, soc):
    """The mode for this state of charge, coming from `mode` (hysteresis)."""
    if soc < _RECOVERY_IN or (mode == RECOVERY and soc < _RECOVERY_OUT):
        return RECOVERY
    if soc < _SAVING_IN or (mode != NORMAL and soc < _SAVING_OUT):
        return SAVING
    return NORMAL


def telemetry_s(mode):
    return TELEMETRY_S[mode]


def interval_s(mode, configured_s):
    """Seconds until the next TELEMETRY: the configured interval in normal mode, at least the
    mode's in saving and recovery, never more than the liveness promise (TELEMETRY_S[-1])."""
    if mode != NORMAL and configured_s < TELEMETRY_S[mode]:
        configured_s = TELEMETRY_S[mode]
    return min(configured_s, TELEMETRY_S[RECOVERY])


def radar_ms(mode):
    return RADAR_MS[mode]


def deliver_now(mode, stored, link_ok):
    """True: wake the radio now for `stored` events. After a failed delivery (link_ok False)
    only the next TELEMETRY tries again, so an outage costs no extra connections."""
    return link_ok and stored >= FLUSH_AT[mode]
