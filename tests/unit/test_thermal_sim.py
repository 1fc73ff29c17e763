"""Night-beach thermal simulator and recording format: determinism, format, physics sanity."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import statistics
import struct
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shorewatch.sim import (
    FAMILIES,
    FrameTruth,
    RecordingError,
    ScenarioError,
    ScenarioSpec,
    TruncatedRecordingError,
    TruthTarget,
    open_recording,
    parse_family,
    record,
    simulate,
)
from shorewatch.sim import cli as sim_cli
from shorewatch.sim.errors import TruthError
from shorewatch.sim.recording import (
    MAX_TRUTH_LINE_BYTES,
    RecordingWriter,
    parse_sidecar,
    parse_truth_line,
)
from shorewatch.sim.scene import Camera
from shorewatch.sim.targets import gull, person
from shorewatch.sim.thermal import person_footprint_px

ROWS, COLS = 24, 32
FRAME_BYTES = ROWS * COLS * 2


def _quiet(**kw: Any) -> ScenarioSpec:
    """A scene with only scripted targets, no dead pixels, no concrete slab."""
    base = ScenarioSpec(seed=5, population="none", dead_pixels=0, concrete=False,
                        duration_s=10.0, fps=4.0)
    return dataclasses.replace(base, **kw)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("rec") / "night"
    record(ScenarioSpec(seed=11, duration_s=20.0, fps=4.0), prefix)
    return prefix


# --- determinism --------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(recorded: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    record(ScenarioSpec(seed=11, duration_s=20.0, fps=4.0), again)
    for suffix in (".raw", ".truth.jsonl", ".json"):
        assert Path(f"{again}{suffix}").read_bytes() == Path(f"{recorded}{suffix}").read_bytes()
    other = tmp_path / "other"
    record(ScenarioSpec(seed=12, duration_s=20.0, fps=4.0), other)
    assert Path(f"{other}.raw").read_bytes() != Path(f"{recorded}.raw").read_bytes()


# --- recording format ---------------------------------------------------------------------


def test_round_trip_frames_and_truth(recorded: Path) -> None:
    rec = open_recording(f"{recorded}.raw")
    assert (rec.sidecar.rows, rec.sidecar.cols, rec.sidecar.fps) == (ROWS, COLS, 4.0)
    assert rec.sidecar.sensor == "MLX90640"
    assert rec.frame_count == 80 == rec.sidecar.frames
    expected = list(simulate(ScenarioSpec(seed=11, duration_s=20.0, fps=4.0)))
    frames = list(rec.frames())
    truth = list(rec.truth())
    assert len(frames) == len(truth) == len(expected) == 80
    for got, want, line in zip(frames, expected, truth, strict=True):
        assert got == want.pixels
        assert line == want.truth
    assert sum(len(t.targets) for t in truth) > 0, "the scene should hold targets"


def test_raw_is_little_endian_int16_row_major(recorded: Path) -> None:
    first = next(simulate(ScenarioSpec(seed=11, duration_s=20.0, fps=4.0))).pixels
    data = Path(f"{recorded}.raw").read_bytes()[:FRAME_BYTES]
    assert list(struct.unpack(f"<{ROWS * COLS}h", data)) == list(first)


def test_sidecar_holds_required_keys_and_scenario(recorded: Path) -> None:
    side = json.loads(Path(f"{recorded}.json").read_text())
    assert {k: side[k] for k in ("fps", "sensor", "rows", "cols")} == {
        "fps": 4.0, "sensor": "MLX90640", "rows": 24, "cols": 32}
    assert side["scenario"]["seed"] == 11
    assert side["scenario"]["family"] == "summer-dry-calm-near"
    assert len(side["camera"]["row_range_m"]) == ROWS


def test_truncated_raw_names_expected_and_found_frames(recorded: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "cut"
    for suffix in (".json", ".truth.jsonl"):
        Path(f"{prefix}{suffix}").write_bytes(Path(f"{recorded}{suffix}").read_bytes())
    Path(f"{prefix}.raw").write_bytes(Path(f"{recorded}.raw").read_bytes()[:-100])
    with pytest.raises(TruncatedRecordingError) as info:
        open_recording(prefix)
    err = info.value
    assert (err.expected_frames, err.found_frames, err.extra_bytes) == (80, 79, FRAME_BYTES - 100)
    assert "expected 80 frames" in str(err)
    assert "found 79 whole frames" in str(err)


def test_extra_frame_and_missing_frames_key(recorded: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "long"
    side = json.loads(Path(f"{recorded}.json").read_text())
    raw = Path(f"{recorded}.raw").read_bytes()
    Path(f"{prefix}.json").write_text(json.dumps(side))
    Path(f"{prefix}.raw").write_bytes(raw + raw[:FRAME_BYTES])
    with pytest.raises(TruncatedRecordingError, match="stale"):
        open_recording(prefix)
    # A third-party recording without 'frames': whole frames are fine, a partial one is not.
    del side["frames"]
    Path(f"{prefix}.json").write_text(json.dumps(side))
    assert open_recording(prefix).frame_count == 81
    Path(f"{prefix}.raw").write_bytes(raw + b"\0")
    with pytest.raises(TruncatedRecordingError, match="not a whole number"):
        open_recording(prefix)


def test_missing_sidecar_and_interrupted_writer(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="sidecar not found"):
        open_recording(tmp_path / "nothing.raw")
    prefix = tmp_path / "crash"
    frames = simulate(_quiet(duration_s=1.0))
    with pytest.raises(ZeroDivisionError), RecordingWriter(prefix, fps=4.0, rows=ROWS,
                                                           cols=COLS) as writer:
        frame = next(frames)
        writer.write(frame.pixels, frame.truth)
        _ = 1 / 0  # the recording dies before finish(): no sidecar, so no valid recording
    assert Path(f"{prefix}.raw").stat().st_size == FRAME_BYTES
    with pytest.raises(RecordingError, match="sidecar not found"):
        open_recording(prefix)


GOOD_SIDECAR = {"fps": 4, "sensor": "MLX90640", "rows": 24, "cols": 32}

BAD_SIDECARS = [
    pytest.param(b"{not json", "not valid JSON", id="not-json"),
    pytest.param(b"[1, 2]", "JSON object", id="not-object"),
    pytest.param({"sensor": "x", "rows": 24, "cols": 32}, "'fps': missing", id="no-fps"),
    pytest.param({**GOOD_SIDECAR, "fps": 0}, "'fps'", id="fps-zero"),
    pytest.param({**GOOD_SIDECAR, "fps": "4"}, "'fps'", id="fps-string"),
    pytest.param({**GOOD_SIDECAR, "fps": 1000}, "'fps'", id="fps-huge"),
    pytest.param({**GOOD_SIDECAR, "rows": 0}, "'rows'", id="rows-zero"),
    pytest.param({**GOOD_SIDECAR, "rows": 100000}, "'rows'", id="rows-huge"),
    pytest.param({**GOOD_SIDECAR, "cols": True}, "'cols'", id="cols-bool"),
    pytest.param({**GOOD_SIDECAR, "cols": 32.0}, "'cols'", id="cols-float"),
    pytest.param({**GOOD_SIDECAR, "sensor": ""}, "'sensor'", id="sensor-empty"),
    pytest.param({**GOOD_SIDECAR, "dtype": "float32"}, "'dtype'", id="dtype"),
    pytest.param({**GOOD_SIDECAR, "units": "kelvin"}, "'units'", id="units"),
    pytest.param({**GOOD_SIDECAR, "version": 2}, "'version'", id="newer-version"),
    pytest.param({**GOOD_SIDECAR, "frames": -1}, "'frames'", id="frames-negative"),
    pytest.param({**GOOD_SIDECAR, "invalid_frames": 2}, "'invalid_frames'", id="invalid-not-list"),
    pytest.param({**GOOD_SIDECAR, "frames": 1, "invalid_frames": [0, 1]}, "'invalid_frames'",
                 id="invalid-too-many"),
]


@pytest.mark.parametrize(("content", "message"), BAD_SIDECARS)
def test_invalid_sidecars_are_rejected_with_the_key(content: object, message: str) -> None:
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    with pytest.raises(RecordingError, match=message):
        parse_sidecar(data, Path("x.json"))


def test_every_truncated_sidecar_prefix_is_rejected(recorded: Path) -> None:
    data = Path(f"{recorded}.json").read_bytes().rstrip()
    parse_sidecar(data, Path("x.json"))
    for cut in range(len(data)):
        with pytest.raises(RecordingError):
            parse_sidecar(data[:cut], Path("x.json"))


BAD_TRUTH = [
    pytest.param(b'{"frame": -1, "targets": []}', "'frame'", id="frame-negative"),
    pytest.param(b'{"frame": 0, "targets": {}}', "'targets'", id="targets-not-list"),
    pytest.param(b'{"frame": 0, "targets": [{"id": "a", "kind": "person", "box": [31, 0, 2, 1]}]}',
                 "not inside", id="box-outside"),
    pytest.param(b'{"frame": 0, "targets": [{"id": "a", "kind": "person", "box": [0, 0, 0, 1]}]}',
                 "not inside", id="box-empty"),
    pytest.param(b'{"frame": 0, "targets": [{"id": "a", "kind": "person", "box": [0, 0, 1]}]}',
                 "'box'", id="box-short"),
    pytest.param(b'{"frame": 0, "targets": [{"kind": "person", "box": [0, 0, 1, 1]}]}',
                 "'id'", id="no-id"),
    pytest.param(b'{"frame": 0, "targets": [{"id": "a", "kind": 3, "box": [0, 0, 1, 1]}]}',
                 "'kind'", id="kind-not-text"),
    pytest.param(b'{"frame": 0, "valid": 1, "targets": []}', "'valid'", id="valid-not-bool"),
    pytest.param(b"[]", "JSON object", id="not-object"),
]


@pytest.mark.parametrize(("line", "message"), BAD_TRUTH)
def test_invalid_truth_lines_are_rejected(line: bytes, message: str) -> None:
    with pytest.raises(TruthError, match=message):
        parse_truth_line(line, path=Path("t.jsonl"), line=1, rows=ROWS, cols=COLS)


def test_truth_file_order_and_line_cap(recorded: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "order"
    Path(f"{prefix}.raw").write_bytes(Path(f"{recorded}.raw").read_bytes())
    Path(f"{prefix}.json").write_bytes(Path(f"{recorded}.json").read_bytes())
    lines = Path(f"{recorded}.truth.jsonl").read_bytes().splitlines(keepends=True)
    Path(f"{prefix}.truth.jsonl").write_bytes(lines[1] + lines[0])
    with pytest.raises(RecordingError, match="not increasing"):
        list(open_recording(prefix).truth())
    Path(f"{prefix}.truth.jsonl").write_bytes(b" " * (MAX_TRUTH_LINE_BYTES + 10) + b"\n")
    with pytest.raises(TruthError, match="longer than"):
        list(open_recording(prefix).truth())


labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789:+-", min_size=1, max_size=12)


@st.composite
def truth_targets(draw: st.DrawFn) -> TruthTarget:
    x = draw(st.integers(0, COLS - 1))
    y = draw(st.integers(0, ROWS - 1))
    return TruthTarget(id=draw(labels), kind=draw(labels),
                       box=(x, y, draw(st.integers(1, COLS - x)), draw(st.integers(1, ROWS - y))),
                       range_m=draw(st.none() | st.floats(0, 500, allow_nan=False)),
                       contrast_k=draw(st.none() | st.floats(-50, 300, allow_nan=False)))


@settings(max_examples=60)
@given(frame=st.integers(0, 10**6), valid=st.booleans(),
       targets=st.lists(truth_targets(), max_size=5))
def test_truth_line_round_trip(frame: int, valid: bool, targets: list[TruthTarget]) -> None:
    truth = FrameTruth(frame=frame, targets=tuple(targets), valid=valid)
    line = json.dumps(truth.to_json()).encode()
    assert parse_truth_line(line, path=Path("t"), line=1, rows=ROWS, cols=COLS) == truth


# --- geometry -----------------------------------------------------------------------------


@pytest.mark.parametrize(("hfov", "vfov"), [(55.0, 35.0), (110.0, 75.0)])
def test_range_grows_towards_the_horizon(hfov: float, vfov: float) -> None:
    cam = Camera(hfov_deg=hfov, vfov_deg=vfov)
    ranges = [cam.row_ground_range(r + 0.5) for r in range(ROWS)]
    ground = [(r, d) for r, d in enumerate(ranges) if d is not None]
    sky = [r for r, d in enumerate(ranges) if d is None]
    assert sky and ground and max(sky) < min(r for r, _ in ground)
    assert max(sky) < cam.horizon_row < max(sky) + 1.5
    distances = [d for _, d in ground]
    assert all(a > b for a, b in itertools.pairwise(distances)), distances
    for r, d in ground:  # the projection and the row->range law agree
        point = cam.project(0.0, d, 0.0)
        assert point is not None and math.isclose(point[1], r + 0.5, abs_tol=1e-6)


def test_person_footprint_shrinks_with_range() -> None:
    sizes = [person_footprint_px(d) for d in (5.0, 10.0, 20.0, 40.0)]
    assert all(a[0] > b[0] and a[1] > b[1] for a, b in itertools.pairwise(sizes))
    w20, h20 = person_footprint_px(20.0)
    # 0.5 m across at ~20 m, 32 columns over 55 degrees: f = 16 / tan(27.5 deg) = 30.7 px.
    depth = 20.0 * math.cos(math.radians(Camera().tilt_deg)) + 4.0 * math.sin(
        math.radians(Camera().tilt_deg))
    assert math.isclose(w20, 0.5 * 16 / math.tan(math.radians(27.5)) / depth, rel_tol=0.05)
    assert 0.6 < w20 < 1.0 and 2.5 < h20 < 4.0
    wide = person_footprint_px(20.0, fov="110x75")
    assert wide[0] < w20 / 2


# --- sensor -------------------------------------------------------------------------------


def _temporal_noise(fps: float) -> float:
    """Noise std (K) from successive-frame differences on the dry-sand rows of an empty scene."""
    frames = [f.pixels for f in simulate(_quiet(fps=fps, duration_s=30.0 / fps)) if f.valid]
    diffs = [(b[i] - a[i]) / 100.0 for a, b in itertools.pairwise(frames)
             for i in range(16 * COLS, ROWS * COLS)]
    return statistics.pstdev(diffs) / math.sqrt(2)


def test_noise_is_netd_at_1hz_refresh_and_grows_with_frame_rate() -> None:
    # NETD 0.1 K RMS is quoted at a 1 Hz refresh: 0.5 full (two-subpage) frames per second.
    measured = {fps: _temporal_noise(fps) for fps in (0.5, 1.0, 4.0, 16.0)}
    for fps, sigma in measured.items():
        assert math.isclose(sigma, 0.1 * math.sqrt(2 * fps), rel_tol=0.1), measured
    assert measured[0.5] < measured[1.0] < measured[4.0] < measured[16.0]


def test_dead_pixels_read_a_constant(tmp_path: Path) -> None:
    prefix = tmp_path / "dead"
    record(_quiet(dead_pixels=3, duration_s=5.0, population="auto"), prefix)
    rec = open_recording(prefix)
    dead = rec.sidecar.metadata["dead_pixels"]
    assert len(dead) == 3
    frames = list(rec.frames())
    for row, col, centi in dead:
        assert {f[row * COLS + col] for f in frames} == {centi}
    dead_index = {row * COLS + col for row, col, _ in dead}
    live = next(i for i in range(ROWS * COLS) if i not in dead_index)
    assert len({f[live] for f in frames}) > 1, "live pixels carry noise"


def test_first_frames_after_power_up_are_flagged_invalid(tmp_path: Path) -> None:
    prefix = tmp_path / "power"
    record(_quiet(duration_s=10.0, fps=4.0, power_ups_s=(0.0, 5.0)), prefix)
    rec = open_recording(prefix)
    assert rec.sidecar.invalid_frames == (0, 1, 20, 21)
    assert [t.frame for t in rec.truth() if not t.valid] == [0, 1, 20, 21]
    first = next(rec.frames())
    subpage1 = [first[i] for i in range(ROWS * COLS) if ((i // COLS) + (i % COLS)) % 2]
    assert set(subpage1) == {0}, "frame 0 holds only subpage 0"


# --- targets ------------------------------------------------------------------------------


def _truth_by_id(frames: list[FrameTruth]) -> dict[str, list[tuple[int, TruthTarget]]]:
    out: dict[str, list[tuple[int, TruthTarget]]] = defaultdict(list)
    for f in frames:
        for t in f.targets:
            out[t.id].append((f.frame, t))
    return out


def test_person_at_10m_stands_out_and_a_gull_is_tiny_and_brief() -> None:
    spec = _quiet(duration_s=10.0, fps=4.0, targets=(
        person("p1", "walking", [(0.0, -1.0, 10.0), (10.0, 1.0, 10.0)], 4.0),
        gull("s1", [(3.0, -12.0, 20.0, 5.0), (5.0, 12.0, 20.0, 5.0)])))
    frames = [f for f in simulate(spec) if f.valid]
    seen = _truth_by_id([f.truth for f in frames])
    for f in frames[::8]:
        (p,) = [t for t in f.truth.targets if t.id == "p1"]
        x, y, w, h = p.box
        inside = [f.pixels[r * COLS + c] for r in range(y, y + h) for c in range(x, x + w)]
        outside = sorted(f.pixels[r * COLS + c] for r in range(y, y + h) for c in range(COLS)
                         if not x - 1 <= c <= x + w)
        assert (max(inside) - statistics.median(outside)) / 100 > 2.5
        assert p.contrast_k is not None and p.contrast_k > 3.0
        assert w * h >= 8 and p.range_m is not None and 9.5 < p.range_m < 10.5
    gull_frames = seen["s1"]
    assert 0 < len(gull_frames) <= 2.5 * 4  # in view under 2.5 s at 4 Hz
    assert max(t.box[2] * t.box[3] for _, t in gull_frames) <= 6


def test_groups_merge_and_split_in_the_truth() -> None:
    spec = _quiet(duration_s=20.0, fps=2.0, targets=(
        person("p1", "walking", [(0.0, -5.0, 12.0), (10.0, -0.2, 12.0), (20.0, -5.0, 12.0)], 4.0),
        person("p2", "walking", [(0.0, 5.0, 12.0), (10.0, 0.2, 12.0), (20.0, 5.0, 12.0)], 4.0)))
    kinds = [tuple(sorted(t.kind for t in f.truth.targets)) for f in simulate(spec)]
    assert kinds[0] == ("person", "person")
    assert ("group",) in kinds
    assert kinds[-1] == ("person", "person")
    groups = [t for f in simulate(spec) for t in f.truth.targets if t.kind == "group"]
    assert {g.members for g in groups} == {("p1", "p2")} and groups[0].id == "g:p1+p2"


def test_frame_edges_clip_the_box_and_report_visibility() -> None:
    edge = Camera().half_width_at(10.0)
    spec = _quiet(duration_s=8.0, fps=4.0, targets=(
        person("p1", "walking", [(0.0, -edge - 0.4, 10.0), (4.0, -edge + 1.0, 10.0)], 4.0),
        person("p2", "walking", [(0.0, edge - 1.0, 10.0), (8.0, edge + 0.5, 10.0)], 4.0)))
    seen = [t for f in simulate(spec) for t in f.truth.targets]
    partial = [t for t in seen if t.visible is not None and t.visible < 1.0]
    assert {t.id for t in partial} == {"p1", "p2"}
    assert all(t.box[0] == 0 for t in partial if t.id == "p1")
    assert all(t.box[0] + t.box[2] == COLS for t in partial if t.id == "p2")
    assert all(0 <= t.box[0] < t.box[0] + t.box[2] <= COLS for t in seen)


def test_subpages_tear_on_a_fast_mover() -> None:
    spec = _quiet(duration_s=3.0, fps=2.0, netd_k=0.0, targets=(
        person("p1", "running", [(0.0, -6.0, 8.0), (3.0, 6.0, 8.0)], 5.0),))
    frame = list(simulate(spec))[3]
    (p,) = frame.truth.targets
    x, y, w, h = p.box
    cols: dict[int, list[int]] = {0: [], 1: []}
    for r in range(y, y + h):
        for c in range(x, x + w):
            if frame.pixels[r * COLS + c] > 1700:  # well above the ~14 C sand
                cols[(r + c) % 2].append(c)
    # Subpage 0 is read half a frame (0.25 s, ~1 m at 4 m/s) before subpage 1.
    assert statistics.mean(cols[1]) - statistics.mean(cols[0]) > 1.5


# --- families -----------------------------------------------------------------------------


def test_family_names_parse_both_ways() -> None:
    assert len(set(FAMILIES)) == 32
    assert all(parse_family(name).name == name for name in FAMILIES)
    assert parse_family("far-winter").name == "winter-dry-calm-far"
    with pytest.raises(ScenarioError, match="unknown token 'stormy'"):
        parse_family("summer-stormy")
    with pytest.raises(ScenarioError, match="both"):
        parse_family("dry-wet")
    with pytest.raises(ScenarioError, match="fps"):
        ScenarioSpec(fps=0).conditions()
    with pytest.raises(ScenarioError, match="fov"):
        ScenarioSpec(fov="90x60").conditions()


PEOPLE_KINDS = {"person", "group", "boat", "vehicle"}


def test_empty_nights_hold_only_distractors() -> None:
    distractors: set[str] = set()
    for seed in range(3):
        empty = [t.kind for f in simulate(ScenarioSpec(seed=seed, family="winter-empty",
                                                       duration_s=600.0, fps=1.0))
                 for t in f.truth.targets]
        assert not PEOPLE_KINDS & set(empty), set(empty)
        distractors |= set(empty)
        busy = {t.kind for f in simulate(ScenarioSpec(seed=seed, family="winter",
                                                      duration_s=60.0, fps=1.0))
                for t in f.truth.targets}
        assert "person" in busy or "group" in busy
    assert "gull" in distractors


def _person_contrast(family: str) -> float:
    values = [t.contrast_k for seed in range(2)
              for f in simulate(ScenarioSpec(seed=seed, family=family, duration_s=300.0, fps=1.0))
              for t in f.truth.targets
              if t.kind == "person" and t.range_m is not None and t.range_m <= 20.0
              and t.contrast_k is not None]
    assert len(values) > 20
    return statistics.mean(values)


def test_wet_people_show_less_contrast_than_dry() -> None:
    dry = _person_contrast("summer-dry-calm-near")
    wet = _person_contrast("summer-wet-calm-near")
    assert wet < 0.6 * dry, (wet, dry)


# --- command line -------------------------------------------------------------------------


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="shorewatch")
    sim_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_cli_record_check_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "cli"
    assert _cli("sim", "record", "--family", "winter-wet-windy-far", "--seed", "3",
                "--seconds", "3", "--fps", "2", "--out", str(out)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 6 and summary["family"] == "winter-wet-windy-far"
    for suffix in (".raw", ".json", ".truth.jsonl"):
        assert Path(f"{out}{suffix}").exists()
    assert _cli("sim", "check", f"{out}.raw") == 0
    checked = json.loads(capsys.readouterr().out)
    assert checked["frames"] == checked["truth_lines"] == 6
    Path(f"{out}.raw").write_bytes(Path(f"{out}.raw").read_bytes()[:-1])
    assert _cli("sim", "check", str(out)) == 1
    assert "expected 6 frames" in caplog.text
    assert _cli("sim", "record", "--family", "stormy", "--out", str(out)) == 1
    assert _cli("sim", "families") == 0
    assert "summer-dry-calm-near" in capsys.readouterr().out
