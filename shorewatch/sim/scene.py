"""Camera geometry and the night-beach background: sand, wet sand, sea, sky, waves, concrete.

Coordinates: ``x`` metres to the right of the camera, ``y`` metres straight ahead along the ground
(perpendicular to the shoreline), ``z`` metres up. The camera sits at ``(0, 0, height)`` and looks
along ``+y``, tilted down by ``tilt_deg``. Image coordinates are continuous: column ``c`` covers
``[c, c + 1)``, row 0 is the top. Temperatures are degrees Celsius (floats) until the sensor
quantises them.
"""

from __future__ import annotations

import cmath
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ScenarioError

# Complex refractive index of water near 10 um (Hale & Querry 1973): drives the Fresnel
# emissivity that makes water and wet sand mirror the sky at grazing angles.
WATER_INDEX = complex(1.22, 0.05)
DRY_SAND_EMISSIVITY = 0.93
DAMP_SAND_EMISSIVITY = 0.96
# Share of wet sand that behaves like a smooth water film (the rest is diffuse).
WET_SAND_SPECULAR = 0.5
# Nightly cooling time constant of surfaces towards their end-of-night temperature.
COOLING_TAU_S = 3 * 3600.0
# Night starts at 20:00 in the cooling law; the recording starts at ``start_hour``.
NIGHT_START_HOUR = 20.0

SEASONS = ("summer", "winter")
SURFACES = ("dry", "wet")
SEAS = ("calm", "windy")
RANGES = ("near", "far")


@dataclass(frozen=True, slots=True)
class Conditions:
    """The condition knobs of a scene family."""

    season: str = "summer"
    wet: bool = False
    windy: bool = False
    far: bool = False
    empty: bool = False

    @property
    def name(self) -> str:
        parts = [self.season, "wet" if self.wet else "dry", "windy" if self.windy else "calm",
                 "far" if self.far else "near"]
        if self.empty:
            parts.append("empty")
        return "-".join(parts)


def parse_family(name: str) -> Conditions:
    """``"winter-wet-windy-far"`` -> Conditions; tokens in any order, missing ones default."""
    tokens = [t for t in name.strip().lower().replace("_", "-").split("-") if t]
    picked: dict[str, str] = {}
    for token in tokens:
        for group, choices in (("season", SEASONS), ("surface", SURFACES), ("sea", SEAS),
                               ("range", RANGES), ("empty", ("empty",))):
            if token in choices:
                if group in picked and picked[group] != token:
                    raise ScenarioError("family", f"{name!r} has both {picked[group]!r} and "
                                        f"{token!r}")
                picked[group] = token
                break
        else:
            raise ScenarioError("family", f"unknown token {token!r} in {name!r}",
                                "tokens: summer|winter, dry|wet, calm|windy, near|far, empty")
    return Conditions(season=picked.get("season", "summer"), wet=picked.get("surface") == "wet",
                      windy=picked.get("sea") == "windy", far=picked.get("range") == "far",
                      empty="empty" in picked)


FAMILIES: tuple[str, ...] = tuple(
    Conditions(season, surface == "wet", sea == "windy", rng == "far", empty).name
    for empty in (False, True) for season in SEASONS for surface in SURFACES
    for sea in SEAS for rng in RANGES)


class Camera:
    """Pinhole camera on a pole: projection of world points and range per pixel row."""

    def __init__(self, *, rows: int = 24, cols: int = 32, hfov_deg: float = 55.0,
                 vfov_deg: float = 35.0, height_m: float = 4.0,
                 tilt_deg: float | None = None) -> None:
        self.rows = rows
        self.cols = cols
        self.hfov_deg = hfov_deg
        self.vfov_deg = vfov_deg
        self.height_m = height_m
        self.fx = (cols / 2) / math.tan(math.radians(hfov_deg) / 2)
        self.fy = (rows / 2) / math.tan(math.radians(vfov_deg) / 2)
        if tilt_deg is None:
            # Default: the horizon one sixth of the frame below the top edge (sky in view,
            # most rows on the beach).
            tilt_deg = math.degrees(math.atan((rows / 2 - rows / 6) / self.fy))
        self.tilt_deg = tilt_deg
        self.tilt = math.radians(tilt_deg)
        self._cos = math.cos(self.tilt)
        self._sin = math.sin(self.tilt)

    @property
    def horizon_row(self) -> float:
        """Continuous image row of the horizon (smaller is higher)."""
        return self.rows / 2 - math.tan(self.tilt) * self.fy

    def project(self, x: float, y: float, z: float) -> tuple[float, float] | None:
        """World point -> continuous image ``(col, row)``; None when behind the camera."""
        dz = z - self.height_m
        depth = y * self._cos - dz * self._sin
        if depth < 0.05:
            return None
        up = y * self._sin + dz * self._cos
        return self.cols / 2 + self.fx * x / depth, self.rows / 2 - self.fy * up / depth

    def box_rect(self, x: float, y: float, width: float, depth: float, height: float, *,
                 z0: float = 0.0) -> tuple[float, float, float, float] | None:
        """Image bounding rectangle ``(left, top, right, bottom)`` of an axis-aligned box
        centred on ``(x, y)``, from ``z0`` to ``z0 + height``; None if any corner is behind."""
        left = top = math.inf
        right = bottom = -math.inf
        for px in (x - width / 2, x + width / 2):
            for py in (y - depth / 2, y + depth / 2):
                for pz in (z0, z0 + height):
                    point = self.project(px, py, pz)
                    if point is None:
                        return None
                    left = min(left, point[0])
                    right = max(right, point[0])
                    top = min(top, point[1])
                    bottom = max(bottom, point[1])
        return left, top, right, bottom

    def row_tangent(self, row: float) -> float:
        """Tangent of the angle above the optical axis of continuous image row ``row``."""
        return (self.rows / 2 - row) / self.fy

    def depression(self, row: float) -> float:
        """Angle below the horizontal (radians) of the ray through image row ``row``."""
        return self.tilt - math.atan(self.row_tangent(row))

    def row_ground_range(self, row: float) -> float | None:
        """Ground distance ``y`` seen at continuous row ``row``; None above the horizon."""
        delta = self.depression(row)
        if delta <= 0:
            return None
        return self.height_m / math.tan(delta)

    def row_of_range(self, distance: float) -> float:
        """Continuous image row where the ground at ``distance`` metres appears."""
        delta = math.atan2(self.height_m, distance)
        return self.rows / 2 - math.tan(self.tilt - delta) * self.fy

    def half_width_at(self, distance: float) -> float:
        """Half the ground width in view (metres) at ground distance ``distance``."""
        depth = distance * self._cos + self.height_m * self._sin
        return (self.cols / 2) / self.fx * depth

    def ground_point(self, col: float, row: float) -> tuple[float, float] | None:
        """Ground ``(x, y)`` seen at a continuous image point; None above the horizon."""
        v = self.row_tangent(row)
        u = (col - self.cols / 2) / self.fx
        down = self._sin - v * self._cos
        if down <= 0:
            return None
        scale = self.height_m / down
        return u * scale, (self._cos + v * self._sin) * scale

    def footprint_px(self, distance: float, width: float, height: float) -> tuple[float, float]:
        """Image size ``(w, h)`` in pixels of an upright ``width x height`` box at ``distance``."""
        rect = self.box_rect(0.0, distance, width, 0.0, height)
        if rect is None:
            return 0.0, 0.0
        return rect[2] - rect[0], rect[3] - rect[1]


def water_emissivity(incidence: float) -> float:
    """Emissivity of a smooth water surface at ``incidence`` radians from the normal (Fresnel)."""
    incidence = min(max(incidence, 0.0), math.pi / 2)
    c = math.cos(incidence)
    s = math.sin(incidence)
    n = WATER_INDEX
    ct = cmath.sqrt(1 - (s / n) ** 2)
    rs = (c - n * ct) / (c + n * ct)
    rp = (n * c - ct) / (n * c + ct)
    return 1.0 - (abs(rs) ** 2 + abs(rp) ** 2) / 2


@dataclass(frozen=True, slots=True)
class Season:
    """Night temperatures (Celsius) at the start (20:00) and end (06:00) of a night."""

    name: str
    air: tuple[float, float]
    sea: float
    dry_sand: tuple[float, float]   # clear-sky night; clouds keep it near the air
    wet_sand: tuple[float, float]


SUMMER = Season("summer", air=(17.0, 14.0), sea=18.5, dry_sand=(19.5, 12.5),
                wet_sand=(17.5, 15.5))
# In winter the sea is warmer than the air (REFERENCE.md, "Devices: physics and power").
WINTER = Season("winter", air=(5.0, 2.5), sea=9.0, dry_sand=(5.0, 0.0), wet_sand=(6.5, 5.5))


@dataclass(frozen=True, slots=True)
class Environment:
    """Slowly varying scene temperatures at one instant (Celsius)."""

    air: float
    sea: float
    dry: float
    wet: float
    reference: float   # apparent beach temperature at 10 m: what people are warmer than
    shoreline_m: float


class Background:
    """Per-pixel background temperatures: geometry-derived zones, drift, cooling, waves."""

    def __init__(self, camera: Camera, cond: Conditions, *, shoreline_m: float,
                 start_hour: float, rng: random.Random, concrete: bool,
                 subpage_lag_s: float = 0.0) -> None:
        self.camera = camera
        self.cond = cond
        self.subpage_lag_s = subpage_lag_s
        self.season = WINTER if cond.season == "winter" else SUMMER
        self.cloud = 0.9 if cond.wet else 0.1
        self.shoreline_m = shoreline_m
        # Wet families: drizzle has dampened the whole beach; dry ones: only the intertidal strip.
        self.wet_from_m = 0.0 if cond.wet else max(shoreline_m - rng.uniform(12.0, 20.0), 1.0)
        self.start_s = (start_hour - NIGHT_START_HOUR) % 24 * 3600.0
        self.roughness = math.radians(8.0 if cond.windy else 3.0)
        self.runup_m = rng.uniform(2.5, 5.0) if cond.windy else rng.uniform(0.2, 0.8)
        self.wave_period_s = rng.uniform(4.5, 6.5) if cond.windy else rng.uniform(8.0, 12.0)
        self.wavelength_m = rng.uniform(14.0, 22.0) if cond.windy else rng.uniform(22.0, 35.0)
        self.surf_m = rng.uniform(20.0, 35.0) if cond.windy else rng.uniform(2.0, 5.0)
        self.foam_cover = 0.8 if cond.windy else 0.3
        self.slope = math.radians(6.0 if cond.windy else 2.0)
        self._swash_phase = rng.uniform(0, 2 * math.pi)
        self._drift = {name: [(rng.uniform(0.05, 0.2) * (0.3 if name == "sea" else 1.0),
                               rng.uniform(900.0, 3600.0), rng.uniform(0, 2 * math.pi))
                              for _ in range(2)] for name in ("air", "sea", "dry", "wet")}
        n = camera.rows * camera.cols
        self.row_of = [i // camera.cols for i in range(n)]
        self.texture = self._texture(rng)
        self._coeff_cache: dict[int, list[tuple[float, float, float, float, float, float]]] = {}
        self._setup_waves(rng)
        self.concrete_cover: list[tuple[int, float]] = []
        self.concrete_excess_k = rng.uniform(3.0, 6.0)
        if concrete:
            self._setup_concrete(rng)

    # --- public -------------------------------------------------------------------------

    def environment(self, t: float) -> Environment:
        """Scene temperatures ``t`` seconds after the recording started."""
        night_s = self.start_s + t
        cool = math.exp(-night_s / COOLING_TAU_S)
        s = self.season
        air = s.air[1] + (s.air[0] - s.air[1]) * cool + self._wobble("air", t)
        # Clouds stop radiative cooling: dry sand then ends the night just under the air.
        dry_end = s.dry_sand[1] * (1 - self.cloud) + (s.air[1] - 0.5) * self.cloud
        dry = dry_end + (s.dry_sand[0] - dry_end) * cool + self._wobble("dry", t)
        wet = s.wet_sand[1] + (s.wet_sand[0] - s.wet_sand[1]) * cool + self._wobble("wet", t)
        sea = s.sea + self._wobble("sea", t)
        shore = self.shoreline_m - self.runup_m * max(
            0.0, math.sin(2 * math.pi * t / self.wave_period_s + self._swash_phase))
        zone = self._zone_temperature(10.0, air=air, dry=dry, wet=wet, sea=sea, shore=shore)
        return Environment(air=air, sea=sea, dry=dry, wet=wet, reference=zone, shoreline_m=shore)

    def sky(self, elevation: float, air: float) -> float:
        """Apparent sky temperature at ``elevation`` radians above the horizon."""
        return air - self._sky_depression(elevation)

    def render(self, env: Environment, t: float) -> list[float]:
        """The background of one frame, one float per pixel (row-major)."""
        coeffs = self._row_coefficients(env.shoreline_m)
        base = [ka * env.air + kd * env.dry + kw * env.wet + ks * env.sea + k0
                for ka, kd, kw, ks, k0, _ in coeffs]
        scene = [base[r] + tx for r, tx in zip(self.row_of, self.texture, strict=True)]
        self._add_waves(scene, coeffs, t, env)
        if self.concrete_cover:
            hot = (0.92 * (env.air + self.concrete_excess_k * (0.6 + 0.4 * math.exp(
                -(self.start_s + t) / (4 * 3600.0)))) + 0.08 * self.sky(math.radians(45), env.air))
            for i, cover in self.concrete_cover:
                scene[i] += cover * (hot - scene[i])
        return scene

    def zone_at(self, distance: float) -> str:
        """Which surface lies at ground distance ``distance`` (without swash)."""
        if distance >= self.shoreline_m:
            return "sea"
        return "wet" if distance >= self.wet_from_m else "dry"

    # --- private ------------------------------------------------------------------------

    def _wobble(self, name: str, t: float) -> float:
        return sum(a * math.sin(2 * math.pi * t / p + ph) for a, p, ph in self._drift[name])

    def _sky_depression(self, elevation: float) -> float:
        # Clear LWIR sky: a few K under the air at the horizon, ~40 K under it overhead;
        # overcast: a low, warm cloud base close to the air temperature (assumed figures).
        horizon = 3.0 * (1 - self.cloud) + 1.0 * self.cloud
        zenith = 40.0 * (1 - self.cloud) + 5.0 * self.cloud
        e = max(elevation, 0.0)
        return horizon + (zenith - horizon) * (1 - math.exp(-math.degrees(e) / 15.0))

    def _surface(self, zone: str, delta: float) -> tuple[float, float, float, float, float]:
        """Linear law of the apparent temperature seen at depression ``delta`` over ``zone``:
        coefficients of (air, dry, wet, sea, constant)."""
        incidence = math.pi / 2 - delta
        if zone == "sky":
            return 1.0, 0.0, 0.0, 0.0, -self._sky_depression(-delta)
        if zone == "dry":
            eps = DRY_SAND_EMISSIVITY
            reflected = -self._sky_depression(math.radians(45))
            return 1 - eps, eps, 0.0, 0.0, (1 - eps) * reflected
        # Facets of a rough surface that face the camera are seen less obliquely.
        film = water_emissivity(incidence - self.roughness)
        reflected = -self._sky_depression(delta)
        if zone == "wet":
            eps = WET_SAND_SPECULAR * film + (1 - WET_SAND_SPECULAR) * DAMP_SAND_EMISSIVITY
            return 1 - eps, 0.0, eps, 0.0, (1 - eps) * reflected
        return 1 - film, 0.0, 0.0, film, (1 - film) * reflected

    def _zone_temperature(self, distance: float, *, air: float, dry: float, wet: float,
                          sea: float, shore: float) -> float:
        zone = "sea" if distance >= shore else ("wet" if distance >= self.wet_from_m else "dry")
        ka, kd, kw, ks, k0 = self._surface(zone, math.atan2(self.camera.height_m, distance))
        return ka * air + kd * dry + kw * wet + ks * sea + k0

    def _row_coefficients(self, shore: float
                          ) -> list[tuple[float, float, float, float, float, float]]:
        """Per row: (air, dry, wet, sea, constant, sea fraction), mixing the zones the row
        covers by their share of the row's angular extent. Cached per 5 cm of shoreline."""
        key = round(shore * 20)
        cached = self._coeff_cache.get(key)
        if cached is not None:
            return cached
        cam = self.camera
        edges = [("dry", -math.inf), ("wet", self._tangent_of(self.wet_from_m)),
                 ("sea", self._tangent_of(shore)), ("sky", math.tan(cam.tilt)), ("", math.inf)]
        rows = []
        for r in range(cam.rows):
            top, bottom = cam.row_tangent(r), cam.row_tangent(r + 1)
            acc = [0.0] * 6
            for (zone, lo), (_, hi) in itertools.pairwise(edges):
                a, b = max(lo, bottom), min(hi, top)
                if b <= a:
                    continue
                frac = (b - a) / (top - bottom)
                delta = cam.tilt - math.atan((a + b) / 2)
                for k, c in enumerate(self._surface(zone, delta)):
                    acc[k] += frac * c
                if zone == "sea":
                    acc[5] += frac
            rows.append((acc[0], acc[1], acc[2], acc[3], acc[4], acc[5]))
        if len(self._coeff_cache) > 512:  # swash keeps the key set small; cap it anyway
            self._coeff_cache.clear()
        self._coeff_cache[key] = rows
        return rows

    def _tangent_of(self, distance: float) -> float:
        if distance <= 0:
            return -math.inf
        return math.tan(self.camera.tilt - math.atan2(self.camera.height_m, distance))

    def _texture(self, rng: random.Random) -> list[float]:
        cam = self.camera
        horizon = cam.horizon_row
        out = []
        for i in range(cam.rows * cam.cols):
            r = i // cam.cols
            # Footprints, ripples and seaweed: a fixed ~0.1 K pattern on the ground only.
            out.append(rng.gauss(0.0, 0.1) if r + 0.5 > horizon else 0.0)
        return out

    def _setup_waves(self, rng: random.Random) -> None:
        """Per sea pixel: spatial phase, streak amplitude per K of water-sky contrast, foam."""
        cam = self.camera
        k = 2 * math.pi / self.wavelength_m
        bends = [(rng.uniform(1.0, 4.0), rng.uniform(15.0, 60.0), rng.uniform(0, 2 * math.pi))
                 for _ in range(2)]
        self.wave_omega = 2 * math.pi / self.wave_period_s
        self.wave_pixels: list[tuple[int, int, float, float, float]] = []
        self.wave_sky = [0.0] * cam.rows
        far_row = cam.horizon_row
        for r in range(cam.rows):
            d_near = cam.row_ground_range(r + 1)
            d_far = cam.row_ground_range(r) if r > far_row else None
            if d_near is None or d_near < self.shoreline_m - self.runup_m - 1:
                continue
            d_mid = cam.row_ground_range(r + 0.5) or d_near * 4
            footprint = (d_far if d_far is not None else d_near * 4) - d_near
            # A row that spans many wavelengths averages the streaks away.
            average = 1 / math.sqrt(1 + (footprint / self.wavelength_m) ** 2)
            delta = math.atan2(cam.height_m, d_mid)
            incidence = math.pi / 2 - delta
            toward = water_emissivity(incidence - self.roughness - self.slope)
            away = water_emissivity(incidence - self.roughness + self.slope)
            # Half again: a pixel also averages facets of different tilt along the crest.
            streak = abs(toward - away) / 4 * average
            base_eps = water_emissivity(incidence - self.roughness)
            # Foam has an emissivity near 1: it shows the water temperature, not the sky.
            foam = (1 - base_eps) * self.foam_cover if d_mid - self.shoreline_m < self.surf_m \
                else 0.0
            self.wave_sky[r] = self._sky_depression(delta)
            for c in range(cam.cols):
                x = (c + 0.5 - cam.cols / 2) / cam.fx * (d_mid * cam._cos
                                                          + cam.height_m * cam._sin)
                bend = sum(a * math.sin(2 * math.pi * x / w + ph) for a, w, ph in bends)
                phase = k * (d_mid + bend)
                if (r + c) % 2 == 0:  # subpage 0 is read half a frame earlier (see sensor)
                    phase -= self.wave_omega * self.subpage_lag_s
                self.wave_pixels.append((r * cam.cols + c, r, phase, streak, foam))

    def _add_waves(self, scene: list[float], coeffs: Sequence[tuple[float, ...]], t: float,
                   env: Environment) -> None:
        """Moving streaks (facet tilt changes the sky reflection) and warm foam in the surf."""
        wt = self.wave_omega * t
        sin = math.sin
        # Water-minus-reflected-sky contrast per row, weighted by the row's share of sea.
        sea_air = env.sea - env.air
        gain = [c[5] * (sea_air + sky) for c, sky in zip(coeffs, self.wave_sky, strict=True)]
        for i, r, phase, streak, foam in self.wave_pixels:
            g = gain[r]
            if g == 0.0:
                continue
            wave = sin(phase + wt)
            value = streak * wave
            if wave > 0.55:
                value += foam * (wave - 0.55) / 0.45
            scene[i] += g * value

    def _setup_concrete(self, rng: random.Random) -> None:
        """A warm slipway or promenade slab on the ground, as per-pixel cover fractions."""
        cam = self.camera
        y0 = rng.uniform(6.0, 12.0)
        y1 = y0 + rng.uniform(2.0, 4.0)
        half = cam.half_width_at(y0)
        x0 = rng.uniform(-half, half * 0.5)
        x1 = x0 + rng.uniform(3.0, 8.0)
        steps = 4
        for i in range(cam.rows * cam.cols):
            r, c = divmod(i, cam.cols)
            hits = 0
            for sr in range(steps):
                for sc in range(steps):
                    point = cam.ground_point(c + (sc + 0.5) / steps, r + (sr + 0.5) / steps)
                    if point is not None and x0 <= point[0] <= x1 and y0 <= point[1] <= y1:
                        hits += 1
            if hits:
                self.concrete_cover.append((i, hits / steps**2))
