"""``shorewatch sim record|check|families``: write, validate and list thermal recordings."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

from .errors import SimError

log = logging.getLogger(__name__)


def register(sub: Any) -> Any:
    """Add ``sim`` and its verbs to the ``shorewatch`` sub-parsers; return the verbs' action so
    other simulators (virtual boards, solar) can add theirs."""
    sim = sub.add_parser("sim", help="simulators: night-beach thermal recordings")
    verbs = sim.add_subparsers(dest="sim_command", required=True, metavar="VERB")

    rec = verbs.add_parser("record", help="simulate a seeded scene and write a recording",
                           description="Writes PREFIX.raw, PREFIX.truth.jsonl and PREFIX.json "
                                       "(the sidecar, written last).")
    rec.add_argument("--family", default="summer-dry-calm-near",
                     help="condition tokens joined by '-': summer|winter, dry|wet, calm|windy, "
                          "near|far, optional 'empty' (default: %(default)s)")
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--seconds", type=float, default=60.0, help="duration (default: 60)")
    rec.add_argument("--fps", type=float, default=4.0,
                     help="full frames per second; the sensor refresh is twice that (default: 4)")
    rec.add_argument("--fov", choices=("55x35", "110x75"), default="55x35")
    rec.add_argument("--out", required=True, metavar="PREFIX", help="output path prefix")
    rec.set_defaults(handler=_record)

    check = verbs.add_parser("check", help="validate a recording (sidecar, size, ground truth)")
    check.add_argument("recording", metavar="PREFIX[.raw]")
    check.set_defaults(handler=_check)

    fams = verbs.add_parser("families", help="list the named scene families")
    fams.set_defaults(handler=_families)
    return verbs


def _record(args: argparse.Namespace) -> int:
    from .thermal import ScenarioSpec, record  # noqa: PLC0415 - keep CLI start-up light

    spec = ScenarioSpec(seed=args.seed, family=args.family, duration_s=args.seconds,
                        fps=args.fps, fov=args.fov)
    started = time.perf_counter()
    try:
        sidecar = record(spec, args.out)
    except (SimError, OSError) as exc:
        log.error("%s", exc)
        return 1
    elapsed = time.perf_counter() - started
    frames = sidecar.frames or 0
    _emit({"out": args.out, "frames": frames, "fps": sidecar.fps,
           "family": sidecar.metadata["scenario"]["family"], "seconds": round(elapsed, 2),
           "frames_per_s": round(frames / elapsed) if elapsed > 0 else None})
    return 0


def _check(args: argparse.Namespace) -> int:
    from .recording import open_recording  # noqa: PLC0415

    try:
        rec = open_recording(args.recording)
        truth_lines = sum(1 for _ in rec.truth()) if rec.has_truth else None
        frames = sum(1 for _ in rec.frames())
    except (SimError, OSError) as exc:
        log.error("%s", exc)
        return 1
    _emit({"recording": str(rec.paths.raw), "frames": frames, "fps": rec.sidecar.fps,
           "sensor": rec.sidecar.sensor, "rows": rec.sidecar.rows, "cols": rec.sidecar.cols,
           "invalid_frames": len(rec.sidecar.invalid_frames), "truth_lines": truth_lines})
    return 0


def _families(args: argparse.Namespace) -> int:
    from .scene import FAMILIES  # noqa: PLC0415

    sys.stdout.write("\n".join(FAMILIES) + "\n")
    return 0


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
