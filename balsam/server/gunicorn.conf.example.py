"""Gunicorn configuration for the Balsam service.

    gunicorn -c balsam/server/gunicorn.conf.example.py balsam.server.main:app

Everything comes from the environment, so one file serves bare metal, Docker and NixOS:
  BALSAM_BIND                  full bind address, e.g. unix:/run/balsam/balsam.sock (overrides the next two)
  SERVER_HOST / SERVER_PORT    TCP address (default 127.0.0.1:8000)
  GUNICORN_WORKERS             worker processes (default: 2 x CPUs, at most 8)
  GUNICORN_TIMEOUT             seconds a worker may stay silent before it is killed (default 60)
  GUNICORN_GRACEFUL_TIMEOUT    seconds old workers get to finish requests on HUP/TERM (default 30)
  GUNICORN_KEEPALIVE           keep-alive seconds (default 2; see `keepalive` below)
  BALSAM_LOG_DIR               write gunicorn's access and error logs here (default: stdout/stderr)
  GUNICORN_ACCESS_LOG          off: no access log at all (default on)

Zero-downtime reload: `kill -HUP <master pid>` (`systemctl reload balsam`) replaces every worker and never
drops a request. What makes it so:
- The master owns the listening socket and keeps it open across the reload, so no connection is refused;
  connections that arrive while workers are being replaced wait in the kernel backlog (`backlog`).
- On HUP the master re-reads this file, forks a new set of workers, then sends the old ones SIGTERM. An old
  worker stops accepting, finishes its in-flight requests (up to `graceful_timeout` seconds), and exits.
- Old workers hand their keep-alive connections over cleanly (the worker class,
  `balsam.server.serving.worker.BalsamUvicornWorker`): they answer with `Connection: close` and never cut a
  connection a client may be sending on, so a request sent just as the reload happens is still answered.
  Stock uvicorn would drop such a request now and then.
- `preload_app = False`: each new worker imports the application itself, so it runs the code now on disk and
  builds its settings from the environment, `.env` (in the working directory), and secret files.
- The master never imports the application or its libraries (the settings check of the hooks runs in a child
  interpreter), so after an upgrade the new workers load only new code. It loads `balsam.server.serving`
  (the worker class and these hooks), which imports nothing else of balsam.
- A HUP whose new code or settings would not load is refused (`on_reload`): the old workers keep serving and
  the error is logged; fix it and HUP again.
Metrics (`BALSAM_METRICS_ENABLED`): the hooks give the workers one directory for prometheus-client's multiprocess
mode (`PROMETHEUS_MULTIPROC_DIR`, made afresh at start, or the operator's, emptied at start), so any worker's
`/metrics` reports every worker; see docs/operations.md.
What HUP does not change: the master's own environment, hence neither the variables below nor a new
`Environment=`/`EnvironmentFile=` (restart for those; put reloadable settings in `.env` or in the files named
by `*_FILE`), and gunicorn, uvicorn, uvicorn-worker and `balsam.server.serving` themselves, which the master
has loaded (restart after upgrading them).
"""

import os

from balsam.server.serving.environment import env_int, env_switch
from balsam.server.serving.hooks import child_exit, on_exit, on_reload, on_starting  # noqa: F401  (gunicorn hooks)
from balsam.server.serving.worker import worker_class_path

_cpus = os.cpu_count() or 1

bind = [os.environ.get("BALSAM_BIND") or f"{os.environ.get('SERVER_HOST', '127.0.0.1')}:{env_int('SERVER_PORT', 8000)}"]
worker_class = worker_class_path()
workers = env_int("GUNICORN_WORKERS", min(2 * _cpus, 8))
timeout = env_int("GUNICORN_TIMEOUT", 60)
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Idle keep-alive timeout. It must not collide with the site agent's polling: a connection the server closes
# just as the client sends on it is reset, and the client retries with back-off. The agent's idle gaps are
# either short (back-to-back requests within a cycle, the launchers' 1 s loop) or long (the transfer service
# every 5 s, the file cleaner every 30 s, session ticks and the scheduler every 60 s, each minus the time the
# cycle's requests take). 2 s lies in the gap between: short gaps always find the connection open, and long
# ones find it closed seconds earlier, which the client notices before reusing it and reconnects without an
# error. With 5 s, one site-agent run saw 7 resets here, against none with upstream, which uses 2 s.
keepalive = env_int("GUNICORN_KEEPALIVE", 2)
preload_app = False
# Forwarded headers from a reverse proxy on the same host only.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

accesslog: str | None
_log_dir = os.environ.get("BALSAM_LOG_DIR")
if _log_dir:
    os.makedirs(_log_dir, exist_ok=True)
    accesslog = os.path.join(_log_dir, "gunicorn-access.log")
    errorlog = os.path.join(_log_dir, "gunicorn-error.log")
else:
    accesslog = "-"
    errorlog = "-"
# Off, for a service behind a proxy that keeps its own access log. None, not /dev/null: with no handler the
# workers format no line per request, whereas a log file of /dev/null still formats every one.
if not env_switch("GUNICORN_ACCESS_LOG", True):
    accesslog = None
