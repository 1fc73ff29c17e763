"""A fleet of virtual boards against a gateway (``shorewatch sim run``), printing what happens.

Every board is the real firmware (``device/``, compiled to ``.mpy`` as a board holds it) in the
real MicroPython interpreter, as its own process: sensor nodes under a 64 KB heap, thermal
cameras under 128 KB with the MLX90640's virtual twin playing a night-beach recording (one
seeded scene per camera from ``shorewatch.sim``, looped). The fleet reads each board's console
and prints one line per welcome, telemetry, detection and camera report, then a summary.

The gateway is either a running one (``gateway=`` and the devices' identity files, as written
by ``shorewatch devices add --identity-out``) or the fleet's own (``own_gateway``: an
in-process gateway on 127.0.0.1 with a temporary registry, optionally publishing to MQTT).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..peers import (
    CAMERA_HEAP,
    NODE_HEAP,
    PeerError,
    VirtualBoard,
    build_firmware,
    micropython_binary,
)
from .errors import SimError

log = logging.getLogger(__name__)

KINDS = ("sensor_node", "thermal_camera")
_BOARDS = {"sensor_node": "virtual", "thermal_camera": "virtual_camera"}
_HEAPS = {"sensor_node": NODE_HEAP, "thermal_camera": CAMERA_HEAP}
_NAMES = {"sensor_node": "node", "thermal_camera": "camera"}
# Each board is a MicroPython process (a few MB) printing a few lines a second; more boards
# than this is a load test, which shorewatch/loadgen.py does without interpreters.
MAX_BOARDS = 64
# Longest console line read from a board: a line is < 300 bytes; anything longer is not ours.
MAX_LINE_BYTES = 16384
# Largest identity file read: one is ~250 bytes.
MAX_IDENTITY_BYTES = 4096
# Full frames per second an MLX90640 delivers (half its refresh rates): a camera board's fps.
CAMERA_FPS = (0.25, 0.5, 1, 2, 4, 8, 16, 32)
STOP_TIMEOUT_S = 10.0
# Device ids the fleet's own gateway gives its boards.
NODE_IDS = 0x5A170001
CAMERA_IDS = 0x5A17C001


class FleetError(SimError):
    """The fleet cannot start as asked; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Device:
    """One provisioned device: id, kind and identity document (which holds the key)."""

    device_id: int
    hw_kind: str
    identity: dict[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return f"{_NAMES[self.hw_kind]}-{self.device_id:08x}"


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """How the boards run: settings of their config.json and of the cameras' scenes."""

    report_interval_s: float = 5.0
    speed: float = 1.0  # camera frames, x real time
    family: str = "summer-dry-calm-near"  # the cameras' scenes (shorewatch sim families)
    scene_s: float = 600.0  # length of a camera's recording, played in a loop
    thumbnails: bool = False


@dataclass(slots=True)
class BoardReport:
    """What one board did, from its console."""

    name: str
    hw_kind: str
    welcomed: bool = False
    telemetry: int = 0
    detections: int = 0
    acked: int = 0
    frames: int = 0
    heap_free: int | None = None
    exit_code: int | None = None
    unparsed: int = 0  # machine-readable lines that did not parse

    def summary(self) -> str:
        welcomed = "yes" if self.welcomed else "no"
        line = (f"SUMMARY {self.name} kind={self.hw_kind} welcomed={welcomed} "
                f"telemetry={self.telemetry} detections={self.detections} acked={self.acked}")
        if self.hw_kind == "thermal_camera":
            line += f" frames={self.frames}"
        if self.heap_free is not None:
            line += f" heap_free={self.heap_free}"
        return line + f" exit={self.exit_code}"


def read_identity(path: Path) -> Device:
    """A device identity file (``shorewatch devices add --identity-out``), checked."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_IDENTITY_BYTES + 1)
    except OSError as exc:
        raise FleetError(f"{path}: cannot read the identity ({exc.strerror or exc})") from exc
    if len(raw) > MAX_IDENTITY_BYTES:
        raise FleetError(f"{path}: larger than {MAX_IDENTITY_BYTES} bytes: not an identity file")
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise FleetError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise FleetError(f"{path}: not a JSON object")
    dev = doc.get("device_id")
    if type(dev) is not int or not 1 <= dev <= 0xFFFFFFFE:
        raise FleetError(f"{path}: device_id must be an integer in 1..0xfffffffe")
    kind = doc.get("hw_kind", "sensor_node")
    if kind not in KINDS:
        raise FleetError(f"{path}: hw_kind {kind!r} is not one of {', '.join(KINDS)}")
    key = doc.get("master_key")
    if not isinstance(key, str) or len(key) != 64:
        raise FleetError(f"{path}: master_key must be 64 hex characters")
    try:
        bytes.fromhex(key)
    except ValueError as exc:
        raise FleetError(f"{path}: master_key is not hexadecimal") from exc
    return Device(dev, kind, doc)


def node_config(index: int, report_interval_s: float) -> dict[str, Any]:
    """A sensor node's config.json: its own PIR schedule (seeded by index)."""
    return {"report_interval_s": report_interval_s, "config_version": 0,
            "pir": {"seed": 1000 + index, "mean_interval_s": 8.0 + 3 * index,
                    "duration_s": 3.0}}


def camera_config(recording: str | Path, *, report_interval_s: float, speed: float = 1.0,
                  loop: bool = True, frames: int = 0, thumbnails: bool = False,
                  seed: int = 1) -> dict[str, Any]:
    """A virtual camera's config.json playing ``recording`` (a ``shorewatch sim record``
    prefix or ``.raw``): frame rate and camera geometry from its sidecar, looping back past its
    power-up frames."""
    from ..detect import DetectError, camera_geometry  # noqa: PLC0415
    from .recording import open_recording  # noqa: PLC0415

    rec = open_recording(recording)
    side = rec.sidecar
    if (side.rows, side.cols) != (24, 32):
        raise FleetError(f"{rec.paths.sidecar}: {side.rows}x{side.cols} frames; a camera board "
                         "has an MLX90640 (24x32)")
    if side.fps not in CAMERA_FPS:
        raise FleetError(f"{rec.paths.sidecar}: fps {side.fps:g} is not a rate of the MLX90640 "
                         f"({', '.join(f'{f:g}' for f in CAMERA_FPS)})")
    first = 0
    while first in side.invalid_frames:
        first += 1  # the power-up frames: played once, at the start
    if rec.frame_count <= first:
        raise FleetError(f"{rec.paths.raw}: no valid frame to play")
    try:
        geometry = camera_geometry(side)
    except DetectError as exc:
        raise FleetError(str(exc)) from exc
    camera: dict[str, Any] = {"fps": side.fps, "thumbnails": thumbnails}
    if geometry is not None:
        camera["geometry"] = geometry
    return {"report_interval_s": report_interval_s, "config_version": 0, "camera": camera,
            "thermal": {"recording": str(rec.paths.raw.resolve()), "speed": speed,
                        "loop": loop, "loop_from": first, "frames": frames},
            "pir": {"seed": seed}}


@contextlib.asynccontextmanager
async def own_gateway(workdir: Path, nodes: int, cameras: int,
                      mqtt: tuple[str, int] | None = None,
                      prefix: str = "shorewatch") -> AsyncIterator[tuple[list[Device],
                                                                          tuple[str, int]]]:
    """An in-process gateway on 127.0.0.1 with ``nodes`` + ``cameras`` fresh devices
    registered; yields (devices, gateway address) and stops the gateway on exit."""
    from gateway.fleet import identity_document  # noqa: PLC0415 - composition root only
    from gateway.mqtt import MqttSettings  # noqa: PLC0415
    from gateway.registry import Registry  # noqa: PLC0415
    from gateway.service import Gateway, GatewaySettings  # noqa: PLC0415

    data_dir = workdir / "gateway"
    registry = Registry(data_dir / "registry.sqlite3")
    devices = []
    try:
        for kind, count, first in (("sensor_node", nodes, NODE_IDS),
                                   ("thermal_camera", cameras, CAMERA_IDS)):
            for i in range(count):
                dev = first + i
                key = secrets.token_bytes(32)
                registry.add(dev, key, name=f"sim-{_NAMES[kind]}-{i + 1}")
                devices.append(Device(dev, kind, identity_document(
                    dev, key, tag_len=8, gateway=("127.0.0.1", 0), hw_kind=kind)))
    finally:
        registry.close()
    settings = GatewaySettings(
        data_dir=data_dir, udp_port=0, metrics_port=0,
        mqtt=() if mqtt is None else (MqttSettings(mqtt[0], mqtt[1], prefix=prefix,
                                                   site="sim"),))
    gateway = Gateway(settings)
    up = asyncio.Event()
    task = asyncio.create_task(gateway.run(lambda _gw: up.set()), name="gateway")
    waiter = asyncio.create_task(up.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if not up.is_set():
        waiter.cancel()
        await task  # raises what stopped it
        raise FleetError("the gateway stopped during start-up")
    try:
        yield devices, ("127.0.0.1", gateway.udp_port)
    finally:
        gateway.stop()
        await task


class Board:
    """One virtual board process: prepared, started, its console read, stopped."""

    def __init__(self, device: Device, board_dir: Path, config: dict[str, Any], *,
                 gateway: tuple[str, int], firmware: Path, out: TextIO, t0: float) -> None:
        self.device = device
        self.report = BoardReport(device.name, device.hw_kind)
        identity = dict(device.identity)
        identity["gateway"] = {"host": gateway[0], "port": gateway[1]}
        identity["board"] = _BOARDS[device.hw_kind]
        self._vb = VirtualBoard(board_dir, heap=_HEAPS[device.hw_kind], firmware=firmware)
        VirtualBoard.prepare(board_dir, identity, config)
        self._out = out
        self._t0 = t0
        self.proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        cmd = self._vb.command()
        self.proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            limit=MAX_LINE_BYTES)
        self._pump = asyncio.create_task(self._read(), name=f"console-{self.device.name}")
        self._say(f"started: MicroPython, heap {self._vb.heap}, console {self._vb.console}")

    async def stop(self) -> None:
        """Ctrl-C to the board (it stops cleanly), SIGKILL if it does not within
        STOP_TIMEOUT_S."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await proc.wait()
            except TimeoutError:
                self._say(f"did not stop within {STOP_TIMEOUT_S:.0f} s: killed")
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._pump is not None:
            await self._pump
        self.report.exit_code = proc.returncode

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with (self._vb.board_dir / "console.log").open("a", encoding="utf-8") as console:
            while True:
                try:
                    raw = await self.proc.stdout.readline()
                except ValueError:  # a line past MAX_LINE_BYTES: not our firmware's
                    self.report.unparsed += 1
                    continue
                if not raw:
                    break
                line = raw.decode("utf-8", "replace").rstrip("\n")
                console.write(line + "\n")
                self._line(line)
        code = await self.proc.wait()
        if code != 0:
            self._say(f"exited with code {code}")

    def _line(self, line: str) -> None:
        r = self.report
        head, _, rest = line.partition(" ")
        if head in ("TELEMETRY", "EVENT", "CAMERA"):
            try:
                rec = json.loads(rest)
            except ValueError:
                r.unparsed += 1
                return
            if head == "TELEMETRY":
                r.telemetry += 1
                r.heap_free = int(rec["free_heap_64"]) * 64
                self._say(f"telemetry: battery {rec['battery_mv'] / 1000:.2f} V, "
                          f"heap free {r.heap_free / 1024:.1f} KB, uptime {rec['uptime_s']} s")
            elif head == "EVENT":
                r.detections += 1
                count = f" x{rec['count']}" if rec.get("count", 1) > 1 else ""
                self._say(f"detection {rec['event_id']} {rec['lifecycle']} {rec['kind']}{count} "
                          f"({rec['confidence_pct']}%) box {rec['box']} "
                          f"peak {rec['peak_cc'] / 100:.1f} C")
            else:
                r.frames = int(rec["frames"])
                r.heap_free = int(rec["heap_free"])
                self._say(f"camera: {r.frames} frames, {rec['frames_per_s']} frames/s, "
                          f"{rec['us_per_frame']} us/frame, heap free "
                          f"{r.heap_free / 1024:.1f} KB")
            return
        if head in ("D", "I") and rest.endswith(" acked"):
            r.acked += 1
            return
        if head == "D":
            return
        if head == "I" and rest.startswith("app: welcome:"):
            r.welcomed = True
            self._say("welcomed by the gateway")
            return
        self._say(line)

    def _say(self, text: str) -> None:
        self._out.write(f"[{time.monotonic() - self._t0:7.1f}s] {self.device.name:<17} {text}\n")
        self._out.flush()


async def run_fleet(devices: Sequence[Device], gateway: tuple[str, int], workdir: Path,
                    options: FleetOptions, out: TextIO, *, seconds: float | None = None,
                    stop: asyncio.Event | None = None) -> list[BoardReport]:
    """Run every device's virtual board until ``seconds`` pass or ``stop`` is set (SIGINT and
    SIGTERM set it when it is not given); their reports, in the order of ``devices``."""
    if not devices:
        raise FleetError("no board to run")
    if len(devices) > MAX_BOARDS:
        raise FleetError(f"{len(devices)} boards: at most {MAX_BOARDS} (a larger fleet is a load "
                         "test: shorewatch/loadgen.py)")
    t0 = time.monotonic()
    loop = asyncio.get_running_loop()
    try:
        firmware = await asyncio.to_thread(build_firmware)
        micropython_binary()
    except PeerError as exc:
        raise FleetError(str(exc)) from exc
    boards = []
    cameras = 0
    for i, dev in enumerate(devices):
        if dev.hw_kind == "thermal_camera":
            cameras += 1
            config = await asyncio.to_thread(_scene_config, workdir, cameras, options)
        else:
            config = node_config(i, options.report_interval_s)
        boards.append(Board(dev, workdir / dev.name, config, gateway=gateway,
                            firmware=firmware, out=out, t0=t0))
    own_stop = stop is None
    stop = stop or asyncio.Event()
    if own_stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    try:
        for board in boards:
            await board.start()
        out.write(f"{len(boards)} boards against the gateway at {gateway[0]}:{gateway[1]}"
                  + (f" for {seconds:g} s" if seconds else " (Ctrl-C to stop)") + "\n")
        out.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
    finally:
        if own_stop:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        await asyncio.gather(*(b.stop() for b in boards))
    for board in boards:
        out.write(board.report.summary() + "\n")
    out.flush()
    return [b.report for b in boards]


def _scene_config(workdir: Path, index: int, options: FleetOptions) -> dict[str, Any]:
    """Record camera ``index``'s scene (seeded by index) and its config.json."""
    from .thermal import ScenarioSpec, record  # noqa: PLC0415 - only when cameras run

    prefix = workdir / "scenes" / f"camera-{index}"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    record(ScenarioSpec(seed=index, family=options.family, duration_s=options.scene_s, fps=4.0),
           prefix)
    return camera_config(prefix, report_interval_s=options.report_interval_s,
                         speed=options.speed, thumbnails=options.thumbnails, seed=index)
