"""``shorewatch sim record|check|families|run``: thermal recordings, and a fleet of virtual
boards against a gateway."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .errors import SimError

log = logging.getLogger(__name__)


def register(sub: Any) -> Any:
    """Add ``sim`` and its verbs to the ``shorewatch`` sub-parsers; return the verbs' action so
    other simulators (virtual boards, solar) can add theirs."""
    sim = sub.add_parser("sim", help="simulators: night-beach thermal recordings, a fleet of "
                                     "virtual boards")
    verbs = sim.add_subparsers(dest="sim_command", required=True, metavar="VERB")

    rec = verbs.add_parser("record", help="simulate a seeded scene and write a recording",
                           description="Writes PREFIX.raw, PREFIX.truth.jsonl and PREFIX.json "
                                       "(the sidecar, written last).")
    rec.add_argument("--family", default="summer-dry-calm-near",
                     help="condition tokens joined by '-': summer|winter, dry|wet, calm|windy, "
                          "near|far, optional 'empty' (default: %(default)s)")
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--seconds", type=float, default=60.0, help="duration (default: 60)")
    rec.add_argument("--fps", type=float, default=4.0,
                     help="full frames per second; the sensor refresh is twice that (default: 4)")
    rec.add_argument("--fov", choices=("55x35", "110x75"), default="55x35")
    rec.add_argument("--out", required=True, metavar="PREFIX", help="output path prefix")
    rec.set_defaults(handler=_record)

    check = verbs.add_parser("check", help="validate a recording (sidecar, size, ground truth)")
    check.add_argument("recording", metavar="PREFIX[.raw]")
    check.set_defaults(handler=_check)

    fams = verbs.add_parser("families", help="list the named scene families")
    fams.set_defaults(handler=_families)
    _register_run(verbs)
    return verbs


def _register_run(verbs: Any) -> None:
    run = verbs.add_parser(
        "run", help="run virtual sensor nodes and thermal cameras against a gateway",
        description="Starts virtual boards (the real firmware in MicroPython, one process each) "
                    "and prints their welcomes, telemetry, detections and camera reports, then "
                    "one SUMMARY line per board. Against a running gateway: --gateway and the "
                    "devices' identity files (shorewatch devices add --identity-out, with "
                    "--hw-kind thermal_camera for cameras). Without --identity: its own gateway "
                    "on 127.0.0.1 with --nodes + --cameras fresh devices. Stops after --seconds, "
                    "or on Ctrl-C / SIGTERM. Exit code 0 when every board was welcomed and "
                    "stopped cleanly, 1 otherwise, 2 for bad arguments.")
    run.add_argument("--nodes", type=_count, metavar="N",
                     help="sensor nodes of the own gateway (default 2)")
    run.add_argument("--cameras", type=_count, metavar="M",
                     help="thermal cameras of the own gateway (default 1)")
    run.add_argument("--seconds", type=_positive("--seconds", 86400.0), metavar="S",
                     help="stop after S seconds (default: run until Ctrl-C)")
    run.add_argument("--gateway", metavar="HOST:PORT",
                     help="a running gateway's device listener (default: each identity's)")
    run.add_argument("--identity", type=Path, action="append", default=[], metavar="FILE",
                     help="a device identity file; repeat for each board")
    run.add_argument("--mqtt", metavar="HOST:PORT",
                     help="the own gateway publishes to this MQTT broker")
    run.add_argument("--prefix", default="shorewatch",
                     help="MQTT topic prefix of the own gateway (default: %(default)s)")
    run.add_argument("--report-interval", type=_positive("--report-interval", 3600.0),
                     default=5.0, metavar="S", help="telemetry every S seconds (default: 5)")
    run.add_argument("--speed", type=_positive("--speed", 10000.0), default=1.0, metavar="X",
                     help="camera frames at X times real time (default: 1)")
    run.add_argument("--family", default="summer-dry-calm-near",
                     help="the cameras' scene family (shorewatch sim families; default: "
                          "%(default)s)")
    run.add_argument("--scene-seconds", type=_positive("--scene-seconds", 3600.0),
                     default=600.0, metavar="S",
                     help="length of each camera's scene, played in a loop (default: 600)")
    run.add_argument("--thumbnails", action="store_true", help="cameras send thumbnails")
    run.add_argument("--workdir", type=Path,
                     help="keep the boards' directories (flash, console.log) here")
    run.set_defaults(handler=_run)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..64")
    return value


def _positive(option: str, most: float) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and 0 < value <= most):
            raise argparse.ArgumentTypeError(f"{option} must be more than 0 and at most "
                                             f"{most:g}")
        return value
    return parse


def _record(args: argparse.Namespace) -> int:
    from .thermal import ScenarioSpec, record  # noqa: PLC0415 - keep CLI start-up light

    spec = ScenarioSpec(seed=args.seed, family=args.family, duration_s=args.seconds,
                        fps=args.fps, fov=args.fov)
    started = time.perf_counter()
    try:
        sidecar = record(spec, args.out)
    except (SimError, OSError) as exc:
        log.error("%s", exc)
        return 1
    elapsed = time.perf_counter() - started
    frames = sidecar.frames or 0
    _emit({"out": args.out, "frames": frames, "fps": sidecar.fps,
           "family": sidecar.metadata["scenario"]["family"], "seconds": round(elapsed, 2),
           "frames_per_s": round(frames / elapsed) if elapsed > 0 else None})
    return 0


def _check(args: argparse.Namespace) -> int:
    from .recording import open_recording  # noqa: PLC0415

    try:
        rec = open_recording(args.recording)
        truth_lines = sum(1 for _ in rec.truth()) if rec.has_truth else None
        frames = sum(1 for _ in rec.frames())
    except (SimError, OSError) as exc:
        log.error("%s", exc)
        return 1
    _emit({"recording": str(rec.paths.raw), "frames": frames, "fps": rec.sidecar.fps,
           "sensor": rec.sidecar.sensor, "rows": rec.sidecar.rows, "cols": rec.sidecar.cols,
           "invalid_frames": len(rec.sidecar.invalid_frames), "truth_lines": truth_lines})
    return 0


def _families(args: argparse.Namespace) -> int:
    from .scene import FAMILIES  # noqa: PLC0415

    sys.stdout.write("\n".join(FAMILIES) + "\n")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .fleet import FleetError  # noqa: PLC0415

    try:
        return asyncio.run(_run_fleet(args))
    except (FleetError, SimError) as exc:
        log.error("%s", exc)
        return 2


async def _run_fleet(args: argparse.Namespace) -> int:
    from .fleet import (  # noqa: PLC0415
        FleetError,
        FleetOptions,
        own_gateway,
        read_identity,
        run_fleet,
    )
    from .scene import parse_family  # noqa: PLC0415

    parse_family(args.family)  # ScenarioError now rather than after the boards started
    options = FleetOptions(report_interval_s=args.report_interval, speed=args.speed,
                           family=args.family, scene_s=args.scene_seconds,
                           thumbnails=args.thumbnails)
    if args.identity:
        if args.nodes is not None or args.cameras is not None or args.mqtt:
            raise FleetError("--nodes, --cameras and --mqtt are for the fleet's own gateway; "
                             "with --identity the files say which boards run")
        devices = [read_identity(p) for p in args.identity]
        ids = [d.device_id for d in devices]
        if len(set(ids)) != len(ids):
            raise FleetError("the same device identity is given twice")
    elif args.gateway:
        raise FleetError("--gateway needs --identity FILE for each device that gateway knows "
                         "(shorewatch devices add --identity-out)")
    nodes = 2 if args.nodes is None else args.nodes
    cameras = 1 if args.cameras is None else args.cameras
    if not args.identity and nodes + cameras == 0:
        raise FleetError("--nodes 0 --cameras 0: nothing to run")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="shorewatch-sim-"))
    workdir.mkdir(parents=True, exist_ok=True)
    out = sys.stdout
    try:
        if args.identity:
            gateway = _endpoint(args.gateway, "--gateway") if args.gateway else None
            by_gateway = [gateway or _identity_gateway(d.identity) for d in devices]
            if len(set(by_gateway)) > 1:
                raise FleetError("the identities name different gateways: give --gateway")
            reports = await run_fleet(devices, by_gateway[0], workdir, options, out,
                                      seconds=args.seconds)
        else:
            mqtt = _endpoint(args.mqtt, "--mqtt") if args.mqtt else None
            async with own_gateway(workdir, nodes, cameras, mqtt, args.prefix) as (devs, gw):
                out.write(f"gateway: devices on udp {gw[0]}:{gw[1]}"
                          + (f", MQTT to {args.mqtt} under {args.prefix}/sim/" if mqtt else "")
                          + "\n")
                reports = await run_fleet(devs, gw, workdir, options, out, seconds=args.seconds)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    lost = [r.name for r in reports if not r.welcomed]
    failed = [r.name for r in reports if r.exit_code != 0]
    if lost:
        log.error("never welcomed: %s (is the gateway at that address, and does it know these "
                  "devices?)", ", ".join(lost))
    if failed:
        log.error("did not stop cleanly: %s (see their lines above)", ", ".join(failed))
    return 1 if lost or failed else 0


def _endpoint(text: str, option: str) -> tuple[str, int]:
    from gateway.config import parse_endpoint  # noqa: PLC0415
    from gateway.errors import ConfigError  # noqa: PLC0415

    from .fleet import FleetError  # noqa: PLC0415

    try:
        host, port = parse_endpoint(text, option)
    except ConfigError as exc:
        raise FleetError(str(exc)) from exc
    if port == 0:
        raise FleetError(f"{option} {text}: port 0 is not an address to send to")
    return host, port


def _identity_gateway(identity: dict[str, Any]) -> tuple[str, int]:
    from .fleet import FleetError  # noqa: PLC0415

    gw = identity.get("gateway")
    host = gw.get("host") if isinstance(gw, dict) else None
    port = gw.get("port") if isinstance(gw, dict) else None
    if not isinstance(host, str) or type(port) is not int or not 0 < port < 65536:
        raise FleetError(f"identity of {identity.get('device_id')} names no gateway: give "
                         "--gateway HOST:PORT")
    return host, port


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
