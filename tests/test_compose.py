"""The Docker Compose quick setup, for real: our image built from the unchanged Dockerfile, and the unchanged
docker-compose.yml run with podman-compose (no Docker engine or registry here; tests/containers.py builds the
base images, tests/compose_stack.py brings the stack up in stages as docs/deployment.md tells podman users).

One scenario, in the order an operator lives it: the stack refuses to start without its secrets; migrations
complete before the server starts; /healthz (and /readyz, once the server has it) reports the database and
Redis; registration over the API is closed, and accounts made with the CLI inside the container log in over HTTP; `kill -s HUP` under continuous
requests fails none; the backup profile writes a dump; `down` then `up` keeps the data; a restore of the dump
into a fresh database volume gives the same data; the server runs as a non-root user. Each step's time is
printed (docs/deployment.md quotes them). Skipped where rootful podman is missing, except in CI.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests import containers
from tests.ci_env import ARTIFACTS, REQUIRE_COMPOSE, artifact_path, unavailable
from tests.compose_stack import ComposeProject, Timings
from tests.ops_helpers import ROOT
from tests.serving import Load, free_port

pytestmark = [pytest.mark.compose, pytest.mark.timeout(2400)]

IMAGE = "localhost/balsam-server:local"  # docker-compose.yml's `image: balsam-server:local`
WORKERS = 2
SERVER_UID = "10001"


def _login(http: httpx.Client, username: str, password: str) -> str:
    resp = http.post("/auth/password/login", data={"username": username, "password": password})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def _check_health(http: httpx.Client) -> str:
    """/healthz, and /readyz where the server has one; returns what was checked."""
    assert http.get("/healthz").json() == {"status": "ok", "database": "ok", "redis": "ok"}
    ready = http.get("/readyz")
    if ready.status_code == 404:  # not (yet) a route of this server
        return "/healthz (no /readyz route)"
    assert ready.status_code == 200, ready.text
    body = ready.json()
    for part in ("database", "redis"):
        if part in body:
            assert body[part] == "ok", body
    return "/healthz and /readyz"


def _gunicorn_workers(project: ComposeProject) -> set[str]:
    """PIDs (in the container) of the gunicorn workers: every process but the master, PID 1."""
    out = project.podman.run("top", project.container("server"), "pid").stdout.split()[1:]
    return {pid for pid in out if pid != "1"}


def _started(project: ComposeProject, service: str, key: str) -> datetime:
    state = project.inspect(service)["State"]
    assert isinstance(state, dict)
    # podman prints nanoseconds; datetime takes microseconds.
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", str(state[key])))


def test_compose_quick_setup(capsys: pytest.CaptureFixture[str]) -> None:
    if reason := containers.missing_tools():
        unavailable(reason, REQUIRE_COMPOSE)
    if importlib.util.find_spec("podman_compose") is None:
        unavailable("podman-compose is not installed (requirements/dev.txt)", REQUIRE_COMPOSE)

    timings = Timings()
    notes: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="balsam-compose-", dir="/var/tmp"))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(_report, timings, notes, capsys)
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)

        with timings.step("stand-in base images"):
            try:
                store, how = cleanup.enter_context(containers.base_image_store(workdir))
            except containers.PodmanUnavailable as exc:
                unavailable(str(exc), REQUIRE_COMPOSE)
        notes.append(f"base images: {how} ({store})")
        podman = containers.Podman(workdir / "podman", graphroot=workdir / "podman" / "storage", stores=[store])
        project = ComposeProject(podman, workdir / "project", port=free_port())
        # Generous: a login hashes a password, and the machine may be busy.
        http = cleanup.enter_context(httpx.Client(base_url=project.base_url, timeout=60))

        def teardown() -> None:
            with timings.step("teardown (down --volumes, remove the storage)"):
                project.destroy()
                podman.remove_everything()

        cleanup.callback(teardown)

        with timings.step("build balsam-server:local (Dockerfile)"):
            podman.build(ROOT, IMAGE, "-f", ROOT / "Dockerfile")
        (image,) = json.loads(podman.run("image", "inspect", IMAGE).stdout)
        # The Docker image format keeps the HEALTHCHECK (BUILDAH_FORMAT=docker).
        assert image["Config"]["User"] == "balsam" and image["Healthcheck"]["Test"][0] == "CMD"

        with timings.step("refuses to start without the secrets"):
            project.write_env({})  # .env.example copied, not edited
            refused = project.compose("up", "--detach", "--no-build", "db", "redis", check=False)
            assert refused.returncode != 0
            assert "set POSTGRES_PASSWORD in .env" in refused.stderr or "set BALSAM_AUTH_SECRET_KEY" in refused.stderr
            project.write_env({"POSTGRES_PASSWORD": secrets.token_hex(24)})
            refused = project.compose("up", "--detach", "--no-build", "db", "redis", check=False)
            assert refused.returncode != 0 and "set BALSAM_AUTH_SECRET_KEY in .env" in refused.stderr
            assert project.containers() == [], "nothing was started"

        project.write_env(
            {
                "BALSAM_AUTH_SECRET_KEY": secrets.token_hex(32),
                "POSTGRES_PASSWORD": secrets.token_hex(24),
                "BALSAM_PUBLISH": f"127.0.0.1:{project.port}",
                "GUNICORN_WORKERS": str(WORKERS),
            }
        )
        with timings.step("up db + redis, wait for their healthchecks"):
            project.up_db_and_redis()
        with timings.step("migrate (one-shot, exit code 0)"):
            project.migrate()
            assert project.containers("server") == []
            assert project.psql("SELECT version_num FROM alembic_version"), "the schema is migrated"
        with timings.step("up server, wait for /healthz"):
            project.up_server()
        assert _started(project, "migrate", "FinishedAt") <= _started(project, "server", "StartedAt")

        with timings.step("health, non-root, /docs assets"):
            notes.append(f"health: {_check_health(http)}")
            top = project.podman.run("top", project.container("server"), "user", "huser").stdout.split()[2:]
            assert top and set(top[0::2]) == {"balsam"} and set(top[1::2]) == {SERVER_UID}, top
            assert project.exec("server", "id", "-u").strip() == SERVER_UID
            docs = http.get("/docs").text
            (bundle,) = re.findall(r"""src=["']([^"']+swagger-ui-bundle\.js)["']""", docs)
            assert bundle.startswith("/") and http.get(bundle).status_code == 200

        with timings.step("user add with the CLI in the container, login over HTTP"):
            out = project.exec(
                "server", "balsam", "server", "user", "add", "alice", "--password-stdin", input="alice-pw\n"
            )
            assert "created user alice" in out
            token = _login(http, "alice", "alice-pw")
            auth = {"Authorization": f"Bearer {token}"}
            site = http.post("/sites/", json={"name": "theta", "path": "/p/theta"}, headers=auth)
            assert site.status_code == 201, site.text
            # Registration is closed unless the operator opens it (BALSAM_AUTH_ALLOW_REGISTRATION in .env).
            registered = {"username": "bob", "password": "bob-pw"}
            assert http.post("/auth/password/register", json=registered).status_code == 403
            project.exec("server", "balsam", "server", "user", "add", "bob", "--password-stdin", input="bob-pw\n")

        with timings.step("kill -s HUP under continuous requests"):
            before = _gunicorn_workers(project)
            assert len(before) == WORKERS
            with Load(project.base_url, token) as load:
                time.sleep(1.5)
                project.podman.run("kill", "--signal", "HUP", project.container("server"))
                deadline = time.monotonic() + 120
                while (current := _gunicorn_workers(project)) & before or len(current) != WORKERS:
                    assert time.monotonic() < deadline, f"no reload:\n{project.logs('server')[-3000:]}"
                    time.sleep(0.3)
                time.sleep(1.5)
            # On failure, the server's log around the reload (workers booting, shutting down, timeouts).
            assert load.failures == [], f"{load.failures}\n{project.logs('server')[-6000:]}"
            assert load.ok > 50, "the load ran across the reload"
            assert "Handling signal: hup" in project.logs("server")
            notes.append(f"HUP: {load.ok} requests, {len(load.failures)} failed")

        data = project.snapshot()
        assert data["table sites"].startswith("1 ") and data["table users"].startswith("2 ")
        with timings.step("backup (profile tools)"):
            project.tool()
            dumps = sorted(p.name for p in project.volume_dir("backups").glob("balsam-*.dump"))
            assert len(dumps) == 1 and (project.volume_dir("backups") / dumps[0]).stat().st_size > 0

        with timings.step("down, then up again (staged)"):
            project.down()
            assert project.containers() == []
            project.up()
        assert project.snapshot() == data, "down/up kept the data"
        _login(http, "alice", "alice-pw")

        with timings.step("restore the dump into a fresh pgdata volume, up"):
            project.down()
            project.podman.run("volume", "rm", f"{project.name}_pgdata")
            project.up_db_and_redis()
            assert project.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == ["0"]
            project.tool("balsam", "server", "restore", f"/backups/{dumps[0]}", "--yes")
            project.migrate()
            project.up_server()
        assert project.snapshot() == data, "the restored database holds the same data"
        _login(http, "bob", "bob-pw")


def _report(timings: Timings, notes: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Print the step timings (passed or not) to the terminal, and keep them with the artifacts."""
    if not timings.steps:
        return
    with capsys.disabled():
        print("\n== compose test step timings\n" + timings.table() + "\n" + "\n".join(notes))
    if os.environ.get(ARTIFACTS):
        path = artifact_path("compose-timings.json", Path(tempfile.gettempdir()))
        path.write_text(json.dumps({"steps": timings.steps, "notes": notes}, indent=1) + "\n")
