"""Monitoring artefacts against the real tools: promtool for the alert rules, and a real
Prometheus scraping a real gateway for every Grafana panel query."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gateway.registry import Registry
from protocol import (
    SCHEMA_FINGERPRINT,
    BootReason,
    DeviceKeys,
    Direction,
    HardwareKind,
    Hello,
    Telemetry,
    encode_frame,
)
from shorewatch.peers import Mosquitto, PeerError, free_port, wait_tcp

pytestmark = pytest.mark.integration
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make test` or apt-get install prometheus")
    return path


def test_alert_rules_pass_promtool_check_and_unit_tests() -> None:
    rules = DEPLOY / "prometheus"
    check = subprocess.run([_tool("promtool"), "check", "rules", "shorewatch-rules.yml"],
                           cwd=rules, capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "7 rules found" in check.stdout
    test = subprocess.run([_tool("promtool"), "test", "rules", "shorewatch-rules.test.yml"],
                          cwd=rules, capture_output=True, text=True, timeout=60, check=False)
    assert test.returncode == 0, test.stdout + test.stderr


def _get(port: int, path: str, **params: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        data: dict[str, Any] = json.loads(resp.read())
    return data


def _wait_ready(port: int, timeout: float) -> None:
    """Prometheus answers 503 until its TSDB is open; /-/ready says when."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, "Prometheus never became ready"
            time.sleep(0.2)


def test_every_dashboard_query_runs_on_real_prometheus(tmp_path: Path,
                                                       mosquitto: Mosquitto) -> None:
    dev, key = 0x5A17AB01, bytes(range(32))
    registry = Registry(tmp_path / "gw" / "registry.sqlite3")
    registry.add(dev, key)
    registry.close()
    status = tmp_path / "status.json"
    gw = subprocess.Popen(
        [sys.executable, "-m", "shorewatch", "gateway", "run", "--data-dir", str(tmp_path / "gw"),
         "--udp", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
         "--mqtt", f"{mosquitto.host}:{mosquitto.port}", "--prefix", "mon",
         "--status-file", str(status)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    prom: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 30
        while not status.exists():
            assert time.monotonic() < deadline and gw.poll() is None, "gateway did not start"
            time.sleep(0.05)
        ports = json.loads(status.read_text())
        keys = DeviceKeys.from_master(key)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            hello = Hello(0, 1, 0, HardwareKind.SENSOR_NODE, BootReason.POWER_ON, 0,
                          SCHEMA_FINGERPRINT, b"abcdefgh")
            for counter, msg in enumerate([hello, Telemetry(3712, 5100, 20, 1200, 150, -70,
                                                            60, 1, 300, 0)]):
                sock.sendto(encode_frame(msg, keys=keys, direction=Direction.UP, device_id=dev,
                                         counter=counter), ("127.0.0.1", ports["udp_port"]))
            sock.recvfrom(2048)  # the WELCOME: the gateway processed our frames

        prom_port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n  - job_name: shorewatch-gateway\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{ports['metrics_port']}']\n"
            f"rule_files: ['{DEPLOY / 'prometheus' / 'shorewatch-rules.yml'}']\n")
        prom = subprocess.Popen(
            [_tool("prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / "prom.log").open("wb"))
        try:
            wait_tcp("127.0.0.1", prom_port, 30)
        except PeerError:
            pytest.fail((tmp_path / "prom.log").read_text()[-3000:])
        _wait_ready(prom_port, 60)
        deadline = time.monotonic() + 30
        while True:
            result = _get(prom_port, "/api/v1/query", query="shorewatch_device_battery_volts")
            if result["data"]["result"]:
                break
            assert time.monotonic() < deadline, "Prometheus never scraped the gateway"
            time.sleep(0.25)
        assert float(result["data"]["result"][0]["value"][1]) == 3.712

        dashboard = json.loads((DEPLOY / "grafana" / "shorewatch-fleet.json").read_text())
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        assert len(exprs) == len(dashboard["panels"]) >= 10
        empty = []
        for expr in exprs:
            answer = _get(prom_port, "/api/v1/query", query=expr)
            assert answer["status"] == "success", (expr, answer)
            if not answer["data"]["result"]:
                empty.append(expr)
        # Rates need two scrapes and latency needs publishes; everything about the device and
        # the fleet must already have data.
        for must in ("shorewatch_device_battery_volts", "shorewatch_device_info",
                     "shorewatch_mqtt_connected", "shorewatch_device_last_seen"):
            assert not [e for e in empty if must in e], empty
        rules = _get(prom_port, "/api/v1/rules")
        assert rules["status"] == "success"
        assert sum(len(g["rules"]) for g in rules["data"]["groups"]) == 7
    finally:
        if prom is not None:
            prom.terminate()
            prom.wait(20)
        gw.terminate()
        gw.wait(20)
