"""Energy budget of a solar sensor node through December at Calais, against baselines.

    python bench/energy.py [--seed N] [--days N] [--start-soc PCT]

Minute by minute from 1 December, 00:00 UTC, at 50.95 N: sun position and clear-sky
irradiance on a 1 W panel tilted 60 degrees south, a seeded weather model (daily cloud state
as a Markov chain, hourly variation, air temperature), one 18650 cell (3.4 Ah, 3.6 V) with
cold derating, a linear charger that stops below 0 degC, seeded presence events on a night
beach, PIR false triggers and gateway outages. Every energy figure is a named constant below,
documented with its source in docs/energy.md.

The duty-cycle policy is the firmware's own: device/sw/app/power.py, loaded from the device
tree (not copied), so this bench tests what the node runs. Same inputs for every scenario:
the firmware policy, two baselines (an always-on radar; PIR + radar with fixed 1-minute
telemetry and no state-of-charge policy), and a stress case (panel covered by sand, cell
nearly empty). The last line covers the firmware-policy runs (main and stress):

    RESULT brownouts=N max_telemetry_gap_min=N events_lost=N
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import itertools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
POLICY_FILE = ROOT / "device" / "sw" / "app" / "power.py"


def _load_policy() -> ModuleType:
    """The device module itself, by file (the device tree is not a host package)."""
    spec = importlib.util.spec_from_file_location("shorewatch_device_power", POLICY_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the firmware policy from {POLICY_FILE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


power = _load_policy()

# --- site and hardware (docs/energy.md) ----------------------------------------------------
LATITUDE = 50.95
LONGITUDE = 1.86  # Calais: solar noon ~7 min before 12:00 UTC
DEC1_DOY = 335  # day of year of 1 December (non-leap year)
PANEL_W = 1.0  # at 1000 W/m2
PANEL_TILT = 60.0  # degrees, facing south: the winter optimum at this latitude
PANEL_DERATE = 0.85  # salt film, low-light efficiency, wiring
ALBEDO = 0.25  # sand in front of the panel
CHARGER_EFF = 0.70  # linear Li-ion charger fed by a ~6 V panel
COULOMBIC = 0.95  # charge that comes back out of the cell
CHARGE_MIN_C = 0.0  # the charger's NTC input stops charging below freezing
CELL_J = 3.4 * 3.6 * 3600  # 3.4 Ah x 3.6 V nominal = 44 kJ
COLD_LOSS_PER_K = 0.006  # usable capacity lost per K below 20 degC
SELF_DISCHARGE_PER_DAY = 0.001  # ~3 % a month
R_INT = 0.15  # ohm, a cold cell: raises the reading while charging
ADC_SIGMA_MV = 10.0  # battery reading noise after the driver's averaging
BROWNOUT_MV = 3450  # at rest: WiFi bursts then pull the 3.3 V rail below the ESP32's limit
RESTART_MV = 3550  # the board comes back once the cell has recovered this far

# --- per-operation energy (docs/energy.md) -------------------------------------------------
QUIESCENT_V = 3.7  # the cell's mean voltage over a discharge, for the microamp draws
SLEEP_A = 20e-6  # ESP32 deep sleep, whole board (8-20 uA on good boards: the high end)
PIR_A = 65e-6  # PIR always on (50-65 uA)
INA219_OFF_A = 6e-6  # INA219 powered down between readings
REPORT_J = 0.4  # wake + WiFi with static IP + one exchange + sleep
EXTRA_EVENT_J = 0.01  # one more datagram while the radio is up
WAKE_J = 0.05  # PIR wake to MicroPython and back, no radio (~0.5 s at ~0.1 W)
ESP_ACTIVE_W = 0.10  # awake, radio off, waiting on the radar
RADAR_W = 0.4  # LD2410 powered
RADAR_WARMUP_S = 1.0  # power-up to trusted reports (to be measured)

# --- what happens on the beach (seeded) ----------------------------------------------------
PEOPLE_PER_H_NIGHT = 0.5  # walkers, anglers, the odd landing
PEOPLE_PER_H_DAY = 3.0  # dog walkers on a winter day
GROUP_P = 0.2  # a presence brings 1-4 more within 15 min
FALSE_PIR_PER_H = 1.5  # gulls, gusts of warm air, dune grass in the sun
OUTAGES = 3  # gateway unreachable (Pi reboot, AP down) per month
OUTAGE_H = (1.0, 8.0)

MINUTE = 60
DAY_MIN = 24 * 60


# --- sun and weather -------------------------------------------------------------------------

def clear_sky_poa(day: int, minute: int) -> tuple[float, float]:
    """(plane-of-array irradiance W/m2 under a clear sky, sun elevation degrees)."""
    doy = DEC1_DOY + day
    b = 2 * math.pi * (doy - 81) / 364
    eot_min = 9.87 * math.sin(2 * b) - 7.53 * math.cos(b) - 1.5 * math.sin(b)
    decl = math.radians(23.45 * math.sin(2 * math.pi * (284 + doy) / 365))
    lat = math.radians(LATITUDE)
    solar_h = (minute + 0.5) / 60 + LONGITUDE / 15 + eot_min / 60
    hour_angle = math.radians(15 * (solar_h - 12))
    sin_el = (math.sin(lat) * math.sin(decl)
              + math.cos(lat) * math.cos(decl) * math.cos(hour_angle))
    el = math.degrees(math.asin(max(-1.0, min(1.0, sin_el))))
    if el <= 0:
        return 0.0, el
    cos_el = math.cos(math.radians(el))
    cos_az = (math.sin(decl) - sin_el * math.sin(lat)) / (cos_el * math.cos(lat))
    az = math.degrees(math.acos(max(-1.0, min(1.0, cos_az))))  # from north, morning side
    if hour_angle > 0:
        az = 360 - az
    tilt = math.radians(PANEL_TILT)
    cos_inc = sin_el * math.cos(tilt) + cos_el * math.sin(tilt) * math.cos(math.radians(az - 180))
    air_mass = 1 / (sin_el + 0.50572 * (el + 6.07995) ** -1.6364)  # Kasten-Young
    dni = 1361 * 0.7 ** (air_mass ** 0.678)  # Meinel
    dhi = 0.1 * dni
    ghi = dni * sin_el + dhi
    poa = (dni * max(cos_inc, 0.0) + dhi * (1 + math.cos(tilt)) / 2
           + ALBEDO * ghi * (1 - math.cos(tilt)) / 2)
    return poa, el


# daily cloud state: overcast, broken, clear; rows: today, columns: tomorrow
# (persistent overcast spells and clear spells: tuned so that December averages ~1
# peak-sun-hour a day and the darkest week 0.2-0.3, the Calais figures of docs/energy.md)
_SKY_P = ((0.80, 0.15, 0.05), (0.25, 0.45, 0.30), (0.10, 0.30, 0.60))
_SKY_K = ((0.03, 0.10), (0.25, 0.55), (0.65, 0.95))  # fraction of clear-sky irradiance
_SKY_HOURLY = (0.15, 0.45, 0.15)  # +- hourly variation


@functools.cache
def clear_sky(days: int) -> tuple[tuple[float, ...], tuple[bool, ...]]:
    """Clear-sky irradiance and sun-up flag per minute (the same for every seed)."""
    poa: list[float] = []
    up: list[bool] = []
    for d in range(days):
        for m in range(DAY_MIN):
            w, el = clear_sky_poa(d, m)
            poa.append(w)
            up.append(el > 0)
    return tuple(poa), tuple(up)


@dataclass
class Inputs:
    """Everything seeded, shared by every scenario."""

    days: int
    poa: list[float]  # W/m2 on the panel, per minute, weather included
    sun_up: list[bool]
    temp_c: list[float]
    psh: list[float]  # peak-sun-hours per day
    people: list[list[int]]  # per minute: ids of presences starting then
    false_pir: list[int]  # per minute: PIR triggers with nobody there
    outage: list[bool]  # per minute: gateway unreachable
    n_people: int


def make_inputs(days: int, seed: int) -> Inputs:
    rng = random.Random(seed)
    n = days * DAY_MIN
    clear, up = clear_sky(days)
    poa: list[float] = []
    sun_up = list(up)
    temp_c: list[float] = []
    psh: list[float] = []
    sky = 0
    anomaly = 0.0
    for d in range(days):
        sky = rng.choices((0, 1, 2), weights=_SKY_P[sky])[0]
        k = rng.uniform(*_SKY_K[sky])
        anomaly = 0.7 * anomaly + rng.gauss(0, 1.8)
        mean_c = 6.5 + anomaly + (1.0, 0.0, -2.0)[sky]  # clear winter nights are colder
        swing = (1.0, 2.0, 3.5)[sky]
        hourly = [max(0.0, 1 + rng.uniform(-1, 1) * _SKY_HOURLY[sky]) for _ in range(24)]
        day_wh = 0.0
        for m in range(DAY_MIN):
            w = clear[d * DAY_MIN + m] * k * hourly[m // 60]
            poa.append(w)
            day_wh += w / 60
            # coldest around 07:00 UTC, warmest around 14:00
            temp_c.append(mean_c + swing * math.cos(2 * math.pi * (m / 60 - 14) / 24))
        psh.append(day_wh / 1000)
    people: list[list[int]] = [[] for _ in range(n)]
    count = 0
    for m in range(n):
        rate = PEOPLE_PER_H_DAY if sun_up[m] else PEOPLE_PER_H_NIGHT
        if rng.random() < rate / 60:
            people[m].append(count)
            count += 1
            if rng.random() < GROUP_P:
                for _ in range(rng.randint(1, 4)):
                    later = min(n - 1, m + rng.randint(1, 15))
                    people[later].append(count)
                    count += 1
    false_pir = [1 if rng.random() < FALSE_PIR_PER_H / 60 else 0 for _ in range(n)]
    outage = [False] * n
    for _ in range(max(1, round(OUTAGES * days / 31))):
        start = rng.randrange(n)
        for m in range(start, min(n, start + int(rng.uniform(*OUTAGE_H) * 60))):
            outage[m] = True
    return Inputs(days, poa, sun_up, temp_c, psh, people, false_pir, outage, count)


# --- the cell ------------------------------------------------------------------------------

def ocv_mv(soc: float) -> float:
    """Open-circuit voltage at a usable state of charge 0..1 (the firmware's own table)."""
    pct = max(0.0, min(100.0, soc * 100))
    table: tuple[tuple[int, int], ...] = power.OCV
    for (mv0, p0), (mv1, p1) in itertools.pairwise(table):
        if pct <= p1:
            return mv0 + (mv1 - mv0) * (pct - p0) / (p1 - p0)
    return float(table[-1][0])


def cold_factor(temp: float) -> float:
    """Fraction of the capacity a cold cell delivers; the loss comes off the bottom."""
    return min(1.0, 1 - COLD_LOSS_PER_K * (20 - temp))


BROWNOUT_SOC = power.soc_pct(BROWNOUT_MV) / 100
RESTART_SOC = power.soc_pct(RESTART_MV) / 100


# --- a node ----------------------------------------------------------------------------------

@dataclass
class Scenario:
    name: str
    kind: str  # "policy", "fixed" (1-min telemetry, no SoC policy), "radar" (always-on radar)
    start_soc: float
    panel: float = 1.0  # fraction of the panel's output (stress: sand-covered)


@dataclass
class Week:
    first_day: int
    days: int
    psh: float = 0.0
    j_in: float = 0.0
    j_out: float = 0.0
    soc_min: float = 1.0
    soc_end: float = 0.0
    mode_min: list[int] = field(default_factory=lambda: [0, 0, 0])
    gap_max_s: int = 0
    events: int = 0
    delivered: int = 0
    lost: int = 0
    brownouts: int = 0
    off_min: int = 0


@dataclass
class Outcome:
    scenario: Scenario
    weeks: list[Week]
    brownouts: int = 0
    lost: int = 0
    pending: int = 0
    delivered: int = 0
    events: int = 0
    gap_max_s: int = 0
    gw_gap_max_s: int = 0
    soc_min: float = 1.0
    off_min: int = 0
    mode_changes: int = 0
    store_max: int = 0
    j_out: float = 0.0


def _weeks(days: int) -> list[Week]:
    return [Week(d, min(7, days - d)) for d in range(0, days, 7)]


class Node:
    """One simulated node: the cell, the policy's mode, the event store, the link state."""

    def __init__(self, sc: Scenario, inp: Inputs, seed: int) -> None:
        self.sc = sc
        self.inp = inp
        self.rng = random.Random(seed ^ 0x5EED)  # the battery reading's noise
        self.out = Outcome(sc, _weeks(inp.days))
        self.cold = [cold_factor(t) for t in inp.temp_c]
        self.energy = CELL_J * (1 - self.cold[0] + self.cold[0] * sc.start_soc)
        self.policy = sc.kind == "policy"
        self.mode = power.NORMAL
        self.store: list[int] = []
        self.link_ok = True
        self.off = False
        self.next_tm = 0
        self.last_tm: int | None = None
        self.last_gw: int | None = None
        self.charge_w = PANEL_W * PANEL_DERATE * CHARGER_EFF * sc.panel / 1000  # per W/m2
        self.idle_j = (SLEEP_A + PIR_A + INA219_OFF_A) * QUIESCENT_V * MINUTE

    def soc(self, m: int) -> float:
        """Usable state of charge 0..1 at minute m: the cold takes its share off the bottom."""
        f = self.cold[m]
        return max(0.0, (self.energy / CELL_J - 1 + f) / f)

    def run(self) -> Outcome:
        out = self.out
        for wk in out.weeks:
            for m in range(wk.first_day * DAY_MIN, (wk.first_day + wk.days) * DAY_MIN):
                self.minute(wk, m)
            wk.soc_end = self.soc(m)
            out.brownouts += wk.brownouts
            out.lost += wk.lost
            out.delivered += wk.delivered
            out.events += wk.events
            out.gap_max_s = max(out.gap_max_s, wk.gap_max_s)
            out.soc_min = min(out.soc_min, wk.soc_min)
            out.off_min += wk.off_min
            out.j_out += wk.j_out
        out.pending = len(self.store)
        return out

    def minute(self, wk: Week, m: int) -> None:
        inp = self.inp
        soc = self.soc(m)
        # sun in: the charger's NTC stops it below freezing, a full cell takes nothing
        p_in = inp.poa[m] * self.charge_w
        if inp.temp_c[m] < CHARGE_MIN_C or self.energy >= CELL_J:
            p_in = 0.0
        j_in = p_in * MINUTE * COULOMBIC
        self.energy = (min(CELL_J, self.energy + j_in)
                       - self.energy * SELF_DISCHARGE_PER_DAY / DAY_MIN)
        wk.j_in += j_in
        wk.psh += inp.poa[m] / 60000
        wk.events += len(inp.people[m])
        used = self.idle_j
        if self.off:
            wk.off_min += 1
            wk.lost += len(inp.people[m])
            if soc >= RESTART_SOC:  # the board boots again: telemetry at once
                self.off = False
                self.next_tm = m * MINUTE
                self.mode = power.NORMAL
                self.link_ok = True
        else:
            wk.mode_min[self.mode] += 1
            used += self.presences(wk, m)
            if m * MINUTE >= self.next_tm:
                used += self.telemetry(wk, m, soc, p_in)
        self.energy -= used
        wk.j_out += used
        soc = self.soc(m)
        wk.soc_min = min(wk.soc_min, soc)
        if not self.off and soc <= BROWNOUT_SOC:
            self.off = True  # brown-out: the node resets and stays down; RTC memory is lost
            wk.brownouts += 1
            wk.lost += len(self.store)
            self.store.clear()

    def presences(self, wk: Week, m: int) -> float:
        """PIR triggers of this minute: radar windows, stored events, deliveries; joules."""
        inp = self.inp
        people = inp.people[m]
        mode = self.mode if self.policy else power.NORMAL
        if self.sc.kind == "radar":
            used = RADAR_W * MINUTE  # the radar is the presence sensor, always on
        else:  # every PIR trigger, real or not, costs a wake and a radar window
            window_s = RADAR_WARMUP_S + power.radar_ms(mode) / 1000
            used = (len(people) + inp.false_pir[m]) * (WAKE_J
                                                       + (RADAR_W + ESP_ACTIVE_W) * window_s)
        store = self.store
        for pid in people:
            if len(store) >= power.STORE_MAX:
                store.pop(0)  # the oldest goes: fresh events matter more
                wk.lost += 1
            store.append(pid)
            self.out.store_max = max(self.out.store_max, len(store))
            if power.deliver_now(mode, len(store), self.link_ok):
                used += REPORT_J + EXTRA_EVENT_J * (len(store) - 1)
                self.link_ok = not inp.outage[m]
                if self.link_ok:
                    wk.delivered += len(store)
                    store.clear()
        return used

    def telemetry(self, wk: Week, m: int, soc: float, p_in: float) -> float:
        """One TELEMETRY (stored events ride along), then the policy's next interval."""
        t = m * MINUTE
        if self.last_tm is not None:
            wk.gap_max_s = max(wk.gap_max_s, t - self.last_tm)
        self.last_tm = t
        used = REPORT_J + EXTRA_EVENT_J * len(self.store)
        self.link_ok = not self.inp.outage[m]
        if self.link_ok:
            if self.last_gw is not None:
                self.out.gw_gap_max_s = max(self.out.gw_gap_max_s, t - self.last_gw)
            self.last_gw = t
            wk.delivered += len(self.store)
            self.store.clear()
        if not self.policy:
            self.next_tm = t + 60
            return used
        # the reading the firmware gets: rest voltage, lifted by the charge current, noise
        rest = ocv_mv(soc)
        mv = rest + p_in / rest * R_INT * 1e6 + self.rng.gauss(0, ADC_SIGMA_MV)
        new = power.next_mode(self.mode, power.soc_pct(int(mv)))
        self.out.mode_changes += new != self.mode
        self.mode = new
        self.next_tm = t + power.telemetry_s(new)
        return used


def simulate(sc: Scenario, inp: Inputs, seed: int) -> Outcome:
    """Run one scenario minute by minute over the shared inputs."""
    return Node(sc, inp, seed).run()


# --- report ----------------------------------------------------------------------------------

def _date(day: int) -> str:
    return f"Dec {day + 1:2d}" if day < 31 else f"Jan {day - 30:2d}"


def worst_window(psh: list[float]) -> tuple[int, float]:
    """(first day, mean PSH) of the darkest 7-day window."""
    span = min(7, len(psh))
    best = min(range(len(psh) - span + 1), key=lambda d: sum(psh[d:d + span]))
    return best, sum(psh[best:best + span]) / span


def print_weeks(o: Outcome) -> None:
    print(f"\n{o.scenario.name}, by week:")
    print(" week       days  PSH/d   in J/d  out J/d  SoC min  SoC end  h normal/saving/recov"
          "  gap max  events  deliv  lost  brown")
    for w in o.weeks:
        hours = "/".join(f"{mm / 60:.0f}" for mm in w.mode_min)
        print(f" {_date(w.first_day)}-{w.first_day + w.days:<3d} {w.days:4d} "
              f"{w.psh / w.days:6.2f} {w.j_in / w.days:8.0f} {w.j_out / w.days:8.0f} "
              f"{w.soc_min * 100:7.1f}% {w.soc_end * 100:7.1f}% {hours:>21s} "
              f"{w.gap_max_s / 60:6.0f} m {w.events:7d} {w.delivered:6d} {w.lost:5d} "
              f"{w.brownouts:6d}")


def print_summary(outcomes: list[Outcome], days: int) -> None:
    print("\nscenario                                          brown  off h  SoC min  out J/d"
          "  modes  gap max  gw gap  events  store  lost")
    for o in outcomes:
        print(f"{o.scenario.name:<49s} {o.brownouts:5d} {o.off_min / 60:6.0f} "
              f"{o.soc_min * 100:7.1f}% {o.j_out / days:8.0f} {o.mode_changes:6d} "
              f"{o.gap_max_s / 60:6.0f} m {o.gw_gap_max_s / 60:5.0f} m {o.events:7d} "
              f"{o.store_max:6d} {o.lost:5d}")


STRESS = "stress: panel at 20 %, start 15 %"  # sand and salt on the panel all month
STRESS_PANEL = 0.2
STRESS_SOC = 0.15


def sweep(scenarios: list[Scenario], days: int, n: int) -> None:
    """The same scenarios over seeds 1..n: is seed 1 typical?"""
    suns: list[float] = []
    darkest: list[float] = []
    totals: dict[str, list[int]] = {sc.name: [0, 0, 0] for sc in scenarios}
    for seed in range(1, n + 1):
        inp = make_inputs(days, seed)
        suns.append(sum(inp.psh) / days)
        darkest.append(worst_window(inp.psh)[1])
        for sc in scenarios:
            o = simulate(sc, inp, seed)
            t = totals[sc.name]
            t[0] += o.brownouts
            t[1] = max(t[1], o.gap_max_s // 60)
            t[2] += o.lost
    print(f"\nseeds 1..{n}: sun {min(suns):.2f}..{max(suns):.2f} peak-sun-hours/day "
          f"(mean {sum(suns) / n:.2f}), darkest 7 days {min(darkest):.2f}..{max(darkest):.2f}")
    print(f"{'scenario':<49s} brownouts  max gap  events lost (all seeds)")
    for name, (brown, gap, lost) in totals.items():
        print(f"{name:<49s} {brown:9d} {gap:6d} m {lost:12d}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--start-soc", type=float, default=10.0,
                    help="percent on 1 December (default: commissioned nearly empty)")
    ap.add_argument("--sweep", type=int, default=10, metavar="N",
                    help="also run the policy scenarios for seeds 1..N (0: skip)")
    args = ap.parse_args(argv)
    if not 1 <= args.days <= 62 or not 0 < args.start_soc <= 100:
        ap.error("--days 1..62, --start-soc 0..100")
    inp = make_inputs(args.days, args.seed)
    start = args.start_soc / 100
    first, worst = worst_window(inp.psh)
    print(f"Shorewatch sensor node, {args.days} days from 1 December at {LATITUDE} N: "
          f"{PANEL_W:g} W panel at {PANEL_TILT:g} deg, 18650 3.4 Ah, seed {args.seed}")
    print(f"policy: {POLICY_FILE.relative_to(ROOT)} (telemetry {power.TELEMETRY_S} s, radar "
          f"{power.RADAR_MS} ms, store {power.STORE_MAX})")
    print(f"sun: {sum(inp.psh) / len(inp.psh):.2f} peak-sun-hours/day (Calais December ~1), "
          f"darkest 7 days {_date(first)}-{first + min(7, args.days)}: {worst:.2f}/day "
          f"(reference 0.2-0.3); air {min(inp.temp_c):.1f}..{max(inp.temp_c):.1f} degC; "
          f"{inp.n_people} presences, {sum(inp.false_pir)} false PIR triggers, "
          f"{sum(inp.outage) / 60:.0f} h gateway outage")
    scenarios = [
        Scenario("firmware policy (power.py)", "policy", start),
        Scenario("baseline: always-on radar, 1-min telemetry", "radar", start),
        Scenario("baseline: PIR+radar, 1-min telemetry, no policy", "fixed", start),
        Scenario(STRESS + ", policy", "policy", STRESS_SOC, panel=STRESS_PANEL),
        Scenario(STRESS + ", no policy", "fixed", STRESS_SOC, panel=STRESS_PANEL),
    ]
    outcomes = [simulate(sc, inp, args.seed) for sc in scenarios]
    print_weeks(outcomes[0])
    print_weeks(outcomes[3])
    print_summary(outcomes, args.days)
    print("\nmodes: mode changes; gap max: longest time between two TELEMETRY sends by the node;"
          " gw gap: between two that reached the gateway (outages included); store: most events"
          f" held at once (capacity {power.STORE_MAX}).")
    if args.sweep:
        sweep(scenarios, args.days, args.sweep)
    mine = [o for o in outcomes if o.scenario.kind == "policy"]
    print(f"RESULT brownouts={sum(o.brownouts for o in mine)} "
          f"max_telemetry_gap_min={max(o.gap_max_s for o in mine) // 60} "
          f"events_lost={sum(o.lost for o in mine)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
