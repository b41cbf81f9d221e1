"""Reading gunicorn's own settings (GUNICORN_*, SERVER_*) from the environment in the config file."""

from __future__ import annotations

import os


def env_int(name: str, default: int) -> int:
    """An integer setting, or `default` when unset or empty; a malformed value stops gunicorn with one line."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"Invalid setting {name}: expected an integer, got {raw!r}") from None
