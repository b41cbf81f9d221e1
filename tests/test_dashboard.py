"""The /dashboard pages in-process (real PostgreSQL and Redis): sign-in and its cookie, CSRF, what each page
shows for a seeded account, the jobs table against `GET /jobs/`, and isolation between two users.

The browser tests (tests/test_dashboard_browser.py) drive the same pages in Chromium against gunicorn.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from balsam.server.clock import utcnow
from balsam.server.dashboard import signin
from tests.dashboard_helpers import Seeded, seed_account
from tests.test_websocket import _wait_subscribers

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Account:
    name: str
    password: str
    api: TestClient  # bearer token of the user
    token: str
    user_id: int


@pytest.fixture
def account(client: TestClient, app_factory: Callable[..., TestClient]) -> Callable[[], Account]:
    def make() -> Account:
        name = f"dash-{uuid.uuid4().hex[:8]}"
        password = "pw-" + name
        assert client.post("/auth/password/register", json={"username": name, "password": password}).status_code == 201
        token = client.post("/auth/password/login", data={"username": name, "password": password}).json()[
            "access_token"
        ]
        api = app_factory()
        api.headers["Authorization"] = f"Bearer {token}"
        user_id = api.get("/auth/password/me").json()["id"]
        return Account(name, password, api, token, user_id)

    return make


def browser(app_factory: Callable[..., TestClient]) -> TestClient:
    """A fresh client with its own cookie jar, like a browser with no session."""
    return app_factory()


def login_csrf(web: TestClient) -> str:
    page = web.get("/dashboard/login")
    assert page.status_code == 200
    match = CSRF.search(page.text)
    assert match is not None
    return match.group(1)


def sign_in(web: TestClient, who: Account) -> TestClient:
    resp = web.post(
        "/dashboard/login",
        data={"csrf_token": login_csrf(web), "username": who.name, "password": who.password},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text
    return web


def set_cookies(resp: Any) -> dict[str, SimpleCookie]:
    cookies: dict[str, SimpleCookie] = {}
    for header in resp.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name in jar:
            cookies[name] = jar
    return cookies


def job_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-job-id="(\d+)"', html)]


def site_card(html: str, name: str) -> str:
    for chunk in html.split("<article")[1:]:
        if f'data-site="{name}"' in chunk:
            return chunk.split("</article>")[0]
    raise AssertionError(f"no card for site {name}")


def count_in(card: str, attribute: str, key: str) -> int:
    match = re.search(rf'{attribute}="{key}">([\d,]+)<', card)
    assert match is not None, f"{attribute}={key} not in card"
    return int(match.group(1).replace(",", ""))


# ----------------------------------------------------------------------------------------- sign-in


def test_sign_in_sets_an_httponly_lax_cookie_for_the_dashboard_only(
    account: Callable[[], Account], app_factory: Callable[..., TestClient]
) -> None:
    who = account()
    web = browser(app_factory)
    page = web.get("/dashboard/login")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    nonce = set_cookies(page)[signin.LOGIN_NONCE_COOKIE][signin.LOGIN_NONCE_COOKIE]
    assert nonce["httponly"] and nonce["samesite"].lower() == "strict" and nonce["path"] == "/dashboard"

    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    resp = web.post(
        "/dashboard/login",
        data={
            "csrf_token": token,
            "username": who.name,
            "password": who.password,
            "next": "/dashboard/jobs?state=RUNNING",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == "/dashboard/jobs?state=RUNNING"
    cookie = set_cookies(resp)[signin.SESSION_COOKIE][signin.SESSION_COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"].lower() == "lax"
    assert cookie["path"] == "/dashboard"
    assert not cookie["secure"]  # plain HTTP here
    assert 47 * 3600 < int(cookie["max-age"]) <= 48 * 3600
    assert web.get("/dashboard/").status_code == 200

    # The same sign-in through an HTTPS proxy gets a Secure cookie.
    secure = browser(app_factory)
    resp = secure.post(
        "/dashboard/login",
        data={"csrf_token": login_csrf(secure), "username": who.name, "password": who.password},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    assert set_cookies(resp)[signin.SESSION_COOKIE][signin.SESSION_COOKIE]["secure"]


@pytest.mark.parametrize(
    ("csrf", "headers"),
    [
        ("", {}),
        ("forged", {}),
        (None, {"Sec-Fetch-Site": "cross-site"}),
        (None, {"Origin": "http://evil.example"}),
    ],
    ids=["no-token", "wrong-token", "cross-site-fetch", "foreign-origin"],
)
def test_sign_in_refuses_forged_or_cross_site_posts(
    account: Callable[[], Account], app_factory: Callable[..., TestClient], csrf: str | None, headers: dict[str, str]
) -> None:
    who = account()
    web = browser(app_factory)
    valid = login_csrf(web)
    resp = web.post(
        "/dashboard/login",
        data={"csrf_token": valid if csrf is None else csrf, "username": who.name, "password": who.password},
        headers=headers,
        follow_redirects=False,
    )
    assert resp.status_code == 403
    assert "Form expired" in resp.text
    assert signin.SESSION_COOKIE not in set_cookies(resp)


def test_same_origin_post_with_origin_header_is_accepted(
    account: Callable[[], Account], app_factory: Callable[..., TestClient]
) -> None:
    who = account()
    web = browser(app_factory)
    resp = web.post(
        "/dashboard/login",
        data={"csrf_token": login_csrf(web), "username": who.name, "password": who.password},
        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert resp.status_code == 303


def test_wrong_password_and_bad_token_show_the_form_again(
    account: Callable[[], Account], app_factory: Callable[..., TestClient]
) -> None:
    who = account()
    web = browser(app_factory)
    wrong = web.post("/dashboard/login", data={"csrf_token": login_csrf(web), "username": who.name, "password": "nope"})
    assert wrong.status_code == 401
    assert "Wrong username or password." in wrong.text
    assert f'value="{who.name}"' in wrong.text  # the username is kept, the password is not
    bad = web.post("/dashboard/login", data={"csrf_token": login_csrf(web), "token": "not-a-token"})
    assert bad.status_code == 401
    assert "That token is not valid" in bad.text
    empty = web.post("/dashboard/login", data={"csrf_token": login_csrf(web)})
    assert empty.status_code == 401
    assert web.get("/dashboard/", follow_redirects=False).status_code == 303


def test_password_sign_in_shares_the_api_login_throttle(
    account: Callable[[], Account], app_factory: Callable[..., TestClient]
) -> None:
    """Failures on the sign-in form count against the same per-username limit as POST /auth/password/login:
    the form cannot be used to guess passwords past the API's throttle, nor the other way round."""
    who = account()
    limited = app_factory(BALSAM_AUTH_LOGIN_FAILURES_PER_USER="2", BALSAM_AUTH_LOGIN_FAILURE_WINDOW="60")
    first = limited.post(
        "/dashboard/login", data={"csrf_token": login_csrf(limited), "username": who.name, "password": "guess-1"}
    )
    assert first.status_code == 401
    assert limited.post("/auth/password/login", data={"username": who.name, "password": "guess-2"}).status_code == 401
    # The limit is reached: even the right password is refused, on the form (429 page) and on the API.
    refused = limited.post(
        "/dashboard/login",
        data={"csrf_token": login_csrf(limited), "username": who.name, "password": who.password},
        follow_redirects=False,
    )
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in refused.text
    assert signin.SESSION_COOKIE not in set_cookies(refused)
    api = limited.post("/auth/password/login", data={"username": who.name, "password": who.password})
    assert api.status_code == 401
    assert "retry-after" in api.headers


def test_sign_in_with_an_existing_token_lives_no_longer_than_it(
    account: Callable[[], Account], app_factory: Callable[..., TestClient]
) -> None:
    who = account()
    short = app_factory(BALSAM_AUTH_TOKEN_TTL="600")
    token = short.post("/auth/password/login", data={"username": who.name, "password": who.password}).json()
    web = browser(app_factory)
    resp = web.post(
        "/dashboard/login",
        data={"csrf_token": login_csrf(web), "token": "Bearer " + token["access_token"]},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    max_age = int(set_cookies(resp)[signin.SESSION_COOKIE][signin.SESSION_COOKIE]["max-age"])
    assert 0 < max_age <= 600
    page = web.get("/dashboard/")
    assert page.status_code == 200
    assert who.name in page.text


def test_pages_redirect_to_sign_in_and_next_stays_on_the_dashboard(app_factory: Callable[..., TestClient]) -> None:
    web = browser(app_factory)
    for path in ("/dashboard/", "/dashboard/jobs?state=FAILED", "/dashboard/jobs/1", "/dashboard/throughput"):
        resp = web.get(path, follow_redirects=False)
        assert resp.status_code == 303, path
        assert resp.headers["location"].startswith("/dashboard/login?next=%2Fdashboard%2F")
    assert web.get("/dashboard", follow_redirects=False).status_code in (307, 308)
    for live in ("/dashboard/live/overview", "/dashboard/live/token"):
        resp = web.get(live)
        assert resp.status_code == 401
        assert resp.json() == {"detail": "Not signed in"}
    for target in ("https://evil.example/", "//evil.example/x", "/docs", "/dashboard\\@evil"):
        page = web.get("/dashboard/login", params={"next": target})
        assert 'name="next" value="/dashboard/"' in page.text, target


def test_sign_out_needs_its_csrf_token_and_clears_the_cookie(
    account: Callable[[], Account], app_factory: Callable[..., TestClient]
) -> None:
    web = sign_in(browser(app_factory), account())
    page = web.get("/dashboard/")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    assert web.post("/dashboard/logout", data={"csrf_token": "x"}, follow_redirects=False).status_code == 403
    assert web.get("/dashboard/").status_code == 200
    resp = web.post("/dashboard/logout", data={"csrf_token": token}, follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/dashboard/login"
    cookie = set_cookies(resp)[signin.SESSION_COOKIE][signin.SESSION_COOKIE]
    assert cookie.value == "" and int(cookie["max-age"]) == 0
    assert web.get("/dashboard/", follow_redirects=False).status_code == 303


def test_dashboard_credentials_do_not_work_on_the_api(
    account: Callable[[], Account], app_factory: Callable[..., TestClient], redis_params: dict[str, str]
) -> None:
    who = account()
    web = sign_in(browser(app_factory), who)
    cookie_token = web.cookies[signin.SESSION_COOKIE]
    live = web.get("/dashboard/live/token")
    assert live.status_code == 200
    assert live.headers["cache-control"] == "no-store"
    live_token = live.json()["token"]
    api = app_factory()
    for token in (cookie_token, live_token):
        resp = api.get("/sites/", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, resp.text
    # An API token does not open the dashboard either: only the cookie the dashboard minted does.
    other = browser(app_factory)
    other.cookies.set(signin.SESSION_COOKIE, who.token, path="/dashboard")
    assert other.get("/dashboard/", follow_redirects=False).status_code == 303
    # The live token opens the websocket, and the cookie's token does not.
    with api.websocket_connect("/subscribe-user") as ws:
        ws.send_text(live_token)
        _wait_subscribers(redis_params, who.user_id, 1)
    with api.websocket_connect("/subscribe-user") as ws:
        ws.send_text(cookie_token)
        message = ws.receive()
        assert message["type"] == "websocket.close" and message["code"] == 1008
    # From another site's page, the live token is refused.
    assert web.get("/dashboard/live/token", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403


def test_a_deleted_account_is_signed_out(
    account: Callable[[], Account], app_factory: Callable[..., TestClient], engine: Engine
) -> None:
    who = account()
    web = sign_in(browser(app_factory), who)
    assert web.get("/dashboard/").status_code == 200
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE username = :n"), {"n": who.name})
    assert web.get("/dashboard/", follow_redirects=False).status_code == 303


# ----------------------------------------------------------------------------------------- pages


@pytest.fixture
def seeded(
    account: Callable[[], Account], engine: Engine, app_factory: Callable[..., TestClient]
) -> tuple[Account, Seeded, TestClient]:
    who = account()
    data = seed_account(who.api, engine)
    return who, data, sign_in(browser(app_factory), who)


def test_overview_shows_sites_lights_counts_sessions_and_batch_jobs(seeded: tuple[Account, Seeded, TestClient]) -> None:
    _, data, web = seeded
    page = web.get("/dashboard/")
    assert page.status_code == 200
    assert page.headers["server-timing"].startswith("app;dur=")
    html = page.text
    polaris, theta = site_card(html, "polaris"), site_card(html, "theta")
    assert 'light-active"><span class="light-dot" aria-hidden="true"></span>Active</span>' in polaris
    assert 'light-stale"><span class="light-dot" aria-hidden="true"></span>Stale</span>' in theta
    assert "/lus/grand/projects/md/polaris" in polaris
    assert "Active: refreshed within 2 min. Late: 2 min to 10 min. Stale: more than 10 min ago." in html
    # polaris: run0, run1 finished; run2 running; run3 RUN_ERROR, run4 RUN_TIMEOUT; run5, merge STAGED_IN; staged READY.
    assert count_in(polaris, "data-site-count", "finished") == 2
    assert count_in(polaris, "data-site-count", "running") == 1
    assert count_in(polaris, "data-site-count", "failed") == 2
    assert count_in(polaris, "data-site-count", "waiting") == 3
    assert count_in(polaris, "data-state-count", "RUN_TIMEOUT") == 1
    assert count_in(polaris, "data-state-count", "READY") == 1
    assert count_in(theta, "data-state-count", "FAILED") == 1
    assert count_in(theta, "data-state-count", "JOB_FINISHED") == 1
    assert count_in(html, "data-count", "total") == 11
    assert count_in(html, "data-count", "finished") == 3
    # The session, with its batch job; the two active batch jobs with their status_info.
    assert f'<td class="num-id">{data.session}</td>' in html
    assert "40021" in html and "queue_position" in html and "x3005c0s7" in html
    # The day's throughput: 3 jobs finished, 3 failure events (RUN_ERROR, RUN_TIMEOUT, FAILED).
    assert '<strong data-total="finished">3</strong>' in html
    assert '<strong data-total="failed">3</strong>' in html
    assert "Segmentation fault in step 1200" in html
    assert web.get("/dashboard/live/overview").text.count("<article") == 2


JOB_QUERIES: list[dict[str, Any]] = [
    {},
    {"state": "RUNNING"},
    {"state": ["RUN_ERROR", "RUN_TIMEOUT", "FAILED"]},
    {"tags": "experiment:alpha"},
    {"tags": ["experiment:alpha", "run:2"]},
    {"tags": "run:2:extra"},
    {"workdir__contains": "legacy"},
    {"state": "STAGED_IN", "ordering": "-id"},
    {"ordering": "state"},
]


def test_jobs_table_lists_what_the_api_lists(seeded: tuple[Account, Seeded, TestClient]) -> None:
    who, _, web = seeded
    for params in JOB_QUERIES:
        page = web.get("/dashboard/jobs", params=params)
        assert page.status_code == 200, params
        api = who.api.get("/jobs/", params=params).json()
        assert job_ids(page.text) == [job["id"] for job in api["results"]], params
        assert f"of {api['count']} jobs" in page.text or (api["count"] == 0 and "No jobs" in page.text), params


def test_jobs_table_filters_by_site_and_app(seeded: tuple[Account, Seeded, TestClient]) -> None:
    who, data, web = seeded
    queries: list[dict[str, Any]] = [
        {"site_id": data.stale_site},
        {"app_id": data.apps["Analysis"]},
        {"site_id": data.fresh_site, "state": "JOB_FINISHED"},
    ]
    for params in queries:
        page = web.get("/dashboard/jobs", params=params)
        expected = [job["id"] for job in who.api.get("/jobs/", params=params).json()["results"]]
        assert expected and job_ids(page.text) == expected
    page = web.get("/dashboard/jobs", params={"site_id": data.stale_site})
    assert "GET /jobs/?site_id=" in page.text  # the equivalent API request


def test_jobs_table_pages_through_results(seeded: tuple[Account, Seeded, TestClient], engine: Engine) -> None:
    who, data, web = seeded
    specs = [{"app_id": data.apps["Analysis"], "workdir": f"bulk/{i}", "tags": {"bulk": "yes"}} for i in range(120)]
    assert who.api.post("/jobs/", json=specs).status_code == 201
    first = web.get("/dashboard/jobs", params={"tags": "bulk:yes"})
    assert len(job_ids(first.text)) == 50 and "1\u201350 of 120 jobs" in first.text
    last = web.get("/dashboard/jobs", params={"tags": "bulk:yes", "offset": 100})
    assert len(job_ids(last.text)) == 20 and "101\u2013120 of 120 jobs" in last.text
    everything = job_ids(first.text) + job_ids(
        web.get("/dashboard/jobs", params={"tags": "bulk:yes", "offset": 50}).text
    )
    assert len(set(everything + job_ids(last.text))) == 120


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"state": "BOGUS"}, "state: &#39;BOGUS&#39; is not a job state"),
        ({"tags": "nocolon"}, "has no colon"),
        ({"site_id": "abc"}, "site_id: &#39;abc&#39; is not a whole number"),
        ({"ordering": "-tags"}, "ordering: &#39;-tags&#39; is not one of"),
    ],
)
def test_jobs_table_explains_a_bad_filter(
    seeded: tuple[Account, Seeded, TestClient], params: dict[str, str], message: str
) -> None:
    _, _, web = seeded
    page = web.get("/dashboard/jobs", params=params)
    assert page.status_code == 400
    assert message in page.text
    assert job_ids(page.text) == []


def test_job_page_shows_fields_relatives_transfers_and_full_history(seeded: tuple[Account, Seeded, TestClient]) -> None:
    who, data, web = seeded
    child = web.get(f"/dashboard/jobs/{data.jobs['analysis/merge']}")
    assert child.status_code == 200
    for parent in ("md/run0", "md/run1"):
        assert f'href="/dashboard/jobs/{data.jobs[parent]}"' in child.text
    assert "All parents finished" in child.text or "Skipped stage in" in child.text

    parent = web.get(f"/dashboard/jobs/{data.jobs['md/run0']}").text
    assert f'href="/dashboard/jobs/{data.jobs["analysis/merge"]}"' in parent
    history = parent.split('id="event-history"')[1].split("</ol>")[0]
    api_events = who.api.get("/events/", params={"job_id": data.jobs["md/run0"], "ordering": "timestamp"}).json()
    assert history.count('class="timeline-item') == api_events["count"] == 5
    transitions = re.findall(
        r'badge-\w+">(\w+)</span> <span aria-label="to">→</span> <span class="badge badge-\w+">(\w+)<', history
    )
    assert transitions == [
        ("CREATED", "STAGED_IN"),
        ("STAGED_IN", "PREPROCESSED"),
        ("PREPROCESSED", "RUNNING"),
        ("RUNNING", "RUN_DONE"),
        ("RUN_DONE", "JOB_FINISHED"),
    ]
    assert "Skipped stage out" in history

    staged = web.get(f"/dashboard/jobs/{data.jobs['md/staged']}").text
    assert "home:/data/in.dat" in staged and "badge-transfer-pending" in staged
    failed = web.get(f"/dashboard/jobs/{data.jobs['md/run3']}").text
    assert "Segmentation fault in step 1200" in failed and "139" in failed


def test_missing_job_and_bad_id_are_html_pages(seeded: tuple[Account, Seeded, TestClient]) -> None:
    _, _, web = seeded
    missing = web.get("/dashboard/jobs/999999")
    assert missing.status_code == 404 and "<h1>Not found</h1>" in missing.text
    bad = web.get("/dashboard/jobs/abc")
    assert bad.status_code == 400 and "<h1>Bad request</h1>" in bad.text
    nul = web.get("/dashboard/jobs", params={"workdir__contains": "a\x00b"})
    assert nul.status_code == 400


def test_failures_list_has_every_failure_with_its_message(seeded: tuple[Account, Seeded, TestClient]) -> None:
    _, data, web = seeded
    page = web.get("/dashboard/failures").text
    for text_ in (
        "Segmentation fault in step 1200",
        "Wall time of 60 min reached",
        "Input deck missing",
        "exit code 139",
    ):
        assert text_ in page
    only_theta = web.get("/dashboard/failures", params={"site_id": data.stale_site}).text
    assert "Input deck missing" in only_theta and "Segmentation fault" not in only_theta


def test_throughput_counts_events_per_window(seeded: tuple[Account, Seeded, TestClient]) -> None:
    who, data, web = seeded
    now = utcnow()
    # Back-dated events through the API (state_timestamp): 2 days ago counts in the week only; 30 min ago in
    # the day and the hour... and one in the future in none.
    moves = [
        (data.jobs["md/run5"], "JOB_FINISHED", now - timedelta(days=2)),
        (data.jobs["legacy/2"], "FAILED", now - timedelta(days=2, hours=1)),
        (data.jobs["md/run2"], "RUN_ERROR", now - timedelta(minutes=90)),
        (data.jobs["md/staged"], "JOB_FINISHED", now + timedelta(days=1)),
    ]
    for job_id, state, when in moves:
        assert (
            who.api.put(f"/jobs/{job_id}", json={"state": state, "state_timestamp": when.isoformat()}).status_code
            == 200
        )
    page = web.get("/dashboard/throughput").text
    totals = re.findall(r'data-total="(finished|failed)">([\d,]+)<', page)
    assert totals == [
        ("finished", "3"),
        ("failed", "3"),
        ("finished", "3"),
        ("failed", "4"),
        ("finished", "4"),
        ("failed", "5"),
    ]
    assert page.count("<svg") == 3


def test_apps_and_batch_jobs_pages(seeded: tuple[Account, Seeded, TestClient]) -> None:
    _, _, web = seeded
    apps = web.get("/dashboard/apps").text
    for name in ("Simulation", "Analysis", "Legacy", "Molecular dynamics run", "steps*"):
        assert name in apps
    batch = web.get("/dashboard/batch-jobs").text
    assert "40021" in batch and "40022" in batch
    queued = web.get("/dashboard/batch-jobs", params={"state": "queued"}).text
    assert "40021" in queued and "40022" not in queued


def test_a_second_user_sees_none_of_the_first_users_data(
    seeded: tuple[Account, Seeded, TestClient], account: Callable[[], Account], app_factory: Callable[..., TestClient]
) -> None:
    _, data, _ = seeded
    other = sign_in(browser(app_factory), account())
    secrets_ = ("polaris", "theta", "md/run", "Simulation", "Segmentation fault", "40021", "queue_position")
    pages = [
        "/dashboard/",
        "/dashboard/live/overview",
        "/dashboard/jobs",
        f"/dashboard/jobs?site_id={data.fresh_site}",
        f"/dashboard/jobs?app_id={data.apps['Simulation']}",
        "/dashboard/failures",
        f"/dashboard/failures?site_id={data.fresh_site}",
        "/dashboard/throughput",
        "/dashboard/apps",
        "/dashboard/batch-jobs",
    ]
    for path in pages:
        page = other.get(path)
        assert page.status_code == 200, path
        for secret in secrets_:
            assert secret not in page.text, (path, secret)
        assert job_ids(page.text) == []
    for job_id in data.jobs.values():
        assert other.get(f"/dashboard/jobs/{job_id}").status_code == 404
    overview = other.get("/dashboard/").text
    assert count_in(overview, "data-count", "total") == 0
    assert re.findall(r'data-total="\w+">(\d+)<', other.get("/dashboard/throughput").text) == ["0"] * 6


def test_static_assets_are_served_from_the_package(client: TestClient) -> None:
    for name, kind in (("dashboard.css", "text/css"), ("dashboard.js", "javascript"), ("favicon.svg", "image/svg+xml")):
        resp = client.get(f"/dashboard/static/{name}")
        assert resp.status_code == 200
        assert kind in resp.headers["content-type"]
    login = client.get("/dashboard/login").text
    assert re.search(r'href="/dashboard/static/dashboard\.css\?v=[0-9a-f]{12}"', login)
    assert "http://" not in login and "https://" not in login  # nothing from another host
