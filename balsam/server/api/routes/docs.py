"""`/docs` (Swagger UI) and `/redoc` (ReDoc) with their assets served locally (balsam.server.api.docs_assets)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

from balsam.server.api import docs_assets

router = APIRouter(include_in_schema=False)

OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"


def _root_path(request: Request) -> str:
    # Behind a proxy that mounts the API under a prefix, the pages must link to the prefixed URLs.
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app, root = request.app, _root_path(request)
    page = get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - Swagger UI",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_PATH}",
        init_oauth=app.swagger_ui_init_oauth,
        swagger_ui_parameters=app.swagger_ui_parameters,
        **docs_assets.swagger_ui_assets(root),
    )
    return docs_assets.with_policy(page)


@router.get(OAUTH2_REDIRECT_PATH)
async def swagger_ui_oauth2_redirect() -> HTMLResponse:
    return docs_assets.with_policy(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    app, root = request.app, _root_path(request)
    page = get_redoc_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - ReDoc",
        **docs_assets.redoc_assets(root),
    )
    return docs_assets.with_policy(page)
