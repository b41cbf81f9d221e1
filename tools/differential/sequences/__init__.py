"""The request sequences, in the order they run. Later sections use values captured by earlier ones (each
module's docstring lists what it captures); the order is that of a real deployment: users, sites, apps,
jobs, batch jobs, sessions, the site agent's traffic, transfers, error cases, events, the websocket, the
route-wide rules, then the deletes."""

from __future__ import annotations

from tools.differential.sequences import (
    apps,
    auth,
    batch_jobs,
    cleanup,
    events,
    generic,
    job_errors,
    jobs_create,
    sessions,
    sites,
    transfers,
    websocket,
    workflow,
)
from tools.differential.steps import Step

SECTIONS: list[tuple[str, list[Step]]] = [
    ("auth", auth.STEPS),
    ("sites", sites.STEPS),
    ("apps", apps.STEPS),
    ("jobs", jobs_create.STEPS),
    ("batch_jobs", batch_jobs.STEPS),
    ("sessions", sessions.STEPS),
    ("workflow", workflow.STEPS),
    ("transfers", transfers.STEPS),
    ("job_errors", job_errors.STEPS),
    ("events", events.STEPS),
    ("websocket", websocket.STEPS),
    ("generic", generic.STEPS),
    ("cleanup", cleanup.STEPS),
]


def all_steps() -> list[tuple[str, Step]]:
    return [(section, step) for section, steps in SECTIONS for step in steps]
