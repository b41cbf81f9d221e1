"""The dashboard in a real headless Chromium (Debian's, driven by playwright) against a real gunicorn with
PostgreSQL and Redis: sign-in, the overview of a seeded account, the jobs table's filters, a job's history,
a count that changes live after a PATCH through the API, polling when Redis is off, a second user who sees
nothing of the first, and phone-width layouts. Tabs may reach nothing but this machine.

With BALSAM_TEST_ARTIFACTS=docs/img the screenshots in docs/dashboard.md are written there.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.browser import OfflinePage, expect
from tests.ci_env import artifact_path
from tests.conftest import TEST_SECRET
from tests.dashboard_helpers import Seeded, seed_account, seed_history
from tests.serving import Gunicorn, gunicorn

pytestmark = [pytest.mark.serving, pytest.mark.browser]

LIVE_TIMEOUT_MS = 15_000
POLL_TIMEOUT_MS = 40_000  # the page polls every 15 s without Redis


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_params: dict[str, str]
) -> Iterator[Gunicorn]:
    env = {
        "BALSAM_DATABASE_URL": database_url,
        "BALSAM_AUTH_SECRET_KEY": TEST_SECRET,
        "BALSAM_REDIS_PARAMS": json.dumps(redis_params),
    }
    with gunicorn(env, tmp_path_factory.mktemp("dashboard-browser"), workers=2) as running:
        yield running


@dataclass
class User:
    name: str
    password: str
    api: httpx.Client


def new_user(base_url: str) -> User:
    name = f"sci-{uuid.uuid4().hex[:6]}"
    password = "pw-" + name
    with httpx.Client(base_url=base_url) as anon:
        assert anon.post("/auth/password/register", json={"username": name, "password": password}).status_code == 201
        token = anon.post("/auth/password/login", data={"username": name, "password": password}).json()["access_token"]
    return User(
        name, password, httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    )


def sign_in(tab: OfflinePage, base_url: str, user: User, path: str = "/dashboard/") -> None:
    tab.page.goto(f"{base_url}{path}")
    tab.page.get_by_label("Username").fill(user.name)
    tab.page.get_by_label("Password").fill(user.password)
    tab.page.get_by_role("button", name="Sign in", exact=True).click()
    tab.page.wait_for_load_state()


def clean(tab: OfflinePage, ignore: str | None = None) -> None:
    assert tab.refused == [], "the page tried to load something from another host"
    assert tab.errors == []
    assert tab.console_errors(ignore) == []


@pytest.fixture
def seeded(server: Gunicorn, engine: Engine) -> Iterator[tuple[User, Seeded]]:
    user = new_user(server.base_url)
    data = seed_account(user.api, engine)
    seed_history(user.api, data.apps["Analysis"])
    yield user, data
    user.api.close()


def test_sign_in_and_see_the_overview(
    browser: Any, server: Gunicorn, seeded: tuple[User, Seeded], tmp_path: Path
) -> None:
    user, _ = seeded
    tab = OfflinePage(browser)
    tab.page.goto(f"{server.base_url}/dashboard")
    assert "/dashboard/login" in tab.page.url  # not signed in yet
    sign_in(tab, server.base_url, user)
    page = tab.page
    assert page.url == f"{server.base_url}/dashboard/"
    assert page.get_by_role("heading", name="Overview").is_visible()
    cards = page.locator("article.site-card")
    assert cards.count() == 2
    polaris, theta = page.locator('[data-site="polaris"]'), page.locator('[data-site="theta"]')
    assert polaris.locator(".light").inner_text().strip() == "Active"
    assert theta.locator(".light").inner_text().strip() == "Stale"
    assert "/lus/grand/projects/md/polaris" in polaris.inner_text()
    assert polaris.locator('[data-site-count="running"]').inner_text() == "1"
    assert theta.locator('[data-state-count="FAILED"]').inner_text() == "1"
    assert "Stale: more than 10 min ago." in page.locator(".legend-note").first.inner_text()
    assert "x3005c0s7" in page.get_by_role("region", name="Queued and running batch jobs").inner_text()
    assert page.locator("#live svg.chart-svg rect.bar-finished").count() > 5
    expect(page.locator("#live-status")).to_have_attribute("data-mode", "socket", timeout=LIVE_TIMEOUT_MS)
    screenshot = artifact_path("dashboard-overview.png", tmp_path)
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    clean(tab)
    tab.close()


def test_filter_the_jobs_table(browser: Any, server: Gunicorn, seeded: tuple[User, Seeded]) -> None:
    user, _ = seeded
    tab = OfflinePage(browser)
    sign_in(tab, server.base_url, user, "/dashboard/jobs")
    page = tab.page
    rows = page.locator("#jobs-table tbody tr")
    assert rows.count() == 50  # a full first page
    page.get_by_label("State").select_option("RUNNING")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_load_state()
    assert "state=RUNNING" in page.url
    assert rows.count() == 1
    assert "md/run2" in rows.first.inner_text()

    page.get_by_label("State").select_option("")
    page.get_by_label("Site").select_option(label="polaris")
    page.get_by_label("Add a tag filter").fill("experiment:alpha")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_load_state()
    assert "tags=experiment%3Aalpha" in page.url
    expected = user.api.get("/jobs/", params={"site_id": seeded[1].fresh_site, "tags": "experiment:alpha"}).json()
    shown = [int(i) for i in rows.evaluate_all("rows => rows.map(r => r.dataset.jobId)")]
    assert shown == [job["id"] for job in expected["results"]] and len(shown) == 5
    assert "GET /jobs/?site_id=" in page.locator(".api-equivalent").inner_text()
    clean(tab)
    tab.close()


def test_open_a_jobs_history(browser: Any, server: Gunicorn, seeded: tuple[User, Seeded], tmp_path: Path) -> None:
    user, data = seeded
    tab = OfflinePage(browser)
    sign_in(tab, server.base_url, user, "/dashboard/jobs?state=RUN_ERROR")
    page = tab.page
    page.get_by_role("link", name=str(data.jobs["md/run3"]), exact=True).click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/dashboard/jobs/{data.jobs['md/run3']}")
    history = page.locator("#event-history li")
    assert history.count() == 4
    last = history.last.inner_text()
    assert "RUNNING" in last and "RUN_ERROR" in last and "Segmentation fault in step 1200" in last
    assert "md/run3" in page.get_by_role("heading", level=1).inner_text()
    screenshot = artifact_path("dashboard-job.png", tmp_path)
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    # A job with parents and a transfer item: its page links both ways.
    page.goto(f"{server.base_url}/dashboard/jobs/{data.jobs['analysis/merge']}")
    page.get_by_role("link", name=str(data.jobs["md/run0"]), exact=True).click()
    page.wait_for_load_state()
    assert (
        page.get_by_role("region", name="Children").get_by_role("link", name=str(data.jobs["analysis/merge"])).count()
        == 1
    )
    clean(tab)
    tab.close()


def test_a_count_changes_live_after_a_patch(browser: Any, server: Gunicorn, seeded: tuple[User, Seeded]) -> None:
    user, data = seeded
    tab = OfflinePage(browser)
    sign_in(tab, server.base_url, user)
    page = tab.page
    expect(page.locator("#live-status")).to_have_attribute("data-mode", "socket", timeout=LIVE_TIMEOUT_MS)
    running = page.locator('[data-site="polaris"] [data-site-count="running"]')
    assert running.inner_text() == "1"
    page.evaluate("window.notReloaded = true")
    resp = user.api.patch("/jobs/", json=[{"id": data.jobs["md/run5"], "state": "RUNNING"}])
    assert resp.status_code == 200, resp.text
    expect(running).to_have_text("2", timeout=LIVE_TIMEOUT_MS)
    assert page.locator('[data-count="running"]').inner_text() == "2"
    assert page.evaluate("window.notReloaded") is True  # updated in place, not by reloading the page
    clean(tab)
    tab.close()


def test_without_redis_the_page_polls(browser: Any, database_url: str, engine: Engine, tmp_path: Path) -> None:
    env = {"BALSAM_DATABASE_URL": database_url, "BALSAM_AUTH_SECRET_KEY": TEST_SECRET}
    with gunicorn(env, tmp_path, workers=1) as plain:
        user = new_user(plain.base_url)
        data = seed_account(user.api, engine)
        tab = OfflinePage(browser)
        sign_in(tab, plain.base_url, user)
        page = tab.page
        expect(page.locator("#live-status")).to_have_attribute("data-mode", "polling", timeout=LIVE_TIMEOUT_MS)
        assert "no event stream" in page.locator("#live-status").inner_text()
        page.evaluate("window.notReloaded = true")
        assert user.api.put(f"/jobs/{data.jobs['md/run5']}", json={"state": "RUNNING"}).status_code == 200
        running = page.locator('[data-site="polaris"] [data-site-count="running"]')
        expect(running).to_have_text("2", timeout=POLL_TIMEOUT_MS)
        assert page.evaluate("window.notReloaded") is True
        clean(tab)
        tab.close()
        user.api.close()


def test_a_second_user_sees_none_of_the_first_users_data(
    browser: Any, server: Gunicorn, seeded: tuple[User, Seeded]
) -> None:
    _, data = seeded
    other = new_user(server.base_url)
    tab = OfflinePage(browser)
    sign_in(tab, server.base_url, other)
    page = tab.page
    assert page.locator("article.site-card").count() == 0
    assert "No sites yet" in page.locator("#live").inner_text()
    assert page.locator('[data-count="total"]').inner_text() == "0"
    for path in ("/dashboard/", "/dashboard/jobs", "/dashboard/failures", "/dashboard/apps", "/dashboard/batch-jobs"):
        page.goto(f"{server.base_url}{path}")
        body = page.locator("body").inner_text()
        for secret in ("polaris", "theta", "md/run", "Segmentation", "x3005c0s7"):
            assert secret not in body, (path, secret)
    response = page.goto(f"{server.base_url}/dashboard/jobs/{data.jobs['md/run3']}")
    assert response is not None and response.status == 404
    assert page.get_by_role("heading", name="Not found").is_visible()
    # Editing the address to the first user's site filters to nothing.
    page.goto(f"{server.base_url}/dashboard/jobs?site_id={data.fresh_site}")
    assert page.locator("#jobs-table").count() == 0
    clean(tab, ignore="404 (Not Found)")  # the browser logs the 404 page it was shown
    tab.close()
    other.api.close()


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/jobs", "job", "/dashboard/throughput"])
def test_pages_fit_a_phone(
    browser: Any, server: Gunicorn, seeded: tuple[User, Seeded], path: str, tmp_path: Path
) -> None:
    user, data = seeded
    tab = OfflinePage(browser, width=390, height=844, device_scale_factor=2, is_mobile=True, has_touch=True)
    target = f"/dashboard/jobs/{data.jobs['md/run3']}" if path == "job" else path
    sign_in(tab, server.base_url, user, target)
    page = tab.page
    assert page.url.endswith(target)
    # Nothing wider than the screen: wide tables and charts scroll inside their own box.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.get_by_role("navigation", name="Dashboard sections").is_visible()
    if path == "/dashboard/":  # the screenshot shows the live status settled
        expect(page.locator("#live-status")).to_have_attribute("data-mode", "socket", timeout=LIVE_TIMEOUT_MS)
    shots = {"/dashboard/": "dashboard-phone.png", "job": "dashboard-phone-job.png"}
    if path in shots:
        screenshot = artifact_path(shots[path], tmp_path)
        page.screenshot(path=str(screenshot), full_page=False)
        print(f"screenshot: {screenshot}")
    clean(tab)
    tab.close()


def test_a_tag_filter_in_the_address_reads_like_the_api(
    browser: Any, server: Gunicorn, seeded: tuple[User, Seeded]
) -> None:
    user, _ = seeded
    tab = OfflinePage(browser)
    sign_in(tab, server.base_url, user, "/dashboard/jobs?tags=experiment:alpha&tags=run:1&state=JOB_FINISHED")
    rows = tab.page.locator("#jobs-table tbody tr")
    assert rows.count() == 1 and "md/run1" in rows.first.inner_text()
    # Both tag filters are kept in the form, so applying it again keeps them.
    values = tab.page.locator('input[name="tags"]').evaluate_all("inputs => inputs.map(i => i.value)")
    assert [v for v in values if v] == ["experiment:alpha", "run:1"]
    assert re.search(r"tags=experiment%3Aalpha&tags=run%3A1", tab.page.locator(".api-equivalent").inner_text())
    clean(tab)
    tab.close()
