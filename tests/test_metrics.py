"""Prometheus metrics (balsam.server.metrics): off unless enabled, an optional bearer token, request counts per
route template, the database gauges from one cached query, the service counters, and the multiprocess sum over
two real gunicorn workers."""

from __future__ import annotations

import http.client
import re
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, update

from balsam.server.clock import utcnow
from balsam.server.db.engine import get_sessionmaker
from balsam.server.db.tables import Session as LeaseRow
from balsam.server.pubsub import Publisher, get_publisher
from balsam.server.sweeper import SessionSweeper
from tests.ops_helpers import descendants, process_alive
from tests.serving import free_port, gunicorn, one_connection_per_worker
from tests.sessions_helpers import insert_jobs, make_app, make_session, make_site

ON = {"BALSAM_METRICS_ENABLED": "true"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_off_by_default(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 404


def test_token_from_a_secret_file(app_factory: Callable[..., TestClient], tmp_path: Path) -> None:
    secret = tmp_path / "metrics-token"
    secret.write_text("scrape-me-0123456789\n")
    api = app_factory(**ON, BALSAM_METRICS_TOKEN_FILE=str(secret))
    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    good = api.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"})
    assert good.status_code == 200 and good.headers["content-type"].startswith("text/plain")
    assert "balsam_http_requests_total" in good.text


def test_requests_are_counted_per_route_template_and_status_class(
    app_factory: Callable[..., TestClient], make_user: Callable[[str], TestClient]
) -> None:
    api = app_factory(**ON)
    user = make_user("metrics-user")
    before = api.get("/metrics").text
    for job_id in (11, 12, 13):
        assert user.get(f"/jobs/{job_id}").status_code == 404
    assert user.get("/no/such/path").status_code == 404
    after = api.get("/metrics").text
    route = {"method": "GET", "route": "/jobs/{job_id}", "status": "4xx"}
    assert (
        value(after, "balsam_http_requests_total", **route) - value(before, "balsam_http_requests_total", **route) == 3
    )
    assert (
        value(after, "balsam_http_request_duration_seconds_count", **route)
        - value(before, "balsam_http_request_duration_seconds_count", **route)
        == 3
    )
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "4xx"}
    assert value(after, "balsam_http_requests_total", **unmatched) > value(
        before, "balsam_http_requests_total", **unmatched
    )
    assert "/jobs/11" not in after and "/no/such/path" not in after  # never the raw path
    assert value(after, "balsam_http_requests_total", method="GET", route="/docs", status="2xx") >= 0


def test_jobs_per_state_per_site_from_one_cached_query(
    app_factory: Callable[..., TestClient], make_user: Callable[[str], TestClient], engine: Engine
) -> None:
    user = make_user("jobs-user")
    theta, polaris = make_site(user, "theta"), make_site(user, "polaris")
    insert_jobs(engine, make_app(user, theta), 5, state="RUNNING")
    insert_jobs(engine, make_app(user, theta, "B"), 2, state="RUNNING")
    insert_jobs(engine, make_app(user, polaris), 3, state="JOB_FINISHED")
    make_session(user, theta)

    api = app_factory(**ON, BALSAM_METRICS_CACHE_SECONDS="60")
    collector = api.app.state.metrics_database  # type: ignore[attr-defined]
    text = api.get("/metrics").text
    assert value(text, "balsam_jobs", site_id=str(theta), site="theta", state="RUNNING") == 7
    assert value(text, "balsam_jobs", site_id=str(polaris), site="polaris", state="JOB_FINISHED") == 3
    assert value(text, "balsam_sessions_active") == 1
    assert value(text, "balsam_metrics_database_up") == 1
    assert collector.queries == 1
    insert_jobs(engine, make_app(user, polaris, "C"), 4, state="RUNNING")
    again = api.get("/metrics").text
    assert collector.queries == 1, "a scrape within the cache time reuses the counts"
    assert value(again, "balsam_jobs", site_id=str(polaris), site="polaris", state="RUNNING") == 0

    fresh = app_factory(**ON, BALSAM_METRICS_CACHE_SECONDS="0")
    assert value(fresh.get("/metrics").text, "balsam_jobs", site_id=str(polaris), site="polaris", state="RUNNING") == 4


def test_a_database_failure_does_not_fail_the_scrape(app_factory: Callable[..., TestClient]) -> None:
    api = app_factory(
        **ON,
        BALSAM_DATABASE_URL=f"postgresql://nobody@127.0.0.1:{free_port()}/balsam?connect_timeout=2",
        BALSAM_DATABASE_RECONNECT_SECONDS="0",
    )
    resp = api.get("/metrics")
    assert resp.status_code == 200
    assert value(resp.text, "balsam_metrics_database_up") == 0 and "balsam_http_requests_total" in resp.text


def test_service_counters(
    app_factory: Callable[..., TestClient], make_user: Callable[[str], TestClient], engine: Engine
) -> None:
    api = app_factory(**ON)
    before = api.get("/metrics").text
    user = make_user("counter-user")  # registration publishes nothing; site creation publishes one message
    site = make_site(user)
    jobs = insert_jobs(engine, make_app(user, site), 4)
    session = make_session(user, site)
    got = user.post(f"/sessions/{session}", json={"max_num_jobs": 3, "filter_tags": {}})
    assert len(got.json()) == 3
    with engine.begin() as conn:
        conn.execute(update(LeaseRow).values(heartbeat=utcnow() - timedelta(hours=1)))
    result = SessionSweeper(lambda: get_sessionmaker()(), get_publisher, expiry_seconds=300, interval=60).sweep_once()
    assert result is not None and result.session_ids == [session]
    after = api.get("/metrics").text
    assert value(after, "balsam_jobs_acquired_total") - value(before, "balsam_jobs_acquired_total") == 3
    assert value(after, "balsam_sessions_expired_total") - value(before, "balsam_sessions_expired_total") == 1
    assert value(after, "balsam_events_published_total") > value(before, "balsam_events_published_total")
    assert len(jobs) == 4

    # Redis unreachable: one error, then skipped publishes while suspended.
    broken = Publisher({"host": "127.0.0.1", "port": free_port()})
    broken.publish(1, "create", "site", {})
    broken.publish(1, "create", "site", {})
    failed = api.get("/metrics").text
    for reason in ("error", "suspended"):
        assert (
            value(failed, "balsam_event_publish_failures_total", reason=reason)
            - value(before, "balsam_event_publish_failures_total", reason=reason)
            == 1
        )


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, str]:
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, resp.read().decode()


@pytest.mark.serving
def test_two_gunicorn_workers_are_summed(server_env: dict[str, str], engine: Engine, tmp_path: Path) -> None:
    env = {**server_env, **ON, "GUNICORN_KEEPALIVE": "300", "BALSAM_LOG_LEVEL": "INFO"}
    with gunicorn(env, tmp_path, workers=2) as server:
        first, second = one_connection_per_worker(server, 2)
        for conn, count in ((first, 7), (second, 5)):
            for _ in range(count):
                assert _get(conn, "/auth/how")[0] == 200
        route = {"method": "GET", "route": "/auth/how", "status": "2xx"}
        # Either worker's scrape reports both workers' requests.
        for conn in (first, second):
            status, text = _get(conn, "/metrics")
            assert status == 200
            assert value(text, "balsam_http_requests_total", **route) == 12
            assert value(text, "balsam_http_request_duration_seconds_count", **route) == 12
            assert value(text, "balsam_db_pool_connections_in_use") >= 0
        # The multiprocess directory holds one counter file per worker.
        (directory,) = re.findall(r"Prometheus multiprocess directory (\S+)", server.log())
        pids = {int(m) for m in re.findall(r"counter_(\d+)\.db", " ".join(p.name for p in Path(directory).iterdir()))}
        assert len(pids) == 2
        for conn in (first, second):
            conn.close()
        # Counters of workers that exited stay in the totals: after a reload (all new workers) they still add up.
        old_workers = descendants(server.process.pid)
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 120
        while (current := {p for p in descendants(server.process.pid) if process_alive(p)}) & old_workers or len(
            current
        ) != 2:
            assert time.monotonic() < deadline, "the workers were not replaced"
            time.sleep(0.3)
        text = httpx.get(f"{server.base_url}/metrics", timeout=60).text
        assert value(text, "balsam_http_requests_total", **route) == 12
    assert not Path(directory).exists(), "the master removes the directory it made"
