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

Zero-downtime reload: `kill -HUP <master pid>` (`systemctl reload balsam`) replaces every worker and never
drops a request. What makes it so:
- The master owns the listening socket and keeps it open across the reload, so no connection is refused;
  connections that arrive while workers are being replaced wait in the kernel backlog (`backlog`).
- On HUP the master re-reads this file, forks a new set of workers, then sends the old ones SIGTERM. An old
  worker stops accepting, finishes its in-flight requests (up to `graceful_timeout` seconds), and exits.
- Old workers hand their keep-alive connections over cleanly (`DrainingH11Protocol` below): they answer with
  `Connection: close` and never cut a connection a client may be sending on, so a request sent just as the
  reload happens is still answered. Stock uvicorn would drop such a request now and then.
- `preload_app = False`: each new worker imports the application itself, so it runs the code now on disk and
  builds its settings from the environment, `.env` (in the working directory), and secret files.
- The master never imports the application or its libraries (the settings check below runs in a child
  interpreter), so after an upgrade the new workers load only new code.
- A HUP whose new code or settings would not load is refused (`on_reload`): the old workers keep serving and
  the error is logged; fix it and HUP again.
What HUP does not change: the master's own environment, hence neither the variables below nor a new
`Environment=`/`EnvironmentFile=` (restart for those; put reloadable settings in `.env` or in the files named
by `*_FILE`), and gunicorn, uvicorn and uvicorn-worker themselves, which the master has loaded (restart after
upgrading them).
"""

import os
import signal
import socket
import subprocess
import sys
from typing import Any, ClassVar

from gunicorn.arbiter import Arbiter
from uvicorn.protocols.http.flow_control import CLOSE_HEADER
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

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


class DrainingH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a shutdown that does not make clients fail requests.

    When a worker starts shutting down, stock uvicorn closes idle keep-alive connections at once and closes
    busy ones right after their response, without telling the client. A client that sends its next request on
    such a connection at that moment sees it drop without a response: a failed request on every reload.
    Here, once the worker is shutting down:
    - a response that has not started yet carries `Connection: close`, and the connection closes after it, so
      the client opens a new connection, which a new worker serves;
    - any other connection stays open until the keep-alive timeout (`GUNICORN_KEEPALIVE`), as in normal
      operation; a request that arrives on it meanwhile is answered, with `Connection: close`.
    Keep `GUNICORN_KEEPALIVE` well below `GUNICORN_GRACEFUL_TIMEOUT`, so idle connections close before gunicorn
    kills an old worker.
    """

    # Set in a worker process when its server starts shutting down (`DrainingServer`); it then applies to
    # every connection, including one accepted while the shutdown began.
    worker_draining: ClassVar[bool] = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self.worker_draining:
            self._arm_keep_alive_timeout()

    def _arm_keep_alive_timeout(self) -> None:
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def _close_after_this_response(self) -> None:
        cycle = self.cycle
        if cycle is None or cycle.response_started:
            return  # too late to tell the client; the connection stays open and the next response says it
        cycle.keep_alive = False
        # uvicorn adds `Connection: close` to a response whose request carried it.
        cycle.scope["headers"] = [*cycle.scope["headers"], CLOSE_HEADER]

    def shutdown(self) -> None:
        DrainingH11Protocol.worker_draining = True
        if self.cycle is None or self.cycle.response_complete:
            self._arm_keep_alive_timeout()
        else:
            self._close_after_this_response()

    def handle_events(self) -> None:
        super().handle_events()
        if self.worker_draining and self.cycle is not None and not self.cycle.response_complete:
            self._close_after_this_response()


class DrainingServer(Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        DrainingH11Protocol.worker_draining = True
        await super().shutdown(sockets)


class BalsamUvicornWorker(UvicornWorker):
    """uvicorn's gunicorn worker with `DrainingH11Protocol` (h11; httptools is not in the pinned stack)."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {**UvicornWorker.CONFIG_KWARGS, "http": DrainingH11Protocol}

    async def _serve(self) -> None:
        # As UvicornWorker._serve (uvicorn-worker 0.4), with DrainingServer in place of uvicorn's Server.
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


def _draining_supported() -> bool:
    """The draining worker overrides uvicorn internals (tested with uvicorn 0.40 and uvicorn-worker 0.4, as
    pinned). With another uvicorn that lacks them, serve with the stock worker rather than fail to boot."""
    needed = [
        (UvicornWorker, "_serve"),
        (UvicornWorker, "_install_sigquit_handler"),
        (UvicornWorker, "CONFIG_KWARGS"),
        (H11Protocol, "handle_events"),
        (H11Protocol, "shutdown"),
        (H11Protocol, "timeout_keep_alive_handler"),
        (Server, "shutdown"),
    ]
    missing = [f"{owner.__name__}.{name}" for owner, name in needed if not hasattr(owner, name)]
    if missing:
        print(f"balsam: uvicorn lacks {', '.join(missing)}; using the stock UvicornWorker", flush=True)
    return not missing


worker_class = BalsamUvicornWorker if _draining_supported() else "uvicorn_worker.UvicornWorker"
workers = _int_env("GUNICORN_WORKERS", min(2 * _cpus, 8))
timeout = _int_env("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int_env("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Idle keep-alive timeout. It must not collide with the site agent's polling: a connection the server closes
# just as the client sends on it is reset, and the client retries with back-off. The agent's idle gaps are
# either short (back-to-back requests within a cycle, the launchers' 1 s loop) or long (the transfer service
# every 5 s, the file cleaner every 30 s, session ticks and the scheduler every 60 s, each minus the time the
# cycle's requests take). 2 s lies in the gap between: short gaps always find the connection open, and long
# ones find it closed seconds earlier, which the client notices before reusing it and reconnects without an
# error. With 5 s, one site-agent run saw 7 resets here, against none with upstream, which uses 2 s.
keepalive = _int_env("GUNICORN_KEEPALIVE", 2)
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


# Run in a child interpreter, so the master never imports the application or its libraries (see above).
_CHECK = (
    "import balsam.server.main; from balsam.server.conf import load_settings; load_settings().validate_for_serving()"
)


def _settings_problem() -> str | None:
    """Check the application as a new worker would load it: None when fine, else a one-line error.

    A child process imports `balsam.server.main` and validates the settings (environment, `.env` in the working
    directory, secret files). The master itself imports neither, so that workers forked after a HUP run the
    code and libraries installed at that moment.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # The master's SIGCHLD handler reaps any child (waitpid(-1)) and would take the check's exit status; hold
    # SIGCHLD until the check has been waited for. Workers that exit meanwhile are reaped when it is released.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        result = subprocess.run(
            [sys.executable, "-c", _CHECK], env=env, capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        return "the settings check timed out"
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    if result.returncode == 0:
        return None
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"the settings check exited with status {result.returncode}"


def on_starting(server: Any) -> None:
    """Fail fast, in the master, with a one-line message when the settings are invalid."""
    problem = _settings_problem()
    if problem:
        raise SystemExit(f"balsam: {problem}")


def on_reload(server: Any) -> None:
    """On HUP: when the new code or settings would not load, keep the running workers instead of replacing them.

    gunicorn calls this hook just before it forks `cfg.workers` new workers and then stops the surplus (oldest)
    ones; with zero new workers nothing is stopped. The next HUP re-reads this file, restoring `workers`.
    """
    problem = _settings_problem()
    if problem:
        server.log.error("balsam: reload refused, the running workers keep serving: %s", problem)
        server.cfg.set("workers", 0)
