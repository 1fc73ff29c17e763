"""The duty-cycle policy (device/sw/app/power.py) under MicroPython: the interpreter the node
runs it in (bench/energy.py runs the same file under CPython).

MicroPython script: micropython tests/device/power_runner.py [repo_root]
Last line exactly "N passed, M failed".
"""
import sys


from checks import ROOT, check, counts  # noqa: E402, F401 - device/ on sys.path

from sw.app import power  # noqa: E402
from sw.app.power import NORMAL, RECOVERY, SAVING  # noqa: E402


# --- state of charge from the battery voltage ---------------------------------------------
SOC = ((-32768, 0), (0, 0), (2999, 0), (3000, 0), (3300, 2), (3450, 5), (3500, 7), (3550, 10),
       (3800, 50), (3825, 55), (4200, 100), (4350, 100))
for mv, pct in SOC:
    got = power.soc_pct(mv)
    check(f"soc_pct({mv})", got == pct, f"{got} != {pct}")
prev = -1
monotonic = True
for mv in range(2800, 4400):
    s = power.soc_pct(mv)
    monotonic = monotonic and prev <= s and isinstance(s, int) and 0 <= s <= 100
    prev = s
check("soc_pct monotonic int 0..100", monotonic)

# --- modes with hysteresis ----------------------------------------------------------------
MODES = (
    (NORMAL, 50, NORMAL), (NORMAL, 30, NORMAL), (NORMAL, 29, SAVING), (NORMAL, 9, RECOVERY),
    (SAVING, 39, SAVING), (SAVING, 40, NORMAL), (SAVING, 10, SAVING), (SAVING, 9, RECOVERY),
    (RECOVERY, 14, RECOVERY), (RECOVERY, 15, SAVING), (RECOVERY, 40, NORMAL),
    (RECOVERY, 0, RECOVERY),
)
for mode, soc, want in MODES:
    got = power.next_mode(mode, soc)
    check(f"next_mode({power.MODES[mode]}, {soc})", got == want,
          f"{power.MODES[got]}")


def sweep(socs):
    """Mode changes while the state of charge walks through socs: [(soc, new mode)]."""
    mode = NORMAL
    changes = []
    for s in socs:
        m = power.next_mode(mode, s)
        if m != mode:
            changes.append((s, m))
        mode = m
    return changes


down = sweep(range(100, -1, -1))
check("discharging: saving at 29, recovery at 9", down == [(29, SAVING), (9, RECOVERY)],
      repr(down))
up = sweep(list(range(100, -1, -1)) + list(range(101)))[2:]
check("charging: saving at 15, normal at 40", up == [(15, SAVING), (40, NORMAL)], repr(up))
# a reading that wobbles by +-2 % around each threshold changes the mode at most once after
# the first reading (which may move a node from any mode to where it belongs)
for t in (10, 15, 30, 40):
    wobble = [t + (2 if i % 2 else -2) for i in range(50)]
    for start in (NORMAL, SAVING, RECOVERY):
        mode = power.next_mode(start, wobble[0])
        changes = 0
        for s in wobble:
            m = power.next_mode(mode, s)
            changes += m != mode
            mode = m
        if changes > 1:
            check(f"no flapping at {t} from {power.MODES[start]}", False, repr(changes))
            break
    else:
        check(f"no flapping at {t}", True)

# --- what each mode costs -----------------------------------------------------------------
check("telemetry at least every 15 min",
      all(power.telemetry_s(m) <= 900 for m in (NORMAL, SAVING, RECOVERY)))
check("telemetry slows down as the battery drains",
      power.telemetry_s(NORMAL) < power.telemetry_s(SAVING) < power.telemetry_s(RECOVERY))
# the interval the node uses: configured in normal mode, at least the mode's, 15 min at most
INTERVALS = ((NORMAL, 300, 300), (NORMAL, 60, 60), (NORMAL, 0.5, 0.5), (NORMAL, 3600, 900),
             (SAVING, 60, 600), (SAVING, 700, 700), (RECOVERY, 60, 900), (RECOVERY, 3600, 900))
for mode, configured, want in INTERVALS:
    got = power.interval_s(mode, configured)
    check(f"interval_s({power.MODES[mode]}, {configured})", got == want, repr(got))
check("radar window shrinks", power.radar_ms(NORMAL) > power.radar_ms(SAVING)
      > power.radar_ms(RECOVERY) > 0)
check("normal delivers at once", power.deliver_now(NORMAL, 1, True))
check("saving waits for company", not power.deliver_now(SAVING, 3, True)
      and power.deliver_now(SAVING, 4, True))
check("recovery batches", not power.deliver_now(RECOVERY, 7, True)
      and power.deliver_now(RECOVERY, 8, True))
check("no extra wake while the link is down", not power.deliver_now(NORMAL, 50, False))
check("store holds a flush of every mode", 2 * max(power.FLUSH_AT) <= power.STORE_MAX)
check("OCV: pairs of rising mV and %", len(power.OCV) % 2 == 0
      and all(power.OCV[i] < power.OCV[i + 2] and power.OCV[i + 1] < power.OCV[i + 3]
              for i in range(0, len(power.OCV) - 2, 2)))

print(f"{counts[0]} passed, {counts[1]} failed")
sys.exit(1 if counts[1] else 0)
