"""Shared fixtures: real peers on loopback, and the guard that a CI run really tested."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shorewatch.peers import Mosquitto


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure, and so is a run that tested nothing."""
    if os.environ.get("CI") != "true" or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or hasattr(session.config, "workerinput"):
        return
    skipped = len(reporter.stats.get("skipped", []))
    passed = len(reporter.stats.get("passed", []))
    if skipped or not passed:
        reporter.write_line(f"CI: {passed} passed, {skipped} skipped: skips are failures in CI",
                            red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One real Mosquitto per test worker; tests isolate themselves with a topic prefix."""
    if not Mosquitto.available():
        pytest.fail("mosquitto is not installed: run `make test` (installs it) or "
                    "apt-get install mosquitto")
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    yield broker
    broker.stop()


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> str:
    """A topic prefix unique to this test (and worker), so tests share a broker safely."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"t-{worker}-{abs(hash(request.node.nodeid)) % 10**8}"


REPO = Path(__file__).resolve().parent.parent
