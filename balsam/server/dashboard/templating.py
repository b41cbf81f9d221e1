"""The Jinja2 environment of the dashboard's pages, and the one function that renders a page.

Templates and static files are package data (pyproject's [tool.setuptools.package-data]), so the wheel
serves the dashboard with no CDN and nothing fetched from elsewhere. Asset URLs carry a hash of the file,
so a browser never runs a stale script after an upgrade.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from balsam.server.clock import utcnow
from balsam.server.dashboard import states

MOUNT_PATH = "/dashboard"  # where balsam.server.dashboard.app mounts the dashboard in the API's app
STATIC_DIR = Path(str(files("balsam.server.dashboard") / "static"))

# The pages load nothing from another host and run no inline script or style; the live-update socket is
# this server's own /subscribe-user.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Pages show one user's data: never stored by a shared cache or kept in the browser's history cache.
    "Cache-Control": "no-store",
}


@functools.cache
def asset_version(name: str) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def _utc(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(value: datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds") + "Z"


def duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    delta = utcnow() - value
    if delta < timedelta(0):
        return "just now"
    return duration(delta) + " ago"


def _number(value: int | float) -> str:
    return f"{value:,}"


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("balsam.server.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a typo in a template fails the tests instead of rendering blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(utc=_utc, iso=_iso, ago=_ago, number=_number, pretty_json=_pretty_json, duration=duration)
    env.globals.update(
        state_group=lambda state: states.GROUP_OF.get(state, "waiting"),
        group_labels=states.GROUP_LABELS,
        all_states=states.ALL_STATES,
    )
    return env


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """Render `template` with the context every page uses (links, assets, the signed-in user's forms)."""
    base = str(request.scope.get("root_path", "")).rstrip("/")

    def static(name: str) -> str:
        return f"{base}/static/{name}?v={asset_version(name)}"

    def link(path: str = "/", **params: Any) -> str:
        query = urlencode({k: v for k, v in params.items() if v not in (None, "", [])}, doseq=True)
        return f"{base}{path}" + (f"?{query}" if query else "")

    page = (
        environment()
        .get_template(template)
        .render(
            {
                "base": base,
                "api_base": base.removesuffix(MOUNT_PATH),
                "static": static,
                "link": link,
                "now": utcnow(),
                "request_path": request.url.path,
                **context,
            }
        )
    )
    return HTMLResponse(page, status_code=status_code, headers=SECURITY_HEADERS)
