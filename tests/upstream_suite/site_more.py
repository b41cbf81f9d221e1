"""Our additions to upstream's site tests, run by the same real site agent and launchers.

Copied next to upstream's `tests/site_integration/test_integration.py` at test time, it reuses that file's
launcher fixtures (one 1-node launcher per class, in MPI and then serial mode) and its polling helper.
- A two-level DAG of hello-world jobs must finish, each child only after all of its parents have finished.
- A Python job that raises must end FAILED with its exception, as upstream's test_py_jobs checks within a
  10 s window that a loaded machine can miss (see TIMING_BOUND_TEST in conftest_upstream.py); here without it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from balsam._api.app import ApplicationDefinition
from balsam._api.models import BatchJob, Job
from balsam.client import RESTClient
from balsam.config import SiteConfig

# Upstream's fixtures, reused: pytest looks a test module's fixtures up among its globals.
from .test_integration import client, launcher_job, live_launcher, poll_until_state  # noqa: F401


def _first_event_time(api: RESTClient, job: Job, to_state: str) -> datetime:
    events = [e for e in api.EventLog.objects.filter(job_id=job.id) if e.to_state == to_state]
    assert events, f"job {job.id} ({job.workdir}) never went to {to_state}"
    return min(e.timestamp for e in events)


@pytest.mark.usefixtures("live_launcher")
class TestOurSiteFlows:
    def test_children_run_after_their_parents(
        self,
        balsam_site_config: SiteConfig,
        client: RESTClient,  # noqa: F811 (the fixture imported above)
        launcher_job: BatchJob,  # noqa: F811
    ) -> None:
        hello = ApplicationDefinition.load_by_name("Hello")
        top = Path(f"dag-{launcher_job.id}")  # one tree per launcher (MPI, serial)

        def submit(name: str, parents: list[Job]) -> Job:
            return client.Job.objects.create(
                workdir=top / name, app_id=hello, parameters={"name": name}, parent_ids={p.id for p in parents}
            )

        parents = [submit("parent0", []), submit("parent1", [])]
        child = submit("child", parents)
        grandchild = submit("grandchild", [child])
        assert [j.state for j in parents] == ["STAGED_IN", "STAGED_IN"]
        assert (child.state, grandchild.state) == ("AWAITING_PARENTS", "AWAITING_PARENTS")

        jobs = [*parents, child, grandchild]
        poll_until_state(jobs, "JOB_FINISHED", timeout=100.0)
        assert {j.workdir.name: j.state for j in jobs} == {j.workdir.name: "JOB_FINISHED" for j in jobs}
        for job in jobs:
            out = job.resolve_workdir(balsam_site_config.data_path).joinpath("job.out").read_text()
            assert f"hello {job.workdir.name}" in out, out

        for kid, its_parents in ((child, parents), (grandchild, [child])):
            parents_done = max(_first_event_time(client, p, "JOB_FINISHED") for p in its_parents)
            assert _first_event_time(client, kid, "RUNNING") > parents_done

    def test_failing_python_job_ends_failed(
        self,
        client: RESTClient,  # noqa: F811 (the fixture imported above)
        launcher_job: BatchJob,  # noqa: F811
    ) -> None:
        adder = ApplicationDefinition.load_by_name("Adder")
        job = adder.submit(workdir=Path(f"fails-{launcher_job.id}"), x=3, y="hello")
        poll_until_state([job], "FAILED", timeout=100.0)
        assert job.state == "FAILED", job.state
        with pytest.raises(TypeError, match="unsupported operand type"):
            job.result_nowait()
