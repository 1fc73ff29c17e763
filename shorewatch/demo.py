"""``shorewatch demo``: a gateway, an MQTT broker, three MicroPython sensor nodes and a thermal
camera on loopback.

Runs on embedded defaults: Mosquitto when it is installed, otherwise an embedded Python broker.
The camera watches a simulated night beach (a 10-minute scene from ``shorewatch.sim``, looped).
Prints each detection as it reaches MQTT and the fleet's battery levels; Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import secrets
import shutil
import signal
import sys
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt

from gateway.mqtt import MqttSettings
from gateway.registry import Registry
from gateway.service import Gateway, GatewaySettings

from .peers import CAMERA_HEAP, Mosquitto, PeerError, VirtualBoard, free_port, temp_workdir
from .sim.fleet import camera_config, node_config

log = logging.getLogger("shorewatch.demo")
BOARD_IDS = (0x5A170001, 0x5A170002, 0x5A170003)
CAMERA_ID = 0x5A17C001
SCENE_S = 600.0  # the camera's scene, played in a loop


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="gateway + broker + 3 virtual sensor nodes and a "
                                       "thermal camera, on loopback")
    demo.add_argument("--boards", type=int, default=3, choices=range(1, 4),
                      help="number of virtual sensor nodes (1-3)")
    demo.add_argument("--cameras", type=int, default=1, choices=range(2),
                      help="number of virtual thermal cameras (0-1)")
    demo.add_argument("--seconds", type=float, default=0,
                      help="stop after this many seconds (default: run until Ctrl-C)")
    demo.add_argument("--broker", choices=("auto", "mosquitto", "embedded"), default="auto")
    demo.add_argument("--keep", action="store_true", help="keep the work directory")
    demo.set_defaults(handler=_main)


def _main(args: argparse.Namespace) -> int:
    workdir = temp_workdir("shorewatch-demo-")
    try:
        asyncio.run(_demo(args, workdir))
    except PeerError as exc:
        log.error("%s", exc)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


@contextlib.asynccontextmanager
async def _broker(kind: str, workdir: Path) -> AsyncIterator[tuple[str, int, str]]:
    if kind == "mosquitto" or (kind == "auto" and Mosquitto.available()):
        mosq = Mosquitto(workdir / "mosquitto").start()
        try:
            yield mosq.host, mosq.port, "mosquitto"
        finally:
            mosq.stop()
        return
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="amqtt")
    logging.getLogger("amqtt").setLevel(logging.ERROR)
    from amqtt.broker import Broker  # noqa: PLC0415 - only without Mosquitto

    port = free_port()
    broker = Broker({"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
                     "sys_interval": 0, "auth": {"allow-anonymous": True},
                     "topic-check": {"enabled": False}})
    await broker.start()
    try:
        yield "127.0.0.1", port, "embedded (amqtt)"
    finally:
        await broker.shutdown()




async def _demo(args: argparse.Namespace, workdir: Path) -> None:
    async with _broker(args.broker, workdir) as (host, port, kind):
        print(f"MQTT broker: {kind} on {host}:{port}")
        data_dir = workdir / "gateway"
        registry = Registry(data_dir / "registry.sqlite3")
        keys = {dev: secrets.token_bytes(32) for dev in BOARD_IDS[: args.boards]}
        cameras = {CAMERA_ID: secrets.token_bytes(32)} if args.cameras else {}
        for dev, key in keys.items():
            registry.add(dev, key, name=f"demo-node-{dev & 0xFF}")
        for dev, key in cameras.items():
            registry.add(dev, key, name=f"demo-camera-{dev & 0xFF}")
        registry.close()
        if cameras:
            print("recording the camera's night-beach scene...", flush=True)
            scene = await asyncio.to_thread(_record_scene, workdir / "scene")
        settings = GatewaySettings(data_dir=data_dir, udp_port=0, metrics_port=0,
                                   mqtt=(MqttSettings(host, port, site="demo"),))
        gateway = Gateway(settings)
        up = asyncio.Event()
        gw_task = asyncio.create_task(gateway.run(lambda _gw: up.set()), name="gateway")
        await up.wait()
        print(f"gateway: devices on udp 127.0.0.1:{gateway.udp_port}, "
              f"metrics on http://127.0.0.1:{gateway.metrics_port}/metrics")
        boards = []
        for i, (dev, key) in enumerate(keys.items()):
            board = VirtualBoard(workdir / f"board-{dev:08x}")
            VirtualBoard.prepare(board.board_dir, {
                "device_id": dev, "master_key": key.hex(), "tag_len": 8, "hw_kind": "sensor_node",
                "gateway": {"host": "127.0.0.1", "port": gateway.udp_port}},
                node_config(i, 5.0))
            boards.append(board.start())
            print(f"virtual board {dev:08x}: MicroPython, heap {board.heap}, "
                  f"console {board.console}")
        for dev, key in cameras.items():
            board = VirtualBoard(workdir / f"camera-{dev:08x}", heap=CAMERA_HEAP)
            VirtualBoard.prepare(board.board_dir, {
                "device_id": dev, "master_key": key.hex(), "tag_len": 8,
                "hw_kind": "thermal_camera", "board": "virtual_camera",
                "gateway": {"host": "127.0.0.1", "port": gateway.udp_port}},
                camera_config(scene, report_interval_s=5.0))
            boards.append(board.start())
            print(f"virtual thermal camera {dev:08x}: MicroPython, heap {board.heap}, "
                  f"console {board.console}")
        print("waiting for detections (Ctrl-C to stop)...", flush=True)
        try:
            await _watch(host, port, gateway, args.seconds)
        finally:
            for board in boards:
                board.stop()
            gateway.stop()
            await gw_task
            print("stopped cleanly")


def _record_scene(prefix: Path) -> Path:
    """A seeded night-beach scene for the camera: people walking by, gulls, waves."""
    from .sim import ScenarioSpec, record  # noqa: PLC0415 - only with a camera

    record(ScenarioSpec(seed=1, family="summer-dry-calm-near", duration_s=SCENE_S, fps=4.0),
           prefix)
    return prefix


async def _watch(host: str, port: int, gateway: Gateway, seconds: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if seconds:
        loop.call_later(seconds, stop.set)
    tasks = [asyncio.create_task(_print_detections(host, port, gateway)),
             asyncio.create_task(_print_fleet(gateway))]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _print_detections(host: str, port: int, gateway: Gateway) -> None:
    topic = gateway.forwarders[0].topic("device", "+", "event", "detection")
    async with aiomqtt.Client(host, port, identifier="shorewatch-demo-viewer") as client:
        await client.subscribe(topic, qos=1)
        async for message in client.messages:
            d = json.loads(bytes(message.payload))
            where = f" box={d['box']}" if d["box"][2] else ""  # cameras say where
            count = f" count={d['count']}" if d["count"] > 1 else ""
            print(f"DETECTION {d['device']} {d['event_id']} {d['lifecycle']:<6} {d['kind']:<7} "
                  f"score={d['score']:.2f} peak={d['peak_temp_c']:.1f}C{where}{count} "
                  f"seq={d['seq']}", flush=True)


async def _print_fleet(gateway: Gateway) -> None:
    while True:
        await asyncio.sleep(15)
        parts = []
        for s in sorted(gateway.devices.values(), key=lambda s: s.device_id):
            battery = f"{s.telemetry.battery_mv / 1000:.2f}V" if s.telemetry else "?"
            parts.append(f"{s.device_id:08x} battery={battery}")
        print("FLEET " + "  ".join(parts), file=sys.stdout, flush=True)
