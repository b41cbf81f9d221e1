"""`balsam server dev`: embedded PostgreSQL (+ Redis when available), migrations, gunicorn, in one command."""

from __future__ import annotations

import argparse
from pathlib import Path

from balsam.server.ops.devserver import DevOptions, DevServerError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "dev",
        help="run a local development server (embedded PostgreSQL, data kept in --data-dir)",
        description="Starts a private PostgreSQL (and a Redis-compatible server when one is installed) with its data "
        "in --data-dir, applies migrations, and serves the API with gunicorn. Ctrl-C stops everything. "
        "Not for production: see docs/deployment.md.",
    )
    parser.add_argument("--data-dir", type=Path, default=Path(".balsam-dev"), help="default: ./.balsam-dev")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default: 2)")
    parser.add_argument(
        "--demo-user", action="store_true", help="create (or reset) the user `demo` and print its password"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from balsam.server.ops import devserver

    options = DevOptions(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        demo_user=args.demo_user,
        workers=args.workers,
    )
    try:
        return devserver.run(options)
    except DevServerError as exc:
        print(f"balsam dev: {exc}")
        return 1
