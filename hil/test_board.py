"""Scenarios shared by the real and the virtual board: boot, report, detect, reboot.

They run in file order on one booted board (session fixture ``rig``): flashing a real board
takes a while, and the reboot scenario comes last on purpose.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt
import pytest

from hil.rig import Rig


def _hellos(rig: Rig) -> float:
    return rig.sample("shorewatch_frames_received_total", type="hello") or 0.0


def _telemetry(rig: Rig) -> float:
    return rig.sample("shorewatch_frames_received_total", type="telemetry") or 0.0


def _info_firmware(rig: Rig) -> str | None:
    """The firmware label of this device's shorewatch_device_info, once a HELLO carried it."""
    for line in rig.metrics().splitlines():
        if line.startswith("shorewatch_device_info{") and f'device="{rig.device}"' in line:
            label = line.split('firmware="', 1)[1].split('"', 1)[0]
            return label or None
    return None


def test_boots_and_is_welcomed(rig: Rig) -> None:
    """HELLO accepted, WELCOME answered: the gateway holds the firmware and an online session."""
    rig.wait_for("HELLO seen by the gateway", lambda: _hellos(rig) >= 1, rig.timeouts.hello)
    firmware = rig.wait_for("firmware label on shorewatch_device_info",
                            lambda: _info_firmware(rig), rig.timeouts.hello)
    assert firmware
    rig.wait_for("session online (the board took the WELCOME and sent on)",
                 lambda: rig.sample("shorewatch_device_state", device=rig.device,
                                    state="online") == 1, rig.timeouts.hello)
    last_seen = rig.sample("shorewatch_device_last_seen_timestamp_seconds", device=rig.device)
    assert last_seen is not None and last_seen > 0


def test_telemetry_reaches_metrics(rig: Rig) -> None:
    start = _telemetry(rig)
    rig.wait_for("two more TELEMETRY frames", lambda: _telemetry(rig) >= start + 2,
                 rig.timeouts.telemetry * 2)
    volts = rig.sample("shorewatch_device_battery_volts", device=rig.device)
    assert volts is not None and 2.5 < volts < 4.6, volts


async def test_pir_presence_reaches_mqtt(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    got: list[dict[str, Any]] = []
    async with aiomqtt.Client(rig.mosquitto.host, rig.mosquitto.port) as client:
        await client.subscribe(rig.detection_topic, qos=1)
        if rig.board.kind == "real":
            with capsys.disabled():
                print(f"\nhil: {rig.board.pir_hint} within {rig.timeouts.pir:.0f} s", flush=True)

        async def first() -> None:
            async for message in client.messages:
                got.append(json.loads(bytes(message.payload)))
                return

        try:
            await asyncio.wait_for(first(), rig.timeouts.pir)
        except TimeoutError:
            pytest.fail(f"no detection on {rig.detection_topic} within {rig.timeouts.pir} s "
                        f"({rig.board.pir_hint}). Board console:\n{rig.board.console_tail()}")
    assert len(got) == 1
    assert got[0]["device"] == rig.device
    assert got[0]["event_id"].startswith(f"{rig.device}-")


def test_reboot_keeps_counters_fresh(rig: Rig) -> None:
    """After a reboot the gateway accepts the new HELLO: no frame counter is reused."""
    rig.wait_for("first HELLO", lambda: _hellos(rig) >= 1, rig.timeouts.hello)
    hellos, replayed = _hellos(rig), rig.sample("shorewatch_frames_rejected_total",
                                                reason="replayed") or 0.0
    rig.board.reboot()
    rig.wait_for("HELLO after the reboot", lambda: _hellos(rig) >= hellos + 1,
                 rig.timeouts.hello)
    after = _telemetry(rig)
    rig.wait_for("telemetry after the reboot", lambda: _telemetry(rig) >= after + 1,
                 rig.timeouts.telemetry * 2)
    assert (rig.sample("shorewatch_frames_rejected_total", reason="replayed") or 0.0) == replayed
    assert rig.sample("shorewatch_device_state", device=rig.device, state="online") == 1
