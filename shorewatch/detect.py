"""``shorewatch detect RECORDING.raw``: the real camera pipeline, on MicroPython, over a recording.

The recording is validated here (sidecar, size, invalid frames: ``shorewatch.sim.open_recording``),
then the device firmware's own pipeline (``device/sw/app/camera*.py``) runs on the MicroPython
unix port and reads the ``.raw`` itself, one frame at a time. Its event messages come back as
JSON lines, are checked, and are printed one per line::

    {"frame": 41, "t": 10.25, "event_id": 1, "lifecycle": "new", "kind": "person",
     "box": [13, 12, 2, 7], "confidence": 73, "count": 1, "peak_cc": 1893}

Works on any recording in the documented format (docs/thermal-recordings.md). Camera geometry
(range per row, lens, where the sea starts) comes from the sidecar's ``camera`` and
``scenario.shoreline_m`` when the simulator wrote them, from ``--geometry FILE.json``
otherwise; without any, the pipeline classifies by pixel shape alone.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEVICE_DIR = Path(__file__).resolve().parent.parent / "device"
CAMERA_MAIN = DEVICE_DIR / "camera_main.py"
KINDS = ("unknown", "person", "group", "boat", "vehicle", "animal")
LIFECYCLES = ("new", "update", "end")
# The pipeline's flood-fill stack holds pixel indices as uint16.
MAX_PIXELS = 65535
# An event line is ~200 bytes; a thumbnail adds at most 4/3 of MAX_THUMBNAIL (1024) bytes.
MAX_LINE_BYTES = 8192
REQUIRED_KEYS = ("frame", "event_id", "lifecycle", "kind", "box", "confidence")


class DetectError(Exception):
    """``shorewatch detect`` could not run the pipeline; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class DetectionEvent:
    """One DETECTION message of the pipeline, at a frame of the recording."""

    frame: int
    t: float
    event_id: int
    lifecycle: str
    kind: str
    box: tuple[int, int, int, int]
    confidence: int
    count: int
    peak_cc: int
    thumbnail: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "frame": self.frame, "t": self.t, "event_id": self.event_id,
            "lifecycle": self.lifecycle, "kind": self.kind, "box": list(self.box),
            "confidence": self.confidence, "count": self.count, "peak_cc": self.peak_cc}
        if self.thumbnail is not None:
            out["thumbnail"] = dict(self.thumbnail)
        return out


@dataclass(frozen=True, slots=True)
class TrackBox:
    """A reported track in one frame (``tracks`` mode, used by the detection bench)."""

    frame: int
    event_id: int
    box: tuple[int, int, int, int]
    kind: str


def register(sub: Any) -> None:
    """Add ``detect`` to the ``shorewatch`` sub-parsers."""
    p = sub.add_parser(
        "detect", help="run the camera pipeline (MicroPython) over a thermal recording",
        description="Prints the pipeline's detection events as JSON lines, one per message.")
    p.add_argument("recording", metavar="RECORDING[.raw]")
    p.add_argument("--sensitivity", type=int, default=50, metavar="0..100",
                   help="detection_sensitivity of the device (default: %(default)s)")
    p.add_argument("--connectivity", type=int, choices=(4, 8), default=8)
    p.add_argument("--geometry", type=Path, metavar="FILE.json",
                   help='camera geometry: {"row_range_m": [...], "hfov_deg", "vfov_deg", '
                        '"sea_from_m"}; default: from the sidecar when it has one')
    p.add_argument("--no-geometry", action="store_true",
                   help="ignore any geometry: classify by pixel shape only")
    p.add_argument("--thumbnails", action="store_true", help="thumbnails on 'new' events")
    p.add_argument("--plain", action="store_true",
                   help="plain-Python kernels instead of viper (slower, same events)")
    p.add_argument("--heap", metavar="SIZE", help="MicroPython heap, e.g. 128k")
    p.add_argument("--stats", action="store_true",
                   help="log frames, time per frame and heap on stderr at the end")
    p.set_defaults(handler=_detect)


def pipeline_settings(recording: str | os.PathLike[str], *, sensitivity: int = 50,
                      connectivity: int = 8, geometry: Mapping[str, Any] | None = None,
                      use_geometry: bool = True, thumbnails: bool = False, plain: bool = False,
                      tracks: bool = False, stats: bool = False,
                      max_frames: int | None = None) -> tuple[Path, dict[str, Any]]:
    """Validate a recording; return its ``.raw`` path and the settings for the device runner."""
    from .sim import SimError, open_recording  # noqa: PLC0415 - keep CLI start-up light

    if not 0 <= sensitivity <= 100:
        raise DetectError(f"sensitivity {sensitivity} is outside 0..100")
    try:
        rec = open_recording(recording)
    except SimError as exc:
        raise DetectError(str(exc)) from exc
    side = rec.sidecar
    if side.rows * side.cols > MAX_PIXELS:
        raise DetectError(f"{rec.paths.sidecar}: {side.rows}x{side.cols} frames are larger "
                          f"than the pipeline's {MAX_PIXELS} pixels")
    if rec.frame_count == 0:
        raise DetectError(f"{rec.paths.raw}: the recording holds no frame")
    settings: dict[str, Any] = {
        "rows": side.rows, "cols": side.cols, "fps": side.fps, "sensitivity": sensitivity,
        "connectivity": connectivity, "thumbnails": thumbnails, "plain": plain,
        "tracks": tracks, "stats": stats, "invalid_frames": list(side.invalid_frames)}
    if max_frames is not None:
        settings["max_frames"] = max_frames
    geo = dict(geometry) if geometry is not None else _sidecar_geometry(side.metadata)
    if use_geometry and geo is not None:
        where = "--geometry" if geometry is not None else str(rec.paths.sidecar)
        settings["geometry"] = _checked_geometry(geo, side.rows, where)
    return rec.paths.raw, settings


Output = DetectionEvent | TrackBox | dict[str, Any]


def run_pipeline(raw: Path, settings: Mapping[str, Any], *, heap: str | None = None,
                 micropython: str | None = None) -> Iterator[Output]:
    """Run the device pipeline; yield its events, track boxes (``tracks``) and the final
    statistics dict (``stats``) as they are printed."""
    binary = micropython or _micropython()
    if not CAMERA_MAIN.exists():
        raise DetectError(f"{CAMERA_MAIN} not found: run from a Shorewatch checkout "
                          "(the device firmware is not part of the installed package)")
    with tempfile.TemporaryDirectory(prefix="shorewatch-detect-") as tmp:
        cfg = Path(tmp) / "settings.json"
        cfg.write_text(json.dumps(settings), encoding="utf-8")
        cmd = [binary]
        if heap:
            cmd += ["-X", f"heapsize={heap}"]
        cmd += [str(CAMERA_MAIN), str(raw), str(cfg)]
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # noqa: S603
                              text=True) as proc:
            assert proc.stdout is not None
            assert proc.stderr is not None
            try:
                for line in proc.stdout:
                    yield _parse(line)
            finally:
                if proc.poll() is None:
                    proc.kill()
                err = proc.stderr.read()
                code = proc.wait()
            if code != 0:
                tail = err.strip().splitlines()[-1] if err.strip() else f"exit code {code}"
                raise DetectError(f"the camera pipeline failed: {tail}")


def _detect(args: argparse.Namespace) -> int:
    try:
        geometry = None
        if args.geometry is not None:
            geometry = _read_geometry(args.geometry)
        raw, settings = pipeline_settings(
            args.recording, sensitivity=args.sensitivity, connectivity=args.connectivity,
            geometry=geometry, use_geometry=not args.no_geometry, thumbnails=args.thumbnails,
            plain=args.plain, stats=args.stats)
        out = sys.stdout
        for item in run_pipeline(raw, settings, heap=args.heap):
            if isinstance(item, DetectionEvent):
                out.write(json.dumps(item.to_json()) + "\n")
                out.flush()
            elif isinstance(item, dict):
                log.info("pipeline: %s", json.dumps(item))
    except DetectError as exc:
        log.error("%s", exc)
        return 1
    except BrokenPipeError:  # `| head`: the reader has seen enough
        sys.stderr.close()
        return 0
    return 0


def _parse(line: str) -> Output:
    if len(line) > MAX_LINE_BYTES:
        raise DetectError(f"pipeline output line longer than {MAX_LINE_BYTES} bytes")
    if line.startswith("T "):
        parts = line.split()
        if len(parts) != 8:
            raise DetectError(f"bad track line from the pipeline: {line.strip()!r}")
        f, eid, x, y, w, h, k = (int(v) for v in parts[1:])
        return TrackBox(f, eid, (x, y, w, h), KINDS[k] if 0 <= k < len(KINDS) else "unknown")
    if line.startswith("STATS "):
        stats: dict[str, Any] = json.loads(line[6:])
        return stats
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise DetectError(f"the pipeline printed something that is not JSON: "
                          f"{line.strip()[:200]!r}") from exc
    if not isinstance(obj, dict) or any(k not in obj for k in REQUIRED_KEYS):
        raise DetectError(f"pipeline event without {', '.join(REQUIRED_KEYS)}: {line.strip()!r}")
    box = obj["box"]
    if obj["lifecycle"] not in LIFECYCLES or obj["kind"] not in KINDS or \
            not isinstance(box, list) or len(box) != 4:
        raise DetectError(f"malformed pipeline event: {line.strip()!r}")
    return DetectionEvent(frame=int(obj["frame"]), t=float(obj.get("t", 0.0)),
                          event_id=int(obj["event_id"]), lifecycle=obj["lifecycle"],
                          kind=obj["kind"], box=(int(box[0]), int(box[1]), int(box[2]),
                                                 int(box[3])),
                          confidence=int(obj["confidence"]), count=int(obj.get("count", 1)),
                          peak_cc=int(obj.get("peak_cc", 0)), thumbnail=obj.get("thumbnail"))


def camera_geometry(sidecar: Any) -> dict[str, Any] | None:
    """The pipeline's camera geometry from a recording's sidecar (``shorewatch.sim.Sidecar``:
    the simulator's ``camera`` metadata), checked; None when the sidecar has none."""
    geo = _sidecar_geometry(sidecar.metadata)
    return None if geo is None else _checked_geometry(geo, sidecar.rows, "the sidecar")


def _micropython() -> str:
    from .peers import PeerError, micropython_binary  # noqa: PLC0415

    try:
        return micropython_binary()
    except PeerError as exc:
        raise DetectError(str(exc)) from exc


def _sidecar_geometry(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    cam = meta.get("camera")
    if not isinstance(cam, dict) or not isinstance(cam.get("row_range_m"), list):
        return None
    geo: dict[str, Any] = {"row_range_m": cam["row_range_m"]}
    for key in ("hfov_deg", "vfov_deg"):
        if key in cam:
            geo[key] = cam[key]
    scen = meta.get("scenario")
    if isinstance(scen, dict) and isinstance(scen.get("shoreline_m"), int | float):
        geo["sea_from_m"] = scen["shoreline_m"]
    return geo


def _read_geometry(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DetectError(f"{path}: cannot read the geometry: {exc}") from exc
    if not isinstance(obj, dict):
        raise DetectError(f"{path}: the geometry must be a JSON object")
    return obj


def _checked_geometry(geo: Mapping[str, Any], rows: int, where: str) -> dict[str, Any]:
    ranges = geo.get("row_range_m")
    if not isinstance(ranges, list) or len(ranges) != rows or not all(
            r is None or (isinstance(r, int | float) and r > 0) for r in ranges):
        raise DetectError(f"{where}: geometry row_range_m must list {rows} distances in "
                          "metres (null above the horizon)")
    out: dict[str, Any] = {"row_range_m": ranges}
    for key, lo, hi in (("hfov_deg", 1.0, 179.0), ("vfov_deg", 1.0, 179.0),
                        ("sea_from_m", 0.5, 10000.0)):
        value = geo.get(key)
        if value is None:
            continue
        if not isinstance(value, int | float) or not lo <= value <= hi:
            raise DetectError(f"{where}: geometry {key} must be a number in {lo:g}..{hi:g}")
        out[key] = value
    return out
