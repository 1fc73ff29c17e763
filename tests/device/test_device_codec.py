"""The device codec (device/sw) on the real MicroPython unix port: golden vectors, fuzzing under a
64 KB heap, mpy-cross for the boards' architectures, and counter block reservation."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from shorewatch.peers import micropython_binary, mpy_cross_binary

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SW = ROOT / "device" / "sw"
HERE = Path(__file__).resolve().parent
VECTORS = ROOT / "protocol" / "vectors"

FUZZ_SEEDS = (1, 2, 3, 4)  # one subprocess each, so that xdist runs them side by side
FUZZ_COUNT = 25_000
FUZZ_TOTAL = 100_000
HEAP = "64k"
CODEC = ("__init__", "crypto", "cobs", "proto", "fields")  # all the fuzz runner imports
ARCHES = ("xtensawin", "armv6m")  # ESP32 / ESP32-S3 (Xtensa) and RP2040 (Cortex-M0+) boards
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")
REASONS = ("truncated", "oversize", "bad_version", "unknown_type", "wrong_direction",
           "unknown_device", "resync_required", "bad_tag", "replayed", "too_old", "malformed",
           "cobs", "overflow", "counter_exhausted")  # spec section 8




def _run(args: list[str], env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                          env=None if env is None else {**os.environ, **env})


def _summary(out: str) -> tuple[int, int]:
    """(passed, failed) from the runner's last line, which must be exactly the summary."""
    lines = out.strip().splitlines()
    assert lines, "the runner printed nothing"
    last = lines[-1]
    m = SUMMARY.match(last)
    assert m, f"last line is not a summary: {last!r}"
    return int(m.group(1)), int(m.group(2))


def _vector_count() -> int:
    """Vectors as vector_runner counts them: one per entry, a replay sequence is one."""
    def load(name: str) -> dict[str, list[object]]:
        data: dict[str, list[object]] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
        return data

    framing = load("framing.json")
    return (len(load("messages.json")["vectors"]) + len(load("decode.json")["vectors"])
            + len(load("replay.json")["vectors"]) + len(framing["cobs"])
            + len(framing["streams"]))


def _compile_codec(dest: Path) -> None:
    """The codec modules and the fuzz runner as bytecode .mpy files in dest (what boards run)."""
    mpy_cross = mpy_cross_binary()
    (dest / "sw").mkdir()
    for name in CODEC:
        done = _run([mpy_cross, "-o", str(dest / "sw" / f"{name}.mpy"), str(SW / f"{name}.py")])
        assert done.returncode == 0, done.stderr
    done = _run([mpy_cross, "-o", str(dest / "fuzz_runner.mpy"), str(HERE / "fuzz_runner.py")])
    assert done.returncode == 0, done.stderr


def test_vector_runner_passes_every_golden_vector() -> None:
    done = _run([micropython_binary(), str(HERE / "vector_runner.py"), str(ROOT)])
    passed, failed = _summary(done.stdout)
    assert failed == 0, done.stdout
    assert passed == _vector_count()
    assert done.returncode == 0


def test_schema_fingerprint_matches_the_vectors() -> None:
    done = _run([micropython_binary(), "-c",
                 "from sw import proto; print(proto.SCHEMA_FINGERPRINT)"],
                env={"MICROPYPATH": str(ROOT / "device")})
    assert done.returncode == 0, done.stderr
    expected = json.loads((VECTORS / "messages.json").read_text(encoding="utf-8"))
    assert int(done.stdout) == expected["schema_fingerprint"]


@pytest.mark.parametrize("seed", FUZZ_SEEDS)
def test_fuzz_raises_only_proto_errors_in_64k_heap(seed: int, tmp_path: Path) -> None:
    assert len(FUZZ_SEEDS) * FUZZ_COUNT >= FUZZ_TOTAL
    # Precompiled, as on a board: compiling proto.py from source alone needs ~128 KB of heap.
    _compile_codec(tmp_path)
    done = _run([micropython_binary(), "-X", f"heapsize={HEAP}", "-m", "fuzz_runner", str(seed),
                 str(FUZZ_COUNT), str(tmp_path)], env={"MICROPYPATH": str(tmp_path)})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert _summary(done.stdout) == (FUZZ_COUNT, 0)
    counts = {(kind, key): int(n) for kind, key, n in
              (line.split() for line in done.stdout.splitlines()[:-1])}
    categories = {k: n for (kind, k), n in counts.items() if kind == "category"}
    reasons = {k: n for (kind, k), n in counts.items() if kind == "reason"}
    assert sum(categories.values()) == FUZZ_COUNT
    # correctly tagged mutants are what reaches the body parsers
    assert categories["retagged"] >= 0.4 * FUZZ_COUNT
    assert reasons["accept"] > 0.05 * FUZZ_COUNT
    assert reasons["malformed"] > 0.05 * FUZZ_COUNT
    assert set(REASONS) <= reasons.keys(), "reasons the fuzzer never reached"


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("src", sorted(SW.rglob("*.py")), ids=lambda p: str(p.relative_to(SW)))
def test_mpy_cross_compiles_device_code(src: Path, arch: str, tmp_path: Path) -> None:
    out = tmp_path / src.with_suffix(".mpy").name
    done = _run([mpy_cross_binary(), f"-march={arch}", "-o", str(out), str(src)])
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:2] == b"M\x06"  # .mpy magic, format version 6


COUNTER_SCRIPT = """
import json, os, sys
from sw.counter import BLOCK, Counter, CounterFileError, _store
from sw.proto import MAX_COUNTER, ProtoError

path = sys.argv[1]
out = {}
c = Counter(path)
first = [c.next() for _ in range(600)]
out["first_writes"] = c.writes
c = Counter(path)  # reboot: a new object reads the reservation back
second = [c.next() for _ in range(300)]
out["second_writes"] = c.writes
out["first"] = [first[0], first[-1]]
out["second"] = [second[0], second[-1]]
out["reused"] = len(set(first) & set(second))
out["increasing"] = all(b == a + 1 for a, b in zip(first, first[1:])) and \\
    all(b == a + 1 for a, b in zip(second, second[1:]))
try:
    os.stat(path + ".tmp")
    out["tmp_left"] = True
except OSError:
    out["tmp_left"] = False
_store(path, MAX_COUNTER)
c = Counter(path)
out["last"] = c.next()
try:
    c.next()
    out["exhausted"] = None
except ProtoError as e:
    out["exhausted"] = e.reason
with open(path, "wb") as f:
    f.write(b"garbage")
try:
    Counter(path)
    out["corrupt"] = "accepted"
except CounterFileError:
    out["corrupt"] = "refused"
out["block"] = BLOCK
print(json.dumps(out))
"""


def test_counter_reserves_blocks_and_never_reuses_after_reboot(tmp_path: Path) -> None:
    script = tmp_path / "counter_check.py"
    script.write_text(COUNTER_SCRIPT, encoding="utf-8")
    done = _run([micropython_binary(), str(script), str(tmp_path / "counter")],
                env={"MICROPYPATH": str(ROOT / "device")})
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["block"] == 256
    # boot + two more blocks (at 256 and 512) for counters 0..599
    assert got["first"] == [0, 599]
    assert got["first_writes"] == 3
    # the reboot starts at the reserved limit 768 and writes once at boot, once at 1024
    assert got["second"] == [768, 1067]
    assert got["second_writes"] == 2
    assert got["reused"] == 0
    assert got["increasing"] is True
    assert got["tmp_left"] is False
    assert got["last"] == 0xFFFFFFFF
    assert got["exhausted"] == "counter_exhausted"
    assert got["corrupt"] == "refused"
