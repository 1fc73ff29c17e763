"""Who and what shows up on the beach during a scene: seeded episodes per kind of target.

Every kind draws from its own random stream, so two families with the same seed share their
trajectories (a wet and a dry night differ in warmth, not in where people walk), and an empty
night has the same gulls and dogs as the busy night of the same seed.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

from .scene import Camera, Conditions
from .targets import (
    Heat,
    Part,
    TargetPlan,
    boat,
    dog,
    engine,
    fire,
    gull,
    person_parts,
    vehicle,
)

# Mean gap (seconds) between episodes of each kind on a busy night; ``None``: not on empty nights.
BUSY_GAPS_S = {"walker": 75.0, "static": 300.0, "group": 360.0, "boat": 1200.0,
               "vehicle": 1800.0, "dog": 480.0, "gull": 90.0}
EMPTY_GAPS_S = {"dog": 480.0, "gull": 60.0}
# Chance that a scene holds a beach fire or a warm outboard engine all night.
FIRE_CHANCE = 0.15
ENGINE_CHANCE = 0.15
# Ground distances (m) where people are placed in near and far families.
NEAR_BAND_M = (6.0, 20.0)
FAR_BAND_M = (15.0, 45.0)

Stream = Callable[[str], random.Random]


class Planner:
    """Draws the target plans of one scene."""

    def __init__(self, camera: Camera, cond: Conditions, *, shoreline_m: float,
                 duration_s: float, stream: Stream) -> None:
        self.cam = camera
        self.cond = cond
        self.shore = shoreline_m
        self.duration = duration_s
        self.stream = stream
        lo, hi = FAR_BAND_M if cond.far else NEAR_BAND_M
        self.band = (lo, min(hi, shoreline_m - 0.5))
        self.bottom_m = camera.row_ground_range(camera.rows) or 1.0
        self._counters: dict[str, int] = {}

    def plan(self) -> list[TargetPlan]:
        """All plans of the scene, in a deterministic order."""
        plans: list[TargetPlan] = []
        gaps = EMPTY_GAPS_S if self.cond.empty else BUSY_GAPS_S
        makers: dict[str, Callable[[random.Random, float], list[TargetPlan]]] = {
            "walker": self._walker, "static": self._static, "group": self._group,
            "boat": self._boat, "vehicle": self._vehicle, "dog": self._dog, "gull": self._gull}
        for kind, make in makers.items():
            if kind not in gaps:
                continue
            rng = self.stream(f"plan:{kind}")
            # Short scenes still show something: a walker (busy) or a gull (empty) early on.
            guaranteed = (kind == "walker") or (self.cond.empty and kind == "gull")
            t = rng.uniform(1.0, 4.0) if guaranteed else rng.uniform(0.0, gaps[kind])
            while t < self.duration:
                plans.extend(make(rng, t))
                t += rng.expovariate(1.0 / gaps[kind])
        rng = self.stream("plan:static-heat")
        if rng.random() < FIRE_CHANCE:
            x, y = self._spot(rng)
            plans.append(fire(self._id("f"), x, y, self.duration, rng.uniform(150.0, 300.0)))
        if rng.random() < ENGINE_CHANCE:
            x, y = self._spot(rng)
            plans.append(engine(self._id("e"), x, y, self.duration,
                                excess_k=rng.uniform(20.0, 35.0)))
        return plans

    # --- helpers ---------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self._counters[prefix] = self._counters.get(prefix, 0) + 1
        return f"{prefix}{self._counters[prefix]}"

    def _contrast(self, rng: random.Random) -> float:
        # REFERENCE.md: a clothed person is ~3-6 K above the beach at night, 1-2 K when wet.
        return rng.uniform(1.0, 2.0) if self.cond.wet else rng.uniform(3.0, 6.0)

    @property
    def _head_k(self) -> float:
        return 0.0 if self.cond.wet else 4.0  # hoods up in the rain

    def _edge(self, y: float, margin: float = 1.0) -> float:
        return self.cam.half_width_at(max(y, 0.5)) + margin

    def _spot(self, rng: random.Random) -> tuple[float, float]:
        y = rng.uniform(max(self.band[0], 8.0), max(min(30.0, self.shore - 2.0), 9.0))
        return rng.uniform(-0.6, 0.6) * self._edge(y, 0.0), y

    def _clamp_y(self, y: float) -> float:
        return min(max(y, self.bottom_m - 1.0), self.shore + 1.0)

    # --- episode makers ------------------------------------------------------------------

    def _walker(self, rng: random.Random, t0: float) -> list[TargetPlan]:
        running = rng.random() < 0.2
        speed = rng.uniform(2.5, 4.5) if running else rng.uniform(1.0, 1.6)
        pose = "running" if running else "walking"
        lo, hi = self.band
        side = 1.0 if rng.random() < 0.5 else -1.0
        if rng.random() < 0.3:
            # In from the side at the far end of the band, then down the beach towards the
            # camera until the bottom edge cuts the person off (or the same path reversed).
            y_far = rng.uniform((lo + hi) / 2, hi)
            x0 = rng.uniform(-0.5, 0.5) * self._edge(y_far, 0.0)
            path = [(side * self._edge(y_far), y_far), (x0, y_far),
                    (x0 + rng.uniform(-3.0, 3.0), self.bottom_m - 2.0)]
            if rng.random() < 0.5:
                path.reverse()
        else:
            y = rng.uniform(lo, hi)
            y1 = self._clamp_y(y + rng.uniform(-3.0, 3.0))
            mid = (rng.uniform(-0.3, 0.3) * self._edge(y, 0.0),
                   self._clamp_y((y + y1) / 2 + rng.uniform(-1.5, 1.5)))
            path = [(-side * self._edge(y), y), mid, (side * self._edge(y1), y1)]
        parts = person_parts(pose, self._contrast(rng), head_k=self._head_k)
        return [TargetPlan.along(self._id("p"), "person", self._timed(t0, path, speed), parts)]

    def _static(self, rng: random.Random, t0: float) -> list[TargetPlan]:
        """Walk in, crouch or lie down for a while, get up and walk out."""
        pose = "crouching" if rng.random() < 0.5 else "lying"
        y = rng.uniform(*self.band)
        x = rng.uniform(-0.6, 0.6) * self._edge(y, 0.0)
        d = 1.0 if rng.random() < 0.5 else -1.0
        speed = rng.uniform(1.0, 1.5)
        x_in = -d * self._edge(y)
        t1 = t0 + abs(x - x_in) / speed
        t2 = t1 + rng.uniform(20.0, 120.0)
        t3 = t2 + abs(d * self._edge(y) - x) / speed
        contrast = self._contrast(rng)
        parts = (person_parts("walking", contrast, head_k=self._head_k, end_s=t1)
                 + person_parts(pose, contrast, head_k=self._head_k, start_s=t1, end_s=t2)
                 + person_parts("walking", contrast, head_k=self._head_k, start_s=t2))
        points = [(t0, x_in, y), (t1, x, y), (t2, x, y), (t3, d * self._edge(y), y)]
        return [TargetPlan.along(self._id("p"), "person", points, parts)]

    def _group(self, rng: random.Random, t0: float) -> list[TargetPlan]:
        """2-5 people arrive from different sides, stand together, then leave one by one:
        the camera sees blobs merge into a group and split again."""
        n = int(rng.uniform(2, 6))
        y = rng.uniform(*self.band)
        xm = rng.uniform(-0.4, 0.4) * self._edge(y, 0.0)
        legs = []
        for k in range(n):
            spot = (xm + (k - (n - 1) / 2) * 0.6, self._clamp_y(y + rng.uniform(-0.4, 0.4)))
            y_in = self._clamp_y(y + rng.uniform(-4.0, 4.0))
            entry = ((1.0 if rng.random() < 0.5 else -1.0) * self._edge(y_in), y_in)
            y_out = self._clamp_y(y + rng.uniform(-4.0, 4.0))
            exit_ = ((1.0 if rng.random() < 0.5 else -1.0) * self._edge(y_out), y_out)
            start = t0 + rng.uniform(0.0, 6.0)
            speed = rng.uniform(1.0, 1.5)
            legs.append((entry, spot, exit_, start, start + math.dist(entry, spot) / speed, speed))
        together = max(leg[4] for leg in legs)
        leave = together + rng.uniform(10.0, 60.0)
        plans = []
        for entry, spot, exit_, start, arrive, speed in legs:
            go = leave + rng.uniform(0.0, 8.0)
            contrast = self._contrast(rng)
            parts = (person_parts("walking", contrast, head_k=self._head_k, end_s=arrive)
                     + person_parts("standing", contrast, head_k=self._head_k, start_s=arrive,
                                    end_s=go)
                     + person_parts("walking", contrast, head_k=self._head_k, start_s=go))
            points = [(start, *entry), (arrive, *spot), (go, *spot),
                      (go + math.dist(spot, exit_) / speed, *exit_)]
            plans.append(TargetPlan.along(self._id("p"), "person", points, parts))
        return plans

    def _boat(self, rng: random.Random, t0: float) -> list[TargetPlan]:
        """A boat comes in from the sea, lands, and its people walk up the beach."""
        ident = self._id("b")
        x_land = rng.uniform(-0.6, 0.6) * self._edge(self.shore, 0.0)
        y_land = self.shore + 3.0  # hull centre: the bow touches the water's edge
        start = (x_land + rng.uniform(-20.0, 20.0), self.shore + rng.uniform(60.0, 150.0))
        t_land = t0 + math.dist(start, (x_land, y_land)) / rng.uniform(1.5, 3.5)
        t = t_land + rng.uniform(5.0, 20.0)
        people = []
        for _ in range(int(rng.uniform(4, 11))):
            speed = rng.uniform(1.2, 2.6)
            pose = "running" if speed > 2.2 else "walking"
            a = (x_land + rng.uniform(-1.0, 1.0), self.shore - rng.uniform(0.0, 1.0))
            if rng.random() < 0.7:
                b = (a[0] + rng.uniform(-8.0, 8.0), self.bottom_m - 2.0)
            else:
                side = 1.0 if rng.random() < 0.5 else -1.0
                yb = rng.uniform(self.bottom_m + 2.0, self.shore - 2.0)
                b = (side * self._edge(yb, 2.0), yb)
            parts = person_parts(pose, self._contrast(rng), head_k=self._head_k)
            people.append(TargetPlan.along(self._id(f"{ident}p"), "person",
                                           [(t, *a), (t + math.dist(a, b) / speed, *b)], parts))
            t += rng.uniform(1.0, 3.0)
        last_off = people[-1].start_s
        hull = boat(ident, [(t0, *start), (t_land, x_land, y_land),
                            (max(self.duration, last_off) + 1.0, x_land, y_land)],
                    land_s=t_land, disembark_s=last_off, occupants_k=self._contrast(rng),
                    hull_k=-rng.uniform(0.5, 2.0), engine_k=rng.uniform(25.0, 45.0))
        return [hull, *people]

    def _timed(self, t0: float, path: list[tuple[float, float]], speed: float
               ) -> list[tuple[float, float, float]]:
        """Waypoints at walking ``speed`` along ``path`` starting at ``t0``."""
        out = [(t0, *path[0])]
        for a, b in itertools.pairwise(path):
            out.append((out[-1][0] + math.dist(a, b) / speed, *b))
        return out

    def _vehicle(self, rng: random.Random, t0: float) -> list[TargetPlan]:
        y = rng.uniform(self.band[0], max(self.band[0], self.shore - 4.0))
        d = 1.0 if rng.random() < 0.5 else -1.0
        edge = self._edge(y, 4.0)
        dur = 2 * edge / rng.uniform(3.0, 8.0)
        return [vehicle(self._id("v"), [(t0, -d * edge, y), (t0 + dur, d * edge, y)], d,
                        body_k=rng.uniform(2.0, 5.0), hood_k=rng.uniform(15.0, 30.0))]

    def _dog(self, rng: random.Random, t0: float) -> list[TargetPlan]:
        """A dog running about: short straight dashes, then off the side of the view."""
        y = rng.uniform(self.band[0], self.shore)
        d = 1.0 if rng.random() < 0.5 else -1.0
        x = -d * self._edge(y)
        t = t0
        points = [(t, x, y)]
        end = t0 + rng.uniform(15.0, 60.0)
        while t < end:
            dt = rng.uniform(1.0, 2.5)
            step = rng.uniform(2.0, 6.0) * dt
            heading = rng.uniform(-math.pi, math.pi)
            x = min(max(x + step * math.cos(heading) + d * 1.5, -self._edge(y)), self._edge(y))
            y = self._clamp_y(y + step * math.sin(heading))
            t += dt
            points.append((t, x, y))
        points.append((t + self._edge(y, 2.0) / 4.0, d * self._edge(y, 2.0), y))
        warm = rng.uniform(2.0, 4.0) if self.cond.wet else rng.uniform(4.0, 8.0)
        return [dog(self._id("d"), points, warm)]

    def _gull(self, rng: random.Random, t0: float) -> list[TargetPlan]:
        """A gull crossing the view in a second or two, sometimes landing for a few seconds."""
        y = rng.uniform(6.0, 40.0)
        d = 1.0 if rng.random() < 0.5 else -1.0
        speed = rng.uniform(8.0, 14.0)
        edge = self._edge(y)
        warm = rng.uniform(0.5, 2.0) if self.cond.wet else rng.uniform(1.5, 4.0)
        alt = rng.uniform(2.0, 10.0)
        ident = self._id("s")
        if rng.random() >= 0.3:
            return [gull(ident, [(t0, -d * edge, y, alt), (t0 + 2 * edge / speed, d * edge, y,
                                                          alt)], warm)]
        x = rng.uniform(-0.5, 0.5) * self._edge(y, 0.0)
        t1 = t0 + abs(x + d * edge) / speed + 0.5
        t2 = t1 + rng.uniform(2.0, 6.0)
        t3 = t2 + abs(d * edge - x) / speed + 0.5
        flying = Part(1.1, 0.4, 0.12, Heat.BODY, warm, end_s=t1)
        standing = Part(0.25, 0.45, 0.3, Heat.BODY, warm, start_s=t1, end_s=t2)
        leaving = Part(1.1, 0.4, 0.12, Heat.BODY, warm, start_s=t2)
        return [TargetPlan.along(ident, "gull", [(t0, -d * edge, y, alt), (t1, x, y, 0.0),
                                                 (t2, x, y, 0.0), (t3, d * edge, y, alt)],
                                 [flying, standing, leaving])]
