"""Camera pipeline detection quality on seeded night-beach scenes, and its speed under MicroPython.

    python bench/detection.py [--quick] [--jobs N] [--set heldout|tuning|all] [--dump]

Every scene is simulated (``shorewatch.sim``), written as a recording, and run through the real
device pipeline on the MicroPython unix port (``shorewatch.detect.run_pipeline``: the same code
and the same settings as ``shorewatch detect``, plus the per-frame boxes of the reported tracks).

Families. The 16 condition families (summer|winter x dry|wet x calm|windy x near|far) are split
in two halves of a 2^(4-1) design, so each half holds every single token and every pair of
tokens: TUNING = even number of {winter, wet, windy, far} tokens, HELD-OUT = odd. Thresholds,
time constants and class rules were tuned on TUNING families (seeds 100+) only; the report and
the RESULT line are on HELD-OUT families (seeds 1000+), busy nights for people and the
``-empty`` nights for false alarms.

Matching rule (fixed before the held-out families were first run):
- a reported box matches a truth box in a frame when it overlaps the truth box grown by 1 px on
  every side (a target of 1x3 px at 20 m, blurred and torn across the chess subpages, is not
  scored by IoU);
- a truth ``group`` stands for its ``members``: matching the group matches each of them;
- an event's target is the truth entity its box matches in the most of its reported frames, if
  that is at least half of them; otherwise the event matches nothing;
- an event's kind is the kind it reported in most of its frames; a "people event" is one whose
  kind is person or group.
People within 20 m (F1):
- a person is ELIGIBLE when it is in view (visible >= 0.5) within 20 m (range_m <= 20, a
  group's range is its nearest member's) for at least 2 s of valid frames;
- RECALL: an eligible person is detected when some people event matches it (directly or
  through a group) in at least 1 s of frames;
- PRECISION: a people event is a true positive when its box matches at least one person
  (directly or through a group) in at least half of its frames and one of those persons is
  eligible; when the persons it matches are all ineligible (never within 20 m for 2 s) it is
  not scored; any other people event (on nothing, or on a dog, gull, fire, engine, boat or
  vehicle) is a false positive. A person split in two events (after a group splits, or a track
  lost and found again) is not a false positive; the fragmentation is reported.
  (Revised once during tuning, before any held-out run: it first required one single person in
  half of the frames, which counted an event on a gathering of people the truth lists one by
  one, a few pixels apart, as a false positive.)
False alarms (empty nights: only gulls, dogs, fires, engines, waves, concrete):
- an event is a false alarm when it is not on people in half of its frames (as for precision)
  and it matches nothing, matches a fire or an engine (never a detection), or matches a dog or
  gull but was reported as person, group, boat or vehicle. An event reported as animal (or
  unknown) on a dog or gull is not a false alarm (both are off by default). Rate = false
  alarms / hours of valid frames.
Detection probability: per truth person or group and frame (valid, visible >= 0.5), whether a
reported person/group box matches it in that frame, binned by range_m and |contrast_k|. The
first ~1.5 s of every track (before confirmation) count as misses: this is what a user sees.

Speed: the same frames through the viper kernels and through their plain-Python twins, both on
the MicroPython unix port, timed inside MicroPython around ``process()``.

The last line is ``RESULT f1_people_20m=N false_alarms_per_night_hour=N frame_ms=N
plain_frame_ms=N`` (bench/README.md). Targets: F1 >= 0.90 and <= 1 false alarm per night-hour.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import shorewatch  # noqa: F401 - installed, or run from the repository root with -m
except ImportError:  # ``python bench/detection.py`` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shorewatch.detect import DetectionEvent, TrackBox, pipeline_settings, run_pipeline
from shorewatch.sim import (
    FAMILIES,
    FrameTruth,
    ScenarioSpec,
    open_recording,
    parse_family,
    record,
)

F1_TARGET = 0.90
FA_TARGET = 1.0
NEAR_M = 20.0
ELIGIBLE_S = 2.0
DETECTED_S = 1.0
PEOPLE = ("person", "group")
RANGE_BINS = (0.0, 10.0, 15.0, 20.0, 30.0, 45.0)
CONTRAST_BINS = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0)
FPS = 4.0


def _odd(family: str) -> bool:
    c = parse_family(family)
    return (int(c.season == "winter") + int(c.wet) + int(c.windy) + int(c.far)) % 2 == 1


BUSY = [f for f in FAMILIES if not f.endswith("-empty")]
HELDOUT = [f for f in BUSY if _odd(f)]
TUNING = [f for f in BUSY if not _odd(f)]


@dataclass(frozen=True, slots=True)
class Scene:
    split: str  # "tuning" or "heldout"
    family: str
    seed: int
    seconds: float

    @property
    def empty(self) -> bool:
        return self.family.endswith("-empty")


@dataclass(slots=True)
class Score:
    """Counts of one scene (or a sum of scenes)."""

    eligible: int = 0
    detected: int = 0
    people_events: int = 0
    tp: int = 0
    fp: int = 0
    ignored: int = 0
    fragments: int = 0  # people events on eligible persons (>= detected ones)
    events: int = 0
    false_alarms: int = 0
    fa_causes: Counter[str] = field(default_factory=Counter)
    hours: float = 0.0
    frames: int = 0
    pd_range: Counter[tuple[int, bool]] = field(default_factory=Counter)
    pd_contrast: Counter[tuple[int, bool]] = field(default_factory=Counter)
    kinds: Counter[tuple[str, str]] = field(default_factory=Counter)  # (truth, reported)
    dump: list[str] = field(default_factory=list)

    def add(self, other: Score) -> None:
        for name in ("eligible", "detected", "people_events", "tp", "fp", "ignored", "fragments",
                     "events", "false_alarms", "hours", "frames"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("fa_causes", "pd_range", "pd_contrast", "kinds"):
            getattr(self, name).update(getattr(other, name))
        self.dump.extend(other.dump)

    @property
    def recall(self) -> float:
        return self.detected / self.eligible if self.eligible else 1.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fa_per_hour(self) -> float:
        return self.false_alarms / self.hours if self.hours else 0.0


def plan(quick: bool, which: str) -> list[Scene]:
    """The scenes of a run. Default: held-out 8 busy families x 4 seeds x 10 min + 8 empty
    families x 3 seeds x 40 min (56 scenes, 16 empty night-hours); tuning 8 x 3 x 8 min +
    8 x 2 x 30 min (40 scenes, what the rules were tuned on). --quick: 1 seed, short scenes."""
    halves = (("heldout", HELDOUT, 1000, (600.0, 4, 2400.0, 3)),
              ("tuning", TUNING, 100, (480.0, 3, 1800.0, 2)))
    scenes: list[Scene] = []
    for split, fams, base, sizes in halves:
        if which not in (split, "all"):
            continue
        busy_s, seeds, empty_s, empty_seeds = (90.0, 1, 300.0, 1) if quick else sizes
        for fam in fams:
            scenes += [Scene(split, fam, base + s, busy_s) for s in range(seeds)]
        for fam in fams:
            scenes += [Scene(split, fam + "-empty", base + 500 + s, empty_s)
                       for s in range(empty_seeds)]
    return scenes


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Box a overlaps box b grown by one pixel on every side."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw + 1 and bx - 1 < ax + aw and ay < by + bh + 1 and by - 1 < ay + ah


def _bin(value: float, edges: tuple[float, ...]) -> int:
    i = 0
    while i + 1 < len(edges) and value >= edges[i + 1]:
        i += 1
    return i


def run_scene(scene: Scene, workdir: str, settings_extra: dict[str, Any] | None = None,
              dump: bool = False) -> Score:
    """Simulate, detect and score one scene."""
    prefix = Path(workdir) / f"{scene.family}-{scene.seed}"
    spec = ScenarioSpec(seed=scene.seed, family=scene.family, duration_s=scene.seconds, fps=FPS)
    record(spec, prefix)
    try:
        raw, settings = pipeline_settings(prefix.with_suffix(".raw"), tracks=True)
        settings.update(settings_extra or {})
        boxes: dict[int, list[TrackBox]] = defaultdict(list)
        events: list[DetectionEvent] = []
        for item in run_pipeline(raw, settings):
            if isinstance(item, TrackBox):
                boxes[item.frame].append(item)
            elif isinstance(item, DetectionEvent):
                events.append(item)
        return _score(scene, prefix, boxes, events, dump)
    finally:
        for suffix in (".raw", ".json", ".truth.jsonl"):
            prefix.with_suffix(suffix).unlink(missing_ok=True)


@dataclass(slots=True)
class _Tally:
    """What one scene's frames say about its events and its people, before judging."""

    frames: int = 0
    ev_frames: Counter[int] = field(default_factory=Counter)
    ev_match: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    ev_kinds: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    ev_people: Counter[int] = field(default_factory=Counter)  # frames on some person
    ev_persons: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    ev_first: dict[int, int] = field(default_factory=dict)
    near: Counter[str] = field(default_factory=Counter)  # person -> frames within 20 m
    matched_by: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    entity_kind: dict[str, str] = field(default_factory=dict)


def _score(scene: Scene, prefix: Path, boxes: dict[int, list[TrackBox]],
           events: list[DetectionEvent], dump: bool) -> Score:
    rec = open_recording(prefix.with_suffix(".raw"))
    sc = Score()
    ta = _tally(rec.truth(), boxes, sc)
    fps = rec.sidecar.fps
    sc.frames = ta.frames
    sc.hours = ta.frames / fps / 3600.0
    _check_lifecycles(scene, boxes, events)
    eligible = {e for e, n in ta.near.items() if n >= ELIGIBLE_S * fps}
    need = max(2, round(DETECTED_S * fps))
    detected = {e for e in eligible if any(n >= need for n in ta.matched_by[e].values())}
    sc.eligible = len(eligible)
    sc.detected = len(detected)
    for eid, nframes in ta.ev_frames.items():
        kind = ta.ev_kinds[eid].most_common(1)[0][0]
        best = ta.ev_match[eid].most_common(1)
        target = best[0][0] if best and best[0][1] * 2 >= nframes else None
        tkind = ta.entity_kind.get(target, "") if target else "none"
        on_people = ta.ev_people[eid] * 2 >= nframes
        sc.events += 1
        sc.kinds[(tkind, kind)] += 1
        if kind in PEOPLE:
            sc.people_events += 1
            if not on_people:
                sc.fp += 1
            elif ta.ev_persons[eid] & eligible:
                sc.tp += 1
                sc.fragments += 1
            else:
                sc.ignored += 1
        fa = None if on_people else _false_alarm(target, tkind, kind)
        if fa is not None:
            sc.false_alarms += 1
            sc.fa_causes[fa] += 1
        if dump and (fa is not None or (kind in PEOPLE and not on_people)):
            what = f"false alarm ({fa})" if fa else "people FP"
            sc.dump.append(f"{scene.family} s{scene.seed} event {eid} frame "
                           f"{ta.ev_first[eid]}: {what}: {kind} x{nframes} -> {target} "
                           f"({tkind}) {dict(ta.ev_match[eid])}")
    if dump:
        for e in sorted(eligible - detected):
            sc.dump.append(f"{scene.family} s{scene.seed} missed {e}: within {NEAR_M:g} m for "
                           f"{ta.near[e]} frames, matched {dict(ta.matched_by[e])}")
    return sc


def _tally(truths: Iterable[FrameTruth], boxes: dict[int, list[TrackBox]], sc: Score) -> _Tally:
    """Match every reported box to every truth target, frame by frame (the rule above)."""
    ta = _Tally()
    for truth in truths:
        if not truth.valid:
            continue
        ta.frames += 1
        frame_boxes = boxes.get(truth.frame, [])
        on_people: set[int] = set()
        for tb in frame_boxes:
            ta.ev_frames[tb.event_id] += 1
            ta.ev_kinds[tb.event_id][tb.kind] += 1
            ta.ev_first.setdefault(tb.event_id, truth.frame)
        for tg in truth.targets:
            ents = tg.members if tg.kind == "group" and tg.members else (tg.id,)
            for e in ents:
                ta.entity_kind.setdefault(e, "person" if tg.kind == "group" else tg.kind)
            people = tg.kind in PEOPLE
            visible = (tg.visible or 0.0) >= 0.5
            if people and visible and tg.range_m is not None and tg.range_m <= NEAR_M:
                for e in ents:
                    ta.near[e] += 1
            hit_people = False
            for tb in frame_boxes:
                if not _overlaps(tb.box, tg.box):
                    continue
                for e in ents:
                    ta.ev_match[tb.event_id][e] += 1
                    if tb.kind in PEOPLE:
                        ta.matched_by[e][tb.event_id] += 1
                if people:
                    on_people.add(tb.event_id)
                    ta.ev_persons[tb.event_id].update(ents)
                hit_people = hit_people or tb.kind in PEOPLE
            if people and visible and tg.range_m is not None and tg.contrast_k is not None:
                sc.pd_range[(_bin(tg.range_m, RANGE_BINS), hit_people)] += 1
                sc.pd_contrast[(_bin(abs(tg.contrast_k), CONTRAST_BINS), hit_people)] += 1
        for eid in on_people:
            ta.ev_people[eid] += 1
    return ta


def _false_alarm(target: str | None, tkind: str, kind: str) -> str | None:
    """Why an event that is not on people is a false alarm, or None if it is not one."""
    if target is None:
        return "nothing"
    if tkind in ("fire", "engine"):
        return tkind
    if tkind in ("dog", "gull") and kind not in ("animal", "unknown"):
        return f"{tkind} as {kind}"
    return None


def _check_lifecycles(scene: Scene, boxes: dict[int, list[TrackBox]],
                      events: list[DetectionEvent]) -> None:
    """Every reported track has exactly one new and one end message, in that order."""
    steps: dict[int, list[str]] = defaultdict(list)
    for ev in events:
        steps[ev.event_id].append(ev.lifecycle)
    tracked = {tb.event_id for fb in boxes.values() for tb in fb}
    for eid, seq in steps.items():
        if seq[0] != "new" or seq[-1] != "end" or seq.count("new") + seq.count("end") != 2:
            raise SystemExit(f"{scene.family} seed {scene.seed}: event {eid} went {seq}")
    if not tracked <= steps.keys():
        raise SystemExit(f"{scene.family} seed {scene.seed}: tracks without events: "
                         f"{sorted(tracked - steps.keys())}")


def _table(title: str, rows: Iterable[tuple[str, Score]]) -> None:
    print(f"\n{title}")
    print(f"{'family':<30} {'people':>6} {'found':>5} {'recall':>6} {'events':>6} {'TP':>4} "
          f"{'FP':>3} {'prec':>5} {'F1':>5} {'frag':>4}")
    for name, s in rows:
        frag = s.fragments / s.detected if s.detected else 0.0
        print(f"{name:<30} {s.eligible:>6} {s.detected:>5} {s.recall:>6.3f} "
              f"{s.people_events:>6} {s.tp:>4} {s.fp:>3} {s.precision:>5.3f} {s.f1:>5.3f} "
              f"{frag:>4.2f}")


def _fa_table(title: str, rows: Iterable[tuple[str, Score]]) -> None:
    print(f"\n{title}")
    print(f"{'family':<30} {'hours':>6} {'events':>6} {'FA':>4} {'FA/h':>6}  causes")
    for name, s in rows:
        causes = ", ".join(f"{k} {v}" for k, v in sorted(s.fa_causes.items()))
        print(f"{name:<30} {s.hours:>6.2f} {s.events:>6} {s.false_alarms:>4} "
              f"{s.fa_per_hour:>6.2f}  {causes}")


def _pd_table(title: str, counts: Counter[tuple[int, bool]], edges: tuple[float, ...],
              unit: str) -> None:
    print(f"\n{title}")
    for i, lo in enumerate(edges):
        hi = f"{edges[i + 1]:g}" if i + 1 < len(edges) else "inf"
        hit, miss = counts[(i, True)], counts[(i, False)]
        total = hit + miss
        pd = f"{hit / total:.3f}" if total else "  -  "
        print(f"  {lo:>4g}-{hi:<4}{unit:<2} frames {total:>7}  P(detect) {pd}")


def _speed(workdir: str, seconds: float) -> tuple[float, float, dict[str, Any], dict[str, Any]]:
    """(frame_ms viper, frame_ms plain) on the same held-out frames."""
    prefix = Path(workdir) / "speed"
    record(ScenarioSpec(seed=1000, family=HELDOUT[0], duration_s=seconds, fps=FPS), prefix)
    out = []
    for plain in (False, True):
        raw, settings = pipeline_settings(prefix.with_suffix(".raw"), plain=plain, stats=True)
        stats = [s for s in run_pipeline(raw, settings) if isinstance(s, dict)]
        if not stats:
            raise SystemExit("the pipeline printed no STATS line")
        out.append(stats[-1])
    fast, plain_stats = out
    if not fast["fast"] or plain_stats["fast"]:
        raise SystemExit(f"expected the viper path then the plain one, got fast={fast['fast']} "
                         f"then fast={plain_stats['fast']}")
    return (fast["us_per_frame"] / 1000, plain_stats["us_per_frame"] / 1000, fast, plain_stats)


def _pin_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to cpu {cpu}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: short scenes, 1 seed")
    parser.add_argument("--jobs", type=int, default=1, help="scenes in parallel (default: 1)")
    parser.add_argument("--set", choices=("heldout", "tuning", "all"), default="all",
                        help="which families to run (default: all; RESULT is held-out)")
    parser.add_argument("--dump", action="store_true", help="list false alarms and misses")
    parser.add_argument("--sensitivity", type=int, default=50)
    args = parser.parse_args(argv)

    pinned = _pin_one_core() if args.jobs == 1 else f"{args.jobs} jobs"
    scenes = plan(args.quick, args.set)
    print(f"Python {sys.version.split()[0]}, {pinned}, {len(scenes)} scenes at {FPS:g} fps, "
          f"sensitivity {args.sensitivity}")
    print(f"held-out families: {', '.join(HELDOUT)} (+ their -empty nights)")
    print(f"tuning families:   {', '.join(TUNING)} (+ their -empty nights)")
    started = time.perf_counter()
    extra = {"sensitivity": args.sensitivity}
    with tempfile.TemporaryDirectory(prefix="shorewatch-detect-bench-") as tmp:
        if args.jobs > 1:
            with ProcessPoolExecutor(args.jobs) as pool:
                scores = list(pool.map(run_scene, scenes, [tmp] * len(scenes),
                                       [extra] * len(scenes), [args.dump] * len(scenes)))
        else:
            scores = [run_scene(s, tmp, extra, args.dump) for s in scenes]
        elapsed = time.perf_counter() - started
        speed = _speed(tmp, 60.0 if args.quick else 300.0)
    by_split: dict[str, dict[str, Score]] = defaultdict(lambda: defaultdict(Score))
    for scene, score in zip(scenes, scores, strict=True):
        by_split[scene.split][scene.family].add(score)
    print(f"{sum(s.frames for s in scores)} frames simulated, detected and scored in "
          f"{elapsed:.0f} s")
    result = {split: _report(split, by_split[split], args.dump)
              for split in ("tuning", "heldout") if split in by_split}
    frame_ms, plain_ms, fast_stats, plain_stats = speed
    print(f"\nper-frame pipeline time on the MicroPython unix port, the same "
          f"{fast_stats['frames']} frames ({HELDOUT[0]}, seed 1000):")
    print(f"  viper kernels      {frame_ms:8.3f} ms/frame (worst "
          f"{fast_stats['us_worst'] / 1000:.2f} ms, heap in use {fast_stats['heap_used']} B)")
    print(f"  plain-Python twins {plain_ms:8.3f} ms/frame (worst "
          f"{plain_stats['us_worst'] / 1000:.2f} ms)  x{plain_ms / max(frame_ms, 1e-6):.1f}")
    if "heldout" not in result:
        print("RESULT needs the held-out families (--set heldout or all)")
        return 1
    (busy, empty) = result["heldout"]
    f1, fa = busy.f1, empty.fa_per_hour
    f1_verdict = "met" if f1 >= F1_TARGET else f"NOT met, short by {F1_TARGET - f1:.3f}"
    fa_verdict = "met" if fa <= FA_TARGET else f"NOT met, over by {fa - FA_TARGET:.2f}"
    print()
    print(f"F1 people <= {NEAR_M:g} m, held-out: {f1:.3f} (target >= {F1_TARGET}) {f1_verdict}")
    print(f"false alarms per night-hour, held-out empty nights: {fa:.2f} "
          f"(target <= {FA_TARGET:g}) {fa_verdict}")
    print(f"RESULT f1_people_20m={f1:.3f} false_alarms_per_night_hour={fa:.2f} "
          f"frame_ms={frame_ms:.3f} plain_frame_ms={plain_ms:.3f}")
    return 0


def _report(split: str, fams: dict[str, Score], dump: bool) -> tuple[Score, Score]:
    """Print the tables of one half; return its (busy, empty) totals."""
    busy = Score()
    empty = Score()
    for fam, s in fams.items():
        (empty if fam.endswith("-empty") else busy).add(s)
    label = "HELD-OUT" if split == "heldout" else "TUNING (not the result)"
    _table(f"{label}: people within {NEAR_M:g} m, busy nights",
           [*sorted((f, s) for f, s in fams.items() if not f.endswith("-empty")),
            ("ALL", busy)])
    _fa_table(f"{label}: false alarms, empty nights",
              [*sorted((f, s) for f, s in fams.items() if f.endswith("-empty")),
               ("ALL", empty)])
    _fa_table(f"{label}: the same rule on busy nights (for information)", [("ALL busy", busy)])
    _pd_table(f"{label}: detection probability per frame by range (people, groups)",
              busy.pd_range, RANGE_BINS, "m")
    _pd_table(f"{label}: detection probability per frame by |contrast| (people, groups)",
              busy.pd_contrast, CONTRAST_BINS, "K")
    both = Score()
    both.add(busy)
    both.add(empty)
    print(f"\n{label}: reported kind by truth (events, busy and empty nights)")
    for (truth, kind), n in sorted(both.kinds.items()):
        print(f"  {truth:<8} -> {kind:<8} {n:>5}")
    if dump:
        print("\n".join(both.dump))
    return busy, empty


if __name__ == "__main__":
    raise SystemExit(main())
