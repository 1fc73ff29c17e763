"""``shorewatch devices ...`` as a person runs it: offline on a data directory, then against a
running gateway process through its admin socket."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shorewatch.peers import Mosquitto

pytestmark = pytest.mark.integration

PSK = "breakwater-passphrase"


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shorewatch", "devices", *map(str, args)],
                          capture_output=True, text=True, timeout=60, check=False)


def _ok(*args: str | Path) -> str:
    result = _cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def gateway(tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str) -> Iterator[Any]:
    """start() runs the gateway on tmp_path/data with the admin socket tmp_path/a.sock."""
    procs: list[subprocess.Popen[str]] = []

    def start() -> Path:
        status = tmp_path / "status.json"
        sock = tmp_path / "a.sock"
        proc = subprocess.Popen(
            [sys.executable, "-m", "shorewatch", "gateway", "run", "--data-dir",
             str(tmp_path / "data"), "--udp", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
             "--mqtt", f"{mosquitto.host}:{mosquitto.port}", "--prefix", topic_prefix,
             "--admin-socket", str(sock), "--status-file", str(status)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        deadline = time.monotonic() + 30
        while not status.exists():
            assert proc.poll() is None, "gateway exited during start-up"
            assert time.monotonic() < deadline, "gateway not up within 30 s"
            time.sleep(0.05)
        return sock

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                assert proc.wait(20) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)


def test_offline_then_live(tmp_path: Path, gateway: Any) -> None:
    data = tmp_path / "data"
    # Offline: provisioning before the first start (and keeping the old commands working).
    out = _ok("add", "--data-dir", data, "0000abcd", "--name", "north-pier", "--group", "north",
              "--identity-out", tmp_path / "abcd.json")
    assert "registered 0000abcd" in out
    assert "0000abcd  north-pier" in _ok("list", "--data-dir", data)
    offline_identity = json.loads((tmp_path / "abcd.json").read_text())
    assert stat.S_IMODE((tmp_path / "abcd.json").stat().st_mode) == 0o600

    sock = gateway()
    listing = _ok("list", "--socket", sock)
    assert "0000abcd" in listing and "provisioned" in listing and "north" in listing
    # Live registration: the identity comes back once and is written 0600.
    out = _ok("add", "--socket", sock, "0000beef", "--identity-out", tmp_path / "beef.json")
    assert "registered 0000beef" in out
    identity = json.loads((tmp_path / "beef.json").read_text())
    assert identity["device_id"] == 0xBEEF and len(identity["master_key"]) == 64
    assert stat.S_IMODE((tmp_path / "beef.json").stat().st_mode) == 0o600

    psk_file = tmp_path / "psk"
    psk_file.write_text(PSK + "\n")
    out = _ok("config", "set", "--socket", sock, "0000beef", "report_interval_s=60",
              "wifi_ssid=beach", f"wifi_psk=@{psk_file}")
    assert "desired 0000beef v1" in out
    out = _ok("config", "set", "--socket", sock, "--group", "north", "detection_sensitivity=70")
    assert "desired 0000abcd v1" in out
    out = _ok("group", "--socket", sock, "0000beef", "north")
    assert "group north, desired config v2" in out
    shown = json.loads(_ok("show", "--socket", sock, "0000beef"))
    assert shown["config"]["desired"] == {"detection_sensitivity": 70, "report_interval_s": 60,
                                          "wifi_psk": "<secret>", "wifi_ssid": "beach"}
    assert shown["config"]["pending"] is True and shown["state"] == "provisioned"
    listed = json.loads(_ok("list", "--socket", sock, "--json"))
    assert [d["device_id"] for d in listed] == ["0000abcd", "0000beef"]

    bad = _cli("config", "set", "--socket", sock, "0000beef", "report_interval_s=5")
    assert bad.returncode == 1 and "config.report_interval_s" in bad.stderr
    bad = _cli("config", "set", "--socket", sock, "0000beef", "report_interval_s=soon")
    assert bad.returncode == 1 and "not an integer" in bad.stderr
    missing = _cli("show", "--socket", sock, "00000bad")
    assert missing.returncode == 1 and "404" in missing.stderr
    nowhere = _cli("list", "--socket", tmp_path / "nope.sock")
    assert nowhere.returncode == 1 and "cannot reach the admin API" in nowhere.stderr

    assert "removed 0000beef" in _ok("remove", "--socket", sock, "0000beef")
    audit = _ok("audit", "--socket", sock)
    actions = [line.split()[3] for line in audit.splitlines()]
    assert actions == ["device.register", "device.group", "device.register", "device.config",
                       "group.config", "device.group", "device.remove"]
    assert f"cli:uid:{os.getuid()}" in audit.splitlines()[0]
    assert f"uid:{os.getuid()}" in audit.splitlines()[2]
    for secret in (PSK, identity["master_key"], offline_identity["master_key"]):
        assert secret not in audit + listing + json.dumps(shown)


def test_without_an_admin_api_the_cli_says_how(tmp_path: Path) -> None:
    result = _cli("list")
    assert result.returncode == 1 and "--socket" in result.stderr
    result = _cli("add", "--data-dir", tmp_path, "--identity-out", tmp_path / "x.json")
    assert result.returncode == 1 and "device id is required" in result.stderr
