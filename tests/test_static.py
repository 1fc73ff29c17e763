"""Static checks of the host and the device code, run as part of the suite so CI enforces them."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def test_ruff_is_clean() -> None:
    result = _run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_mypy_strict_is_clean() -> None:
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_device_code_type_checks_against_the_micropython_stubs() -> None:
    """device/ under mypy (device/mypy.ini) once per pinned MicroPython stub set."""
    with (REPO / "pyproject.toml").open("rb") as f:
        sets = tomllib.load(f)["tool"]["shorewatch"]["device-stubs"]
    result = _run(sys.executable, "scripts/device_types.py")
    assert result.returncode == 0, result.stdout + result.stderr
    # every set ran, over every device file (main.py, camera_main.py, all of sw/)
    files = len(list((REPO / "device").rglob("*.py")))
    checked = re.findall(r"^== device code against the (\S+) stubs .*\n"
                         r"Success: no issues found in (\d+) source files$",
                         result.stdout, re.MULTILINE)
    assert checked == [(name, str(files)) for name in sets], result.stdout


def test_vectors_match_the_codec() -> None:
    result = _run(sys.executable, "-m", "protocol.vectors", "--check")
    assert result.returncode == 0, result.stderr
