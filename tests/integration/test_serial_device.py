"""The device's COBS serial link (device/sw/hal/serial_link.py) under MicroPython against the
gateway's real serial transport, over real pseudo-terminals.

The gateway runs in-process (as in test_gateway_links.py) on one pseudo-terminal; the
MicroPython process opens another; the test joins their master sides like a null-modem cable.
The device builds HELLO and TELEMETRY with its own codec in the lora profile (4-byte tags) and
checks the WELCOME with it; the gateway's state shows what it accepted.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.mqtt import MqttSettings
from gateway.registry import Registry
from gateway.service import GatewaySettings
from gateway.transports import SerialSettings, UdpSettings
from protocol import Telemetry
from shorewatch.peers import Mosquitto, build_firmware, micropython_binary

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_gateway_links import STEP_S, running, sample, until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "device" / "serial_peer_runner.py"
DEV = 0x5E71A1
KEY = bytes(range(100, 132))
TEL = Telemetry(3700, 5000, -20, 1500, 120, -60, 100, 1, 300, 0)  # serial_peer_runner.TEL


class Cable:
    """Two pseudo-terminals whose master sides the event loop joins: bytes written on one
    slave come out of the other. Each slave path is a serial port as a program sees one."""

    def __init__(self) -> None:
        self._ends = [os.openpty(), os.openpty()]
        self.paths = []
        for master, slave in self._ends:
            tty.setraw(slave)
            os.set_blocking(master, False)
            self.paths.append(os.ttyname(slave))
        self.carried = [0, 0]  # bytes moved 0 -> 1 and 1 -> 0
        loop = asyncio.get_running_loop()
        for i in (0, 1):
            loop.add_reader(self._ends[i][0], self._carry, i)

    def _carry(self, i: int) -> None:
        src, dst = self._ends[i][0], self._ends[1 - i][0]
        try:
            data = os.read(src, 4096)
        except (BlockingIOError, OSError):  # EIO: no program has the slave open right now
            return
        # the other side's buffer holds 4 KB and a frame is at most 1.2 KB: a write of what
        # one read returned goes through whole
        os.write(dst, data)
        self.carried[i] += len(data)

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for master, slave in self._ends:
            loop.remove_reader(master)
            os.close(master)
            os.close(slave)


async def _micropython(*args: str) -> tuple[int | None, str, str]:
    """Run MicroPython with args to its end, at most 3 steps' time (then killed): (exit code,
    stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        micropython_binary(), *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(3 * STEP_S):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def lora_settings(tmp_path: Path, mosquitto: Mosquitto,
                  topic_prefix: str) -> Callable[..., GatewaySettings]:
    registry = Registry(tmp_path / "data" / "registry.sqlite3")
    try:
        registry.add(DEV, KEY, name="serial-node", tag_len=4)
    finally:
        registry.close()

    def make(**kw: Any) -> GatewaySettings:
        mqtt = MqttSettings(mosquitto.host, mosquitto.port, prefix=topic_prefix, site="serial",
                            gateway_id="gw0")
        return GatewaySettings(data_dir=tmp_path / "data", mqtt=(mqtt,), metrics_port=0,
                               udp=(UdpSettings("127.0.0.1", 0),), **kw)
    return make


async def test_micropython_serial_link_hello_welcome_telemetry(
        lora_settings: Callable[..., GatewaySettings]) -> None:
    cable = Cable()
    try:
        gw_port, dev_port = cable.paths
        async with running(lora_settings(serial=(SerialSettings(gw_port),))) as gw:
            async with asyncio.timeout(STEP_S):
                await gw.serial[0].opened.wait()
            rc, out, err = await _micropython(str(RUNNER), str(ROOT), dev_port, str(DEV),
                                              KEY.hex(), "4")
            assert rc == 0, out + err
            lines = out.splitlines()
            assert lines[0] == "SENT HELLO " + b"serial-1".hex(), out
            assert lines[1].startswith("WELCOME counter "), out
            # 9-byte long header + 17-byte body + 4-byte tag: the lora profile on both ends
            assert lines[1].endswith(" frame 30 bytes"), out
            assert lines[2:] == ["SENT TELEMETRY", "LINK errors 0 cobs 0 overflows 0 dropped 0"]
            await until(lambda: gw.devices[DEV].telemetry == TEL, "telemetry not applied")
            state = gw.devices[DEV]
            assert state.fw_version == "0.1.0"
            assert state.last_addr == (f"serial:{gw_port}", 0)
            assert sample(gw, "shorewatch_frames_received_total", type="hello") == 1
            assert sample(gw, "shorewatch_frames_received_total", type="telemetry") == 1
            # the line noise the device sent before its HELLO: one bad block, then resync
            assert sample(gw, "shorewatch_frames_rejected_total", reason="cobs") == 1
            assert cable.carried[0] > 0 and cable.carried[1] > 0
    finally:
        cable.close()


async def test_sensor_node_runs_over_the_serial_link(
        lora_settings: Callable[..., GatewaySettings], tmp_path: Path) -> None:
    """The whole firmware (main.py, .mpy) on board virtual_serial: HELLO, WELCOME, periodic
    TELEMETRY over the pseudo-terminals, stopped cleanly by run_for_s. 72 KB heap: the link's
    code and buffers are loaded after the boot step, where the 64 KB node has no room for them
    (device/README.md, "Serial link")."""
    board = tmp_path / "board"
    board.mkdir()
    cable = Cable()
    try:
        gw_port, dev_port = cable.paths
        (board / "identity.json").write_text(json.dumps({
            "device_id": DEV, "master_key": KEY.hex(), "tag_len": 4, "hw_kind": "sensor_node",
            "gateway": {"host": "127.0.0.1", "port": 9}, "board": "virtual_serial",
            "serial": dev_port}))
        (board / "config.json").write_text(json.dumps({
            "report_interval_s": 0.5, "run_for_s": 3, "pir": {"mean_interval_s": 1e6}}))
        firmware = await asyncio.to_thread(build_firmware)
        async with running(lora_settings(serial=(SerialSettings(gw_port),))) as gw:
            async with asyncio.timeout(STEP_S):
                await gw.serial[0].opened.wait()
            rc, out, err = await _micropython("-X", "heapsize=72k",
                                              str(Path(firmware) / "main.py"), str(board))
            out += err
            assert rc == 0, out
            assert "I app: welcome: downlink counter" in out, out
            sent = [json.loads(line.split(" ", 1)[1]) for line in out.splitlines()
                    if line.startswith("TELEMETRY ")]
            assert len(sent) >= 2, out
            # run-time headroom like the UDP node's at 64 KB (~11-12 KB; 12.5 KB measured here)
            assert sent[-1]["free_heap_64"] * 64 >= 8 * 1024, sent[-1]
            await until(lambda: sample(gw, "shorewatch_frames_received_total",
                                       type="telemetry") == len(sent),
                        "not every TELEMETRY the node sent arrived")
            assert sample(gw, "shorewatch_frames_received_total", type="hello") == 1
            last = gw.devices[DEV].telemetry
            assert last is not None and last.battery_mv == sent[-1]["battery_mv"]
            assert last.uptime_s == sent[-1]["uptime_s"]
            assert gw.devices[DEV].last_addr == (f"serial:{gw_port}", 0)
    finally:
        cable.close()
