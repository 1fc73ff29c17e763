"""``shorewatch sim run`` as a person runs it: virtual sensor nodes and a thermal camera (real
MicroPython processes) against a gateway process given by address, or against the fleet's own
gateway stopped by SIGTERM; bad arguments get one clear error and exit code 2.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from shorewatch.harness import GatewayProcess
from shorewatch.peers import Mosquitto

pytestmark = pytest.mark.integration

NODES = (0x5A175001, 0x5A175002)
CAMERA = 0x5A175C01
SUMMARY = re.compile(r"^SUMMARY (\S+) kind=(\S+) welcomed=(yes|no) telemetry=(\d+) "
                     r"detections=(\d+) acked=(\d+)(?: frames=(\d+))?(?: heap_free=(\d+))? "
                     r"exit=(\S+)$")
RUN_TIMEOUT_S = 180.0  # a hung fleet fails the test, never hangs the suite


def _shorewatch(*args: str | Path, timeout: float = RUN_TIMEOUT_S) \
        -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shorewatch", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, check=False)


def _summaries(stdout: str) -> dict[str, re.Match[str]]:
    found = {}
    for line in stdout.splitlines():
        m = SUMMARY.match(line)
        if m:
            found[m.group(1)] = m
    return found


def _register(data: Path, dev: int, kind: str, out: Path) -> Path:
    done = _shorewatch("devices", "add", "--data-dir", data, f"{dev:08x}", "--hw-kind", kind,
                       "--identity-out", out, timeout=60)
    assert done.returncode == 0, done.stderr
    return out


def test_two_nodes_and_a_camera_against_a_gateway_are_welcomed_and_report(
        tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str) -> None:
    data = tmp_path / "gw"
    identities = [_register(data, dev, "sensor_node", tmp_path / f"{dev:08x}.json")
                  for dev in NODES]
    identities.append(_register(data, CAMERA, "thermal_camera", tmp_path / "camera.json"))
    gw = GatewayProcess(data, mqtt=(mosquitto.host, mosquitto.port), prefix=topic_prefix,
                        site="sim", workdir=tmp_path / "gwrun").start()
    try:
        args: list[str | Path] = ["sim", "run", "--gateway", f"127.0.0.1:{gw.udp_port}",
                                  "--seconds", "8", "--report-interval", "1", "--speed", "4",
                                  "--scene-seconds", "60", "--workdir", tmp_path / "fleet"]
        for identity in identities:
            args += ["--identity", identity]
        done = _shorewatch(*args)
        metrics = gw.scrape()
    finally:
        assert gw.stop() == 0
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    summary = _summaries(done.stdout)
    names = [f"node-{NODES[0]:08x}", f"node-{NODES[1]:08x}", f"camera-{CAMERA:08x}"]
    assert sorted(summary) == sorted(names), done.stdout[-3000:]
    for name in names:
        m = summary[name]
        assert m.group(3) == "yes" and m.group(9) == "0", m.group(0)
        assert int(m.group(4)) >= 2, m.group(0)  # telemetry: right after WELCOME, then 1/s
        assert int(m.group(8)) > 0, m.group(0)  # heap free reported
        assert any(name in line and line.endswith(" welcomed by the gateway")
                   for line in done.stdout.splitlines()), name
    camera = summary[names[2]]
    assert camera.group(2) == "thermal_camera" and int(camera.group(7)) > 0
    assert "camera:" in done.stdout and "frames/s" in done.stdout
    # the gateway saw every board: telemetry (battery) and the camera as a camera
    for dev in (*NODES, CAMERA):
        assert metrics.value("shorewatch_device_battery_volts", f'device="{dev:08x}"') > 3
    info = [line for line in metrics.text.splitlines()
            if line.startswith("shorewatch_device_info{") and f'device="{CAMERA:08x}"' in line]
    assert len(info) == 1 and 'hw_kind="thermal_camera"' in info[0], info
    telemetry = metrics.value("shorewatch_frames_received_total", 'type="telemetry"')
    assert telemetry >= 3 * 2
    # each board's console was kept in --workdir, and no key was printed
    for name in names:
        assert (tmp_path / "fleet" / name / "console.log").stat().st_size > 0
    for identity in identities:
        key = json.loads(identity.read_text())["master_key"]
        assert key not in done.stdout + done.stderr


def _lines(stream: IO[str], out: queue.Queue[str]) -> None:
    for line in stream:
        out.put(line)


def test_own_gateway_fleet_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "shorewatch", "sim", "run", "--nodes", "1", "--cameras", "1",
         "--report-interval", "1", "--scene-seconds", "60", "--workdir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        # both boards welcomed and reporting, then SIGTERM (what systemd or kill sends)
        while sum("telemetry:" in x for x in seen) < 2 or sum("welcomed" in x for x in seen) < 2:
            assert time.monotonic() < deadline, "".join(seen)
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                assert proc.poll() is None, "".join(seen) + proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    while not lines.empty():
        seen.append(lines.get())
    out = "".join(seen)
    err = proc.stderr.read()
    assert rc == 0, out[-3000:] + err[-3000:]
    assert out.startswith("gateway: devices on udp 127.0.0.1:")
    summary = _summaries(out)
    assert sorted(summary) == ["camera-5a17c001", "node-5a170001"], out[-2000:]
    assert all(m.group(3) == "yes" and m.group(9) == "0" for m in summary.values())
    assert out.count("I app: interrupted") == 2  # each board stopped by its Ctrl-C
    assert "Traceback" not in out + err
    assert "gateway stopped, state flushed" in err


@pytest.mark.parametrize(("args", "needle"), [
    (["--nodes", "-1"], "argument --nodes: -1 is outside 0..64"),
    (["--nodes", "two"], "argument --nodes: 'two' is not a whole number"),
    (["--seconds", "0"], "--seconds must be more than 0"),
    (["--speed", "nan"], "--speed must be more than 0"),
    (["--nodes", "0", "--cameras", "0"], "nothing to run"),
    (["--gateway", "127.0.0.1:4700"], "--gateway needs --identity FILE"),
    (["--identity", "{missing}"], "cannot read the identity"),
    (["--identity", "{bad_kind}"], "hw_kind 'toaster' is not one of"),
    (["--identity", "{good}", "--nodes", "1"], "--nodes, --cameras and --mqtt are for"),
    (["--identity", "{good}", "--gateway", "nowhere"], "'nowhere' is not HOST:PORT"),
    (["--identity", "{good}", "--gateway", "127.0.0.1:0"], "port 0 is not an address"),
    (["--identity", "{good}", "--identity", "{good}"], "the same device identity is given twice"),
    (["--family", "tropical"], "unknown token 'tropical'"),
])
def test_bad_arguments_get_one_clear_error(tmp_path: Path, args: list[str], needle: str) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"device_id": 7, "master_key": "ab" * 32, "tag_len": 8,
                                "hw_kind": "sensor_node",
                                "gateway": {"host": "127.0.0.1", "port": 9}}))
    bad_kind = tmp_path / "bad.json"
    bad_kind.write_text(json.dumps({"device_id": 7, "master_key": "ab" * 32, "tag_len": 8,
                                    "hw_kind": "toaster"}))
    paths = {"good": good, "bad_kind": bad_kind, "missing": tmp_path / "missing.json"}
    done = _shorewatch("sim", "run", *[a.format(**paths) for a in args], timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert needle in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert "ab" * 32 not in done.stdout + done.stderr
    assert not done.stdout  # nothing started
