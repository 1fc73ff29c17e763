"""Heap of the sensor node under MicroPython with a 64 KB heap: free at steady state, the largest
free block, and the smallest heap it boots in, against the empty interpreter measured in the
same run.

    python bench/node_heap.py [--seconds N]

The firmware runs as a board runs it (device/sw compiled to .mpy, main.py as source) on the
virtual board, against the codec-seam gateway (shorewatch/fakegateway.py): busy (a presence a
second, TELEMETRY every half second, log level debug so that every TELEMETRY prints
micropython.mem_info()), then a whole night on the accelerated board. The free heap is what
the node reports in TELEMETRY (free_heap_64, after a collection); the largest free block is
mem_info()'s "max free sz" (blocks of 32 bytes on this 64-bit port).

    RESULT free_heap_bytes=N largest_free_bytes=N night_free_heap_bytes=N min_heap_kb=N
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout

from shorewatch.fakegateway import DEVICE_ID, MASTER, TAG_LEN, FakeGateway  # noqa: E402
from shorewatch.peers import build_firmware, micropython_binary  # noqa: E402
from shorewatch.sim import solar  # noqa: E402

HEAP = 64
BLOCK = 32  # bytes per GC block with 8-byte words
GC_LINE = re.compile(r"^GC: total: (\d+), used: (\d+), free: (\d+)")
MAX_FREE = re.compile(r"max free sz: (\d+)")
DUSK = 1_797_868_800  # 2026-12-21 16:00 UTC


def _board(path: Path, port: int, cfg: dict[str, object]) -> Path:
    path.mkdir(parents=True)
    (path / "identity.json").write_text(json.dumps({
        "device_id": DEVICE_ID, "master_key": MASTER.hex(), "tag_len": TAG_LEN,
        "hw_kind": "sensor_node", "gateway": {"host": "127.0.0.1", "port": port}}))
    (path / "config.json").write_text(json.dumps(cfg))
    return path


def run(firmware: Path, board_dir: Path, cfg: dict[str, object], heap_kb: int,
        timeout: float) -> tuple[int, str]:
    gateway = FakeGateway(unix_s=DUSK)
    try:
        board = _board(board_dir, gateway.port, cfg)
        if cfg.get("sim"):
            env = solar.environment(DUSK, 15 * 60, seed=11)
            solar.write_environment(board / solar.ENV_FILE, env)
        out_path = board_dir.parent / f"{board_dir.name}.out"
        with out_path.open("wb") as out:
            proc = subprocess.Popen([micropython_binary(), "-X", f"heapsize={heap_kb}k",
                                     str(firmware / "main.py"), str(board)],
                                    stdout=out, stderr=subprocess.STDOUT)
            gateway.serve(proc, timeout)
    finally:
        gateway.close()
    return proc.returncode, out_path.read_text()


def busy(seconds: float) -> dict[str, object]:
    return {"report_interval_s": 0.5, "run_for_s": seconds, "update_interval_s": 0.25,
            "log_level": "debug", "pir": {"seed": 3, "mean_interval_s": 0.6, "duration_s": 0.5}}


def night() -> dict[str, object]:
    return {"report_interval_s": 300, "run_for_s": 14 * 3600,
            "pir": {"seed": 11, "mean_interval_s": 1800, "duration_s": 20},
            "battery": {"initial_mv": 3780},
            "sim": {"warp": True, "start_s": DUSK, "outages": [[10800, 18000]]}}


def telemetry_heap(out: str) -> list[int]:
    return [json.loads(line[10:])["free_heap_64"] * 64 for line in out.splitlines()
            if line.startswith("TELEMETRY ")]


def empty_interpreter(heap_kb: int) -> int:
    """Free heap of the interpreter with nothing of ours loaded: the baseline."""
    done = subprocess.run([micropython_binary(), "-X", f"heapsize={heap_kb}k", "-c",
                           "import gc; gc.collect(); print(gc.mem_free())"],
                          capture_output=True, text=True, timeout=30, check=True)
    return int(done.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="length of the busy run")
    args = ap.parse_args(argv)
    firmware = build_firmware()
    base = empty_interpreter(HEAP)
    with tempfile.TemporaryDirectory(prefix="shorewatch-heap-") as tmp:
        rc, out = run(firmware, Path(tmp) / "busy", busy(args.seconds), HEAP, args.seconds + 30)
        if rc != 0:
            raise SystemExit(f"the busy run failed ({rc}):\n{out[-2000:]}")
        free = telemetry_heap(out)[2:]  # steady state: after the HELLO round's code is gone
        blocks = [int(m.group(1)) for m in MAX_FREE.finditer(out)][2:]
        totals = [int(m.group(1)) for line in out.splitlines() if (m := GC_LINE.match(line))]
        rc, out = run(firmware, Path(tmp) / "night", night(), HEAP, 300)
        if rc != 0:
            raise SystemExit(f"the night failed ({rc}):\n{out[-2000:]}")
        night_free = telemetry_heap(out)[1:]
        smallest = None
        for kb in range(HEAP, HEAP - 8, -1):
            rc, out = run(firmware, Path(tmp) / f"boot{kb}", {**busy(1.5), "log_level": "info"},
                          kb, 30)
            if rc != 0 or not telemetry_heap(out):
                break
            smallest = kb
    if not free or not blocks or not night_free or smallest is None:
        raise SystemExit("the node reported no heap figures")
    print(f"MicroPython unix port, -X heapsize={HEAP}k: {totals[0] if totals else 0} bytes of "
          f"GC heap; the empty interpreter leaves {base} free (baseline)")
    print(f"busy node, {args.seconds:g} s: free at TELEMETRY {min(free)}..{max(free)} bytes "
          f"({100 * min(free) / base:.0f} % of the baseline), largest free block "
          f"{min(blocks) * BLOCK}..{max(blocks) * BLOCK} bytes")
    print(f"a night on the accelerated board: free at TELEMETRY {min(night_free)}.."
          f"{max(night_free)} bytes")
    print(f"smallest heap it boots and reports in: {smallest} KB (searched down from {HEAP})")
    print(f"RESULT free_heap_bytes={min(free)} largest_free_bytes={min(blocks) * BLOCK} "
          f"night_free_heap_bytes={min(night_free)} min_heap_kb={smallest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
