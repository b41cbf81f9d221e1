"""Apps (spec §4), including the client's app sync (look up by site and name, then PUT or POST; §11).

Captures: app_a (alice's main app at site_a: parameters and one `in` and one `out` transfer slot),
app_a2 (alice, deleted here), app_coerce (alice, from a coerced parameter default), app_b (bob's).
"""

from __future__ import annotations

from typing import Any

from tools.differential.sequences.common import HUGE, MISSING, delete, get, post, put
from tools.differential.steps import Step


def app(site: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "site_id": f"{{{site}}}",
        "name": name,
        "serialized_class": "gASVAAAAAAAAAAA=",
        "source_code": "class Hello(ApplicationDefinition):\n    command_template = 'echo hello'\n",
        **extra,
    }


APP_A = app(
    "site_a",
    "Hello",
    description="Says hello",
    parameters={
        "name": {"required": True, "default": None, "help": "who"},
        "greeting": {"required": False, "default": "hi", "help": ""},
    },
    transfers={
        "inp": {"required": False, "direction": "in", "local_path": "in.dat", "description": "", "recursive": False},
        "outp": {
            "required": False,
            "direction": "out",
            "local_path": "out.dat",
            "description": "results",
            "recursive": True,
        },
    },
)

STEPS: list[Step] = [
    # App sync, as ApplicationDefinition.sync() does it: look up, then create.
    get("apps.list.sync_lookup", "/apps/", ("site_id", "{site_a}"), ("name", "Hello")),
    post("apps.create", "/apps/", APP_A, capture={"app_a": "id"}),
    post("apps.create.minimal", "/apps/", app("site_a", "Second"), capture={"app_a2": "id"}),
    post("apps.create", "/apps/", {**APP_A, "site_id": "{site_b}"}, user="bob", capture={"app_b": "id"}),
    post(
        "apps.create.default_coerced",
        "/apps/",
        app("site_a", "Coerced", parameters={"n": {"required": False, "default": 5}}),
        capture={"app_coerce": "id"},
        note="a non-string default becomes a string (spec §4)",
    ),
    post(
        "apps.create.slot_defaults",
        "/apps/",
        app("site_a", "SlotDefaults", transfers={"inp": {"required": False, "direction": "in", "local_path": "i"}}),
        capture={"app_slot_defaults": "id"},
        note="a transfer slot relying on the defaults of description and recursive",
    ),
    post("apps.create.duplicate", "/apps/", app("site_a", "Hello")),
    post("apps.create.foreign_site", "/apps/", app("site_b", "Intruder")),
    post("apps.create.missing_site", "/apps/", {**app("site_a", "Ghost"), "site_id": MISSING}),
    post("apps.create.bad_name", "/apps/", app("site_a", "not an identifier")),
    post(
        "apps.create.required_with_default",
        "/apps/",
        app("site_a", "ReqDefault", parameters={"x": {"required": True, "default": "1"}}),
    ),
    post(
        "apps.create.optional_without_default",
        "/apps/",
        app("site_a", "OptNoDefault", parameters={"x": {"required": False}}),
        note="spec §14.1: upstream answers 500",
    ),
    post(
        "apps.create.bad_direction",
        "/apps/",
        app("site_a", "BadDir", transfers={"t": {"required": False, "direction": "sideways", "local_path": "x"}}),
    ),
    post(
        "apps.create.absolute_local_path",
        "/apps/",
        app("site_a", "AbsPath", transfers={"t": {"required": False, "direction": "in", "local_path": "/etc/x"}}),
    ),
    post("apps.create.class_too_long", "/apps/", app("site_a", "Huge", serialized_class="x" * 262145)),
    post("apps.create.missing_fields", "/apps/", {"site_id": "{site_a}", "name": "Partial"}),
    post("apps.create.nul_in_source", "/apps/", app("site_a", "Nul", source_code="a\u0000b")),
    post("apps.create.site_id_string", "/apps/", {**app("site_a", "StrSite"), "site_id": "{site_a}x"}),
    # App sync again: found, so the client PUTs the full definition.
    get("apps.list.sync_lookup", "/apps/", ("site_id", "{site_a}"), ("name", "Hello")),
    put("apps.put.sync_full", "/apps/{app_a}", APP_A),
    put("apps.put.partial", "/apps/{app_a}", {"description": "Says hello, politely"}),
    put(
        "apps.put.slot_defaults",
        "/apps/{app_slot_defaults}",
        {"transfers": {"inp": {"required": False, "direction": "in", "local_path": "i"}}},
        note="upstream stores the PUT slot without its defaults (exclude_unset); see jobs.create.slot_with_defaults",
    ),
    put("apps.put.ignored_fields", "/apps/{app_a}", {"id": "{app_b}", "description": "Says hello"}),
    put(
        "apps.put.optional_without_default",
        "/apps/{app_a2}",
        {"parameters": {"x": {"required": False}}},
        deliberate="spec §14.1: an optional parameter needs a default; upstream's 200 stores an app it cannot run",
    ),
    put("apps.put.null_parameters", "/apps/{app_a2}", {"parameters": None}),
    put("apps.put.null_name", "/apps/{app_a2}", {"name": None}),
    put("apps.put.move_to_foreign_site", "/apps/{app_a2}", {"site_id": "{site_b}"}),
    put("apps.put.duplicate_name", "/apps/{app_a2}", {"name": "Hello"}),
    put("apps.put.bad_name", "/apps/{app_a2}", {"name": "1abc"}),
    put("apps.put.foreign", "/apps/{app_b}", {"description": "mine now"}),
    put("apps.put.missing", f"/apps/{MISSING}", {"description": "ghost"}),
    # Reads and the client's filters.
    get("apps.list", "/apps/"),
    get("apps.list", "/apps/", user="bob"),
    get("apps.list.by_site", "/apps/", ("site_id", "{site_a}"), ("site_id", "{site_a2}")),
    get("apps.list.by_ids", "/apps/", ("id", "{app_a}"), ("id", "{app_b}")),
    get("apps.list.by_site_name", "/apps/", ("site_name", "site-a")),
    get("apps.list.by_site_path", "/apps/", ("site_path", "projects/a")),
    get("apps.list.by_name", "/apps/", ("name", "Hello")),
    get("apps.get", "/apps/{app_a}"),
    get("apps.get.foreign", "/apps/{app_b}"),
    get("apps.get.missing", f"/apps/{MISSING}"),
    get("apps.get.huge_id", f"/apps/{HUGE}"),
    delete("apps.delete", "/apps/{app_a2}"),
    delete("apps.delete.again", "/apps/{app_a2}"),
    delete("apps.delete.foreign", "/apps/{app_b}"),
    get("apps.list.after_delete", "/apps/"),
]
