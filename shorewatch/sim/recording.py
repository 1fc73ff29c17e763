"""Thermal recording format: int16 centi-degree frames, a JSON sidecar, JSON-lines ground truth.

``PREFIX.raw``           frames, little-endian int16 centi-degrees Celsius, row-major, concatenated
``PREFIX.json``          sidecar: ``fps``, ``sensor``, ``rows``, ``cols`` (required) + metadata
``PREFIX.truth.jsonl``   one JSON object per frame: ``{"frame": n, "targets": [...]}``

Readers and writers stream one frame or one line at a time, so memory stays bounded whatever
the length of the recording. The layout is documented in ``docs/thermal-recordings.md``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeGuard

from .errors import RecordingError, SidecarError, TruncatedRecordingError, TruthError

FORMAT_NAME = "shorewatch-thermal"
FORMAT_VERSION = 1
DTYPE = "int16le"
UNITS = "centi-degC"
DEFAULT_SENSOR = "MLX90640"

# A sidecar is a few hundred bytes of metadata; 1 MiB leaves room for notes but stops a
# wrongly named multi-megabyte file from being slurped and parsed.
MAX_SIDECAR_BYTES = 1 << 20
# Lepton 3 is 160x120; 320x240 leaves one step up and caps a frame at 150 KiB.
MAX_ROWS = 240
MAX_COLS = 320
# The MLX90640 refresh rate tops out at 64 Hz (32 full frames/s); nothing we read is faster.
MAX_FPS = 64.0
# 256 targets of ~200 bytes each: a truth line longer than this is not one of ours.
MAX_TRUTH_LINE_BYTES = 64 * 1024
# More targets than pixels-worth of blobs in a 32x24 frame means the file is wrong.
MAX_TARGETS_PER_FRAME = 256
# Short identifiers keep truth lines bounded; ids and kinds are labels, not text.
MAX_LABEL_CHARS = 64


@dataclass(frozen=True, slots=True)
class Sidecar:
    """The JSON sidecar of a recording: the four required keys plus what else it carried."""

    fps: float
    sensor: str
    rows: int
    cols: int
    frames: int | None = None
    invalid_frames: tuple[int, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.cols * 2

    def to_json(self) -> dict[str, Any]:
        """The sidecar object as written: required keys first, then format, then metadata."""
        out: dict[str, Any] = {"fps": self.fps, "sensor": self.sensor, "rows": self.rows,
                               "cols": self.cols, "format": FORMAT_NAME,
                               "version": FORMAT_VERSION, "dtype": DTYPE, "units": UNITS}
        if self.frames is not None:
            out["frames"] = self.frames
        out["invalid_frames"] = list(self.invalid_frames)
        for key, value in self.metadata.items():
            out.setdefault(key, value)
        return out


@dataclass(frozen=True, slots=True)
class TruthTarget:
    """One ground-truth object in one frame; ``box`` is ``(x, y, w, h)`` in frame pixels."""

    id: str
    kind: str
    box: tuple[int, int, int, int]
    range_m: float | None = None
    contrast_k: float | None = None
    visible: float | None = None
    pose: str | None = None
    members: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "box": list(self.box)}
        if self.range_m is not None:
            out["range_m"] = self.range_m
        if self.contrast_k is not None:
            out["contrast_k"] = self.contrast_k
        if self.visible is not None:
            out["visible"] = self.visible
        if self.pose is not None:
            out["pose"] = self.pose
        if self.members:
            out["members"] = list(self.members)
        return out


@dataclass(frozen=True, slots=True)
class FrameTruth:
    """Ground truth of one frame; ``valid`` is false for frames a real sensor gets wrong."""

    frame: int
    targets: tuple[TruthTarget, ...]
    valid: bool = True
    time_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frame": self.frame}
        if self.time_s is not None:
            out["t"] = self.time_s
        out["valid"] = self.valid
        out["targets"] = [t.to_json() for t in self.targets]
        return out


@dataclass(frozen=True, slots=True)
class RecordingPaths:
    """The three files of a recording, derived from ``PREFIX`` or ``PREFIX.raw``."""

    raw: Path
    sidecar: Path
    truth: Path

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> RecordingPaths:
        text = os.fspath(path)
        prefix = text.removesuffix(".raw")
        return cls(Path(prefix + ".raw"), Path(prefix + ".json"), Path(prefix + ".truth.jsonl"))


class Recording:
    """An opened, validated recording; frames and truth are read lazily, one at a time."""

    def __init__(self, paths: RecordingPaths, sidecar: Sidecar, frame_count: int) -> None:
        self.paths = paths
        self.sidecar = sidecar
        self.frame_count = frame_count

    @property
    def has_truth(self) -> bool:
        return self.paths.truth.exists()

    def frames(self, start: int = 0) -> Iterator[array[int]]:
        """Yield frames from ``start`` as ``array('h')`` of ``rows * cols`` centi-degrees."""
        size = self.sidecar.frame_bytes
        with self.paths.raw.open("rb") as fh:
            fh.seek(start * size)
            for index in range(start, self.frame_count):
                chunk = fh.read(size)
                if len(chunk) != size:
                    raise TruncatedRecordingError(
                        self.paths.raw, expected_frames=self.frame_count, found_frames=index,
                        extra_bytes=len(chunk), frame_bytes=size)
                frame = array("h")
                frame.frombytes(chunk)
                if sys.byteorder == "big":
                    frame.byteswap()
                yield frame

    def truth(self) -> Iterator[FrameTruth]:
        """Yield the ground truth lines, checked against this recording's geometry."""
        if not self.has_truth:
            raise RecordingError(self.paths.truth, "no ground truth next to the recording",
                                 "recordings from a real camera have none")
        last = -1
        for item in iter_truth(self.paths.truth, rows=self.sidecar.rows, cols=self.sidecar.cols):
            if item.frame <= last:
                raise RecordingError(self.paths.truth,
                                     f"frame {item.frame} after frame {last}: not increasing")
            if item.frame >= self.frame_count:
                raise RecordingError(self.paths.truth, f"frame {item.frame} is past the last "
                                     f"frame ({self.frame_count - 1}) of the recording")
            last = item.frame
            yield item


def open_recording(path: str | os.PathLike[str]) -> Recording:
    """Open ``PREFIX`` or ``PREFIX.raw``: read the sidecar and check the raw file's size."""
    paths = RecordingPaths.of(path)
    sidecar = read_sidecar(paths.sidecar)
    try:
        size = paths.raw.stat().st_size
    except FileNotFoundError as exc:
        raise RecordingError(paths.raw, "raw frame file not found",
                             "a recording is PREFIX.raw + PREFIX.json") from exc
    found, extra = divmod(size, sidecar.frame_bytes)
    if extra or (sidecar.frames is not None and found != sidecar.frames):
        raise TruncatedRecordingError(paths.raw, expected_frames=sidecar.frames,
                                      found_frames=found, extra_bytes=extra,
                                      frame_bytes=sidecar.frame_bytes)
    for index in sidecar.invalid_frames:
        if index >= found:
            raise SidecarError(paths.sidecar, "invalid_frames",
                               f"frame {index} is past the last frame ({found - 1})")
    return Recording(paths, sidecar, found)


def read_sidecar(path: Path) -> Sidecar:
    """Read and validate a sidecar file (at most ``MAX_SIDECAR_BYTES``)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SIDECAR_BYTES + 1)
    except FileNotFoundError as exc:
        raise RecordingError(path, "sidecar not found",
                             "write one with fps, sensor, rows and cols next to the .raw") from exc
    if len(data) > MAX_SIDECAR_BYTES:
        raise RecordingError(path, f"sidecar larger than {MAX_SIDECAR_BYTES} bytes",
                             "is this really the JSON sidecar?")
    return parse_sidecar(data, path)


def parse_sidecar(data: bytes, path: Path) -> Sidecar:
    """Validate sidecar bytes: required keys, types and ranges; other keys become metadata."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordingError(path, f"sidecar is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise RecordingError(path, "sidecar must be a JSON object")
    fps = _number(obj, "fps", path)
    if not 0 < fps <= MAX_FPS:
        raise SidecarError(path, "fps", f"{fps} is outside (0, {MAX_FPS:g}]")
    sensor = obj.get("sensor")
    if not isinstance(sensor, str) or not 0 < len(sensor) <= MAX_LABEL_CHARS:
        raise SidecarError(path, "sensor", f"must be a name of 1-{MAX_LABEL_CHARS} characters",
                           'e.g. "MLX90640"')
    rows = _integer(obj, "rows", path, 1, MAX_ROWS)
    cols = _integer(obj, "cols", path, 1, MAX_COLS)
    frames = None if obj.get("frames") is None else _integer(obj, "frames", path, 0, None)
    for key, expected in (("dtype", DTYPE), ("units", UNITS)):
        if key in obj and obj[key] != expected:
            raise SidecarError(path, key, f"{obj[key]!r} is not supported, only {expected!r}")
    version = obj.get("version", FORMAT_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise SidecarError(path, "version", f"{version!r} is newer than this reader "
                           f"({FORMAT_VERSION})", "upgrade shorewatch")
    invalid = obj.get("invalid_frames", [])
    if not isinstance(invalid, list) or not all(_is_int(i) and i >= 0 for i in invalid):
        raise SidecarError(path, "invalid_frames", "must be a list of frame numbers >= 0")
    if frames is not None and len(invalid) > frames:
        raise SidecarError(path, "invalid_frames", "lists more frames than the recording has")
    known = {"fps", "sensor", "rows", "cols", "frames", "invalid_frames"}
    metadata = {k: v for k, v in obj.items() if k not in known}
    return Sidecar(fps=fps, sensor=sensor, rows=rows, cols=cols, frames=frames,
                   invalid_frames=tuple(invalid), metadata=metadata)


def iter_truth(path: Path, *, rows: int, cols: int) -> Iterator[FrameTruth]:
    """Stream ground truth lines, each at most ``MAX_TRUTH_LINE_BYTES``; blank lines skipped."""
    with path.open("rb") as fh:
        lineno = 0
        while True:
            line = fh.readline(MAX_TRUTH_LINE_BYTES + 1)
            if not line:
                return
            lineno += 1
            if len(line) > MAX_TRUTH_LINE_BYTES:
                raise TruthError(path, lineno, f"longer than {MAX_TRUTH_LINE_BYTES} bytes")
            if line.strip():
                yield parse_truth_line(line, path=path, line=lineno, rows=rows, cols=cols)


def parse_truth_line(data: bytes, *, path: Path, line: int, rows: int, cols: int) -> FrameTruth:
    """Validate one truth line: frame number, targets with ids, kinds and in-frame boxes."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TruthError(path, line, f"not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise TruthError(path, line, "must be a JSON object")
    frame = obj.get("frame")
    if not _is_int(frame) or frame < 0:
        raise TruthError(path, line, "'frame' must be an integer >= 0")
    raw_targets = obj.get("targets")
    if not isinstance(raw_targets, list):
        raise TruthError(path, line, "'targets' must be a list")
    if len(raw_targets) > MAX_TARGETS_PER_FRAME:
        raise TruthError(path, line, f"more than {MAX_TARGETS_PER_FRAME} targets")
    valid = obj.get("valid", True)
    if not isinstance(valid, bool):
        raise TruthError(path, line, "'valid' must be true or false")
    time_s = obj.get("t")
    if time_s is not None and not _is_number(time_s):
        raise TruthError(path, line, "'t' must be a number of seconds")
    targets = tuple(_target(t, path, line, rows, cols) for t in raw_targets)
    return FrameTruth(frame=frame, targets=targets, valid=valid,
                      time_s=None if time_s is None else float(time_s))


class RecordingWriter:
    """Write a recording frame by frame; the sidecar is written last, by ``finish()``.

    A recording without a sidecar is an interrupted one: ``open_recording`` refuses it. Any
    sidecar left by an earlier recording under the same prefix is removed when writing starts.
    """

    def __init__(self, prefix: str | os.PathLike[str], *, fps: float, rows: int, cols: int,
                 sensor: str = DEFAULT_SENSOR, with_truth: bool = True) -> None:
        self.paths = RecordingPaths.of(prefix)
        self.header = Sidecar(fps=fps, sensor=sensor, rows=rows, cols=cols)
        self.frames_written = 0
        self.invalid_frames: list[int] = []
        self._raw: IO[bytes] | None = None
        self._truth: IO[str] | None = None
        self._with_truth = with_truth
        self._big_endian = sys.byteorder == "big"

    def __enter__(self) -> Self:
        self.paths.sidecar.unlink(missing_ok=True)
        self.paths.raw.parent.mkdir(parents=True, exist_ok=True)
        self._raw = self.paths.raw.open("wb")
        if self._with_truth:
            self._truth = self.paths.truth.open("w", encoding="utf-8")
        else:  # a stale truth file would be read as this recording's
            self.paths.truth.unlink(missing_ok=True)
        return self

    def write(self, pixels: array[int], truth: FrameTruth | None = None) -> None:
        """Append one frame (``array('h')`` of rows*cols) and, optionally, its truth line."""
        if self._raw is None:
            raise RecordingError(self.paths.raw, "writer used outside its 'with' block")
        expected = self.header.rows * self.header.cols
        if len(pixels) != expected or pixels.typecode != "h":
            raise RecordingError(self.paths.raw, f"frame {self.frames_written} has "
                                 f"{len(pixels)} '{pixels.typecode}' values, not {expected} 'h'")
        if self._big_endian:
            pixels = array("h", pixels)
            pixels.byteswap()
        self._raw.write(pixels.tobytes())
        if truth is not None and self._truth is not None:
            if truth.frame != self.frames_written:
                raise RecordingError(self.paths.truth, f"truth for frame {truth.frame} written "
                                     f"with frame {self.frames_written}")
            self._truth.write(json.dumps(truth.to_json(), separators=(",", ":")) + "\n")
            if not truth.valid:
                self.invalid_frames.append(truth.frame)
        self.frames_written += 1

    def finish(self, metadata: Mapping[str, Any] | None = None) -> Sidecar:
        """Close the data files and write the sidecar (atomically, by rename)."""
        self._close_files()
        sidecar = Sidecar(fps=self.header.fps, sensor=self.header.sensor, rows=self.header.rows,
                          cols=self.header.cols, frames=self.frames_written,
                          invalid_frames=tuple(self.invalid_frames), metadata=metadata or {})
        tmp = self.paths.sidecar.with_name(self.paths.sidecar.name + ".tmp")
        tmp.write_text(json.dumps(sidecar.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.paths.sidecar)
        return sidecar

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._close_files()

    def _close_files(self) -> None:
        for fh in (self._raw, self._truth):
            if fh is not None:
                fh.close()
        self._raw = self._truth = None


def _target(obj: object, path: Path, line: int, rows: int, cols: int) -> TruthTarget:
    if not isinstance(obj, dict):
        raise TruthError(path, line, "each target must be a JSON object")
    ident = _label(obj, "id", path, line, numbers_ok=True)
    kind = _label(obj, "kind", path, line)
    box = obj.get("box")
    if not isinstance(box, list) or len(box) != 4 or not all(_is_int(v) for v in box):
        raise TruthError(path, line, f"target {ident}: 'box' must be [x, y, w, h] integers")
    x, y, w, h = box
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > cols or y + h > rows:
        raise TruthError(path, line, f"target {ident}: box {box} is not inside the "
                         f"{cols}x{rows} frame")
    extras: dict[str, float | None] = {}
    for key in ("range_m", "contrast_k", "visible"):
        value = obj.get(key)
        if value is not None and not _is_number(value):
            raise TruthError(path, line, f"target {ident}: {key!r} must be a number")
        extras[key] = None if value is None else float(value)
    pose = obj.get("pose")
    members = obj.get("members", [])
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise TruthError(path, line, f"target {ident}: 'members' must be a list of ids")
    return TruthTarget(id=ident, kind=kind, box=(x, y, w, h), range_m=extras["range_m"],
                       contrast_k=extras["contrast_k"], visible=extras["visible"],
                       pose=pose if isinstance(pose, str) else None, members=tuple(members))


def _label(obj: Mapping[str, Any], key: str, path: Path, line: int, *,
           numbers_ok: bool = False) -> str:
    value = obj.get(key)
    if numbers_ok and _is_int(value):  # other tools number their tracks
        value = str(value)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_LABEL_CHARS:
        raise TruthError(path, line, f"target {key!r} must be 1-{MAX_LABEL_CHARS} characters")
    return value


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[float]:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _number(obj: Mapping[str, Any], key: str, path: Path) -> float:
    value = obj.get(key)
    if value is None:
        raise SidecarError(path, key, "missing", "required keys: fps, sensor, rows, cols")
    if not _is_number(value):
        raise SidecarError(path, key, f"{value!r} is not a number")
    return float(value)


def _integer(obj: Mapping[str, Any], key: str, path: Path, low: int, high: int | None) -> int:
    value = obj.get(key)
    if value is None:
        raise SidecarError(path, key, "missing", "required keys: fps, sensor, rows, cols")
    if not _is_int(value):
        raise SidecarError(path, key, f"{value!r} is not an integer")
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise SidecarError(path, key, f"{value} is outside {bound}")
    return int(value)
