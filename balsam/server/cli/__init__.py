"""`balsam server ...`: each subcommand lives in its own module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from balsam.server.conf import SettingsError

# Modules under balsam.server.cli, each defining `register(subparsers) -> None`.
COMMAND_MODULES = ["migrate", "users", "backup", "restore", "prune", "dev"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="balsam server", description="Balsam service administration.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"balsam.server.cli.{name}").register(sub)
    return parser


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:
        print(f"balsam: {exc}", file=sys.stderr)
        return 2
