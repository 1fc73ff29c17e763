"""Type-check the device code (MicroPython) against the MicroPython stub packages.

Each stub set of ``[tool.shorewatch.device-stubs]`` in pyproject.toml is installed in a directory
of its own under ``<venv>/device-stubs/``: the sets ship the same top-level modules (machine,
socket, time...), so two of them cannot share the venv's site-packages. mypy then runs once per
set with ``device/mypy.ini``, the set in place of CPython's typeshed.

    python scripts/device_types.py install      install the sets that are missing or changed
    python scripts/device_types.py [SET ...]    check against every set, or the named ones

``make`` runs ``install``; ``tests/test_static.py`` runs the check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "device" / "mypy.ini"
# Written last into a set's directory: the requirements it was installed from, one per line.
MARKER = "REQUIREMENTS"


class StubError(Exception):
    """The stub sets cannot be installed or are not installed as pyproject.toml pins them."""


def stub_sets() -> dict[str, list[str]]:
    """Set name -> pinned requirements, from pyproject.toml."""
    with (REPO / "pyproject.toml").open("rb") as f:
        table = tomllib.load(f)["tool"]["shorewatch"]["device-stubs"]
    return {name: list(reqs) for name, reqs in table.items()}


def stubs_root() -> Path:
    """Where the sets live: inside the venv running this script, next to mypy."""
    if sys.prefix == sys.base_prefix:
        raise StubError("run this with the project's venv (.venv/bin/python), not a system "
                        "Python: the stub sets are installed inside the venv")
    return Path(sys.prefix) / "device-stubs"


def install(sets: dict[str, list[str]], root: Path) -> None:
    """Install each set that is missing or was installed from other requirements."""
    root.mkdir(parents=True, exist_ok=True)
    for name, reqs in sets.items():
        dest = root / name
        if _installed_from(dest) == reqs:
            continue
        # into a fresh directory, moved in place when complete: an interrupted install never
        # looks like a finished one
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            done = subprocess.run(  # noqa: S603 - fixed command, pinned requirements
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--target", str(staging), *reqs],
                capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0:
                raise StubError(f"pip could not install the {name} stubs ({' '.join(reqs)}):\n"
                                f"{done.stderr.strip()}")
            (staging / MARKER).write_text("".join(r + "\n" for r in reqs))
            shutil.rmtree(dest, ignore_errors=True)
            staging.rename(dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def check(name: str, reqs: list[str], root: Path) -> tuple[bool, str]:
    """Run mypy on the device code against one set: (clean, mypy's output)."""
    stubs = root / name
    found = _installed_from(stubs)
    if found != reqs:
        state = "is not installed" if found is None else f"was installed from {found}"
        raise StubError(f"stub set {name} {state}, pyproject.toml pins {reqs}: run "
                        "`make .venv/.installed` or `.venv/bin/python scripts/device_types.py "
                        "install`")
    # MYPYPATH: the set's port modules (machine, micropython, network...); the standard library
    # comes from the set too (--custom-typeshed-dir). One cache per set: their types differ.
    env = dict(os.environ, MYPYPATH=str(stubs))
    done = subprocess.run(  # noqa: S603 - fixed command
        [sys.executable, "-m", "mypy", "--config-file", str(CONFIG),
         "--custom-typeshed-dir", str(stubs),
         "--cache-dir", str(REPO / ".mypy_cache" / f"device-{name}")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    return done.returncode == 0, done.stdout + done.stderr


def main(argv: list[str]) -> int:
    try:
        sets = stub_sets()
        root = stubs_root()
        if argv[:1] == ["install"]:
            install(sets, root)
            return 0
        unknown = [a for a in argv if a not in sets]
        if unknown:
            raise StubError(f"unknown stub set {', '.join(unknown)} (pyproject.toml has "
                            f"{', '.join(sets)})")
        clean = True
        for name in argv or list(sets):
            ok, output = check(name, sets[name], root)
            clean = clean and ok
            sys.stdout.write(f"== device code against the {name} stubs ({sets[name][0]})\n"
                             f"{output}")
    except StubError as e:
        sys.stderr.write(f"device_types: {e}\n")
        return 2
    return 0 if clean else 1


def _installed_from(stubs: Path) -> list[str] | None:
    try:
        return (stubs / MARKER).read_text().split()
    except FileNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
