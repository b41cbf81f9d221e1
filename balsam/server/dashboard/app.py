"""The dashboard as a sub-application mounted at MOUNT_PATH: its error pages, headers and timing stay its own.

Errors become HTML pages here (the API's handlers answer JSON): a missing or foreign row is a 404 page, an
expired session a redirect to the sign-in page. Every response says how long the server took to produce it
(`Server-Timing: app;dur=<ms>`), which bench/bench_dashboard.py reads.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from balsam.server.api.deps import reject_nul_characters
from balsam.server.api.errors import NotFound
from balsam.server.conf import Settings
from balsam.server.dashboard import routes, signin
from balsam.server.dashboard.templating import MOUNT_PATH, STATIC_DIR, render

logger = logging.getLogger(__name__)

LIVE_PREFIX = "/live/"


class ServerTiming:
    """ASGI middleware: `Server-Timing: app;dur=<ms>`, from receiving the request to starting the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"app;dur={elapsed:.1f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed_send)


def _error_page(request: Request, status_code: int, heading: str, message: str) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"title": heading, "heading": heading, "message": message, "user": None, "nav": ()},
        status_code=status_code,
    )


def _is_live(request: Request) -> bool:
    return request.url.path.startswith(signin.base_path(request).rstrip("/") + LIVE_PREFIX)


def _sign_in_required(request: Request, _: Exception) -> Response:
    if _is_live(request):
        return JSONResponse({"detail": "Not signed in"}, status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = signin.base_path(request).rstrip("/") + "/login?next=" + quote(target, safe="")
    return RedirectResponse(login, status_code=303)


def _csrf_rejected(request: Request, _: Exception) -> Response:
    return _error_page(
        request,
        403,
        "Form expired",
        "This form was not sent from this dashboard page, or it has expired. Go back, reload the page and try again.",
    )


def _not_found(request: Request, _: Exception) -> Response:
    return _error_page(request, 404, "Not found", "There is nothing here, or it belongs to another account.")


def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if _is_live(request):
        return JSONResponse({"detail": exc.errors()}, status_code=422)
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
    return _error_page(request, 400, "Bad request", f"The address has a value this page cannot use ({problems}).")


def _unavailable(request: Request, exc: Exception) -> Response:
    logger.error("Dashboard: database unavailable: %s", str(exc).splitlines()[0])
    return _error_page(request, 503, "Database unavailable", "The server cannot reach its database. Try again soon.")


def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("Dashboard: unhandled error", exc_info=exc)
    return _error_page(request, 500, "Server error", "Something went wrong on the server; it has been logged.")


def create_dashboard(settings: Settings) -> FastAPI:
    dashboard = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(reject_nul_characters)])
    # The same settings object as the API's (api.deps.app_settings reads it from the app serving the request).
    dashboard.state.settings = settings
    handlers: dict[Any, Any] = {
        signin.SignInRequired: _sign_in_required,
        signin.CsrfRejected: _csrf_rejected,
        NotFound: _not_found,
        RequestValidationError: _bad_request,
        OperationalError: _unavailable,
        Exception: _unexpected,
    }
    for exc_class, handler in handlers.items():
        dashboard.add_exception_handler(exc_class, handler)
    dashboard.include_router(routes.router)
    dashboard.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    dashboard.add_middleware(ServerTiming)
    return dashboard


def mount(app: FastAPI, settings: Settings) -> None:
    dashboard = create_dashboard(settings)
    # Password sign-in here counts against the same limits as POST /auth/password/login (absent when
    # password login is off).
    dashboard.state.login_throttle = getattr(app.state, "login_throttle", None)
    app.mount(MOUNT_PATH, dashboard)
