"""A whole winter night on the accelerated virtual board: the real firmware (.mpy, 64 KB heap) under
the sun and air of the solar model, with PIR presences and an access-point outage, in seconds.

The night runs against the codec-seam gateway of the device tests (shorewatch/fakegateway.py),
with its WELCOME clock at the simulated dusk so the device's timestamps are the night's. The
board's clock skips the time a sleeping node would sleep through (device/sw/hal/warp.py); the
test is bounded by a hard timeout on the process, never by a wall-clock assertion.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from protocol.messages import Detection, Telemetry, TelemetryFlag
from shorewatch.fakegateway import DEVICE_ID, MASTER, TAG_LEN, FakeGateway, PeerError
from shorewatch.peers import build_firmware, micropython_binary
from shorewatch.sim import solar

pytestmark = pytest.mark.integration

DUSK = 1_797_868_800  # 2026-12-21 16:00 UTC at Calais: the sun has just set
NIGHT_S = 14 * 3600  # to 06:00 UTC, before the sun rises (~07:50)
OUTAGE = (3 * 3600, 5 * 3600)  # the access point is down from 19:00 to 21:00
TIMEOUT_S = 300.0  # the night takes seconds; this only stops a hung board
LIVENESS_S = 900  # TELEMETRY at least every 15 minutes (power.py)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(tmp_path_factory.mktemp("night-build") / "fw")


def _board(path: Path, port: int, **sim: Any) -> Path:
    path.mkdir(parents=True)
    (path / "identity.json").write_text(json.dumps({
        "device_id": DEVICE_ID, "master_key": MASTER.hex(), "tag_len": TAG_LEN,
        "hw_kind": "sensor_node", "gateway": {"host": "127.0.0.1", "port": port}}))
    (path / "config.json").write_text(json.dumps({
        "report_interval_s": 300,  # the policy's normal-mode interval
        "run_for_s": NIGHT_S,
        "pir": {"seed": 11, "mean_interval_s": 1800, "duration_s": 20},
        "battery": {"initial_mv": 3780},  # ~42 %: normal mode, a December cell
        "link": {"ack_timeout_s": 2, "max_retries": 3},
        "sim": {"warp": True, "start_s": DUSK, "outages": [list(OUTAGE)], **sim},
    }))
    env = solar.environment(DUSK, NIGHT_S // 60 + 60, seed=11)
    solar.write_environment(path / solar.ENV_FILE, env)
    return path


def _run(build: Path, board: Path, gateway: FakeGateway) -> tuple[int, str]:
    out_path = board.parent / "night.out"
    with out_path.open("wb") as out:
        proc = subprocess.Popen([micropython_binary(), "-X", "heapsize=64k",
                                 str(build / "main.py"), str(board)],
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            gateway.serve(proc, TIMEOUT_S)
        except PeerError as exc:
            pytest.fail(str(exc))
    return proc.returncode, out_path.read_text()


def test_a_december_night_with_an_outage_in_64k(build: Path, tmp_path: Path) -> None:
    gateway = FakeGateway(unix_s=DUSK)
    try:
        board = _board(tmp_path / "board", gateway.port)
        rc, out = _run(build, board, gateway)
    finally:
        gateway.close()
    lines = out.splitlines()
    assert rc == 0, out[-3000:]
    assert "Traceback" not in out
    stop = [line for line in lines if line.startswith("I app: stopped:")]
    assert len(stop) == 1, out[-3000:]
    assert stop[0].endswith(" 0 out of memory"), stop[0]
    assert gateway.errors == []

    # the whole night passed on the device's clock
    sent = [json.loads(line[len("TELEMETRY "):]) for line in lines
            if line.startswith("TELEMETRY ")]
    assert sent[-1]["uptime_s"] >= NIGHT_S - LIVENESS_S
    # TELEMETRY at least every 15 minutes, outage or not (what the node sent)
    ups = [t["uptime_s"] for t in sent]
    assert max(b - a for a, b in itertools.pairwise(ups)) <= LIVENESS_S + 1
    assert len(sent) >= NIGHT_S // LIVENESS_S
    # dark all night: no charge, the cell only drains; no brown-out
    assert all(t["solar_mv"] == 0 for t in sent)
    assert all(t["charge_ma"] < 0 for t in sent)
    assert sent[-1]["battery_mv"] <= sent[0]["battery_mv"] + 20
    sim = [line for line in lines if line.startswith("I sim: ")]
    assert len(sim) == 1 and sim[0].startswith("I sim: brownouts 0,"), sim
    # the heap stays the same all night: nothing is allocated per event or per wake
    # (after the first TELEMETRY: the HELLO round's code may still be in the heap then)
    heap = {t["free_heap_64"] for t in sent[1:]}
    assert max(heap) - min(heap) <= 8, sorted(heap)

    # the gateway heard nothing during the outage, and only then
    got = gateway.of(Telemetry)
    gap = max(b.message.uptime_s - a.message.uptime_s for a, b in itertools.pairwise(got))
    assert OUTAGE[1] - OUTAGE[0] <= gap <= OUTAGE[1] - OUTAGE[0] + 2 * LIVENESS_S
    assert any(t["flags"] & TelemetryFlag.LINK_DEGRADED for t in sent)

    # every presence of the night reached the gateway, those of the outage after it
    events = [json.loads(line[len("EVENT "):]) for line in lines if line.startswith("EVENT ")]
    made = {(e["event_id"], e["lifecycle"]) for e in events}
    delivered = {(r.message.event_id, r.message.lifecycle.name.lower())
                 for r in gateway.of(Detection)}
    assert len(made) >= 10  # ~28 presences expected at one per 30 min; new + end each
    assert made <= delivered
    assert stop[0].split(", ")[3] == "0 detections pending"
    in_outage = [e for e in events if DUSK + OUTAGE[0] <= e["ts_s"] < DUSK + OUTAGE[1]]
    assert in_outage, "no presence during the outage: pick another seed"
    assert not any("store full" in line for line in lines)


def test_the_energy_bench_runs_the_firmware_through_its_darkest_day(
        capsys: pytest.CaptureFixture[str]) -> None:
    """bench/energy.py puts the real firmware on the accelerated board under the bench's own sun
    and outages; the RESULT line covers that run too."""
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("bench_energy_fw", root / "bench" / "energy.py")
    assert spec is not None and spec.loader is not None
    energy = importlib.util.module_from_spec(spec)
    sys.modules["bench_energy_fw"] = energy  # dataclasses look their module up
    spec.loader.exec_module(energy)
    assert energy.main(["--days", "7", "--sweep", "0", "--firmware-days", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    fw = out[out.index(next(line for line in out if line.startswith("the firmware on"))) + 2]
    assert "0 dropped; out of memory 0" in fw, fw
    made, delivered = (int(x.split()[0]) for x in fw.split("made ")[1].split(", ")[:2])
    assert made >= 20 and delivered == made
    assert out[-1] == "RESULT brownouts=0 max_telemetry_gap_min=15 events_lost=0"
