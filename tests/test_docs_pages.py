"""/docs and /redoc link only to assets this server serves (no CDN), and fall back to the CDN without them."""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from balsam.server.api import docs_assets

ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def _linked_urls(html: str) -> list[str]:
    return re.findall(r"""(?:href|src)=["']([^"']+)["']""", html)


# A dependency everywhere (the flake builds it, nix/fastapi-offline.nix); the skip only guards partial installs.
needs_bundle = pytest.mark.skipif(
    importlib.util.find_spec("fastapi_offline") is None, reason="fastapi-offline is not installed: pages use the CDN"
)


@pytest.fixture
def without_fastapi_offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As if fastapi-offline were not installed: importing it fails."""
    monkeypatch.setitem(sys.modules, "fastapi_offline", None)
    docs_assets.bundled_assets.cache_clear()
    yield
    docs_assets.bundled_assets.cache_clear()


@needs_bundle
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_assets_from_this_server(client: TestClient, page: str) -> None:
    resp = client.get(page)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    urls = _linked_urls(resp.text)
    assert urls, resp.text
    assert all(url.startswith(docs_assets.ASSETS_PATH + "/") for url in urls), urls
    assert "https://" not in resp.text and "http://" not in resp.text, "no CDN, no Google Fonts"
    assert "/openapi.json" in resp.text
    assert resp.headers["content-security-policy"].startswith("default-src 'self';")
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert ASSET_TYPES[url[url.rfind(".") :]] in asset.headers["content-type"], url
        assert len(asset.content) > 1000, url


@needs_bundle
def test_swagger_ui_oauth2_redirect_page_and_schema(client: TestClient) -> None:
    assert "oauth2-redirect" in client.get("/docs").text
    assert client.get("/docs/oauth2-redirect").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc"))], "the pages stay out of the schema"
    assert client.get(f"{docs_assets.ASSETS_PATH}/no-such-file.js").status_code == 404


@needs_bundle
def test_docs_behind_a_path_prefix_link_to_prefixed_urls(app_factory: Callable[..., TestClient]) -> None:
    # What a server started with a root path (uvicorn's --root-path) passes to the app behind a proxy.
    html = TestClient(app_factory().app, root_path="/balsam").get("/docs").text
    assert "'/balsam/openapi.json'" in html
    assert all(url.startswith(f"/balsam{docs_assets.ASSETS_PATH}/") for url in _linked_urls(html))


def test_without_the_bundle_the_pages_fall_back_to_the_cdn(
    without_fastapi_offline: None, app_factory: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    assert docs_assets.bundled_assets() is None
    logger = logging.getLogger("balsam")  # does not propagate to the root logger that caplog watches
    logger.addHandler(caplog.handler)
    try:
        client = app_factory()
    finally:
        logger.removeHandler(caplog.handler)
    assert "fastapi-offline is not installed" in caplog.text
    html = client.get("/docs").text
    assert "https://cdn.jsdelivr.net/npm/swagger-ui-dist" in html, "FastAPI's defaults"
    assert "content-security-policy" not in client.get("/docs").headers, "it would block the CDN"
    assert client.get("/redoc").status_code == 200
    assert client.get(f"{docs_assets.ASSETS_PATH}/{docs_assets.SWAGGER_JS}").status_code == 404
