"""The 18650 cell of a solar sensor node behind its charger, and what the node's operations cost.

One model, run in two places: the virtual board's battery ADC and power monitor report from it
under MicroPython (sw/hal/virtual.py, hal/warp.py), and bench/energy.py imports this file under
CPython for its December simulation. The sun and the weather that charge it come from
shorewatch/sim/solar.py (host side): the virtual board replays them from an environment
recording. Every figure is listed with its source in docs/energy.md.

    c = Cell(soc, temp_c)              state of charge 0..1 at the start
    p_in_mw = c.step(poa, temp_c, dt_s, used_mj)
    c.soc(temp_c), c.reading_mv(temp_c, p_in_mw, noise_mv)

Energy is kept in millijoules as an int: on the unix port every float is an object on the
heap, and the virtual board steps this once a simulated minute.
"""
from ..app.power import OCV, soc_pct

# --- charge path and cell -------------------------------------------------------------------
PANEL_W = 1.0  # at 1000 W/m2
# panel derating 0.85 (salt film, low light, wiring) x linear charger 0.70 (~6 V panel into
# a 3.7 V cell): W into the cell per W/m2 on a clean panel
PANEL_TO_CELL = PANEL_W * 0.85 * 0.70 / 1000
COULOMBIC = 0.95  # charge that comes back out of the cell
CELL_J = 3.4 * 3.6 * 3600  # 3.4 Ah x 3.6 V nominal = 44 kJ
COLD_LOSS_PER_K = 0.006  # usable capacity lost per K below 20 degC (off the bottom)
SELF_DISCHARGE = 0.001 / 86400  # per second: ~3 % a month
R_INT = 0.15  # ohm, a cold cell: raises the reading while charging
BROWNOUT_MV = 3450  # at rest: WiFi bursts then pull the 3.3 V rail below the ESP32's limit
RESTART_MV = 3550  # the board comes back once the cell has recovered this far
BROWNOUT_PCT = soc_pct(BROWNOUT_MV)  # 5: the brown-out as a state of charge at rest

# --- per-operation energy -------------------------------------------------------------------
# asleep with the PIR watching: ESP32 deep sleep 20 uA (8-20 on good boards: the high end),
# PIR 65 uA, INA219 powered down 6 uA, at the cell's mean voltage over a discharge (3.7 V)
IDLE_W = (20e-6 + 65e-6 + 6e-6) * 3.7
REPORT_J = 0.4  # wake + WiFi with static IP + one exchange + sleep
EXTRA_EVENT_J = 0.01  # one more datagram while the radio is up
WAKE_J = 0.05  # PIR wake to MicroPython and back, no radio (~0.5 s at ~0.1 W)
ESP_ACTIVE_W = 0.10  # awake, radio idle or off (waiting on the radar, or on an answer)
RADAR_W = 0.4  # LD2410 powered
RADAR_WARMUP_S = 1.0  # power-up to trusted reports (to be measured)


def ocv_mv(soc):
    """Open-circuit voltage at a usable state of charge 0..1 (the firmware's own table)."""
    pct = max(0.0, min(100.0, soc * 100))
    for i in range(3, len(OCV), 2):
        if pct <= OCV[i]:
            lo_mv = OCV[i - 3]
            lo_pct = OCV[i - 2]
            return lo_mv + (OCV[i - 1] - lo_mv) * (pct - lo_pct) / (OCV[i] - lo_pct)
    return float(OCV[-2])


class Cell:
    """One 18650 behind a linear charger; the cold takes its share of the capacity off the
    bottom (a cold cell reaches its cut-off sooner)."""

    def __init__(self, soc, temp_c=20.0, panel=1.0):
        f = min(1.0, 1 - COLD_LOSS_PER_K * (20 - temp_c))
        self.energy_mj = int(CELL_J * 1000 * (1 - f + f * soc))
        self.per_wm2 = PANEL_TO_CELL * panel  # panel < 1: sand or salt on it

    def soc(self, temp_c):
        """Usable state of charge 0..1 at this temperature."""
        f = min(1.0, 1 - COLD_LOSS_PER_K * (20 - temp_c))
        return max(0.0, (self.energy_mj / (CELL_J * 1000) - 1 + f) / f)

    def step(self, poa, temp_c, dt_s, used_mj):
        """dt_s seconds of sun at poa W/m2 with used_mj spent; the charging power in mW. The
        charger's NTC stops it below 0 degC (lithium plating); a full cell takes nothing."""
        e = self.energy_mj
        full = CELL_J * 1000
        p_in = poa * self.per_wm2 if temp_c >= 0 and e < full else 0.0
        e = min(full, e + p_in * dt_s * COULOMBIC * 1000)
        self.energy_mj = int(e - e * SELF_DISCHARGE * dt_s) - used_mj
        return int(p_in * 1000)

    def reading_mv(self, temp_c, p_in_mw, noise_mv):
        """What the battery ADC reads: rest voltage, lifted by I x R while charging."""
        rest = ocv_mv(self.soc(temp_c))
        return int(rest + p_in_mw / rest * R_INT * 1000 + noise_mv)
