"""How the dashboard groups the job states (spec §5.1) for its counters and colours."""

from __future__ import annotations

from balsam.server.schemas.jobs import JobState

FAILURE_STATES = (JobState.RUN_ERROR.value, JobState.RUN_TIMEOUT.value, JobState.FAILED.value)
FINISHED_STATE = JobState.JOB_FINISHED.value

# The headline counters of a site card, in display order: name -> the states they add up.
GROUPS: dict[str, tuple[str, ...]] = {
    "waiting": (
        JobState.CREATED.value,
        JobState.AWAITING_PARENTS.value,
        JobState.READY.value,
        JobState.STAGED_IN.value,
        JobState.PREPROCESSED.value,
        JobState.RESTART_READY.value,
    ),
    "running": (JobState.RUNNING.value,),
    "finishing": (JobState.RUN_DONE.value, JobState.POSTPROCESSED.value, JobState.STAGED_OUT.value),
    "finished": (FINISHED_STATE,),
    "failed": FAILURE_STATES,
}
GROUP_LABELS = {
    "waiting": "Waiting",
    "running": "Running",
    "finishing": "Finishing",
    "finished": "Finished",
    "failed": "Failed",
}
GROUP_OF = {state: group for group, states in GROUPS.items() for state in states}
ALL_STATES = tuple(state.value for state in JobState)  # the API's order, which follows a job's life
