"""Targets: what moves on the beach, how warm it is, and how it lands in the pixels.

A target is a :class:`TargetPlan`: waypoints (piecewise-linear motion) and a few boxes
(:class:`Part`) with a temperature law each. Rendering mixes every part into the background by
the fraction of each pixel it covers (blurred by a small optical spread), so a far, sub-pixel
target only nudges its pixel: that is what limits detection range. Each subpage of the chess
pattern is rendered at its own read time, so a moving target tears.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from .recording import TruthTarget
from .scene import Camera, Environment

# Half-width (pixels) of the box-shaped optical spread: a point source lights ~1.5 px.
PSF_PX = 0.25
# Boxes closer than this (pixels) are one blob to the camera: their people form a group.
GROUP_GAP_PX = 0.5

Rect = tuple[float, float, float, float]  # left, top, right, bottom (continuous pixels)


class Heat(Enum):
    """Temperature law of a part."""

    BODY = "body"       # apparent beach temperature + offset (people, dogs, gulls)
    SEA = "sea"         # water temperature + offset (a wet hull)
    AIR = "air"         # air temperature + offset (a vehicle body)
    ENGINE = "engine"   # air + offset while running, cooling exponentially after ``stop_s``
    FIRE = "fire"       # absolute temperature ``offset_k`` (Celsius), flickering


@dataclass(frozen=True, slots=True)
class Part:
    """A box attached to a target's position (metres), with its temperature law."""

    width: float
    depth: float
    height: float
    heat: Heat = Heat.BODY
    offset_k: float = 4.0
    z0: float = 0.0
    dx: float = 0.0
    dy: float = 0.0
    start_s: float = -math.inf
    end_s: float = math.inf
    stop_s: float = math.inf
    tau_s: float = 600.0
    label: str | None = None

    def temperature(self, env: Environment, t: float) -> float:
        heat = self.heat
        if heat is Heat.BODY:
            return env.reference + self.offset_k
        if heat is Heat.SEA:
            return env.sea + self.offset_k
        if heat is Heat.AIR:
            return env.air + self.offset_k
        if heat is Heat.ENGINE:
            if t <= self.stop_s:
                return env.air + self.offset_k
            return env.air + self.offset_k * math.exp(-(t - self.stop_s) / self.tau_s)
        return self.offset_k * (1.0 + 0.12 * math.sin(9.1 * t) * math.sin(3.7 * t + 1.0))


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """One target for the whole scene: waypoints ``(t, x, y, z)`` and its parts."""

    id: str
    kind: str
    times: tuple[float, ...]
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    zs: tuple[float, ...]
    parts: tuple[Part, ...]

    @classmethod
    def along(cls, ident: str, kind: str, waypoints: Sequence[Sequence[float]],
              parts: Sequence[Part]) -> TargetPlan:
        """Build from ``(t, x, y)`` or ``(t, x, y, z)`` waypoints (times increasing)."""
        if not waypoints:
            raise ValueError(f"target {ident}: no waypoints")
        points = sorted(((*w, 0.0) if len(w) == 3 else tuple(w) for w in waypoints),
                        key=lambda w: w[0])
        return cls(ident, kind, tuple(p[0] for p in points), tuple(p[1] for p in points),
                   tuple(p[2] for p in points), tuple(p[3] for p in points), tuple(parts))

    @property
    def start_s(self) -> float:
        return self.times[0]

    @property
    def end_s(self) -> float:
        return self.times[-1]

    def position(self, t: float) -> tuple[float, float, float] | None:
        """Interpolated ``(x, y, z)`` at ``t``; None outside the waypoints' time span."""
        times = self.times
        if t < times[0] or t > times[-1]:
            return None
        k = bisect.bisect_right(times, t)
        if k >= len(times):
            return self.xs[-1], self.ys[-1], self.zs[-1]
        t0, t1 = times[k - 1], times[k]
        f = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
        return (self.xs[k - 1] + f * (self.xs[k] - self.xs[k - 1]),
                self.ys[k - 1] + f * (self.ys[k] - self.ys[k - 1]),
                self.zs[k - 1] + f * (self.zs[k] - self.zs[k - 1]))


# --- factories: the shapes and warmth of each kind -----------------------------------------

POSES: dict[str, tuple[float, float, float]] = {
    # width (across the view), depth, height in metres
    "walking": (0.5, 0.3, 1.7),
    "standing": (0.5, 0.3, 1.7),
    "running": (0.5, 0.4, 1.75),
    "crouching": (0.6, 0.6, 1.0),
    "lying": (1.7, 0.5, 0.3),
}


def person_parts(pose: str, contrast_k: float, *, head_k: float = 4.0, start_s: float = -math.inf,
                 end_s: float = math.inf) -> list[Part]:
    """Clothed body ``contrast_k`` above the beach, plus a warmer head for upright poses."""
    width, depth, height = POSES[pose]
    extra = 1.0 if pose == "running" else 0.0  # exertion warms the clothing surface
    parts = [Part(width, depth, height, Heat.BODY, contrast_k + extra, start_s=start_s,
                  end_s=end_s, label=pose)]
    if pose != "lying" and head_k > 0:
        parts.append(Part(0.2, 0.2, 0.25, Heat.BODY, contrast_k + extra + head_k,
                          z0=height - 0.25, start_s=start_s, end_s=end_s, label=pose))
    return parts


def person(ident: str, pose: str, waypoints: Sequence[Sequence[float]], contrast_k: float,
           *, head_k: float = 4.0) -> TargetPlan:
    """A person in one pose along ``waypoints``; ``contrast_k`` is its clothing excess (K)."""
    if pose not in POSES:
        raise ValueError(f"unknown pose {pose!r}: {sorted(POSES)}")
    return TargetPlan.along(ident, "person", waypoints,
                            person_parts(pose, contrast_k, head_k=head_k))


def gull(ident: str, waypoints: Sequence[Sequence[float]], contrast_k: float = 2.5
         ) -> TargetPlan:
    """A gull in flight (1.1 m wingspan seen from below the horizon, thin)."""
    return TargetPlan.along(ident, "gull", waypoints,
                            [Part(1.1, 0.4, 0.12, Heat.BODY, contrast_k)])


def dog(ident: str, waypoints: Sequence[Sequence[float]], contrast_k: float = 6.0) -> TargetPlan:
    """A medium dog: small, low, warm fur."""
    return TargetPlan.along(ident, "dog", waypoints,
                            [Part(0.8, 0.3, 0.5, Heat.BODY, contrast_k, z0=0.1)])


def fire(ident: str, x: float, y: float, duration_s: float, temperature_c: float = 250.0
         ) -> TargetPlan:
    """A beach fire: hot flames over a ring of warmed sand, static for the whole scene."""
    return TargetPlan.along(ident, "fire", [(0.0, x, y), (duration_s, x, y)], [
        Part(2.0, 2.0, 0.05, Heat.AIR, 12.0),
        Part(0.8, 0.8, 0.5, Heat.FIRE, temperature_c)])


def engine(ident: str, x: float, y: float, duration_s: float, *, excess_k: float = 30.0,
           stopped_s: float = 0.0) -> TargetPlan:
    """An outboard engine on a trailer or a beached skiff, cooling after ``stopped_s``."""
    return TargetPlan.along(ident, "engine", [(0.0, x, y), (duration_s, x, y)], [
        Part(0.4, 0.5, 0.8, Heat.ENGINE, excess_k, z0=0.4, stop_s=stopped_s, tau_s=1200.0)])


def vehicle(ident: str, waypoints: Sequence[Sequence[float]], direction: float,
            body_k: float = 3.5, hood_k: float = 22.0) -> TargetPlan:
    """A 4x4 or beach tractor driving across the view: warm body, hot engine hood in front."""
    return TargetPlan.along(ident, "vehicle", waypoints, [
        Part(4.2, 1.9, 1.7, Heat.AIR, body_k),
        Part(1.0, 1.7, 0.3, Heat.ENGINE, hood_k, z0=1.0, dx=1.6 * direction)])


def boat(ident: str, waypoints: Sequence[Sequence[float]], *, land_s: float, disembark_s: float,
         occupants_k: float, hull_k: float = -1.5, engine_k: float = 35.0) -> TargetPlan:
    """A small boat landing bow first: cool wet hull, hot outboard at the stern, people aboard
    until ``disembark_s``; the engine stops on landing and cools."""
    return TargetPlan.along(ident, "boat", waypoints, [
        Part(2.5, 7.0, 0.7, Heat.SEA, hull_k),
        Part(2.0, 5.0, 0.5, Heat.BODY, occupants_k, z0=0.7, end_s=disembark_s),
        Part(0.4, 0.5, 0.7, Heat.ENGINE, engine_k, z0=0.3, dy=3.5, stop_s=land_s + 5.0)])


# --- rendering -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Drawn:
    plan: TargetPlan
    rect: Rect
    range_m: float
    contrast_k: float
    visible: float
    pose: str | None


class Renderer:
    """Composites targets into a frame and reports their ground truth."""

    def __init__(self, camera: Camera) -> None:
        self.camera = camera

    def render(self, scene: list[float], plans: Sequence[TargetPlan], env: Environment,
               t_sub0: float, t_sub1: float) -> list[TruthTarget]:
        """Draw ``plans`` active at ``t_sub0``/``t_sub1`` (read times of subpage 0 and 1),
        far to near, and return the truth of the frame (people merged into groups)."""
        active = []
        for plan in plans:
            if plan.start_s <= t_sub1 and plan.end_s >= t_sub0:
                pos = plan.position(min(max(t_sub1, plan.start_s), plan.end_s))
                if pos is not None:
                    active.append((pos[1], plan))
        active.sort(key=lambda item: -item[0])
        drawn = [d for _, plan in active
                 if (d := self._draw(scene, plan, env, t_sub0, t_sub1)) is not None]
        return self._truth(drawn)

    def _draw(self, scene: list[float], plan: TargetPlan, env: Environment, t_sub0: float,
              t_sub1: float) -> _Drawn | None:
        cam = self.camera
        touched: dict[int, float] = {}
        union: list[float] | None = None
        where: tuple[float, float, float] | None = None
        pose: str | None = None
        for parity, t in ((0, t_sub0), (1, t_sub1)):
            pos = plan.position(t)
            if pos is None:
                continue
            x, y, z = pos
            where = pos
            for part in plan.parts:
                if not part.start_s <= t < part.end_s:
                    continue
                rect = cam.box_rect(x + part.dx, y + part.dy, part.width, part.depth,
                                    part.height, z0=z + part.z0)
                if rect is None:
                    continue
                if union is None:
                    union = list(rect)
                else:
                    union = [min(union[0], rect[0]), min(union[1], rect[1]),
                             max(union[2], rect[2]), max(union[3], rect[3])]
                if part.label is not None:
                    pose = part.label
                self._composite(scene, rect, part.temperature(env, t), parity, touched)
        if union is None or where is None:
            return None
        left, top, right, bottom = union
        area = max((right - left) * (bottom - top), 1e-9)
        cl, ct = max(left, 0.0), max(top, 0.0)
        cr, cb = min(right, float(cam.cols)), min(bottom, float(cam.rows))
        if cr <= cl or cb <= ct:
            return None
        contrast = 0.0
        for i, before in touched.items():
            delta = scene[i] - before
            if abs(delta) > abs(contrast):
                contrast = delta
        return _Drawn(plan, (cl, ct, cr, cb), math.hypot(where[0], where[1]), contrast,
                      (cr - cl) * (cb - ct) / area, pose)

    def _composite(self, scene: list[float], rect: Rect, temp: float, parity: int,
                   touched: dict[int, float]) -> None:
        cam = self.camera
        left, top, right, bottom = rect
        c0 = max(math.floor(left - PSF_PX), 0)
        c1 = min(math.ceil(right + PSF_PX), cam.cols)
        r0 = max(math.floor(top - PSF_PX), 0)
        r1 = min(math.ceil(bottom + PSF_PX), cam.rows)
        if c1 <= c0 or r1 <= r0:
            return
        covx = [_cover(left, right, c) for c in range(c0, c1)]
        cols = cam.cols
        for r in range(r0, r1):
            fy = _cover(top, bottom, r)
            if fy <= 0.0:
                continue
            start = c0 + ((r + c0 + parity) & 1)  # first column of this subpage in the row
            for c in range(start, c1, 2):
                f = covx[c - c0] * fy
                if f <= 0.0:
                    continue
                i = r * cols + c
                if i not in touched:
                    touched[i] = scene[i]
                scene[i] += f * (temp - scene[i])

    def _truth(self, drawn: list[_Drawn]) -> list[TruthTarget]:
        people = [d for d in drawn if d.plan.kind == "person"]
        others = [d for d in drawn if d.plan.kind != "person"]
        out: list[TruthTarget] = []
        for cluster in _clusters(people):
            if len(cluster) == 1:
                out.append(_truth_of(cluster[0]))
                continue
            ids = sorted((d.plan.id for d in cluster), key=_natural)
            rect = (min(d.rect[0] for d in cluster), min(d.rect[1] for d in cluster),
                    max(d.rect[2] for d in cluster), max(d.rect[3] for d in cluster))
            contrast = max((d.contrast_k for d in cluster), key=abs)
            out.append(TruthTarget(
                id="g:" + "+".join(ids), kind="group", box=_box(rect),
                range_m=round(min(d.range_m for d in cluster), 1), contrast_k=round(contrast, 2),
                visible=round(max(d.visible for d in cluster), 2), members=tuple(ids)))
        out.extend(_truth_of(d) for d in others)
        out.sort(key=lambda t: _natural(t.id))
        return out


def _truth_of(d: _Drawn) -> TruthTarget:
    return TruthTarget(id=d.plan.id, kind=d.plan.kind, box=_box(d.rect),
                       range_m=round(d.range_m, 1), contrast_k=round(d.contrast_k, 2),
                       visible=round(d.visible, 2),
                       pose=d.pose if d.plan.kind == "person" else None)


def _clusters(items: list[_Drawn]) -> list[list[_Drawn]]:
    """Connected groups of boxes that touch within ``GROUP_GAP_PX`` (union-find)."""
    parent = list(range(len(items)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    g = GROUP_GAP_PX
    for a in range(len(items)):
        ra = items[a].rect
        for b in range(a + 1, len(items)):
            rb = items[b].rect
            if (ra[0] - g < rb[2] and rb[0] - g < ra[2] and ra[1] - g < rb[3]
                    and rb[1] - g < ra[3]):
                parent[root(a)] = root(b)
    groups: dict[int, list[_Drawn]] = {}
    for k, item in enumerate(items):
        groups.setdefault(root(k), []).append(item)
    return list(groups.values())


def _box(rect: Rect) -> tuple[int, int, int, int]:
    """Integer ``(x, y, w, h)`` of the pixels a clipped rectangle really touches (a sliver
    thinner than a pixel boundary tolerance maps to the pixel holding its centre)."""
    x0, x1 = _span(rect[0], rect[2])
    y0, y1 = _span(rect[1], rect[3])
    return x0, y0, x1 - x0, y1 - y0


def _span(lo: float, hi: float) -> tuple[int, int]:
    first = math.floor(lo + 0.05)
    last = math.ceil(hi - 0.05)
    if last <= first:
        first = math.floor((lo + hi) / 2)
        last = first + 1
    return first, last


def _natural(ident: str) -> tuple[str, int, str]:
    head = ident.rstrip("0123456789")
    tail = ident[len(head):]
    return head, int(tail) if tail else -1, ident


def _cover(a: float, b: float, c: int) -> float:
    """Share of pixel ``[c, c+1)`` covered by ``[a, b]`` blurred by a box of half-width PSF_PX."""
    return _ramp(b, c) - _ramp(a, c)


def _ramp(x: float, c: int) -> float:
    # Integral up to x of the pixel's response to a point at u: a trapezoid (pixel convolved
    # with the spread), normalised so a wide target covers the pixel fully.
    p = PSF_PX
    if x <= c - p:
        return 0.0
    if x <= c + p:
        return (x - c + p) ** 2 / (4 * p)
    if x <= c + 1 - p:
        return x - c
    if x <= c + 1 + p:
        u = x - (c + 1 - p)
        return (1 - p) + (2 * p * u - u * u / 2) / (2 * p)
    return 1.0
