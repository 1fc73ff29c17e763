"""Simulator error tree: every failure names what to check."""

from __future__ import annotations

from pathlib import Path


class SimError(Exception):
    """Root of every error raised by ``shorewatch.sim``."""


class ScenarioError(SimError):
    """A scenario knob is unknown or out of range."""

    def __init__(self, field: str, problem: str, hint: str = "") -> None:
        text = f"scenario {field}: {problem}"
        super().__init__(f"{text} ({hint})" if hint else text)
        self.field = field
        self.problem = problem
        self.hint = hint


class RecordingError(SimError):
    """A thermal recording (raw frames, sidecar or ground truth) is missing or malformed."""

    def __init__(self, path: Path, problem: str, hint: str = "") -> None:
        text = f"{path}: {problem}"
        super().__init__(f"{text} ({hint})" if hint else text)
        self.path = path
        self.problem = problem
        self.hint = hint


class TruncatedRecordingError(RecordingError):
    """The ``.raw`` file does not hold the frames its sidecar promises."""

    def __init__(self, path: Path, *, expected_frames: int | None, found_frames: int,
                 extra_bytes: int, frame_bytes: int) -> None:
        found = f"{found_frames} whole frames"
        if extra_bytes:
            found += f" + {extra_bytes} bytes of a partial frame"
        if expected_frames is None:
            problem = (f"{found}: the size is not a whole number of {frame_bytes}-byte frames")
            hint = "truncated copy, or wrong rows/cols in the sidecar"
        else:
            problem = (f"expected {expected_frames} frames of {frame_bytes} bytes "
                       f"(sidecar 'frames'), found {found}")
            hint = ("was the copy or the recording interrupted?" if found_frames < expected_frames
                    else "the sidecar 'frames' is stale: rewrite it or remove the key")
        super().__init__(path, problem, hint)
        self.expected_frames = expected_frames
        self.found_frames = found_frames
        self.extra_bytes = extra_bytes
        self.frame_bytes = frame_bytes


class SidecarError(RecordingError):
    """The JSON sidecar is missing a key, has a wrong type, or a value out of range."""

    def __init__(self, path: Path, key: str, problem: str, hint: str = "") -> None:
        super().__init__(path, f"sidecar key {key!r}: {problem}", hint)
        self.key = key


class TruthError(RecordingError):
    """A ground-truth JSON line is malformed."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(path, f"line {line}: {problem}")
        self.line = line
