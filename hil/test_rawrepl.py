"""The raw-REPL client against a real MicroPython REPL (the unix port) on a pseudo-terminal.

The unix port ends the process on a raw-REPL Ctrl-D, so soft reset is not covered here.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from hil.rawrepl import RawRepl, RawReplError, RemoteError
from shorewatch.peers import micropython_binary


@pytest.fixture
def repl(tmp_path: Path) -> Iterator[RawRepl]:
    """A unix-port REPL on the master side of a pty; the client opens the slave by path."""
    master, slave = os.openpty()
    port = serial.serial_for_url(os.ttyname(slave), baudrate=115200, timeout=0.05)
    os.close(slave)
    proc = subprocess.Popen([micropython_binary(), "-i"], stdin=master, stdout=master,
                            stderr=master, cwd=tmp_path, close_fds=True)
    os.close(master)
    try:
        client = RawRepl(port, timeout=10)
        client.enter()
        yield client
    finally:
        proc.kill()
        proc.wait(10)
        port.close()


def test_exec_returns_stdout(repl: RawRepl) -> None:
    assert repl.exec("print(6 * 7)") == b"42\n"
    assert repl.eval_str("'a' + 'b'") == "ab"


def test_remote_exception_carries_the_traceback(repl: RawRepl) -> None:
    with pytest.raises(RemoteError, match="ZeroDivisionError"):
        repl.exec("1 / 0")
    assert repl.exec("print('still here')") == b"still here\n"  # the REPL is usable after it


def test_entering_twice_is_harmless(repl: RawRepl) -> None:
    repl.enter()
    assert repl.eval_str("1 + 1") == "2"


def test_file_write_and_read_back(repl: RawRepl, tmp_path: Path) -> None:
    data = bytes(range(256)) * 5 + b"\x00\x04\x03\x01>OK"  # control bytes and the terminators
    repl.mkdir("sub")
    repl.mkdir("sub")  # already there: fine
    repl.write_file("sub/blob.bin", data)
    assert (tmp_path / "sub" / "blob.bin").read_bytes() == data  # it is really on "flash"
    assert not (tmp_path / "sub" / "blob.bin.part").exists()
    assert repl.read_file("sub/blob.bin") == data


def test_large_code_goes_through_raw_paste_flow_control(repl: RawRepl) -> None:
    code = "x = 0\n" + "x += 1\n" * 2000 + "print(x)\n"  # far beyond one paste window
    assert repl.exec(code) == b"2000\n"
    assert repl.paste is True


def test_silence_times_out_with_what_arrived(tmp_path: Path) -> None:
    port = serial.serial_for_url("loop://", timeout=0.05)
    with pytest.raises(RawReplError, match="raw REPL"):
        RawRepl(port, timeout=0.3).enter()  # a loopback echoes, never answers with the banner
