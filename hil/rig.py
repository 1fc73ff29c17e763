"""What a scenario holds: the booted board, its gateway's /metrics and the broker."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest

from hil.targets import Target
from shorewatch.peers import Mosquitto

SITE = "hil"
T = TypeVar("T")


@dataclass
class Timeouts:
    """Seconds to wait for each observation: generous on hardware (WiFi, a person)."""

    hello: float
    telemetry: float
    pir: float


@dataclass
class Rig:
    """One booted board reporting through one gateway to one broker."""

    board: Target
    device: str  # 8 hex digits, as in metrics labels and MQTT topics
    metrics_port: int
    mosquitto: Mosquitto
    prefix: str
    timeouts: Timeouts
    gateway: subprocess.Popen[str]

    @property
    def detection_topic(self) -> str:
        return f"{self.prefix}/{SITE}/device/{self.device}/event/detection"

    def metrics(self) -> str:
        assert self.gateway.poll() is None, "gateway exited"
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body: bytes = resp.read()
        return body.decode()

    def sample(self, name: str, **labels: str) -> float | None:
        """The first sample of ``name`` whose labels include ``labels``; None if absent."""
        want = [f'{k}="{v}"' for k, v in labels.items()]
        for line in self.metrics().splitlines():
            if line.startswith((name + "{", name + " ")):
                head, _, value = line.rpartition(" ")
                if all(w in head for w in want):
                    return float(value)
        return None

    def wait_for(self, what: str, check: Callable[[], T | None], timeout: float) -> T:
        """Poll ``check()`` until truthy; on timeout fail with the board's console tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            time.sleep(0.2)
        pytest.fail(f"{what}: not within {timeout} s ({self.board.kind} board). "
                    f"Board console:\n{self.board.console_tail()}")
