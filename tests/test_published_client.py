"""The published Balsam client (PyPI `balsam==0.7.0a24`, spec §11) against a live gunicorn of ours.

The client runs in its own cached virtualenv (tests/client_venv.py), with a temporary HOME and
`BALSAM_CLIENT_PATH`, so the real `~/.balsam` is never touched.

Run alone with `./scripts/test -m published_client`.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.client_venv import clean_env, ensure_client_venv
from tests.conftest import TEST_SECRET
from tests.serving import Gunicorn, gunicorn

# needs_network: the first run pip-installs the client from PyPI (deselected in the Nix build sandbox).
pytestmark = [pytest.mark.published_client, pytest.mark.serving, pytest.mark.needs_network]

USERNAME = "client-user"
PASSWORD = "client-pass-123"


@pytest.fixture(scope="module")
def client_venv() -> Path:
    return ensure_client_venv()


@pytest.fixture
def server(database_url: str, redis_params: dict[str, str], tmp_path: Path) -> Iterator[Gunicorn]:
    env = {
        "BALSAM_DATABASE_URL": database_url,
        "BALSAM_AUTH_SECRET_KEY": TEST_SECRET,
        "BALSAM_REDIS_PARAMS": json.dumps(redis_params),
    }
    with gunicorn(env, tmp_path, workers=2) as srv:
        yield srv


# Runs inside the client virtualenv. Each step asserts its outcome; the collected facts go to stdout as JSON
# on the last line, and the test checks them again.
DRIVER = r'''
import json, os, pathlib, sys, time
from datetime import datetime, timedelta, timezone

from balsam.config import ClientSettings

# Fail fast instead of the client's exponential back-off (up to 11 retries over ~34 min) on any 4xx/5xx.
settings = ClientSettings.load_from_file()
assert settings.token, "balsam login stored no token"
settings.retry_count = 0
settings.save_to_file()

from balsam.api import ApplicationDefinition, BatchJob, EventLog, Job, Session, Site
from balsam._api.models import App

facts = {}

# --- site
site = Site.objects.create(name="client-site", path=pathlib.Path("/tmp/client-site"))
assert site.id is not None
assert Site.objects.get(name="client-site").id == site.id
site.allowed_projects = ["proj"]
site.save()
site.refresh_from_db()
assert site.allowed_projects == ["proj"]
facts["site_id"] = site.id

# --- app registration (ApplicationDefinition sync: look up by site_id+name, then create or update)
class Hello(ApplicationDefinition):
    """Says hello."""
    site = "client-site"
    command_template = "echo hello {{ who }}"

Hello.sync()
app = App.objects.get(site_id=site.id, name="Hello")
assert app.id == Hello.__app_id__ and app.description == "Says hello."
assert "who" in app.parameters
Hello.description = "changed"
Hello.sync()  # second sync updates the same app
assert App.objects.filter(site_id=site.id).count() == 1
facts["app_id"] = app.id

# --- bulk job creation with parents
parents = Job.objects.bulk_create(
    [Hello.submit(workdir=f"p/{i}", who=str(i), tags={"grp": "even" if i % 2 == 0 else "odd"}, save=False) for i in range(6)]
)
assert [j.id for j in parents] and all(j.state == "STAGED_IN" for j in parents)
children = Job.objects.bulk_create(
    [Hello.submit(workdir=f"c/{i}", who="c", parent_ids={parents[0].id, parents[1].id}, save=False) for i in range(3)]
)
assert all(c.state == "AWAITING_PARENTS" for c in children)
single = Hello.submit(workdir="single", who="x", wall_time_min=5)  # Job.save() of a new job
facts["created"] = len(parents) + len(children) + 1

# --- list and filter
assert Job.objects.filter(site_id=site.id).count() == 10
assert Job.objects.filter(tags={"grp": "even"}).count() == 3
assert Job.objects.filter(state="AWAITING_PARENTS").count() == 3
assert Job.objects.filter(state__ne="AWAITING_PARENTS", app_id=app.id).count() == 7
assert Job.objects.filter(workdir__contains="c/").count() == 3
assert {j.id for j in Job.objects.filter(parent_id=[parents[0].id])} == {c.id for c in children}
assert Job.objects.filter(id=[parents[0].id]).first().id == parents[0].id
assert Job.objects.get(id=single.id).wall_time_min == 5

# --- state updates: query update (PUT jobs/?id=..), save (PUT jobs/{id}), bulk_update (PATCH jobs/)
n = Job.objects.filter(tags={"grp": "even"}).update(state="PREPROCESSED")
odd = list(Job.objects.filter(tags={"grp": "odd"}))
odd[0].state = "PREPROCESSED"
odd[0].save()
for j in odd[1:]:
    j.state = "PREPROCESSED"
    j.state_data = {"note": "bulk"}
Job.objects.bulk_update(odd[1:])
assert Job.objects.filter(state="PREPROCESSED").count() == 6
facts["preprocessed"] = Job.objects.filter(state="PREPROCESSED").count()

# --- batch job create and update
bj = BatchJob.objects.create(
    site_id=site.id, project="proj", queue="debug", num_nodes=2, wall_time_min=30, job_mode="mpi", filter_tags={}
)
assert bj.state == "pending_submission" and bj.scheduler_id is None
bj.state = "queued"
bj.scheduler_id = 4242
bj.save()
assert BatchJob.objects.get(scheduler_id=4242).id == bj.id
bj.state = "running"
BatchJob.objects.bulk_update([bj])
assert BatchJob.objects.get(id=bj.id).state == "running"
facts["batch_job_id"] = bj.id

# --- a session that acquires, ticks and is deleted
sess = Session.objects.create(site_id=site.id, batch_job_id=bj.id)
assert Session.objects.filter(id=[sess.id]).count() == 1
acquired = sess.acquire_jobs(max_num_jobs=4, max_aggregate_nodes=10.0)
assert len(acquired) == 4, acquired
assert all(j.batch_job_id == bj.id for j in acquired)
more = sess.acquire_jobs(max_num_jobs=100, filter_tags={"grp": "odd"})
assert not {j.id for j in more} & {j.id for j in acquired}
running = acquired[0]
running.state = "RUNNING"
running.state_data = {"num_nodes": 1.0}
running.save()
sess.tick()
sess.delete()
assert Session.objects.filter(id=[sess.id]).count() == 0
running.refresh_from_db()
assert running.state == "RUN_TIMEOUT", running.state
facts["acquired"] = len(acquired) + len(more)

# --- the parents finish: children are released
for p in (parents[0], parents[1]):
    p.refresh_from_db()
    path = ["RUNNING", "RUN_DONE", "POSTPROCESSED"]
    if p.state == "RUN_TIMEOUT":  # the one the deleted session timed out is retried first
        path.insert(0, "RESTART_READY")
    for state in path:
        p.state = state
        p.save()
    p.refresh_from_db()
    assert p.state == "JOB_FINISHED", p.state
assert {j.state for j in Job.objects.filter(id=[c.id for c in children])} == {"STAGED_IN"}

# --- events
timeouts = list(EventLog.objects.filter(job_id=running.id, to_state="RUN_TIMEOUT"))
assert len(timeouts) == 1 and timeouts[0].data["message"] == "Session expired: job was stuck in RUNNING state"
history = [e.to_state for e in EventLog.objects.filter(job_id=parents[0].id).order_by("timestamp")]
assert history[0] == "STAGED_IN" and history[-1] == "JOB_FINISHED", history
facts["events"] = EventLog.objects.filter(job_id=[j.id for j in parents]).count()

# --- user flows that must not meet a 4xx: the client would retry one with back-off for ~34 minutes
# (spec §11, §14.10-14.13). Each call must come back within seconds with the right result.
def quick(label, call, limit=5.0):
    start = time.monotonic()
    result = call()
    elapsed = time.monotonic() - start
    assert elapsed < limit, f"{label} took {elapsed:.1f} s: a retried error?"
    facts.setdefault("seconds", {})[label] = round(elapsed, 2)
    return result

def recent(when):
    """An aware job last_update, close to now (comparing a naive one with an aware now raises TypeError)."""
    now = datetime.now(timezone.utc)
    return now - timedelta(minutes=10) < when <= now + timedelta(seconds=5)

flow = Job.objects.bulk_create(
    [Hello.submit(workdir=f"flow/{name}", who=name, tags={"flow": name.rstrip("0123456789")}, save=False)
     for name in ("failed0", "failed1", "pre0", "pre1", "skipped", "held")]
)
by_name = {j.workdir.name: j for j in flow}
for name in ("failed0", "failed1"):  # straight from STAGED_IN: any state may follow any other
    by_name[name].state = "FAILED"
quick("bulk_update to FAILED", lambda: Job.objects.bulk_update([by_name["failed0"], by_name["failed1"]]))
assert quick("update to PREPROCESSED", lambda: Job.objects.filter(tags={"flow": "pre"}).update(state="PREPROCESSED")) == 2
for tag, state in (("failed", "FAILED"), ("pre", "PREPROCESSED")):
    n = quick(f"update {state} -> RESTART_READY", lambda: Job.objects.filter(tags={"flow": tag}, state=state).update(state="RESTART_READY"))
    assert n == 2, (state, n)
    assert {j.state for j in Job.objects.filter(tags={"flow": tag})} == {"RESTART_READY"}
facts["restarted"] = Job.objects.filter(state="RESTART_READY", workdir__contains="flow/").count()

# Skip a job by marking it finished: its children are released.
skipped = by_name["skipped"]
kids = Job.objects.bulk_create([Hello.submit(workdir=f"flow/kid{i}", who="k", parent_ids={skipped.id}, save=False) for i in range(2)])
assert {k.state for k in kids} == {"AWAITING_PARENTS"}
skipped.state = "JOB_FINISHED"
quick("skip with job.state = JOB_FINISHED", skipped.save)
skipped.refresh_from_db()
assert skipped.state == "JOB_FINISHED" and recent(skipped.last_update)
assert {j.state for j in Job.objects.filter(id=[k.id for k in kids])} == {"STAGED_IN"}
assert [e.from_state for e in EventLog.objects.filter(job_id=skipped.id, to_state="JOB_FINISHED")] == ["STAGED_IN"]

# Delete a job a session holds: the server answers 204 and keeps the job (as upstream); the client, which
# cannot tell, forgets the id of its local copy.
held = by_name["held"]
held.state = "PREPROCESSED"
held.save()
holder = Session.objects.create(site_id=site.id)
(acquired_held,) = holder.acquire_jobs(max_num_jobs=5, filter_tags={"flow": "held"})
assert acquired_held.id == held.id and recent(acquired_held.last_update)  # from the acquire reply
quick("delete a session-held job", acquired_held.delete)
assert acquired_held.id is None
assert Job.objects.get(id=held.id).state == "PREPROCESSED"
other = Session.objects.create(site_id=site.id)
assert other.acquire_jobs(max_num_jobs=5, filter_tags={"flow": "held"}) == []  # still held by the first session
holder.delete()
assert [j.id for j in other.acquire_jobs(max_num_jobs=5, filter_tags={"flow": "held"})] == [held.id]
other.delete()
facts["held_kept"] = True

# last_update in list replies is aware, so user code can compare it with an aware now.
assert all(recent(j.last_update) for j in Job.objects.filter(workdir__contains="flow/"))
facts["flows"] = len(facts["seconds"])

# --- delete
Job.objects.filter(workdir__contains="single").delete()
assert Job.objects.filter(id=[single.id]).count() == 0

print(json.dumps(facts))
'''


def test_published_client_end_to_end(client_venv: Path, server: Gunicorn, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(HOME=str(home), BALSAM_CLIENT_PATH=str(home / ".balsam" / "client.yml"))
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        assert (
            http.post("/auth/password/register", json={"username": USERNAME, "password": PASSWORD}).status_code == 201
        )

    # `balsam login` with a password, answering its prompts on stdin.
    login = subprocess.run(
        [str(client_venv / "bin" / "balsam"), "login", "-u", server.base_url, "-f"],
        input=f"{USERNAME}\n{PASSWORD}\n",
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert login.returncode == 0, login.stdout + login.stderr
    assert "Logged In" in login.stdout
    stored = (home / ".balsam" / "client.yml").read_text()
    assert "token:" in stored and server.base_url in stored

    script = tmp_path / "drive_client.py"
    script.write_text(DRIVER)
    run = subprocess.run(
        [str(client_venv / "bin" / "python"), str(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"{run.stdout[-5000:]}\n{run.stderr[-5000:]}\n{server.log()[-3000:]}"
    facts = json.loads(run.stdout.strip().splitlines()[-1])
    assert facts["created"] == 10
    assert facts["preprocessed"] == 6
    assert facts["acquired"] == 5  # 4 in MPI mode (lowest ids), then the one odd job left
    assert facts["events"] >= 6
    assert facts["restarted"] == 4
    assert facts["held_kept"] is True
    assert facts["flows"] == 6, facts["seconds"]
    # The server saw the client's session come and go.
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        token = http.post("/auth/password/login", data={"username": USERNAME, "password": PASSWORD}).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        assert http.get("/sessions/", headers=auth).json()["count"] == 0
        assert http.get(f"/batch-jobs/{facts['batch_job_id']}", headers=auth).json()["scheduler_id"] == 4242
