"""``shorewatch gateway run`` and ``shorewatch devices add|list|remove``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from .errors import EndpointError, GatewayError
from .mqtt import MqttSettings
from .registry import Registry
from .service import Gateway, GatewaySettings

log = logging.getLogger("shorewatch.gateway")


def parse_endpoint(text: str, key: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port), with an error naming the option."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise EndpointError(key, f"{text!r} is not HOST:PORT", "e.g. 127.0.0.1:4700")
    return host.strip("[]"), int(port)


def parse_device_id(text: str) -> int:
    """Device ids are written as 8 hex digits (``5a17c0de``) or ``0x``-prefixed."""
    try:
        value = int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a hex device id") from None
    if not 1 <= value <= 0xFFFFFFFE:
        raise argparse.ArgumentTypeError("device id must be 00000001..fffffffe")
    return value


def register(sub: Any) -> None:
    gw = sub.add_parser("gateway", help="run the gateway service")
    gw_sub = gw.add_subparsers(dest="gateway_command", required=True, metavar="ACTION")
    run = gw_sub.add_parser("run", help="serve devices until SIGTERM/SIGINT")
    run.add_argument("--data-dir", type=Path, required=True, help="registry and state directory")
    run.add_argument("--udp", default="127.0.0.1:4700", help="device listener HOST:PORT")
    run.add_argument("--metrics", default="127.0.0.1:9108", help="/metrics HOST:PORT")
    run.add_argument("--mqtt", default="127.0.0.1:1883", help="MQTT broker HOST:PORT")
    run.add_argument("--prefix", default="shorewatch", help="MQTT topic prefix")
    run.add_argument("--site", default="demo", help="site name in MQTT topics")
    run.add_argument("--gateway-id", default="gw0", help="this gateway's id in MQTT topics")
    run.add_argument("--status-file", type=Path, help="write bound ports here as JSON when up")
    run.set_defaults(handler=_run)

    dev = sub.add_parser("devices", help="manage the device registry")
    dev_sub = dev.add_subparsers(dest="devices_command", required=True, metavar="ACTION")
    add = dev_sub.add_parser("add", help="register a device with a fresh key")
    add.add_argument("--data-dir", type=Path, required=True)
    add.add_argument("device_id", type=parse_device_id, help="8 hex digits")
    add.add_argument("--name", default="")
    add.add_argument("--tag-len", type=int, choices=(8, 4), default=8,
                     help="8 for UDP/WiFi, 4 for the LoRa profile")
    add.add_argument("--identity-out", type=Path, required=True,
                     help="write the device identity file (contains the key, mode 0600)")
    add.add_argument("--gateway", default="127.0.0.1:4700", help="gateway HOST:PORT for the device")
    add.set_defaults(handler=_add)
    ls = dev_sub.add_parser("list", help="list registered devices")
    ls.add_argument("--data-dir", type=Path, required=True)
    ls.set_defaults(handler=_list)
    rm = dev_sub.add_parser("remove", help="forget a device and its key")
    rm.add_argument("--data-dir", type=Path, required=True)
    rm.add_argument("device_id", type=parse_device_id)
    rm.set_defaults(handler=_remove)


def _run(args: argparse.Namespace) -> int:
    try:
        udp = parse_endpoint(args.udp, "--udp")
        metrics = parse_endpoint(args.metrics, "--metrics")
        mqtt = parse_endpoint(args.mqtt, "--mqtt")
    except GatewayError as exc:
        log.error("%s", exc)
        return 2
    settings = GatewaySettings(
        data_dir=args.data_dir, udp_host=udp[0], udp_port=udp[1], metrics_host=metrics[0],
        metrics_port=metrics[1],
        gateway_id=args.gateway_id,
        mqtt=(MqttSettings(mqtt[0], mqtt[1], prefix=args.prefix, site=args.site,
                           gateway_id=args.gateway_id),))
    try:
        asyncio.run(_serve(settings, args.status_file))
    except GatewayError as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error("cannot start: %s (is the port in use?)", exc)
        return 1
    return 0


async def _serve(settings: GatewaySettings, status_file: Path | None) -> None:
    gateway = Gateway(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, gateway.stop)

    def ready(gw: Gateway) -> None:
        if status_file is not None:
            tmp = status_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"udp_port": gw.udp_port,
                                       "metrics_port": gw.metrics_port}))
            tmp.replace(status_file)

    await gateway.run(ready)


def write_identity(path: Path, device_id: int, master_key: bytes, *, tag_len: int,
                   gateway: tuple[str, int], hw_kind: str = "sensor_node") -> None:
    """The device's identity file: what a board needs to talk to its gateway (secret, 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"device_id": device_id, "master_key": master_key.hex(), "tag_len": tag_len,
            "hw_kind": hw_kind, "gateway": {"host": gateway[0], "port": gateway[1]}}
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _add(args: argparse.Namespace) -> int:
    try:
        gateway = parse_endpoint(args.gateway, "--gateway")
        registry = Registry(args.data_dir / "registry.sqlite3")
        key = secrets.token_bytes(32)
        try:
            registry.add(args.device_id, key, name=args.name, tag_len=args.tag_len)
        finally:
            registry.close()
        write_identity(args.identity_out, args.device_id, key, tag_len=args.tag_len,
                       gateway=gateway)
    except GatewayError as exc:
        log.error("%s", exc)
        return 1
    sys.stdout.write(f"registered {args.device_id:08x}; identity in {args.identity_out}\n")
    return 0


def _list(args: argparse.Namespace) -> int:
    registry = Registry(args.data_dir / "registry.sqlite3")
    try:
        for state in sorted(registry.load().values(), key=lambda s: s.device_id):
            sys.stdout.write(f"{state.device_id:08x}  {state.name:<20} tag={state.tag_len}  "
                             f"uplink_counter={state.window.highest}\n")
    finally:
        registry.close()
    return 0


def _remove(args: argparse.Namespace) -> int:
    registry = Registry(args.data_dir / "registry.sqlite3")
    try:
        registry.remove(args.device_id)
    except GatewayError as exc:
        log.error("%s", exc)
        return 1
    finally:
        registry.close()
    sys.stdout.write(f"removed {args.device_id:08x}\n")
    return 0
