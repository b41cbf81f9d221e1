"""Real headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by playwright (never a
downloaded browser), and tabs that may reach only this machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.ci_env import REQUIRE_BROWSER, unavailable

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium() -> Iterator[Any]:
    """Debian's Chromium under playwright (the `browser` fixture of tests/conftest.py); skips without it,
    or fails where CI asked for it."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (Debian: apt-get install chromium)", REQUIRE_BROWSER)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (requirements/dev.txt)", REQUIRE_BROWSER)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class OfflinePage:
    """A browser tab that may only reach 127.0.0.1: requests to any other host are refused and recorded.

    Each tab has a context of its own (its own cookies), so two tabs can be two users.
    """

    def __init__(self, browser: Any, width: int = 1280, height: int = 900, **context_options: Any) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height}, **context_options)
        self.page = self.context.new_page()
        self.refused: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))

    def console_errors(self, ignore: str | None = None) -> list[str]:
        return [m for m in self.console if m.startswith("error") and (ignore is None or ignore not in m)]

    def _route(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def close(self) -> None:
        self.context.close()


def expect(target: Any) -> Any:
    """playwright's `expect` (retrying assertions that, unlike `wait_for_function`, need no eval, which the
    dashboard's Content-Security-Policy forbids), imported only once a browser test runs."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)
