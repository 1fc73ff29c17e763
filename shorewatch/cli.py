"""``shorewatch`` command: sub-commands registered by each package, imported lazily."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shorewatch", description="Edge firmware manager for beach sensors and cameras.")
    parser.add_argument("--version", action="version", version=f"shorewatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from gateway import cli as gateway_cli  # noqa: PLC0415 - keep start-up light

    from . import demo, detect  # noqa: PLC0415
    from .sim import cli as sim_cli  # noqa: PLC0415

    gateway_cli.register(sub)
    demo.register(sub)
    detect.register(sub)
    sim_cli.register(sub)
    return parser


def setup_logging(verbose: bool) -> None:
    """One event per line on stderr, no timestamps (journald adds them)."""
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
