"""Gunicorn configuration for the Balsam service.

    gunicorn -c balsam/server/gunicorn.conf.example.py balsam.server.main:app

Everything comes from the environment, so one file serves bare metal, Docker and NixOS:
  BALSAM_BIND                  full bind address, e.g. unix:/run/balsam/balsam.sock (overrides the next two)
  SERVER_HOST / SERVER_PORT    TCP address (default 127.0.0.1:8000)
  GUNICORN_WORKERS             worker processes (default: 2 x CPUs, at most 8)
  GUNICORN_TIMEOUT             seconds a worker may stay silent before it is killed (default 60)
  GUNICORN_GRACEFUL_TIMEOUT    seconds old workers get to finish requests on HUP/TERM (default 30)
  GUNICORN_KEEPALIVE           keep-alive seconds (default 5)
  BALSAM_LOG_DIR               write gunicorn's access and error logs here (default: stdout/stderr)

Zero-downtime reload: `kill -HUP <master pid>` makes gunicorn start a fresh set of workers, which re-import
the application and re-read the environment and `.env`, before it gracefully stops the old ones. That works
because `preload_app` is off: with preloading, HUP would reuse the code loaded in the master.
"""

import os

from balsam.server.conf import SettingsError, load_settings

_cpus = os.cpu_count() or 1


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"Invalid setting {name}: expected an integer, got {raw!r}") from None


bind = [
    os.environ.get("BALSAM_BIND") or f"{os.environ.get('SERVER_HOST', '127.0.0.1')}:{_int_env('SERVER_PORT', 8000)}"
]
worker_class = "uvicorn_worker.UvicornWorker"
workers = _int_env("GUNICORN_WORKERS", min(2 * _cpus, 8))
timeout = _int_env("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int_env("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int_env("GUNICORN_KEEPALIVE", 5)
preload_app = False
# Forwarded headers from a reverse proxy on the same host only.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

_log_dir = os.environ.get("BALSAM_LOG_DIR")
if _log_dir:
    os.makedirs(_log_dir, exist_ok=True)
    accesslog = os.path.join(_log_dir, "gunicorn-access.log")
    errorlog = os.path.join(_log_dir, "gunicorn-error.log")
else:
    accesslog = "-"
    errorlog = "-"


def on_starting(server: object) -> None:
    """Fail fast, in the master, with a one-line message when the settings are invalid."""
    try:
        load_settings().validate_for_serving()
    except SettingsError as exc:
        raise SystemExit(f"balsam: {exc}") from None


def on_reload(server: object) -> None:
    # Re-validate on HUP so a broken config is reported before new workers start crash-looping.
    try:
        load_settings().validate_for_serving()
    except SettingsError as exc:
        print(f"balsam: reload with invalid settings: {exc}", flush=True)
