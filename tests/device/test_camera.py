"""The thermal camera pipeline (device/sw/app/camera*.py) on the real MicroPython unix port:
unit tests in the interpreter, a simulated night under a 128 KB heap, `shorewatch detect` on
recordings, and mpy-cross for the boards' architectures."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shorewatch.peers import build_firmware, micropython_binary, mpy_cross_binary
from shorewatch.sim import ScenarioSpec, record

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEVICE = ROOT / "device"
HERE = Path(__file__).resolve().parent
RUNNER = HERE / "camera_runner.py"
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")
ARCHES = ("xtensawin", "armv6m")
CAMERA_FILES = ("sw/app/camera.py", "sw/app/camera_fast.py", "sw/app/camera_plain.py",
                "sw/app/camera_track.py", "sw/app/camera_shape.py", "sw/app/camera_run.py",
                "sw/app/camera_app.py", "sw/app/camera_cfg.py", "sw/hal/mlx90640_virtual.py",
                "camera_main.py", "main.py")
REQUIRED = ("frame", "event_id", "lifecycle", "kind", "box", "confidence")




def _run(args: list[str], env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                          env=None if env is None else {**os.environ, **env}, cwd=ROOT)


def _record(prefix: Path, seconds: float, family: str = "summer-dry-windy-near",
            seed: int = 3) -> Path:
    record(ScenarioSpec(seed=seed, family=family, duration_s=seconds, fps=4.0), prefix)
    return prefix.with_suffix(".raw")


def test_camera_unit_tests_pass_in_micropython() -> None:
    done = _run([micropython_binary(), str(RUNNER)], env={"MICROPYPATH": str(DEVICE)})
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr
    m = SUMMARY.match(lines[-1])
    assert m, f"last line is not a summary: {lines[-1]!r}\n{done.stderr}"
    defined = len(re.findall(r"^def test_", RUNNER.read_text(encoding="utf-8"), re.M))
    assert (int(m.group(1)), int(m.group(2))) == (defined, 0), done.stdout
    assert done.returncode == 0


def test_camera_app_runs_a_night_in_128k_heap(tmp_path: Path) -> None:
    """Compiled as a board holds it (.mpy), 3600 frames (15 min at 4 Hz), thumbnails on."""
    build = build_firmware(tmp_path / "build")
    raw = _record(tmp_path / "night", 900.0)
    side = json.loads(raw.with_suffix(".json").read_text(encoding="utf-8"))
    settings = {"fps": side["fps"], "invalid_frames": side["invalid_frames"], "stats": True,
                "thumbnails": True,
                "geometry": {"row_range_m": side["camera"]["row_range_m"], "hfov_deg": 55.0,
                             "vfov_deg": 35.0, "sea_from_m": side["scenario"]["shoreline_m"]}}
    cfg = tmp_path / "settings.json"
    cfg.write_text(json.dumps(settings), encoding="utf-8")
    done = _run([micropython_binary(), "-X", "heapsize=128k", str(build / "camera_main.py"),
                 str(raw), str(cfg)])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "MemoryError" not in done.stdout + done.stderr
    stats = json.loads(done.stdout.strip().splitlines()[-1].removeprefix("STATS "))
    assert stats["frames"] == 3600 and stats["fast"] is True, stats
    events = [json.loads(x) for x in done.stdout.splitlines()[:-1]]
    assert any(e["lifecycle"] == "new" and "thumbnail" in e for e in events), events[:3]


def _detect(*args: str) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "shorewatch", "detect", *args])


def test_detect_prints_one_json_event_per_line(tmp_path: Path) -> None:
    raw = _record(tmp_path / "short", 120.0, family="summer-dry-calm-near", seed=1)
    done = _detect(str(raw))
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events, "no detection in two minutes of a busy night"
    life: dict[int, list[str]] = {}
    for e in events:
        assert all(k in e for k in REQUIRED), e
        x, y, w, h = e["box"]
        assert x >= 0 and y >= 0 and w >= 1 and h >= 1 and x + w <= 32 and y + h <= 24, e
        assert e["kind"] in ("unknown", "person", "group", "boat", "vehicle", "animal")
        assert 0 <= e["confidence"] <= 100
        life.setdefault(e["event_id"], []).append(e["lifecycle"])
    for steps in life.values():
        assert steps[0] == "new" and steps[-1] == "end" and steps.count("end") == 1, steps
        assert set(steps[1:-1]) <= {"update"}, steps
    frames = [e["frame"] for e in events]
    assert frames == sorted(frames)


def test_detect_reads_a_recording_that_is_not_from_the_simulator(tmp_path: Path) -> None:
    raw = _record(tmp_path / "sim", 60.0, family="summer-dry-calm-near", seed=1)
    other = tmp_path / "camera.raw"
    shutil.copy(raw, other)
    # only the four required sidecar keys: no geometry, no invalid_frames, no truth
    other.with_suffix(".json").write_text(
        json.dumps({"fps": 4, "sensor": "MLX90640", "rows": 24, "cols": 32}), encoding="utf-8")
    done = _detect(str(other))
    assert done.returncode == 0, done.stderr
    for line in done.stdout.splitlines():
        assert all(k in json.loads(line) for k in REQUIRED)


@pytest.mark.parametrize("damage", ["no-sidecar", "cut", "bad-sidecar", "sensitivity"])
def test_detect_refuses_a_bad_recording_with_a_clear_error(tmp_path: Path, damage: str) -> None:
    raw = _record(tmp_path / "rec", 10.0)
    args = [str(raw)]
    if damage == "no-sidecar":
        raw.with_suffix(".json").unlink()
        expect = "sidecar not found"
    elif damage == "cut":
        with raw.open("r+b") as fh:
            fh.truncate(raw.stat().st_size - 100)
        expect = "partial frame"
    elif damage == "bad-sidecar":
        raw.with_suffix(".json").write_text('{"fps": 4, "rows": 24}', encoding="utf-8")
        expect = "sensor"
    else:
        args += ["--sensitivity", "101"]
        expect = "sensitivity"
    done = _detect(*args)
    assert done.returncode == 1, done.stdout
    assert not done.stdout
    assert expect in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("arch", ARCHES)
def test_camera_code_compiles_for_the_boards(arch: str, tmp_path: Path) -> None:
    for name in CAMERA_FILES:
        out = tmp_path / Path(name).with_suffix(".mpy").name
        done = _run([mpy_cross_binary(), f"-march={arch}", "-o", str(out), str(DEVICE / name)])
        assert done.returncode == 0, (name, done.stderr)
        assert out.read_bytes()[:2] == b"M\x06"
