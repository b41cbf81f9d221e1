"""The gunicorn worker class: uvicorn's worker with a shutdown that fails no client request on reload.

On HUP the gunicorn master forks new workers and sends the old ones SIGTERM; an old worker stops accepting,
finishes its in-flight requests (up to `graceful_timeout`) and exits. Stock uvicorn closes its keep-alive
connections at that point without telling the client, so a request sent on one just then fails. The
protocols below hand them over cleanly instead (see `Draining`).

HTTP is parsed by httptools and the event loop is uvloop when they are installed (both pinned in
requirements/deploy.txt): h11, pure Python, took a tenth of a worker's CPU on small requests. Without them the
worker falls back to h11 and asyncio.

It overrides uvicorn internals (tested with uvicorn 0.40 and uvicorn-worker 0.4, as pinned);
`worker_class_path()` falls back to the stock worker when an installed uvicorn lacks them.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
from typing import Any, ClassVar

from gunicorn.arbiter import Arbiter
from uvicorn.protocols.http.flow_control import CLOSE_HEADER
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

if importlib.util.find_spec("httptools") is not None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

STOCK_WORKER = "uvicorn_worker.UvicornWorker"


def request_waiting(transport: Any) -> bool:
    """Whether bytes from the client wait unread on the connection's socket (peeked, not consumed)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    # asyncio's socket wrapper refuses recv(); a duplicate of the descriptor reads the same kernel buffer.
    with socket.fromfd(sock.fileno(), sock.family, sock.type) as dup:
        try:
            return bool(dup.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except OSError:  # nothing waiting (EAGAIN), or the connection is gone
            return False


class Draining:
    """Mixed into uvicorn's HTTP/1.1 protocols: keep-alive connections close without dropping requests.

    In normal operation: when the keep-alive timer fires, a request may already have arrived that the event
    loop has not read yet (it polled the socket earlier in the same iteration; the busier the machine, the
    wider that gap). Stock uvicorn closes the connection anyway and the request is lost; here a waiting request
    keeps the connection open and is served (`timeout_keep_alive_handler`).

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
    cycle: Any
    loop: Any
    timeout_keep_alive: Any
    timeout_keep_alive_task: Any
    transport: Any

    def timeout_keep_alive_handler(self) -> None:
        if request_waiting(self.transport):
            # data_received runs next: it serves the request and re-arms the keep-alive afterwards.
            self.timeout_keep_alive_task = None
            return
        super().timeout_keep_alive_handler()  # type: ignore[misc]

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
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

    def _new_request_while_draining(self) -> None:
        if self.worker_draining and self.cycle is not None and not self.cycle.response_complete:
            self._close_after_this_response()

    def shutdown(self) -> None:
        Draining.worker_draining = True
        if self.cycle is None or self.cycle.response_complete:
            self._arm_keep_alive_timeout()
        else:
            self._close_after_this_response()


class DrainingH11Protocol(Draining, H11Protocol):
    def handle_events(self) -> None:
        super().handle_events()
        self._new_request_while_draining()


HAVE_HTTPTOOLS = importlib.util.find_spec("httptools") is not None
HTTP_PROTOCOL: type[Any] = DrainingH11Protocol
if HAVE_HTTPTOOLS:

    class DrainingHttpToolsProtocol(Draining, HttpToolsProtocol):
        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._new_request_while_draining()

    HTTP_PROTOCOL = DrainingHttpToolsProtocol

EVENT_LOOP = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


class DrainingServer(Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        Draining.worker_draining = True
        await super().shutdown(sockets)


class BalsamUvicornWorker(UvicornWorker):
    """uvicorn's gunicorn worker with a draining protocol (httptools, else h11) on uvloop (else asyncio)."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **UvicornWorker.CONFIG_KWARGS,
        "http": HTTP_PROTOCOL,
        "loop": EVENT_LOOP,
    }

    async def _serve(self) -> None:
        # As UvicornWorker._serve (uvicorn-worker 0.4), with DrainingServer in place of uvicorn's Server.
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


def draining_supported() -> bool:
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
    if HAVE_HTTPTOOLS:
        for name in ("on_headers_complete", "shutdown", "timeout_keep_alive_handler"):
            needed.append((HttpToolsProtocol, name))
    missing = [f"{owner.__name__}.{name}" for owner, name in needed if not hasattr(owner, name)]
    if missing:
        print(f"balsam: uvicorn lacks {', '.join(missing)}; using the stock UvicornWorker", flush=True)
    return not missing


def worker_class_path() -> str:
    """The dotted path gunicorn's `worker_class` should name."""
    if draining_supported():
        return f"{BalsamUvicornWorker.__module__}.{BalsamUvicornWorker.__qualname__}"
    return STOCK_WORKER
