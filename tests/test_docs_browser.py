"""/docs and /redoc in a real headless Chromium (Debian's) against a real gunicorn, with every request to
another host refused: the pages render all of the API's operations from the assets this server ships."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import OfflinePage
from tests.ci_env import artifact_path
from tests.conftest import TEST_SECRET
from tests.serving import Gunicorn, gunicorn

pytestmark = [pytest.mark.serving, pytest.mark.browser]

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Gunicorn]:
    env = {"BALSAM_DATABASE_URL": database_url, "BALSAM_AUTH_SECRET_KEY": TEST_SECRET}
    with gunicorn(env, tmp_path_factory.mktemp("docs-browser"), workers=1) as running:
        yield running


def _operations(base_url: str) -> int:
    paths = httpx.get(f"{base_url}/openapi.json").json()["paths"]
    return sum(1 for item in paths.values() for method in item if method in HTTP_METHODS)


def test_swagger_ui_shows_every_operation_without_internet(browser: Any, server: Gunicorn, tmp_path: Path) -> None:
    tab = OfflinePage(browser)
    tab.page.goto(f"{server.base_url}/docs")
    tab.page.wait_for_selector(".opblock", timeout=30_000)
    assert tab.page.locator(".opblock").count() == _operations(server.base_url)
    assert tab.page.locator(".opblock-summary-path", has_text="/sites/").count() >= 1
    assert "Balsam" in tab.page.locator(".info .title").inner_text()
    screenshot = artifact_path("swagger-offline.png", tmp_path)
    last = tab.page.locator(".opblock").last.bounding_box()
    assert last is not None
    # The page down to the last operation (the schema list below it is long and says little).
    height = last["y"] + last["height"] + 24
    tab.page.screenshot(path=str(screenshot), full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": height})
    print(f"screenshot: {screenshot}")
    assert tab.refused == [], "the page tried to load something from another host"
    assert tab.errors == []
    assert tab.console_errors(ignore="Content Security Policy") == []


def test_redoc_shows_every_operation_without_internet(browser: Any, server: Gunicorn, tmp_path: Path) -> None:
    tab = OfflinePage(browser)
    tab.page.goto(f"{server.base_url}/redoc")
    operations = tab.page.locator('[data-section-id^="tag/"][data-section-id*="/operation/"]')
    operations.first.wait_for(timeout=30_000)
    assert operations.count() == _operations(server.base_url)
    screenshot = artifact_path("redoc-offline.png", tmp_path)
    tab.page.screenshot(path=str(screenshot))
    print(f"screenshot: {screenshot}")
    assert tab.refused == [], "the page tried to load something from another host"
    assert tab.errors == []
    assert tab.console_errors(ignore="Content Security Policy") == []
