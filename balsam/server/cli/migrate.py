"""`balsam server migrate`: upgrade the database schema to the newest revision."""

from __future__ import annotations

import argparse

from balsam.server.conf import load_settings
from balsam.server.db.migrate import upgrade


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("migrate", help="upgrade the schema to head (idempotent, safe to run concurrently)")
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    before, after = upgrade(settings.direct_sqlalchemy_url, args.revision)
    print(f"schema: {before or 'empty'} -> {after}" if before != after else f"schema already at {after}")
    return 0
