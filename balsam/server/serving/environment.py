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


_ON = frozenset({"on", "true", "1", "yes"})
_OFF = frozenset({"off", "false", "0", "no"})


def env_switch(name: str, default: bool) -> bool:
    """An on/off setting (on/true/1/yes, off/false/0/no, any case), or `default` when unset or empty; anything
    else stops gunicorn with one line, so a typo does not silently keep the default."""
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in _ON or raw in _OFF:
        return raw in _ON
    raise SystemExit(f"Invalid setting {name}: expected on or off, got {os.environ[name]!r}")
