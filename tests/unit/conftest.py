"""Shared fixtures for the unit tier: Hypothesis profiles and the construct codec mode."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from protocol import schema

# "ci": the same examples on every run (seeded from each test), nothing written to disk, no
# deadline (a shared 2-core runner makes per-example timing meaningless).
# "dev": fresh random examples each run, failures remembered in .hypothesis/.
settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(params=list(schema.MODES))
def codec_mode(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with each fixed-layout parser (packed, compiled, interpreted); restore."""
    previous = schema.current_mode()
    schema.use_mode(request.param)
    try:
        yield request.param
    finally:
        schema.use_mode(previous)
