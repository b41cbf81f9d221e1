"""The `balsam` console script. Only the `server` command group lives in this distribution."""

from __future__ import annotations

import sys

from balsam.server.cli import main as server_main


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print("usage: balsam server {migrate,user,backup,restore,prune,dev} ...\n\nBalsam service administration.")
        return 0 if args else 2
    if args[0] != "server":
        print(
            f"balsam: unknown command {args[0]!r}; this installation provides `balsam server ...`",
            file=sys.stderr,
        )
        return 2
    return server_main(args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
