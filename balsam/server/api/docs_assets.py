"""The JavaScript and CSS of `/docs` (Swagger UI) and `/redoc` (ReDoc), served by this server, not by a CDN.

FastAPI's stock pages load them from jsDelivr, so a server without internet access (common at HPC facilities)
shows a blank `/docs`. The PyPI package `fastapi-offline` (pinned in requirements/deploy.txt) ships the release
bundles of Swagger UI (Apache-2.0) and ReDoc (MIT) as package data and refreshes them with each release; we
serve its files under ASSETS_PATH and render the pages with FastAPI's public `get_swagger_ui_html` and
`get_redoc_html` (balsam.server.api.routes.docs). Only the files are used: the package's `FastAPIOffline()`
would take over building the app.

It is a dependency (nixpkgs has no package of it yet, so the flake builds one: nix/fastapi-offline.nix). Should
it be missing anyway, the pages fall back to FastAPI's CDN URLs, and the server says so in its log.
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

logger = logging.getLogger(__name__)

ASSETS_PATH = "/docs-assets"
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
REDOC_JS = "redoc.standalone.js"
FAVICON = "favicon.png"
ASSET_FILES = (SWAGGER_JS, SWAGGER_CSS, REDOC_JS, FAVICON)


@functools.cache
def bundled_assets() -> Path | None:
    """The installed directory that holds every file in ASSET_FILES, or None without fastapi-offline."""
    try:
        package = importlib.resources.files("fastapi_offline")
    except ImportError:
        return None
    directory = Path(str(package)) / "static"
    missing = [name for name in ASSET_FILES if not (directory / name).is_file()]
    if missing:
        logger.warning("fastapi-offline at %s lacks %s; /docs and /redoc use the CDN", directory, missing)
        return None
    return directory


def mount(app: FastAPI) -> None:
    """Serve the bundled files under ASSETS_PATH (or log that the docs pages will need internet access)."""
    directory = bundled_assets()
    if directory is None:
        logger.warning(
            "fastapi-offline is not installed: /docs and /redoc load Swagger UI and ReDoc from a CDN "
            "and stay blank without internet access (install requirements/deploy.txt)"
        )
        return
    app.mount(ASSETS_PATH, StaticFiles(directory=directory), name="docs-assets")


# With the local files the pages need nothing from another host, so the browser is told to fetch nothing from
# one: no request leaves for ReDoc's "API docs by Redocly" logo either. Inline scripts and styles are how both
# UIs start and style themselves; ReDoc's search runs in a worker made from a blob: URL.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'self'"
)


def with_policy(page: HTMLResponse) -> HTMLResponse:
    """`page` with the policy that keeps the browser on this server (only when the files are local)."""
    if bundled_assets() is not None:
        page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


def _url(root_path: str, name: str) -> str:
    return f"{root_path}{ASSETS_PATH}/{name}"


def swagger_ui_assets(root_path: str) -> dict[str, Any]:
    """Keyword arguments of `get_swagger_ui_html` for the local files ({} keeps FastAPI's CDN defaults)."""
    if bundled_assets() is None:
        return {}
    return {
        "swagger_js_url": _url(root_path, SWAGGER_JS),
        "swagger_css_url": _url(root_path, SWAGGER_CSS),
        "swagger_favicon_url": _url(root_path, FAVICON),
    }


def redoc_assets(root_path: str) -> dict[str, Any]:
    """Keyword arguments of `get_redoc_html` for the local files, without Google Fonts (system fonts)."""
    if bundled_assets() is None:
        return {}
    return {
        "redoc_js_url": _url(root_path, REDOC_JS),
        "redoc_favicon_url": _url(root_path, FAVICON),
        "with_google_fonts": False,
    }
