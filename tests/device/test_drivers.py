"""Real device drivers (device/sw/hal) on the real MicroPython unix port, against recorded bus
traffic; board definitions import-checked; the duty-cycle policy (device/sw/app/power.py), the
event store (device/sw/app/events.py), and deep sleep with the node's state in RTC memory
(device/sw/hal/sleep.py, device/sw/app/retain.py) with a stand-in `machine`.

Each runner is a MicroPython script that ends with exactly "N passed, M failed"; the count is
asserted too, so a check that silently stopped running fails here.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
from pathlib import Path

import mlx90640_model as model  # tests/device is on sys.path (pytest rootdir import)
import pytest

from shorewatch.peers import micropython_binary, mpy_cross_binary

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")
HEAP_LINE = re.compile(r"^heap (\w+) resident (\d+) bytes, worst error (\d+) cc$")

# checks each runner makes (a changed runner must update its number here)
DRIVER_CHECKS = 48
MLX_CHECKS = 88
BOARD_CHECKS = 28
POWER_CHECKS = 48
EVENTS_CHECKS = 30
SLEEP_CHECKS = 28
TOLERANCE_K = 0.5  # stated accuracy of driver vs. scene; rounding alone gives < 0.1 K
MLX_RESIDENT_MAX = 8 * 1024  # driver + buffers after begin(), bytes (unix port, 64-bit)
ADDR = "33"




def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([micropython_binary(), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _summary(out: str) -> tuple[int, int]:
    lines = out.strip().splitlines()
    assert lines, "the runner printed nothing"
    m = SUMMARY.match(lines[-1])
    assert m, f"last line is not a summary: {lines[-1]!r}"
    return int(m.group(1)), int(m.group(2))


def test_drivers_replay_recorded_traffic() -> None:
    done = _run(str(HERE / "drivers_runner.py"), str(ROOT))
    assert _summary(done.stdout) == (DRIVER_CHECKS, 0), done.stdout + done.stderr
    assert done.returncode == 0


# --- MLX90640: recordings generated from the forward model ----------------------------------

def _i2c_read(mem: int, words: list[int]) -> str:
    return f"I2C.R {ADDR} {mem:04x} {model.words_hex(words)}"


def _i2c_write(mem: int, word: int) -> str:
    return f"I2C.W {ADDR} {mem:04x} {word:04x}"


def _expect_pixels(cal: model.Calibration) -> list[object]:
    out: list[object] = []
    for p in range(model.PIXELS):
        if p in cal.f.failed:
            out.append(None)
        else:
            offset, alpha, kta, kv = cal.pixel(p)
            out.append([offset, alpha, kta, kv, 1 if p in cal.f.outlier else 0])
    return out


def _poll(frame: list[int], status: int, torn: tuple[list[int], ...] = ()) -> list[str]:
    """One poll() that finds new data with `status`: torn reads first, then `frame`."""
    lines = [_i2c_read(0x8000, [status])]
    for garbage in torn:
        lines += [_i2c_write(0x8000, status & 0x0010), _i2c_read(0x0400, garbage)]
        status = 0x0018 | (status & 1 ^ 1)  # the next subpage landed during the read
        lines.append(_i2c_read(0x8000, [status]))
    lines += [_i2c_write(0x8000, status & 0x0010), _i2c_read(0x0400, frame),
              _i2c_read(0x8000, [0x0010])]
    return lines


def _mlx_fixture(dest: Path) -> None:
    rng = random.Random(90640)

    def garbage() -> list[int]:
        return [rng.randrange(0x10000) for _ in range(model.WORDS)]

    scene = model.beach_scene()
    fx: dict[str, object] = {"tolerance_k": TOLERANCE_K}
    scenes: dict[str, list[float | None]] = {}
    # main: power-up control word without chess mode; 2 Hz -> refresh code 3 (4 Hz)
    f = model.random_fields(7)
    cal = model.Calibration(f)
    scenes["beach"] = [None if p in f.failed else t for p, t in enumerate(scene)]
    ctrl = 0x1981
    s0 = model.frame(cal, scene, 0, ta=8.3, vdd=3.27, ctrl=ctrl, seed=1)
    s1 = model.frame(cal, scene, 1, ta=8.35, vdd=3.27, ctrl=ctrl, seed=2)
    lines = [_i2c_read(0x2400, model.encode(f)), _i2c_read(0x800D, [0x0901]),
             _i2c_write(0x800D, 0x1901),
             _i2c_read(0x800D, [0x1901]), _i2c_write(0x800D, ctrl),
             _i2c_read(0x8000, [0x0010])]
    lines += _poll(s0.ram, 0x0018)
    lines += _poll(s1.ram, 0x0018, torn=(garbage(),))  # subpage 1 lands while 0 is read
    lines.append(_i2c_read(0x8000, [0x0019]))  # three torn reads in a row: dropped
    for _ in range(3):
        lines += [_i2c_write(0x8000, 0x0010), _i2c_read(0x0400, garbage()),
                  _i2c_read(0x8000, [0x0019])]
    (dest / "main.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    fx["main"] = {"recording": "main.txt", "emissivity": 1.0, "ctrl": 0x1901,
                  "params": cal.scalars(), "pixels": _expect_pixels(cal), "scene": "beach",
                  "steps": ["refresh", "idle", [0, s0.ta, s0.vdd, 0],
                            [1, s1.ta, s1.vdd, None], "torn"]}
    # a freezing night, emissivity 0.95, 19-bit ADC (resolution correction 0.5), chess
    # already on: no control write; subpage 1 first
    f = model.random_fields(11)
    cal = model.Calibration(f)
    scenes["beach2"] = [None if p in f.failed else t for p, t in enumerate(scene)]
    ctrl = 0x1D01
    s1 = model.frame(cal, scene, 1, ta=-2.5, vdd=3.31, ctrl=ctrl, emissivity=0.95, seed=3)
    s0 = model.frame(cal, scene, 0, ta=-2.45, vdd=3.31, ctrl=ctrl, emissivity=0.95, seed=4)
    lines = [_i2c_read(0x2400, model.encode(f)), _i2c_read(0x800D, [ctrl])]
    lines += _poll(s1.ram, 0x0019) + _poll(s0.ram, 0x0018)
    (dest / "cold19bit.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    fx["cold19bit"] = {"recording": "cold19bit.txt", "emissivity": 0.95, "ctrl": ctrl,
                       "params": cal.scalars(), "pixels": _expect_pixels(cal),
                       "scene": "beach2",
                       "steps": [[1, s1.ta, s1.vdd, 1], [0, s0.ta, s0.vdd, None]]}
    fx["scenes"] = scenes
    # extraction at the edges
    f = model.edge_fields()
    cal = model.Calibration(f)
    (dest / "edge.txt").write_text(
        _i2c_read(0x2400, model.encode(f)) + "\n" + _i2c_read(0x800D, [0x1901]) + "\n",
        encoding="utf-8")
    fx["edge"] = {"params": cal.scalars(), "pixels": _expect_pixels(cal)}
    (dest / "blank.txt").write_text(_i2c_read(0x2400, [0] * model.WORDS) + "\n",
                                    encoding="utf-8")
    (dest / "fixture.json").write_text(json.dumps(fx), encoding="utf-8")


def test_mlx90640_temperatures_match_the_scene(tmp_path: Path) -> None:
    _mlx_fixture(tmp_path)
    done = _run(str(HERE / "mlx90640_runner.py"), str(tmp_path), str(ROOT))
    assert _summary(done.stdout) == (MLX_CHECKS, 0), done.stdout[-4000:] + done.stderr
    heaps = [HEAP_LINE.match(line) for line in done.stdout.splitlines()]
    found = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in heaps if m}
    assert set(found) == {"main", "cold19bit"}
    for resident, worst_cc in found.values():
        assert resident <= MLX_RESIDENT_MAX
        assert worst_cc <= TOLERANCE_K * 100


def test_model_encodes_the_datasheet_example_positions() -> None:
    """The nibble layout the model and the driver share, pinned to the datasheet's own worked
    example (section 11.2.2.5.2): row 12's OCC sits in the top nibble of 0x2414."""
    f = model.Fields()
    f.occ_row = [0] * model.ROWS
    f.occ_row[11] = -3
    f.pix_offset = [1] * model.PIXELS  # keep every pixel word non-zero
    ee = model.encode(f)
    assert ee[0x14] == 0xD000  # -3 as a nibble, bits 15..12
    assert ee[0x12] == ee[0x13] == ee[0x15] == 0


# --- boards -------------------------------------------------------------------------------

def test_boards_import_and_wire_the_real_drivers(tmp_path: Path) -> None:
    done = _run(str(HERE / "boards_runner.py"), str(ROOT), str(tmp_path / "scratch.raw"))
    assert _summary(done.stdout) == (BOARD_CHECKS, 0), done.stdout + done.stderr
    assert done.returncode == 0


BOARDS = ("esp32c3_node", "picow_node", "esp32s3_camera", "virtual_camera")
# the ESP32-C3 is RISC-V: compile for it too (bytecode .mpy is the same on every arch, but a
# board file must not use anything an arch lacks)
BOARD_ARCHES = ("xtensawin", "armv6m", "rv32imc")


@pytest.mark.parametrize("arch", BOARD_ARCHES)
@pytest.mark.parametrize("board", BOARDS)
def test_board_compiles_with_mpy_cross(board: str, arch: str, tmp_path: Path) -> None:
    out = tmp_path / f"{board}.mpy"
    done = subprocess.run([mpy_cross_binary(), f"-march={arch}", "-o", str(out),
                           str(ROOT / "device" / "sw" / "boards" / f"{board}.py")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:2] == b"M\x06"


# --- the duty-cycle policy, in the interpreter the node runs it in --------------------------

def test_power_policy_under_micropython() -> None:
    done = _run(str(HERE / "power_runner.py"), str(ROOT))
    assert _summary(done.stdout) == (POWER_CHECKS, 0), done.stdout + done.stderr
    assert done.returncode == 0


# --- the event store, and deep sleep with RTC memory -----------------------------------------

def test_event_store_under_micropython() -> None:
    done = _run(str(HERE / "events_runner.py"), str(ROOT))
    assert _summary(done.stdout) == (EVENTS_CHECKS, 0), done.stdout + done.stderr
    assert done.returncode == 0


def test_deep_sleep_keeps_the_node_in_rtc_memory(tmp_path: Path) -> None:
    """The real sleep driver and the node's boot on the unix port, with stand-ins for machine
    and esp32 only: a wake from deep sleep goes on with the session, the counters, the mode
    and the stored events; a corrupt image or a power-on boots as new."""
    done = _run(str(HERE / "sleep_runner.py"), str(tmp_path), str(ROOT))
    assert _summary(done.stdout) == (SLEEP_CHECKS, 0), done.stdout + done.stderr
    assert done.returncode == 0
