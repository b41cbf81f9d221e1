"""The keep-alive close race, made deterministic: the keep-alive timer fires while the client's next request
already waits unread on the socket (the event loop polled it earlier in the same iteration). Stock uvicorn
closes the connection and the request is lost; the worker's protocol serves it.

A real uvicorn server with a real socket; the test only chooses the moment the timer handler runs."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from balsam.server.serving.worker import DrainingH11Protocol, DrainingHttpToolsProtocol
from tests.serving import free_port

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _recording(base: type[Any], instances: list[Any]) -> type[Any]:
    class Recording(base):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            instances.append(self)

    return Recording


class RunningServer:
    def __init__(self, protocol: type[Any]) -> None:
        self.base = protocol
        self.instances: list[Any] = []
        self.protocol = _recording(protocol, self.instances)
        self.port = free_port()
        config = uvicorn.Config(
            _app, host="127.0.0.1", port=self.port, http=self.protocol, timeout_keep_alive=30, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True)

    def __enter__(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


STOCK = (H11Protocol, HttpToolsProtocol)


@pytest.fixture(
    params=[H11Protocol, DrainingH11Protocol, HttpToolsProtocol, DrainingHttpToolsProtocol],
    ids=["h11-stock", "h11-ours", "httptools-stock", "httptools-ours"],
)
def running(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    with RunningServer(request.param) as server:
        yield server


def _read_response(sock: socket.socket) -> bytes:
    """The response, or b"" when the server closed or reset the connection instead."""
    data = b""
    while not data.endswith(b"ok"):
        try:
            chunk = sock.recv(4096)
        except ConnectionResetError:
            return b""
        if not chunk:
            break
        data += chunk
    return data


def test_timer_firing_while_a_request_waits(running: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
        sock.sendall(REQUEST)
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        (protocol,) = running.instances

        sent = threading.Event()
        handled = threading.Event()

        def timer_fires_before_the_read() -> None:
            # Runs in the event loop, which therefore cannot read the socket meanwhile.
            assert sent.wait(10)
            time.sleep(0.05)  # the request is in the server's receive buffer now
            protocol.timeout_keep_alive_handler()
            handled.set()

        running.loop.call_soon_threadsafe(timer_fires_before_the_read)
        sock.sendall(REQUEST)
        sent.set()
        assert handled.wait(10)
        response = _read_response(sock)

    if running.base in STOCK:
        assert response == b"", "stock uvicorn drops the waiting request (what this test guards against)"
    else:
        assert response.startswith(b"HTTP/1.1 200"), response
