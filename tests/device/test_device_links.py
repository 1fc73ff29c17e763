"""WiFi bring-up and the COBS serial link (device/sw/hal) on the real MicroPython unix port,
against fakes at their seams (tests/device/links_runner.py): a scripted `network` module with
ESP32 and Pico W status numbering and a fake clock, and a scripted UART.

The runner ends with exactly "N passed, M failed"; the count is asserted too, so a check that
silently stopped running fails here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from shorewatch.peers import micropython_binary

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")
LINK_CHECKS = 69  # checks links_runner.py makes (a changed runner must update this)
PSK = "s3cret-beach-psk"  # links_runner.PSK


def test_wifi_and_serial_link_against_fakes() -> None:
    done = subprocess.run([micropython_binary(),
                           str(HERE / "links_runner.py"), str(ROOT)],
                          capture_output=True, text=True, timeout=120, check=False)
    out = done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines, "the runner printed nothing"
    m = SUMMARY.match(lines[-1])
    assert m, f"last line is not a summary: {lines[-1]!r}\n{out}"
    assert (int(m.group(1)), int(m.group(2))) == (LINK_CHECKS, 0), out
    assert done.returncode == 0, out
    # the reasons are logged by SSID; the passphrase never is
    assert "W wifi: beach: giving up after 1 tries: wrong_password" in lines
    assert "W wifi: beach: giving up after 4 tries: no_ap_found" in lines
    assert "I wifi: beach: no_ap_found, next try in 1000 ms" in lines
    assert PSK not in out
