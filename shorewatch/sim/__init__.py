"""Simulators for Shorewatch: seeded night-beach thermal scenes and their recording format.

``thermal``    ScenarioSpec -> frames + ground truth (``simulate``, ``record``)
``recording``  the ``.raw`` + ``.json`` + ``.truth.jsonl`` format: writer, streaming reader
``cli``        ``shorewatch sim record|check|families``
"""

from .errors import RecordingError, ScenarioError, SimError, TruncatedRecordingError
from .recording import (
    FrameTruth,
    Recording,
    RecordingPaths,
    RecordingWriter,
    Sidecar,
    TruthTarget,
    open_recording,
)
from .scene import FAMILIES, Conditions, parse_family
from .thermal import ScenarioSpec, SimFrame, ThermalSimulator, record, simulate

__all__ = [
    "FAMILIES",
    "Conditions",
    "FrameTruth",
    "Recording",
    "RecordingError",
    "RecordingPaths",
    "RecordingWriter",
    "ScenarioError",
    "ScenarioSpec",
    "Sidecar",
    "SimError",
    "SimFrame",
    "ThermalSimulator",
    "TruncatedRecordingError",
    "TruthTarget",
    "open_recording",
    "parse_family",
    "record",
    "simulate",
]
