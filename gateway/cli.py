"""``shorewatch gateway run|check-config``; ``shorewatch devices ...`` is in devices_cli."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import AdminSettings, load_config, parse_endpoint, summary
from .devices_cli import register as register_devices
from .errors import ConfigError, GatewayError
from .mqtt import MqttSettings
from .service import Gateway, GatewaySettings
from .systemd import Notifier, Supervisor, watchdog_interval

log = logging.getLogger("shorewatch.gateway")


# `gateway run` without --config (the demo, tests): these flags, with these defaults. A config
# file is the whole truth, so it cannot be mixed with them (--status-file goes with both).
_FLAG_DEFAULTS = {"udp": "127.0.0.1:4700", "metrics": "127.0.0.1:9108",
                  "mqtt": "127.0.0.1:1883", "prefix": "shorewatch", "site": "demo",
                  "gateway_id": "gw0"}


def register(sub: Any) -> None:
    gw = sub.add_parser("gateway", help="run the gateway service")
    gw_sub = gw.add_subparsers(dest="gateway_command", required=True, metavar="ACTION")
    run = gw_sub.add_parser("run", help="serve devices until SIGTERM/SIGINT")
    run.add_argument("--config", type=Path,
                     help="TOML config file (docs/gateway.md); excludes the flags below")
    run.add_argument("--data-dir", type=Path, help="registry and state directory")
    run.add_argument("--udp", help="device listener HOST:PORT (default 127.0.0.1:4700)")
    run.add_argument("--metrics", help="/metrics HOST:PORT (default 127.0.0.1:9108)")
    run.add_argument("--mqtt", help="MQTT broker HOST:PORT (default 127.0.0.1:1883)")
    run.add_argument("--prefix", help="MQTT topic prefix (default shorewatch)")
    run.add_argument("--site", help="site name in MQTT topics (default demo)")
    run.add_argument("--gateway-id", help="this gateway's id in MQTT topics (default gw0)")
    run.add_argument("--admin-socket", type=Path,
                     help="serve the admin API on this unix socket (default: off)")
    run.add_argument("--admin-token-file", type=Path,
                     help="admin API bearer tokens, NAME TOKEN [read-only] per line")
    run.add_argument("--status-file", type=Path, help="write bound ports here as JSON when up")
    run.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                     help="event loop: uvloop when installed (auto, the default), or asyncio's")
    run.set_defaults(handler=_run)
    check = gw_sub.add_parser("check-config", help="validate a config file, print a summary")
    check.add_argument("--config", type=Path, required=True, help="TOML config file")
    check.set_defaults(handler=_check_config)

    register_devices(sub)


def _run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
        factory = loop_factory(args.loop)
    except GatewayError as exc:
        log.error("%s", exc)
        return 2
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve(settings, args.status_file))
    except GatewayError as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error("cannot start: %s (is the port in use?)", exc)
        return 1
    return 0


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when asked for, or (``auto``) when installed; None: asyncio's.

    The intake runs on the loop: on uvloop the gateway accepted 1.2-2.5x more frames per second
    than on asyncio's selector loop (bench/gateway_ingest.py measures both).
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional: pip install 'shorewatch[fast]'
    except ImportError:
        if choice == "uvloop":
            raise ConfigError("--loop", "uvloop is not installed",
                              "pip install 'shorewatch[fast]', or --loop asyncio") from None
        return None
    return uvloop.new_event_loop


def _settings(args: argparse.Namespace) -> GatewaySettings:
    if args.config is not None:
        for name in ("data_dir", "admin_socket", "admin_token_file", *_FLAG_DEFAULTS):
            if getattr(args, name) is not None:
                raise ConfigError(f"--{name.replace('_', '-')}", "cannot be combined with "
                                  "--config", "set it in the config file instead")
        return load_config(args.config, os.environ)
    if args.data_dir is None:
        raise ConfigError("--data-dir", "is required without --config",
                          "give --config FILE, or --data-dir DIR and the other flags")
    if args.admin_token_file is not None and args.admin_socket is None:
        raise ConfigError("--admin-token-file", "needs --admin-socket",
                          "give --admin-socket PATH to serve the admin API")
    flags = {name: getattr(args, name) or default for name, default in _FLAG_DEFAULTS.items()}
    udp = parse_endpoint(flags["udp"], "--udp")
    metrics = parse_endpoint(flags["metrics"], "--metrics")
    mqtt = parse_endpoint(flags["mqtt"], "--mqtt")
    return GatewaySettings(
        data_dir=args.data_dir, udp_host=udp[0], udp_port=udp[1], metrics_host=metrics[0],
        metrics_port=metrics[1], gateway_id=flags["gateway_id"],
        mqtt=(MqttSettings(mqtt[0], mqtt[1], prefix=flags["prefix"], site=flags["site"],
                           gateway_id=flags["gateway_id"]),),
        admin=AdminSettings(socket=args.admin_socket, token_file=args.admin_token_file))


def _check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_config(args.config, os.environ)
    except GatewayError as exc:
        log.error("%s: %s", args.config, exc)
        return 2
    sys.stdout.write(f"{args.config}: ok\n" + "".join(f"  {line}\n" for line in summary(settings)))
    return 0


async def _serve(settings: GatewaySettings, status_file: Path | None) -> None:
    gateway = Gateway(settings)
    notifier = Notifier.from_environment(os.environ)
    supervisor = Supervisor(notifier, wait_ready=gateway.wait_ready, health=gateway.health,
                            status=gateway.status,
                            watchdog_s=watchdog_interval(os.environ, os.getpid()))

    def stop(sig: signal.Signals) -> None:
        log.info("%s: stopping", sig.name)
        supervisor.stopping()  # STOPPING=1 first, then the ordered shutdown
        gateway.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)

    def ready(gw: Gateway) -> None:
        if status_file is not None:
            tmp = status_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"udp_port": gw.udp_port,
                                       "metrics_port": gw.metrics_port}))
            tmp.replace(status_file)

    watch = asyncio.create_task(supervisor.run(), name="systemd")
    try:
        await gateway.run(ready)
    finally:
        watch.cancel()
        await asyncio.wait([watch])
        notifier.close()
    if not watch.cancelled() and watch.exception() is not None:
        raise GatewayError("systemd notification failed") from watch.exception()
