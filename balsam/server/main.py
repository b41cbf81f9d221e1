"""The ASGI application: `balsam.server.main:app`."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI

from balsam.server.api import docs_assets
from balsam.server.api.deps import reject_nul_characters
from balsam.server.api.errors import install_error_handlers
from balsam.server.api.routes import (
    apps,
    auth_oauth,
    auth_password,
    batch_jobs,
    docs,
    events,
    health,
    jobs,
    sessions,
    sites,
    subscribe,
    transfers,
)
from balsam.server.auth.throttle import LoginThrottle
from balsam.server.conf import LoginMethod, Settings, get_settings, settings_as_json
from balsam.server.dashboard import app as dashboard
from balsam.server.db.engine import get_sessionmaker
from balsam.server.logging_setup import configure_logging
from balsam.server.pubsub import get_publisher
from balsam.server.sweeper import SessionSweeper

logger = logging.getLogger("balsam.server")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.validate_for_serving()
    configure_logging(settings)
    logger.info("Effective settings: %s", settings_as_json())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Route handlers run in anyio's thread pool; with no more threads than pooled connections
        # (Settings.request_thread_count), a request waits, if at all, for a thread, in arrival order.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_thread_count()
        if settings.request_thread_count() < settings.request_threads:
            logger.warning(
                "BALSAM_REQUEST_THREADS=%d lowered to %d to fit the database pool (BALSAM_DATABASE_POOL_SIZE + "
                "BALSAM_DATABASE_MAX_OVERFLOW)",
                settings.request_threads,
                settings.request_thread_count(),
            )
        # Lease expiry runs in every worker; an advisory lock lets one sweep at a time (balsam.server.sweeper).
        sweeper = SessionSweeper(
            lambda: get_sessionmaker()(),
            get_publisher,
            expiry_seconds=settings.session_expiry_seconds,
            interval=settings.session_sweep_interval_seconds,
        )
        sweeper.start()
        try:
            yield
        finally:
            await sweeper.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="Balsam",
        version="0.1.0",
        description="Central REST service of the Balsam HPC workflow system.",
        # /docs and /redoc come from balsam.server.api.routes.docs, with assets that need no internet access.
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(reject_nul_characters)],
    )
    install_error_handlers(app)
    # Routes see the same settings object the app was built with (api.deps.app_settings).
    app.state.settings = settings

    @app.get("/auth/how", tags=["auth"])
    def login_methods() -> list[str]:
        return [str(method) for method in settings.auth.login_methods]

    methods = set(settings.auth.login_methods)
    if LoginMethod.password in methods:
        app.state.login_throttle = LoginThrottle(settings.auth, settings.secret_key().encode())
        app.include_router(auth_password.router)
    if methods & {LoginMethod.oauth_device, LoginMethod.oauth_authcode}:
        app.include_router(auth_oauth.router)
    for module in (sites, apps, jobs, transfers, batch_jobs, sessions, events, subscribe, health, docs):
        app.include_router(module.router)
    docs_assets.mount(app)
    dashboard.mount(app, settings)
    if settings.metrics_enabled:
        _install_metrics(app, settings)
    return app


def _install_metrics(app: FastAPI, settings: Settings) -> None:
    from balsam.server.api.routes import metrics
    from balsam.server.metrics.database import DatabaseCollector
    from balsam.server.metrics.exposition import build_registry
    from balsam.server.metrics.requests import RequestMetrics

    app.state.metrics_database = DatabaseCollector(
        lambda: get_sessionmaker()(),
        cache_seconds=settings.metrics_cache_seconds,
        session_expiry_seconds=settings.session_expiry_seconds,
    )
    app.state.metrics_registry = build_registry(app.state.metrics_database)
    app.include_router(metrics.router)
    app.add_middleware(RequestMetrics, routes=lambda: app.routes)


def __getattr__(name: str) -> FastAPI:
    # `balsam.server.main:app` is built on first access, not at import, so that importing this module
    # (tests, tooling) has no side effects and gunicorn workers build it after reading the environment.
    if name == "app":
        application = create_app()
        # Start-up objects live as long as the worker: move them out of the collector's view so that the
        # full collections triggered by large bulk requests do not rescan them every time.
        gc.collect()
        gc.freeze()
        globals()["app"] = application
        return application
    raise AttributeError(name)
