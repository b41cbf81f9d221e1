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

Zero-downtime reload: `kill -HUP <master pid>` (`systemctl reload balsam`) replaces every worker and never
drops a request. What makes it so:
- The master owns the listening socket and keeps it open across the reload, so no connection is refused;
  connections that arrive while workers are being replaced wait in the kernel backlog (`backlog`).
- On HUP the master re-reads this file, forks a new set of workers, then sends the old ones SIGTERM. An old
  worker stops accepting, finishes its in-flight requests (up to `graceful_timeout` seconds), answers them
  with `Connection: close`, and exits.
- `preload_app = False`: each new worker imports the application itself, so it runs the code now on disk and
  builds its settings from the environment, `.env` (in the working directory), and secret files.
- The master never imports the application: the settings check in the hooks below imports `balsam.*` and
  then drops it from `sys.modules`, so a HUP after an upgrade cannot mix old and new Balsam modules.
What HUP does not change: the master's own environment (a new `Environment=` or `EnvironmentFile=` needs a
restart; put reloadable settings in `.env` or in the files named by `*_FILE`), the bind address, and code of
gunicorn, uvicorn and the other libraries already loaded in the master (restart after upgrading those).
"""

import os
import sys

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


def _settings_problem() -> str | None:
    """Validate the settings as a worker would; None when they are fine, else the one-line error.

    Balsam's modules are imported for the check and then removed from `sys.modules`, so that workers forked
    later import the code that is on disk then (see "Zero-downtime reload" above).
    """
    loaded = set(sys.modules)
    try:
        from balsam.server.conf import SettingsError, load_settings

        try:
            load_settings().validate_for_serving()
        except SettingsError as exc:
            return str(exc)
        return None
    finally:
        for name in set(sys.modules) - loaded:
            if name == "balsam" or name.startswith("balsam."):
                del sys.modules[name]


def on_starting(server: object) -> None:
    """Fail fast, in the master, with a one-line message when the settings are invalid."""
    problem = _settings_problem()
    if problem:
        raise SystemExit(f"balsam: {problem}")


def on_reload(server: object) -> None:
    # Re-validate on HUP so a broken config is reported before new workers start crash-looping.
    problem = _settings_problem()
    if problem:
        print(f"balsam: reload with invalid settings: {problem}", flush=True)
