"""A small stand-in OAuth provider served over HTTP for the OAuth flow tests.

Codes are registered by the test (`provider.codes[code] = username`); /token exchanges a code once for an
access token and /userinfo returns the username for that token.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class Provider:
    def __init__(self) -> None:
        self.codes: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.token_requests: list[dict[str, str]] = []
        self.base_url = ""


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _json(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            provider.token_requests.append(form)
            username = provider.codes.pop(form.get("code", ""), None)
            if self.path != "/token" or username is None or form.get("grant_type") != "authorization_code":
                self._json(400, {"error": "invalid_grant"})
                return
            token = secrets.token_hex(8)
            provider.tokens[token] = username
            self._json(200, {"access_token": token, "token_type": "bearer"})

        def do_GET(self) -> None:
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if self.path != "/userinfo" or token not in provider.tokens:
                self._json(401, {"error": "invalid_token"})
                return
            self._json(200, {"username": provider.tokens[token]})

    return Handler


@contextmanager
def oauth_provider() -> Iterator[Provider]:
    provider = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
