#!/usr/bin/env python3
"""Start gunicorn on the Balsam app with the configuration shipped in the package.

Installed as `bin/balsam-gunicorn` by nix/package.nix, where nixpkgs' Python
wrapper puts the package and its dependencies on sys.path. Extra arguments are
passed to gunicorn; `-c/--config FILE` replaces the shipped configuration.

The gunicorn master must not import Balsam's modules (workers import the
application themselves, see gunicorn.conf.example.py), so the configuration
file is located with find_spec, which does not run the package.
"""

import importlib.util
import sys
from pathlib import Path

from gunicorn.app.wsgiapp import run

APP = "balsam.server.main:app"


def shipped_config() -> Path:
    spec = importlib.util.find_spec("balsam")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("balsam-gunicorn: the balsam package is not importable")
    return Path(next(iter(spec.submodule_search_locations))) / "server" / "gunicorn.conf.example.py"


def main() -> None:
    args = sys.argv[1:]
    has_config = any(a in ("-c", "--config") or a.startswith("--config=") for a in args)
    if not has_config:
        args = ["--config", str(shipped_config()), *args]
    sys.argv = [sys.argv[0], *args, APP]
    run()


if __name__ == "__main__":
    main()
