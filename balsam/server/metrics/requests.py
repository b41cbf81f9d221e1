"""ASGI middleware that counts and times HTTP requests per route template (`/jobs/{job_id}`, never the raw path,
so the number of series stays bounded) and status class (`2xx`...). Requests that match no route are counted as
route `<unmatched>` (404s, the slash redirects); websockets are not counted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from balsam.server.metrics.counters import HTTP_LATENCY, HTTP_REQUESTS

UNMATCHED = "<unmatched>"


class RequestMetrics:
    def __init__(self, app: ASGIApp, routes: Callable[[], Iterable[BaseRoute]]) -> None:
        self.app = app
        self._routes = routes
        self._templates: dict[Any, str] | None = None

    def _template(self, scope: Scope) -> str:
        route = scope.get("route")  # FastAPI's APIRoute puts itself here when it matches
        if route is not None and hasattr(route, "path"):
            return str(route.path)
        endpoint = scope.get("endpoint")  # plain Starlette routes (/docs, /openapi.json, mounts) leave only this
        if endpoint is None:
            return UNMATCHED
        if self._templates is None:
            self._templates = {}
            for candidate in self._routes():
                target = getattr(candidate, "endpoint", None) or getattr(candidate, "app", None)
                if target is not None:
                    self._templates.setdefault(target, str(getattr(candidate, "path", UNMATCHED)))
        return self._templates.get(endpoint, UNMATCHED)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            labels = (scope["method"], self._template(scope), f"{status // 100}xx")
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_LATENCY.labels(*labels).observe(time.perf_counter() - started)
