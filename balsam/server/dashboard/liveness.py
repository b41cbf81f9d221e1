"""A site's liveness light, from how long ago it last refreshed (`sites.last_refresh`, spec §3).

Every site-agent update of the site (`PUT /sites/{id}`) is its heartbeat; the agent's scheduler service sends
one about every minute. `balsam site ls` counts a site as active when it refreshed within the last 2 minutes,
so that is the green threshold; amber allows for a few missed updates; red means the agent is most likely
not running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

ACTIVE_WITHIN = timedelta(minutes=2)
LATE_WITHIN = timedelta(minutes=10)


@dataclass(frozen=True)
class Liveness:
    level: str  # "active" | "late" | "stale": the CSS class (colour and shape of the light)
    label: str  # the text shown next to the light, so the page reads without colour
    age: timedelta


def site_liveness(last_refresh: datetime, now: datetime) -> Liveness:
    age = max(now - last_refresh, timedelta(0))
    if age <= ACTIVE_WITHIN:
        return Liveness("active", "Active", age)
    if age <= LATE_WITHIN:
        return Liveness("late", "Late", age)
    return Liveness("stale", "Stale", age)


def thresholds_text() -> str:
    """The thresholds as the page states them."""
    return (
        f"Active: refreshed within {_minutes(ACTIVE_WITHIN)}. "
        f"Late: {_minutes(ACTIVE_WITHIN)} to {_minutes(LATE_WITHIN)}. "
        f"Stale: more than {_minutes(LATE_WITHIN)} ago."
    )


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} min"
