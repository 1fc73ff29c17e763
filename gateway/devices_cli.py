"""``shorewatch devices list|show|add|remove|config set|group|audit``.

Through the running gateway's admin API (``--socket``, ``--url`` or ``--config``), so changes go
live at once; ``add``, ``list`` and ``remove`` also work offline on a stopped gateway's data
directory (``--data-dir``), which is how a gateway is first provisioned.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .admin_client import AdminClient, read_token
from .config import parse_endpoint
from .devconfig import KEYS, ConfigValue
from .errors import GatewayError
from .fleet import Fleet, identity_document
from .registry import Registry

log = logging.getLogger("shorewatch.gateway")


class CliError(GatewayError):
    """A devices command cannot run as given."""


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
    api = argparse.ArgumentParser(add_help=False)
    g = api.add_argument_group("admin API (the running gateway)")
    g.add_argument("--socket", type=Path, help="admin unix socket")
    g.add_argument("--url", help="admin API on loopback TCP, http://127.0.0.1:PORT")
    g.add_argument("--token-file", type=Path, help="bearer token file (NAME TOKEN per line)")
    g.add_argument("--config", type=Path, help="gateway TOML config: [admin] socket, token_file")
    offline = argparse.ArgumentParser(add_help=False)
    offline.add_argument("--data-dir", type=Path,
                         help="work on this data directory directly (gateway stopped)")

    dev = sub.add_parser("devices", help="manage devices, their configuration and groups")
    dev_sub = dev.add_subparsers(dest="devices_command", required=True, metavar="ACTION")
    ls = dev_sub.add_parser("list", parents=[api, offline], help="list registered devices")
    ls.add_argument("--json", action="store_true", help="print the API's JSON")
    ls.set_defaults(handler=_guarded(_list))
    show = dev_sub.add_parser("show", parents=[api], help="one device: session, config sync")
    show.add_argument("device_id", type=parse_device_id)
    show.set_defaults(handler=_guarded(_show))
    add = dev_sub.add_parser("add", parents=[api, offline],
                             help="register a device with a fresh key")
    add.add_argument("device_id", type=parse_device_id, nargs="?",
                     help="8 hex digits (API: omitted = the gateway picks a free id)")
    add.add_argument("--name", default="")
    add.add_argument("--tag-len", type=int, choices=(8, 4), default=8,
                     help="8 for UDP/WiFi, 4 for the LoRa profile")
    add.add_argument("--group", default="", help="put the device in this group")
    add.add_argument("--hw-kind", choices=("sensor_node", "thermal_camera"),
                     default="sensor_node",
                     help="the firmware the identity is for (default: %(default)s)")
    add.add_argument("--identity-out", type=Path, required=True,
                     help="write the device identity file (contains the key, mode 0600)")
    add.add_argument("--gateway", help="gateway HOST:PORT for the device (offline default "
                                       "127.0.0.1:4700; API default: the gateway's listener)")
    add.set_defaults(handler=_guarded(_add))
    rm = dev_sub.add_parser("remove", parents=[api, offline], help="forget a device and its key")
    rm.add_argument("device_id", type=parse_device_id)
    rm.set_defaults(handler=_guarded(_remove))
    cfg = dev_sub.add_parser("config", help="desired configuration")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    cset = cfg_sub.add_parser(
        "set", parents=[api], help="set keys of a device (DEVICE KEY=VALUE...) or a group "
        "(--group NAME KEY=VALUE...)",
        description=f"Keys: {', '.join(KEYS)}. KEY= removes the key; wifi_psk=@FILE reads the "
                    "passphrase from FILE (keeps it out of the shell history).")
    cset.add_argument("--group", help="set the group's configuration instead of a device's")
    cset.add_argument("items", nargs="+", metavar="DEVICE|KEY=VALUE")
    cset.set_defaults(handler=_guarded(_config_set))
    grp = dev_sub.add_parser("group", parents=[api], help="move a device into a group")
    grp.add_argument("device_id", type=parse_device_id)
    grp.add_argument("group", nargs="?", default="", help="group name; omitted: no group")
    grp.set_defaults(handler=_guarded(_group))
    audit = dev_sub.add_parser("audit", parents=[api], help="the administrative audit log")
    audit.add_argument("--after", type=int, default=0, help="entries after this id")
    audit.add_argument("--limit", type=int, default=100)
    audit.set_defaults(handler=_guarded(_audit))


def write_identity(path: Path, device_id: int, master_key: bytes, *, tag_len: int,
                   gateway: tuple[str, int], hw_kind: str = "sensor_node") -> None:
    """The device's identity file: what a board needs to talk to its gateway (secret, 0600)."""
    _write_secret_json(path, identity_document(device_id, master_key, tag_len=tag_len,
                                               gateway=gateway, hw_kind=hw_kind))


# --- handlers -------------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    if args.data_dir is not None:
        registry = Registry(args.data_dir / "registry.sqlite3")
        try:
            for state in sorted(registry.load().values(), key=lambda s: s.device_id):
                sys.stdout.write(f"{state.device_id:08x}  {state.name:<20} tag={state.tag_len}  "
                                 f"uplink_counter={state.window.highest}\n")
        finally:
            registry.close()
        return 0
    return _api(args, _list_api)


def _list_api(client: AdminClient, args: argparse.Namespace) -> int:
    devices = client.call("GET", "/v1/devices")["devices"]
    if args.json:
        sys.stdout.write(json.dumps(devices, indent=2) + "\n")
        return 0
    sys.stdout.write(f"{'DEVICE':<9} {'NAME':<20} {'STATE':<11} {'GROUP':<12} "
                     f"{'CONFIG':<11} LAST SEEN\n")
    for d in devices:
        c = d["config"]
        cfg = f"{c['reported_version']}/{c['desired_version']}" + ("*" if c["pending"] else "")
        seen = _ago(d["last_seen"])
        sys.stdout.write(f"{d['device_id']:<9} {d['name'][:20]:<20} {d['state']:<11} "
                         f"{(d['group'] or '-')[:12]:<12} {cfg:<11} {seen}\n")
    return 0


def _show(args: argparse.Namespace) -> int:
    def show(client: AdminClient, a: argparse.Namespace) -> int:
        body = client.call("GET", f"/v1/devices/{a.device_id:08x}")
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return 0
    return _api(args, show)


def _add(args: argparse.Namespace) -> int:
    if args.data_dir is not None:
        return _add_offline(args)
    return _api(args, _add_api)


def _add_offline(args: argparse.Namespace) -> int:
    if args.device_id is None:
        raise CliError("a device id is required with --data-dir")
    gateway = parse_endpoint(args.gateway or "127.0.0.1:4700", "--gateway")
    registry = Registry(args.data_dir / "registry.sqlite3")
    key = secrets.token_bytes(32)
    try:
        Fleet(registry).register(args.device_id, key, name=args.name, tag_len=args.tag_len,
                                 down_reserved=0, group=args.group, actor=_offline_actor(),
                                 now=time.time())
    finally:
        registry.close()
    write_identity(args.identity_out, args.device_id, key, tag_len=args.tag_len,
                   gateway=gateway, hw_kind=args.hw_kind)
    sys.stdout.write(f"registered {args.device_id:08x}; identity in {args.identity_out}\n")
    return 0


def _add_api(client: AdminClient, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.name, "tag_len": args.tag_len,
                            "hw_kind": args.hw_kind}
    if args.device_id is not None:
        body["device_id"] = f"{args.device_id:08x}"
    if args.group:
        body["group"] = args.group
    if args.gateway:
        body["gateway"] = args.gateway
    answer = client.call("POST", "/v1/devices", body)
    identity = answer["identity"]
    _write_secret_json(args.identity_out, identity)
    sys.stdout.write(f"registered {answer['device']['device_id']}; identity in "
                     f"{args.identity_out}\n")
    return 0


def _remove(args: argparse.Namespace) -> int:
    if args.data_dir is not None:
        registry = Registry(args.data_dir / "registry.sqlite3")
        try:
            Fleet(registry).remove(args.device_id, actor=_offline_actor(), now=time.time())
        finally:
            registry.close()
    elif _api(args, _remove_api) != 0:
        return 1
    sys.stdout.write(f"removed {args.device_id:08x}\n")
    return 0


def _remove_api(client: AdminClient, args: argparse.Namespace) -> int:
    client.call("DELETE", f"/v1/devices/{args.device_id:08x}")
    return 0


def _config_set(args: argparse.Namespace) -> int:
    items = list(args.items)
    if args.group:
        path, target = f"/v1/groups/{quote(args.group, safe='')}/config", f"group {args.group}"
    else:
        try:
            device = parse_device_id(items.pop(0))
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"{exc} (give a device id first, or --group NAME)") from exc
        path, target = f"/v1/devices/{device:08x}/config", f"device {device:08x}"
    if not items:
        raise CliError("give at least one KEY=VALUE")
    changes = dict(_assignment(item) for item in items)

    def put(client: AdminClient, _a: argparse.Namespace) -> int:
        answer = client.call("PUT", path, changes)
        versions = answer.get("desired_versions")
        if versions is None:
            versions = {answer.get("device", "?"): answer.get("desired_version")}
        shown = ", ".join(f"{d} v{v}" for d, v in sorted(versions.items())) or "no device"
        sys.stdout.write(f"{target}: {', '.join(changes)} set; desired {shown}\n")
        return 0
    return _api(args, put)


def _group(args: argparse.Namespace) -> int:
    def put(client: AdminClient, a: argparse.Namespace) -> int:
        body = client.call("PUT", f"/v1/devices/{a.device_id:08x}/group",
                           {"group": a.group or None})
        sys.stdout.write(f"{body['device_id']}: group {body['group'] or '-'}, desired config "
                         f"v{body['config']['desired_version']}\n")
        return 0
    return _api(args, put)


def _audit(args: argparse.Namespace) -> int:
    def show(client: AdminClient, a: argparse.Namespace) -> int:
        entries = client.call("GET", f"/v1/audit?after={a.after}&limit={a.limit}")["entries"]
        for e in entries:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e["at"]))
            sys.stdout.write(f"{e['id']:>6} {when} {e['actor']:<16} {e['action']:<16} "
                             f"{e['target']:<12} {json.dumps(e['before'])} -> "
                             f"{json.dumps(e['after'])}\n")
        return 0
    return _api(args, show)


# --- helpers --------------------------------------------------------------------------------


def _guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Errors a person can act on become one log line and exit status 1."""
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except GatewayError as exc:
            log.error("%s", exc)
            return 1
    return run


def _api(args: argparse.Namespace,
         work: Callable[[AdminClient, argparse.Namespace], int]) -> int:
    """Run ``work(client, args)`` against the admin API (errors: see ``_guarded``)."""
    return work(_client(args), args)


def _client(args: argparse.Namespace) -> AdminClient:
    sock: Path | None = args.socket
    token_file: Path | None = args.token_file
    if args.config is not None:
        from .config import load_config  # noqa: PLC0415 - only this path reads a config

        admin = load_config(args.config, os.environ).admin
        sock = sock or admin.socket
        if token_file is None and admin.token_file is not None and os.access(admin.token_file,
                                                                             os.R_OK):
            token_file = admin.token_file  # unreadable: the socket's uid check may still admit
    if sock is None and args.url is None:
        raise CliError("no admin API given: pass --socket PATH, --url URL or --config FILE "
                       "(or --data-dir DIR for add/list/remove while the gateway is stopped)")
    token = read_token(token_file) if token_file is not None else None
    return AdminClient(socket_path=sock if args.url is None else None, url=args.url,
                       token=token)


def _assignment(item: str) -> tuple[str, ConfigValue | None]:
    name, sep, text = item.partition("=")
    if not sep or not name:
        raise CliError(f"{item!r} is not KEY=VALUE")
    if text == "":
        return name, None
    spec = KEYS.get(name)
    if spec is None:
        return name, text  # the API names the unknown key and lists the known ones
    if spec.kind == "str":
        if spec.secret and text.startswith("@"):
            try:
                return name, Path(text[1:]).read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                raise CliError(f"{name}: cannot read {text[1:]}: {exc}") from exc
        return name, text
    try:
        return name, int(text, 0)
    except ValueError:
        raise CliError(f"{name}: {text!r} is not an integer") from None


def _write_secret_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.chmod(0o600)
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _offline_actor() -> str:
    return f"cli:uid:{os.getuid()}"


def _ago(ts: float | None) -> str:
    if ts is None:
        return "never"
    age = max(0.0, time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= size:
            return f"{age / size:.0f}{unit} ago"
    return f"{age:.0f}s ago"
