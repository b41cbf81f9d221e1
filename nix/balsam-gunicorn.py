#!/usr/bin/env python3
"""Start gunicorn on the Balsam app with the configuration shipped in the package.

Installed as `bin/balsam-gunicorn` by nix/package.nix, where nixpkgs' Python
wrapper puts the package and its dependencies on sys.path. Extra arguments are
passed to gunicorn; `-c/--config FILE` replaces the shipped configuration.
"""

import sys
from pathlib import Path

from gunicorn.app.wsgiapp import run

import balsam.server

APP = "balsam.server.main:app"
CONFIG = Path(balsam.server.__file__).parent / "gunicorn.conf.example.py"


def main() -> None:
    args = sys.argv[1:]
    has_config = any(a in ("-c", "--config") or a.startswith("--config=") for a in args)
    if not has_config:
        args = ["--config", str(CONFIG), *args]
    sys.argv = [sys.argv[0], *args, APP]
    run()


if __name__ == "__main__":
    main()
