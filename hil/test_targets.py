"""RealTarget's flashing against a real MicroPython REPL (the unix port) on a pseudo-terminal.

Everything up to the boot: the soft reset that starts main.py needs a board (on the unix port
Ctrl-D ends the process), so ``_boot`` is replaced by a recorder here.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil import targets
from hil.targets import HilError, RealTarget
from shorewatch.peers import build_firmware, micropython_binary


@pytest.fixture
def unix_board(tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RealTarget, Path]]:
    """A RealTarget on a pty whose other end is the unix port's REPL, cwd = its flash."""
    flash = tmp_path / "flash"
    flash.mkdir()
    master, slave = os.openpty()
    path = os.ttyname(slave)
    monkeypatch.setitem(targets.BOARD_ARCH, "unix_host", "host")
    target = RealTarget(path, "unix_host", tmp_path / "console.log")
    os.close(slave)
    proc = subprocess.Popen([micropython_binary(), "-i"], stdin=master, stdout=master,
                            stderr=master, cwd=flash, close_fds=True)
    os.close(master)
    try:
        yield target, flash
    finally:
        proc.kill()
        proc.wait(10)
        target.close()


def test_flash_copies_firmware_identity_and_config(unix_board: tuple[RealTarget, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    target, flash = unix_board
    boots: list[int] = []
    monkeypatch.setattr(target, "_boot", lambda: boots.append(1))
    writes: list[str] = []
    real_write = target.repl.write_file

    def counting_write(path: str, data: bytes) -> None:
        writes.append(path)
        real_write(path, data)

    monkeypatch.setattr(target.repl, "write_file", counting_write)
    identity = {"device_id": 1, "board": "unix_host"}
    target.flash_and_boot(identity, {"report_interval_s": 5})

    firmware = build_firmware(march="host")
    want = sorted(p.relative_to(firmware).as_posix() for p in firmware.rglob("*")
                  if p.is_file() and p.name != ".complete")
    assert len(want) > 10
    for name in want:
        assert (flash / name).read_bytes() == (firmware / name).read_bytes(), name
    assert json.loads((flash / "identity.json").read_text()) == identity
    assert json.loads((flash / "config.json").read_text()) == {"report_interval_s": 5}
    assert sorted(writes) == sorted([*want, "identity.json", "config.json"])
    assert boots == [1]

    writes.clear()  # a second flash of the same bytes writes nothing (hash already held)
    target.flash_and_boot(identity, {"report_interval_s": 5})
    assert writes == []
    assert boots == [1, 1]


def test_mpy_version_mismatch_is_refused(unix_board: tuple[RealTarget, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    target, _ = unix_board
    target.repl.enter()
    monkeypatch.setattr(target.repl, "eval_str", lambda expr: str(0x0105))
    with pytest.raises(HilError, match="mpy version 5"):
        target._check_mpy_version(build_firmware(march="host"))


def test_unknown_board_is_named(tmp_path: Path) -> None:
    with pytest.raises(HilError, match="known: esp32c3_node"):
        RealTarget("loop://", "esp8266", tmp_path / "console.log")
