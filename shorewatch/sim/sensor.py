"""MLX90640-class sensor model: noise, fixed pattern, vignetting, dead pixels, power-up, quantising.

The scene arrives as floats in Celsius; the sensor returns ``array('h')`` of centi-degrees, the
recording format's unit. Subpage timing (chess pattern) is applied upstream by rendering each
pixel at its subpage's read time; this module only knows which pixels belong to which subpage.
"""

from __future__ import annotations

import math
import random
from array import array
from dataclasses import dataclass

# The MLX90640 measures -40..300 C (datasheet range); readings saturate there.
MIN_CENTI = -4000
MAX_CENTI = 30000
# Noise is drawn from a pool of pre-scaled Gaussian samples at a random offset per frame:
# 64 Ki samples keep per-pixel statistics Gaussian at a fraction of the per-pixel gauss() cost.
NOISE_POOL = 1 << 16
# Datasheets quote NETD at a refresh (subpage) rate; a full chess frame takes two subpages.
NETD_REFERENCE_HZ = 1.0
# The Melexis driver reserves room for 4 broken + 4 outlier pixels; more would fail calibration.
MAX_DEAD_PIXELS = 8


@dataclass(frozen=True, slots=True)
class DeadPixel:
    """A defective pixel that reads one fixed value whatever the scene."""

    row: int
    col: int
    centi: int


class Sensor:
    """Turns a float scene into one quantised frame, with the defects of a real array."""

    def __init__(self, *, rows: int, cols: int, fps: float, netd_k: float, dead_pixels: int,
                 defects_rng: random.Random, noise_rng: random.Random,
                 vignetting_k: float = -0.4, fixed_pattern_k: float = 0.05,
                 subpage_offset_k: float = 0.04) -> None:
        self.rows = rows
        self.cols = cols
        self.refresh_hz = 2.0 * fps
        self.sigma_k = netd_k * math.sqrt(self.refresh_hz / NETD_REFERENCE_HZ)
        n = rows * cols
        self.parity = [((i // cols) + (i % cols)) % 2 for i in range(n)]
        # Fixed per-pixel offsets in centi-degrees: calibration residual, lens vignetting
        # (radial, strongest in the corners) and a small offset between the two subpages.
        static = []
        for i in range(n):
            r, c = divmod(i, cols)
            dy = (r + 0.5 - rows / 2) / (rows / 2)
            dx = (c + 0.5 - cols / 2) / (cols / 2)
            radial = (dx * dx + dy * dy) / 2
            offset = (defects_rng.gauss(0.0, fixed_pattern_k) + vignetting_k * radial
                      + (subpage_offset_k if self.parity[i] else -subpage_offset_k) / 2)
            static.append(offset * 100.0)
        self.static_centi = static
        self.dead = self._dead_pixels(defects_rng, min(dead_pixels, MAX_DEAD_PIXELS))
        sigma_c = self.sigma_k * 100.0
        pool = [noise_rng.gauss(0.0, sigma_c) for _ in range(NOISE_POOL)]
        self._pool = pool + pool[:n]
        self._noise_rng = noise_rng
        self._n = n

    def read(self, scene: list[float], *, since_power_up: int, settle_k: float = 0.0
             ) -> array[int]:
        """One frame of centi-degrees. ``since_power_up`` 0 and 1 give the invalid first frames:
        frame 0 holds only subpage 0 (subpage 1 RAM still zero), both carry a settling offset."""
        start = int(self._noise_rng.random() * NOISE_POOL)
        noise = self._pool[start:start + self._n]
        drift = settle_k * 100.0
        values = [round(s * 100.0 + a + z + drift)
                  for s, a, z in zip(scene, self.static_centi, noise, strict=True)]
        if since_power_up == 0:
            for i, p in enumerate(self.parity):
                if p:
                    values[i] = 0
        for dead in self.dead:
            values[dead.row * self.cols + dead.col] = dead.centi
        if min(values) < MIN_CENTI or max(values) > MAX_CENTI:
            values = [MIN_CENTI if v < MIN_CENTI else MAX_CENTI if v > MAX_CENTI else v
                      for v in values]
        return array("h", values)

    def _dead_pixels(self, rng: random.Random, count: int) -> tuple[DeadPixel, ...]:
        chosen: list[DeadPixel] = []
        while len(chosen) < count:
            r = int(rng.random() * self.rows)
            c = int(rng.random() * self.cols)
            # Defective pixels are never neighbours (the driver could not interpolate them).
            if any(abs(d.row - r) <= 1 and abs(d.col - c) <= 1 for d in chosen):
                continue
            stuck = rng.choice((MIN_CENTI, 0, int(rng.uniform(-2000, 6000))))
            chosen.append(DeadPixel(r, c, stuck))
        return tuple(chosen)
