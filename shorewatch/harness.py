"""The gateway as a child process on loopback, and what its /metrics says, for tests and benches.

``GatewayProcess`` runs ``shorewatch gateway run`` with its own data directory, logs to a file
(a pipe nobody reads would block the gateway once full) and learns the bound ports from the
status file. It can be stopped (SIGTERM, ordered shutdown), killed (SIGKILL, a power cut for the
process) and started again on the same UDP port, as devices keep the gateway address they have.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from .loadgen import rss_bytes
from .peers import PeerError

# Longest wait for the gateway to write its status file or to exit after a signal.
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0


class GatewayProcess:
    """One gateway instance; ``start`` may be called again after ``kill`` or ``stop``."""

    def __init__(self, data_dir: Path, *, mqtt: tuple[str, int], prefix: str, site: str,
                 workdir: Path, udp_port: int = 0, gateway_id: str = "gw0",
                 extra_args: Sequence[str] = ()) -> None:
        self.data_dir = data_dir
        self.mqtt = mqtt
        self.prefix = prefix
        self.site = site
        self.workdir = workdir
        self.udp_port = udp_port
        self.metrics_port = 0
        self.gateway_id = gateway_id
        self.extra_args = tuple(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "gateway.log"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise PeerError("the gateway is not running")
        return self.proc.pid

    def start(self, timeout: float = START_TIMEOUT_S) -> GatewayProcess:
        """Start and wait until it serves; the UDP port is kept from the previous start."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        status = self.workdir / "status.json"
        status.unlink(missing_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"--- start {self.starts + 1}\n".encode())
        self._log.flush()
        cmd = [sys.executable, "-m", "shorewatch", "gateway", "run",
               "--data-dir", str(self.data_dir), "--udp", f"127.0.0.1:{self.udp_port}",
               "--metrics", "127.0.0.1:0", "--mqtt", f"{self.mqtt[0]}:{self.mqtt[1]}",
               "--prefix", self.prefix, "--site", self.site, "--gateway-id", self.gateway_id,
               "--status-file", str(status), *self.extra_args]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)  # noqa: S603
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if status.exists():
                ports = json.loads(status.read_text())
                self.udp_port = int(ports["udp_port"])
                self.metrics_port = int(ports["metrics_port"])
                return self
            if self.proc.poll() is not None:
                raise PeerError(f"gateway exited with {self.proc.returncode} during start-up; "
                                f"see {self.log_path}")
            time.sleep(0.02)
        self.kill()
        raise PeerError(f"gateway did not start within {timeout:.0f} s; see {self.log_path}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: nothing is flushed, as in a power cut."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT_S)
        self._close_log()

    def stop(self) -> int:
        """SIGTERM and wait for the ordered shutdown; returns the exit code."""
        if self.proc is None:
            raise PeerError("the gateway was never started")
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        self._close_log()
        return int(self.proc.returncode)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def scrape(self, timeout: float = 10.0, names: Sequence[str] = ()) -> Metrics:
        """/metrics, parsed; only the metrics in ``names`` (if given) to keep a scrape of a
        large fleet cheap for the scraper."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body: bytes = resp.read()
        return Metrics(body.decode(), names)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class Metrics:
    """Samples of one Prometheus text exposition, by metric name and label string."""

    def __init__(self, text: str, names: Sequence[str] = ()) -> None:
        self.text = text
        self._samples: dict[str, dict[str, float]] = {}
        wanted = tuple(names)
        for line in text.splitlines():
            if not line or line.startswith("#") or (wanted and not line.startswith(wanted)):
                continue
            head, _, value = line.rpartition(" ")
            name, brace, labels = head.partition("{")
            self._samples.setdefault(name, {})[labels.rstrip("}") if brace else ""] = \
                float(value)

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """``{label value: sample}`` of a metric with one label (``reason``, ``type``, ...)."""
        out = {}
        prefix = f'{label}="'
        for labels, value in self._samples.get(name, {}).items():
            if labels.startswith(prefix):
                out[labels[len(prefix):].split('"', 1)[0]] = value
        return out

    def value(self, name: str, labels: str = "") -> float:
        """One sample (``labels`` as written in the exposition, e.g. ``reason="bad_tag"``)."""
        return self._samples.get(name, {}).get(labels, 0.0)

    def total(self, name: str) -> float:
        return sum(self._samples.get(name, {}).values())
