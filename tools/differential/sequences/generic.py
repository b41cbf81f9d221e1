"""Rules that hold for every route (spec §0, §2): authentication, pagination limits, slash redirects,
unknown routes and methods. Generated per route so that adding a route is one line."""

from __future__ import annotations

from tools.differential.sequences.common import HUGE, LIST_ROUTES, MISSING, delete, get, patch, post, put
from tools.differential.steps import ANON, BAD_TOKEN, Step

PROTECTED = [
    get("any", "/sites/"),
    get("any", "/sites/{site_a}"),
    post("any", "/sites/", {"name": "anon", "path": "/anon"}),
    put("any", "/sites/{site_a}", {}),
    delete("any", "/sites/{site_a}"),
    get("any", "/apps/"),
    post("any", "/apps/", {}),
    put("any", "/apps/{app_a}", {}),
    delete("any", "/apps/{app_a}"),
    get("any", "/jobs/"),
    get("any", "/jobs/{j_plain}"),
    post("any", "/jobs/", []),
    patch("any", "/jobs/", []),
    put("any", "/jobs/", {}),
    put("any", "/jobs/{j_plain}", {}),
    delete("any", "/jobs/{j_plain}"),
    delete("any", "/jobs/"),
    get("any", "/batch-jobs/"),
    post("any", "/batch-jobs/", {}),
    patch("any", "/batch-jobs/", []),
    put("any", "/batch-jobs/{bj1}", {}),
    delete("any", "/batch-jobs/{bj1}"),
    get("any", "/transfers/"),
    patch("any", "/transfers/", []),
    put("any", "/transfers/{t_in}", {}),
    get("any", "/sessions/"),
    post("any", "/sessions/", {}),
    post("any", "/sessions/{s_proc}", {}),
    put("any", "/sessions/{s_proc}"),
    delete("any", "/sessions/{s_proc}"),
    get("any", "/events/"),
]


def _auth_steps() -> list[Step]:
    steps = []
    for template in PROTECTED:
        for user, variant in ((ANON, "anonymous"), (BAD_TOKEN, "bad_token")):
            resource = template.path.strip("/").split("/")[0].replace("-", "_")
            kind = "item" if "{" in template.path else "collection"
            name = f"{resource}.{template.method.lower()}_{kind}.{variant}"
            steps.append(Step(name, template.method, template.path, body=template.body, user=user))
    return steps


def _paging_steps() -> list[Step]:
    steps = []
    cases: list[tuple[str, tuple[tuple[str, str], ...]]] = [
        ("limit_0", (("limit", "0"),)),
        ("limit_max", (("limit", "100000"),)),
        ("limit_over_max", (("limit", "100001"),)),
        ("limit_negative", (("limit", "-1"),)),  # spec §12.20: upstream has no lower bound
        ("offset_negative", (("offset", "-1"),)),
        ("offset_past_end", (("offset", "100000"),)),
        ("limit_not_int", (("limit", "ten"),)),
        ("limit_float", (("limit", "2.5"),)),
    ]
    for route in LIST_ROUTES:
        resource = route.strip("/").replace("-", "_")
        for variant, query in cases:
            steps.append(get(f"{resource}.list.{variant}", route, *query))
    return steps


# Spec §14.2: an id beyond int8 in a filter matches nothing (an empty list), as upstream answers.
HUGE_FILTERS = [
    ("/sites/", "id"),
    ("/apps/", "id"),
    ("/apps/", "site_id"),
    ("/jobs/", "parent_id"),
    ("/jobs/", "site_id"),
    ("/jobs/", "app_id"),
    ("/batch-jobs/", "id"),
    ("/batch-jobs/", "scheduler_id"),
    ("/transfers/", "id"),
    ("/transfers/", "job_id"),
    ("/events/", "job_id"),
    ("/sessions/", "id"),
]

STEPS: list[Step] = [
    *_auth_steps(),
    *_paging_steps(),
    *(
        get(f"{route.strip('/').replace('-', '_')}.list.huge_{param}_filter", route, (param, HUGE))
        for route, param in HUGE_FILTERS
    ),
    get("sites.list.no_trailing_slash", "/sites"),
    get("jobs.list.no_trailing_slash", "/jobs", ("tags", "grp:one")),
    post("jobs.create.no_trailing_slash", "/jobs", []),
    get("unknown.route", "/nope/"),
    delete("events.delete.not_allowed", "/events/"),
    post("transfers.post.not_allowed", "/transfers/", {}),
    patch("sites.patch.not_allowed", "/sites/", []),
    delete("transfers.delete.not_allowed", f"/transfers/{MISSING}"),
    get("openapi", "/openapi.json", user=ANON, compare_body=False, note="the schemas differ in wording only"),
]
