"""Seeded night-beach thermal scenes: a :class:`ScenarioSpec` in, frames and ground truth out.

Same spec (seed included) -> byte-identical frames and truth on the same platform and Python.
Pure CPython: one frame of 768 pixels costs a few list comprehensions, so an hour at 4 Hz takes
seconds (see ``bench/sim_speed.py``).
"""

from __future__ import annotations

import os
import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import ScenarioError
from .population import Planner
from .recording import FrameTruth, RecordingWriter, Sidecar
from .scene import FAMILIES, Background, Camera, Conditions, parse_family
from .sensor import MAX_DEAD_PIXELS, Sensor
from .targets import Renderer, TargetPlan

SENSOR_NAME = "MLX90640"
ROWS = 24
COLS = 32
FOVS: dict[str, tuple[float, float]] = {"55x35": (55.0, 35.0), "110x75": (110.0, 75.0)}
# A night plus margin; 24 h at 4 Hz is already 530 MB of raw frames.
MAX_DURATION_S = 24 * 3600.0
# 64 Hz refresh in chess mode = 32 full frames per second, the MLX90640's fastest.
MAX_FPS = 32.0
# The first frames after power-up are wrong (REFERENCE.md): this many per power-up.
INVALID_AFTER_POWER_UP = 2

__all__ = ["FAMILIES", "ScenarioSpec", "SimFrame", "ThermalSimulator", "parse_family", "record",
           "simulate"]


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """Everything that determines a recording. ``family`` picks the conditions (see
    :func:`parse_family`); ``None`` knobs are drawn from the seed."""

    seed: int = 0
    family: str = "summer-dry-calm-near"
    duration_s: float = 60.0
    fps: float = 4.0
    fov: str = "55x35"
    mount_height_m: float = 4.0
    tilt_deg: float | None = None
    shoreline_m: float | None = None
    start_hour: float = 22.0
    netd_k: float = 0.1
    dead_pixels: int = 2
    concrete: bool | None = None
    population: str = "auto"   # "auto": seeded episodes; "none": only ``targets``
    targets: tuple[TargetPlan, ...] = ()
    power_ups_s: tuple[float, ...] = (0.0,)

    @property
    def frame_count(self) -> int:
        return round(self.duration_s * self.fps)

    def conditions(self) -> Conditions:
        """Validate the knobs and return the family's conditions."""
        checks = (
            ("duration_s", 0 < self.duration_s <= MAX_DURATION_S, f"(0, {MAX_DURATION_S:g}] s"),
            ("fps", 0 < self.fps <= MAX_FPS, f"(0, {MAX_FPS:g}] full frames per second"),
            ("fov", self.fov in FOVS, f"one of {', '.join(FOVS)}"),
            ("mount_height_m", 0.5 <= self.mount_height_m <= 50.0, "[0.5, 50] m"),
            ("tilt_deg", self.tilt_deg is None or 0.0 < self.tilt_deg < 80.0, "(0, 80) degrees"),
            ("shoreline_m", self.shoreline_m is None or 2.0 <= self.shoreline_m <= 1000.0,
             "[2, 1000] m"),
            ("start_hour", 0.0 <= self.start_hour < 24.0, "[0, 24) hours"),
            ("netd_k", 0.0 <= self.netd_k <= 5.0, "[0, 5] K"),
            ("dead_pixels", 0 <= self.dead_pixels <= MAX_DEAD_PIXELS, f"[0, {MAX_DEAD_PIXELS}]"),
            ("population", self.population in ("auto", "none"), "'auto' or 'none'"),
            ("power_ups_s", all(0.0 <= s < self.duration_s for s in self.power_ups_s),
             "times inside the recording"),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ScenarioError(name, f"{getattr(self, name)!r} is not allowed",
                                    f"allowed: {allowed}")
        if self.frame_count < 1:
            raise ScenarioError("duration_s", "shorter than one frame")
        return parse_family(self.family)


@dataclass(frozen=True, slots=True)
class SimFrame:
    """One simulated frame: centi-degree pixels (row-major) and its ground truth."""

    index: int
    time_s: float
    valid: bool
    pixels: array[int]
    truth: FrameTruth


class ThermalSimulator:
    """The deterministic generator behind :func:`simulate` and :func:`record`."""

    def __init__(self, spec: ScenarioSpec) -> None:
        self.spec = spec
        self.cond = spec.conditions()
        hfov, vfov = FOVS[spec.fov]
        self.camera = Camera(rows=ROWS, cols=COLS, hfov_deg=hfov, vfov_deg=vfov,
                             height_m=spec.mount_height_m, tilt_deg=spec.tilt_deg)
        layout = self._stream("layout")
        self.shoreline_m = (spec.shoreline_m if spec.shoreline_m is not None
                            else layout.uniform(45.0, 60.0) if self.cond.far
                            else layout.uniform(28.0, 38.0))
        concrete = layout.random() < 0.3
        self.concrete = spec.concrete if spec.concrete is not None else concrete
        self.lag_s = 0.5 / spec.fps  # subpage 0 is read half a frame before subpage 1
        self.background = Background(self.camera, self.cond, shoreline_m=self.shoreline_m,
                                     start_hour=spec.start_hour, rng=self._stream("background"),
                                     concrete=self.concrete, subpage_lag_s=self.lag_s)
        self.sensor = Sensor(rows=ROWS, cols=COLS, fps=spec.fps, netd_k=spec.netd_k,
                             dead_pixels=spec.dead_pixels, defects_rng=self._stream("defects"),
                             noise_rng=self._stream("noise"))
        plans: list[TargetPlan] = []
        if spec.population == "auto":
            plans = Planner(self.camera, self.cond, shoreline_m=self.shoreline_m,
                            duration_s=spec.duration_s, stream=self._stream).plan()
        self.plans = plans + list(spec.targets)
        self.renderer = Renderer(self.camera)
        power = self._stream("power")
        self.power_ups = {round(s * spec.fps): (power.uniform(3.0, 8.0), power.uniform(1.0, 3.0))
                          for s in sorted(set(spec.power_ups_s))}

    def frames(self) -> Iterator[SimFrame]:
        """Generate every frame of the scene, in order."""
        fps = self.spec.fps
        since = INVALID_AFTER_POWER_UP
        settle = (0.0, 0.0)
        for n in range(self.spec.frame_count):
            if n in self.power_ups:
                since, settle = 0, self.power_ups[n]
            t = n / fps
            env = self.background.environment(t)
            scene = self.background.render(env, t)
            targets = self.renderer.render(scene, self.plans, env, t - self.lag_s, t)
            valid = since >= INVALID_AFTER_POWER_UP
            pixels = self.sensor.read(scene, since_power_up=since,
                                      settle_k=0.0 if valid else settle[min(since, 1)])
            truth = FrameTruth(frame=n, targets=tuple(targets), valid=valid,
                               time_s=round(t, 4))
            yield SimFrame(n, t, valid, pixels, truth)
            since += 1

    def metadata(self) -> dict[str, Any]:
        """Scenario and geometry facts for the sidecar (all JSON types)."""
        spec = self.spec
        cam = self.camera
        ranges = [cam.row_ground_range(r + 0.5) for r in range(cam.rows)]
        return {
            "refresh_hz": self.sensor.refresh_hz,
            "noise_k": round(self.sensor.sigma_k, 4),
            "generator": "shorewatch.sim.thermal",
            "scenario": {
                "seed": spec.seed, "family": self.cond.name, "duration_s": spec.duration_s,
                "fov": spec.fov, "start_hour": spec.start_hour, "netd_k": spec.netd_k,
                "population": spec.population, "scripted_targets": len(spec.targets),
                "power_ups_s": list(spec.power_ups_s), "shoreline_m": round(self.shoreline_m, 2),
                "wet_sand_from_m": round(self.background.wet_from_m, 2),
                "concrete": self.concrete,
            },
            "camera": {
                "hfov_deg": cam.hfov_deg, "vfov_deg": cam.vfov_deg, "height_m": cam.height_m,
                "tilt_deg": round(cam.tilt_deg, 3), "horizon_row": round(cam.horizon_row, 3),
                "row_range_m": [None if r is None else round(r, 2) for r in ranges],
            },
            "dead_pixels": [[d.row, d.col, d.centi] for d in self.sensor.dead],
        }

    def _stream(self, name: str) -> random.Random:
        # One independent, string-seeded stream per concern: adding draws to one concern
        # does not shift the others (str seeds hash with SHA-512, stable across versions).
        return random.Random(f"shorewatch-thermal:{self.spec.seed}:{name}")  # noqa: S311


def simulate(spec: ScenarioSpec) -> Iterator[SimFrame]:
    """Frames and truth of ``spec``, generated lazily."""
    return ThermalSimulator(spec).frames()


def record(spec: ScenarioSpec, prefix: str | os.PathLike[str]) -> Sidecar:
    """Write ``PREFIX.raw``, ``PREFIX.truth.jsonl`` and (last) ``PREFIX.json``."""
    sim = ThermalSimulator(spec)
    with RecordingWriter(prefix, fps=spec.fps, rows=ROWS, cols=COLS,
                         sensor=SENSOR_NAME) as writer:
        for frame in sim.frames():
            writer.write(frame.pixels, frame.truth)
        return writer.finish(sim.metadata())


def person_footprint_px(distance_m: float, fov: str = "55x35", height_m: float = 4.0
                        ) -> tuple[float, float]:
    """Image size (w, h) in pixels of a standing 0.5 x 1.7 m person at ``distance_m``."""
    hfov, vfov = FOVS[fov]
    cam = Camera(rows=ROWS, cols=COLS, hfov_deg=hfov, vfov_deg=vfov, height_m=height_m)
    return cam.footprint_px(distance_m, 0.5, 1.7)
