"""The README's first command: the demo shows detections and stops cleanly on SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("broker", ["embedded", "mosquitto"])
def test_demo_prints_detections_and_stops_on_ctrl_c(broker: str, mosquitto) -> None:
    del mosquitto  # ensures Mosquitto is installed for the mosquitto variant
    proc = subprocess.Popen([sys.executable, "-m", "shorewatch", "demo", "--broker", broker],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if sum(x.startswith("DETECTION ") for x in lines) >= 2:
                break
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = "".join(lines) + rest
    detections = [x for x in output.splitlines() if x.startswith("DETECTION ")]
    assert len(detections) >= 2, output
    assert any(" new " in x for x in detections), output
    assert "stopped cleanly" in output, output
    assert "Traceback" not in output, output
    assert proc.returncode == 0, output
