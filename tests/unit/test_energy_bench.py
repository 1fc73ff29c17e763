"""bench/energy.py runs the firmware's own policy (device/sw/app/power.py) and reports in the
bench format; the policy's hysteresis holds for any reading (CPython side; the MicroPython side
is tests/device/power_runner.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
RESULT = re.compile(r"^RESULT brownouts=(\d+) max_telemetry_gap_min=(\d+) events_lost=(\d+)$")


@pytest.fixture(scope="module")
def energy() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_energy", ROOT / "bench" / "energy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_energy"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_bench_uses_the_device_policy_and_cell_files(energy: ModuleType) -> None:
    assert Path(energy.power.__file__).resolve() == ROOT / "device" / "sw" / "app" / "power.py"
    assert Path(energy.cell.__file__).resolve() == ROOT / "device" / "sw" / "hal" / "cell.py"
    assert energy.power.soc_pct(energy.cell.BROWNOUT_MV) / 100 == energy.BROWNOUT_SOC


def test_a_short_run_ends_with_the_result_line(energy: ModuleType,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert energy.main(["--days", "7", "--sweep", "0", "--start-soc", "50",
                        "--firmware-days", "0"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    m = RESULT.match(lines[-1])
    assert m, lines[-1]
    brownouts, gap, lost = map(int, m.groups())
    assert (brownouts, lost) == (0, 0)
    assert gap <= 15


def test_the_always_on_radar_baseline_browns_out(energy: ModuleType) -> None:
    inp = energy.make_inputs(7, 1)
    radar = energy.simulate(energy.Scenario("radar", "radar", 0.3), inp, 1)
    policy = energy.simulate(energy.Scenario("policy", "policy", 0.3), inp, 1)
    assert radar.brownouts >= 1 and radar.lost > 0
    assert policy.brownouts == 0 and policy.lost == 0
    assert policy.events == radar.events == inp.n_people


def test_weather_matches_the_calais_figures_over_seeds(energy: ModuleType) -> None:
    """~1 peak-sun-hour a day in December on average; the darkest week 0.2-0.3 typically."""
    suns, darkest = [], []
    for seed in range(1, 9):
        inp = energy.make_inputs(31, seed)
        suns.append(sum(inp.psh) / 31)
        darkest.append(energy.worst_window(inp.psh)[1])
    assert 0.7 <= sum(suns) / len(suns) <= 1.3
    assert 0.15 <= sorted(darkest)[len(darkest) // 2] <= 0.35


@given(st.sampled_from((0, 1, 2)), st.integers(min_value=-5, max_value=105))
def test_a_steady_reading_settles_the_mode_in_one_step(mode: int, soc: int) -> None:
    power = _policy()
    once = power.next_mode(mode, soc)
    assert power.next_mode(once, soc) == once


@given(st.sampled_from((0, 1, 2)), st.integers(min_value=0, max_value=100),
       st.integers(min_value=0, max_value=100))
def test_more_charge_never_means_a_more_frugal_mode(mode: int, a: int, b: int) -> None:
    power = _policy()
    lo, hi = min(a, b), max(a, b)
    assert power.next_mode(mode, hi) <= power.next_mode(mode, lo)


@given(st.integers(min_value=2800, max_value=4400), st.integers(min_value=0, max_value=50))
def test_soc_is_monotonic_in_voltage(mv: int, up: int) -> None:
    power = _policy()
    assert 0 <= power.soc_pct(mv) <= power.soc_pct(mv + up) <= 100


def _policy() -> ModuleType:
    mod = sys.modules.get("bench_energy")
    if mod is None:  # hypothesis tests may run before the fixture
        spec = importlib.util.spec_from_file_location("device_power",
                                                      ROOT / "device" / "sw" / "app" / "power.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    power: ModuleType = mod.power
    return power
