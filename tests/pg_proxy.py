"""A TCP proxy in front of the test PostgreSQL that counts what clients send: one simple-protocol Query
message ('Q') is one round trip for psycopg2, which never pipelines. Used to check how many round trips a
request costs, with the real server and the real driver (nothing mocked)."""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.harness import PgEndpoint

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


@dataclass
class Traffic:
    """Frontend messages seen so far: their types, and the text of each Query."""

    types: Counter[str] = field(default_factory=Counter)
    queries: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> tuple[int, int]:
        with self.lock:
            return sum(self.types.values()), len(self.queries)

    def since(self, mark: tuple[int, int]) -> list[str]:
        with self.lock:
            return self.queries[mark[1] :]


class _FrontendParser:
    """Splits the client->server byte stream into messages (startup packets have no type byte)."""

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        self.buffer = b""
        self.started = False

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if not self.started:
                if len(self.buffer) < 8:
                    return
                length, code = struct.unpack("!II", self.buffer[:8])
                if len(self.buffer) < length:
                    return
                self.buffer = self.buffer[length:]
                self.started = code not in (_SSL_REQUEST, _GSSENC_REQUEST)
                continue
            if len(self.buffer) < 5:
                return
            kind = chr(self.buffer[0])
            (length,) = struct.unpack("!I", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return
            body = self.buffer[5 : 1 + length]
            self.buffer = self.buffer[1 + length :]
            with self.traffic.lock:
                self.traffic.types[kind] += 1
                if kind == "Q":
                    self.traffic.queries.append(body.rstrip(b"\0").decode("utf-8", "replace"))


@dataclass
class PgProxy:
    port: int
    traffic: Traffic

    def url(self, database: str, user: str) -> str:
        return f"postgresql+psycopg2://{user}@127.0.0.1:{self.port}/{database}?sslmode=disable&gssencmode=disable"


def _upstream(pg: PgEndpoint) -> socket.socket:
    if pg.host.startswith("/"):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(f"{pg.host}/.s.PGSQL.{pg.port}")
    else:
        sock = socket.create_connection((pg.host, pg.port))
    return sock


@contextmanager
def pg_proxy(pg: PgEndpoint) -> Iterator[PgProxy]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.setblocking(False)
    traffic = Traffic()
    stop = threading.Event()
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    peers: dict[socket.socket, tuple[socket.socket, _FrontendParser | None]] = {}

    def close_pair(sock: socket.socket) -> None:
        other, _ = peers.pop(sock, (None, None))
        for s in (sock, other):
            if s is None:
                continue
            peers.pop(s, None)
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(s)
            s.close()

    def loop() -> None:
        while not stop.is_set():
            for key, _ in sel.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is listener:
                    client, _ = listener.accept()
                    server = _upstream(pg)
                    peers[client] = (server, _FrontendParser(traffic))
                    peers[server] = (client, None)
                    for s in (client, server):
                        sel.register(s, selectors.EVENT_READ, None)
                    continue
                if sock not in peers:
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    close_pair(sock)
                    continue
                other, parser = peers[sock]
                if parser is not None:
                    parser.feed(data)
                other.sendall(data)
        for sock in list(peers):
            close_pair(sock)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield PgProxy(listener.getsockname()[1], traffic)
    finally:
        stop.set()
        thread.join(timeout=5)
        sel.close()
        listener.close()
