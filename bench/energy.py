"""Energy budget of a solar sensor node through December at Calais, against baselines.

    python bench/energy.py [--seed N] [--days N] [--start-soc PCT] [--firmware-days N]

Minute by minute from 1 December, 00:00 UTC, at 50.95 N: the sun and the seeded weather of
shorewatch/sim/solar.py on a 1 W panel tilted 60 degrees south, one 18650 cell (3.4 Ah, 3.6 V)
behind a linear charger as device/sw/hal/cell.py models it (the virtual board runs the same
file), seeded presence events on a night beach, PIR false triggers and gateway outages. Every
figure is a named constant of those two files, documented with its source in docs/energy.md.

The duty-cycle policy is the firmware's own: device/sw/app/power.py, imported from the device
tree (not copied), so this bench tests what the node runs. Same inputs for every scenario:
the firmware policy, two baselines (an always-on radar; PIR + radar with fixed 1-minute
telemetry and no state-of-charge policy), and a stress case (panel covered by sand, cell
nearly empty).

Then the real firmware itself: --firmware-days of the darkest week (2 by default, ~15 s; 7 for
the whole week) on an accelerated virtual board (MicroPython, 64 KB heap, device/sw/hal/warp.py)
under the same sun, air and outages, against a gateway at the codec seam, starting from the
charge the policy scenario had on that morning. The last line covers the firmware-policy runs
(main, stress, and the firmware on the virtual board):

    RESULT brownouts=N max_telemetry_gap_min=N events_lost=N
"""

from __future__ import annotations

import argparse
import calendar
import itertools
import json
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "device"))  # sw.app.power, sw.hal.cell: the device's own files
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout: shorewatch/, protocol/

from sw.app import power  # noqa: E402
from sw.hal import cell  # noqa: E402

from protocol.messages import Detection  # noqa: E402
from shorewatch.fakegateway import DEVICE_ID, MASTER, TAG_LEN, FakeGateway  # noqa: E402
from shorewatch.peers import build_firmware, micropython_binary  # noqa: E402
from shorewatch.sim import solar  # noqa: E402

POLICY_FILE = Path(power.__file__).resolve()
CELL_FILE = Path(cell.__file__).resolve()

LATITUDE = solar.LATITUDE
DEC1 = calendar.timegm((2026, 12, 1, 0, 0, 0))  # 00:00 UTC
ADC_SIGMA_MV = 10.0  # battery reading noise after the driver's averaging
BROWNOUT_SOC = cell.BROWNOUT_PCT / 100
RESTART_SOC = power.soc_pct(cell.RESTART_MV) / 100

# --- what happens on the beach (seeded) ----------------------------------------------------
PEOPLE_PER_H_NIGHT = 0.5  # walkers, anglers, the odd landing
PEOPLE_PER_H_DAY = 3.0  # dog walkers on a winter day
GROUP_P = 0.2  # a presence brings 1-4 more within 15 min
FALSE_PIR_PER_H = 1.5  # gulls, gusts of warm air, dune grass in the sun
OUTAGES = 3  # gateway unreachable (Pi reboot, AP down) per month
OUTAGE_H = (1.0, 8.0)

MINUTE = 60
DAY_MIN = 24 * 60


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
    env = solar.environment(DEC1, n, seed, LATITUDE)
    poa = list(env.poa)
    temp_c = list(env.temp_c)
    sun_up = list(env.sun_up)
    psh = [sum(poa[d * DAY_MIN:(d + 1) * DAY_MIN]) / 60000 for d in range(days)]
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
    day_soc: list[float] = field(default_factory=list)  # at 00:00 UTC of each day


def _weeks(days: int) -> list[Week]:
    return [Week(d, min(7, days - d)) for d in range(0, days, 7)]


class Node:
    """One simulated node: the cell, the policy's mode, the event store, the link state."""

    def __init__(self, sc: Scenario, inp: Inputs, seed: int) -> None:
        self.sc = sc
        self.inp = inp
        self.rng = random.Random(seed ^ 0x5EED)  # the battery reading's noise
        self.out = Outcome(sc, _weeks(inp.days))
        self.cell = cell.Cell(sc.start_soc, inp.temp_c[0], sc.panel)
        self.p_in_mw = 0
        self.policy = sc.kind == "policy"
        self.mode = power.NORMAL
        self.store: list[int] = []
        self.link_ok = True
        self.off = False
        self.next_tm = 0
        self.last_tm: int | None = None
        self.last_gw: int | None = None
        self.idle_j = cell.IDLE_W * MINUTE

    def soc(self, m: int) -> float:
        """Usable state of charge 0..1 at minute m (the cold takes its share off the bottom)."""
        s: float = self.cell.soc(self.inp.temp_c[m])
        return s

    def run(self) -> Outcome:
        out = self.out
        for wk in out.weeks:
            for m in range(wk.first_day * DAY_MIN, (wk.first_day + wk.days) * DAY_MIN):
                if m % DAY_MIN == 0:
                    out.day_soc.append(self.soc(m))
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
                used += self.telemetry(wk, m, soc)
        # the minute's sun in (the charger's NTC stops it below freezing, a full cell takes
        # nothing) and what the node spent out: the cell model the virtual board runs
        self.p_in_mw = self.cell.step(inp.poa[m], inp.temp_c[m], MINUTE, int(used * 1000))
        wk.j_in += self.p_in_mw * MINUTE * cell.COULOMBIC / 1000
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
            used = cell.RADAR_W * MINUTE  # the radar is the presence sensor, always on
        else:  # every PIR trigger, real or not, costs a wake and a radar window
            window_s = cell.RADAR_WARMUP_S + power.radar_ms(mode) / 1000
            used = (len(people) + inp.false_pir[m]) * (
                cell.WAKE_J + (cell.RADAR_W + cell.ESP_ACTIVE_W) * window_s)
        store = self.store
        for pid in people:
            if len(store) >= power.STORE_MAX:
                store.pop(0)  # the oldest goes: fresh events matter more
                wk.lost += 1
            store.append(pid)
            self.out.store_max = max(self.out.store_max, len(store))
            if power.deliver_now(mode, len(store), self.link_ok):
                used += cell.REPORT_J + cell.EXTRA_EVENT_J * (len(store) - 1)
                self.link_ok = not inp.outage[m]
                if self.link_ok:
                    wk.delivered += len(store)
                    store.clear()
        return used

    def telemetry(self, wk: Week, m: int, soc: float) -> float:
        """One TELEMETRY (stored events ride along), then the policy's next interval."""
        t = m * MINUTE
        if self.last_tm is not None:
            wk.gap_max_s = max(wk.gap_max_s, t - self.last_tm)
        self.last_tm = t
        used = cell.REPORT_J + cell.EXTRA_EVENT_J * len(self.store)
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
        mv = self.cell.reading_mv(self.inp.temp_c[m], self.p_in_mw,
                                  self.rng.gauss(0, ADC_SIGMA_MV))
        new = power.next_mode(self.mode, power.soc_pct(mv))
        self.out.mode_changes += new != self.mode
        self.mode = new
        self.next_tm = t + power.interval_s(new, power.TELEMETRY_S[power.NORMAL])
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


# --- the real firmware on the accelerated virtual board ------------------------------------

FW_HEAP = "64k"
FW_TIMEOUT_PER_DAY_S = 60.0  # a simulated day takes ~7 s here; this only stops a hung board
FW_PRESENCE_S = 20  # how long a presence keeps the PIR high


@dataclass
class FirmwareRun:
    first_day: int
    days: int
    start_soc: float
    presences: int = 0
    brownouts: int = 0
    end_soc: int = 0
    spent_j: int = 0
    telemetry: int = 0
    gap_max_s: int = 0
    events_made: int = 0
    events_delivered: int = 0
    pending: int = 0
    dropped: int = 0
    modes: list[str] = field(default_factory=list)
    oom: int = 0


def run_firmware(inp: Inputs, first_day: int, days: int, soc: float) -> FirmwareRun:
    """The node's firmware (.mpy, under MicroPython with a 64 KB heap) on a virtual board with
    the accelerated clock, under the bench's sun, air and outages of those days."""
    m0, n = first_day * DAY_MIN, days * DAY_MIN
    start_s = DEC1 + m0 * MINUTE
    run = FirmwareRun(first_day, days, soc, sum(len(p) for p in inp.people[m0:m0 + n]))
    with tempfile.TemporaryDirectory(prefix="shorewatch-energy-") as tmp:
        board = Path(tmp) / "board"
        gateway = FakeGateway(unix_s=start_s)
        try:
            _prepare_board(board, inp, run, gateway.port, start_s)
            with (Path(tmp) / "board.out").open("wb") as out:
                proc = subprocess.Popen([micropython_binary(), "-X", f"heapsize={FW_HEAP}",
                                         str(build_firmware() / "main.py"), str(board)],
                                        stdout=out, stderr=subprocess.STDOUT)
                gateway.serve(proc, FW_TIMEOUT_PER_DAY_S * days + 60)
            text = (Path(tmp) / "board.out").read_text()
            delivered = {(r.message.event_id, int(r.message.lifecycle))
                         for r in gateway.of(Detection)}
        finally:
            gateway.close()
    if proc.returncode != 0:
        raise RuntimeError(f"the firmware stopped with {proc.returncode}:\n{text[-2000:]}")
    _parse_firmware(run, text, delivered)
    return run


def _outages(inp: Inputs, m0: int, n: int) -> list[list[int]]:
    """The bench's outage minutes from m0 as [from_s, to_s] pairs of time since boot."""
    spans: list[list[int]] = []
    for m in range(m0, m0 + n):
        if inp.outage[m]:
            if m == m0 or not inp.outage[m - 1]:
                spans.append([(m - m0) * MINUTE, 0])
            spans[-1][1] = (m - m0 + 1) * MINUTE
    return spans


def _prepare_board(board: Path, inp: Inputs, run: FirmwareRun, port: int, start_s: int) -> None:
    m0, n = run.first_day * DAY_MIN, run.days * DAY_MIN
    board.mkdir()
    (board / "identity.json").write_text(json.dumps({
        "device_id": DEVICE_ID, "master_key": MASTER.hex(), "tag_len": TAG_LEN,
        "hw_kind": "sensor_node", "gateway": {"host": "127.0.0.1", "port": port}}))
    (board / "config.json").write_text(json.dumps({
        "report_interval_s": power.TELEMETRY_S[power.NORMAL], "run_for_s": n * MINUTE,
        "update_interval_s": 0,
        "pir": {"seed": 7, "mean_interval_s": n * MINUTE / max(1, run.presences),
                "duration_s": FW_PRESENCE_S},
        "battery": {"initial_mv": round(cell.ocv_mv(run.start_soc))},
        "sim": {"warp": True, "start_s": start_s, "outages": _outages(inp, m0, n)[:32]}}))
    env = solar.Environment(start_s, tuple(inp.poa[m0:m0 + n]), tuple(inp.temp_c[m0:m0 + n]),
                            tuple(inp.sun_up[m0:m0 + n]))
    solar.write_environment(board / solar.ENV_FILE, env)


def _parse_firmware(run: FirmwareRun, text: str, delivered: set[tuple[int, int]]) -> None:
    made: set[tuple[int, int]] = set()
    ups: list[int] = []
    for line in text.splitlines():
        if line.startswith("TELEMETRY "):
            ups.append(json.loads(line[10:])["uptime_s"])
        elif line.startswith("EVENT "):
            e = json.loads(line[6:])
            made.add((e["event_id"], ("new", "update", "end").index(e["lifecycle"])))
        elif line.startswith("I sim: "):
            parts = line[7:].split(", ")  # brownouts N, spent N J, soc N%, frames N, lost N
            run.brownouts = int(parts[0].split()[1])
            run.spent_j = int(parts[1].split()[1])
            run.end_soc = int(parts[2].split()[1].rstrip("%"))
        elif line.startswith("I app: stopped: "):
            parts = line.split(", ")
            run.pending = int(parts[3].split()[0])
            run.oom = int(parts[4].split()[0])
        elif "store full" in line:
            run.dropped += 1
        elif line.startswith("I app: power: "):
            run.modes.append(line.split()[3])
    run.telemetry = len(ups)
    run.gap_max_s = max((b - a for a, b in itertools.pairwise(ups)), default=0)
    run.events_made = len(made)
    run.events_delivered = len(made & delivered)


def print_firmware(run: FirmwareRun) -> None:
    print(f"\nthe firmware on the accelerated virtual board (MicroPython, {FW_HEAP} heap), "
          f"{run.days} days from {_date(run.first_day)} (the darkest week), same sun, air and "
          f"outages, starting at {run.start_soc * 100:.0f} % like the policy scenario:")
    print(f" brown-outs {run.brownouts}, SoC at the end {run.end_soc} %, spent on operations "
          f"{run.spent_j / run.days:.0f} J/d, modes {' -> '.join(run.modes) or 'unchanged'}")
    print(f" {run.telemetry} TELEMETRY, longest gap {run.gap_max_s / 60:.0f} min; "
          f"{run.presences} presences in the bench's inputs; the virtual PIR made "
          f"{run.events_made} events (new + end), {run.events_delivered} delivered, "
          f"{run.pending} pending at the end, {run.dropped} dropped; out of memory "
          f"{run.oom}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--start-soc", type=float, default=10.0,
                    help="percent on 1 December (default: commissioned nearly empty)")
    ap.add_argument("--sweep", type=int, default=10, metavar="N",
                    help="also run the policy scenarios for seeds 1..N (0: skip)")
    ap.add_argument("--firmware-days", type=int, default=2, metavar="N",
                    help="run the firmware on the virtual board for N days of the darkest "
                         "week (0: skip; 7: the whole week, ~1 min)")
    args = ap.parse_args(argv)
    if not 1 <= args.days <= 62 or not 0 < args.start_soc <= 100 \
            or not 0 <= args.firmware_days <= min(7, args.days):
        ap.error("--days 1..62, --start-soc 0..100, --firmware-days 0..7 (at most --days)")
    inp = make_inputs(args.days, args.seed)
    start = args.start_soc / 100
    first, worst = worst_window(inp.psh)
    print(f"Shorewatch sensor node, {args.days} days from 1 December at {LATITUDE} N: "
          f"{cell.PANEL_W:g} W panel at {solar.PANEL_TILT:g} deg, 18650 3.4 Ah, seed {args.seed}")
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
    brownouts = sum(o.brownouts for o in mine)
    gap = max(o.gap_max_s for o in mine)
    lost = sum(o.lost for o in mine)
    if args.firmware_days:
        fw_first = min(first, args.days - args.firmware_days)
        fw = run_firmware(inp, fw_first, args.firmware_days, outcomes[0].day_soc[fw_first])
        print_firmware(fw)
        brownouts += fw.brownouts
        gap = max(gap, fw.gap_max_s)
        lost += fw.dropped + fw.events_made - fw.events_delivered  # pending: still held
    print(f"RESULT brownouts={brownouts} max_telemetry_gap_min={gap // 60} events_lost={lost}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
