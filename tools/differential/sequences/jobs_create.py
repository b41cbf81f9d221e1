"""Job bulk create (spec §5.3) and job reads with every JobQuery filter (§5.2).

Captures the storyline jobs (tag grp:one) used by workflow.py: j_plain, j_in (one `in` transfer), j_out (one
`out` transfer), j_inout, j_mpi (2 nodes), j_fail, j_held; their children j_child (parent j_plain) and
j_child2 (parents j_plain, j_mpi), tagged grp:kids; j_h1, j_h2 (grp:hetero) for the heterogeneous-PATCH
cases; j_coerce* (grp:coerce) from pydantic-1-style numbers; j_b (bob's).
"""

from __future__ import annotations

from typing import Any

from tools.differential.sequences.common import HUGE, MISSING, T0, TOO_BIG_INT, delete, get, post
from tools.differential.steps import Step


def job(workdir: str, app: str = "app_a", **extra: Any) -> dict[str, Any]:
    return {"app_id": f"{{{app}}}", "workdir": workdir, **extra}


IN = {"inp": {"location_alias": "laptop", "path": "/data/input.dat"}}
OUT = {"outp": {"location_alias": "hpc", "path": "/data/results"}}
ONE = {"grp": "one"}

STORYLINE = [
    job("story/plain", tags={**ONE, "kind": "plain"}, parameters={"name": "world"}, site_name="site-a"),
    job("story/in", tags={**ONE, "kind": "in"}, transfers=IN, parameters={"name": "in"}),
    job("story/out", tags={**ONE, "kind": "out"}, transfers=OUT, data={"attempt": 1}),
    job("story/inout", tags={**ONE, "kind": "inout"}, transfers={**IN, **OUT}),
    job(
        "story/mpi",
        tags={**ONE, "kind": "mpi"},
        num_nodes=2,
        ranks_per_node=4,
        wall_time_min=30,
        threads_per_rank=2,
        threads_per_core=1,
        gpus_per_rank=0.5,
        launch_params={"cpu_bind": "depth"},
    ),
    job("story/fail", tags={**ONE, "kind": "fail"}, serialized_parameters="gASV"),
    job("story/held", tags={**ONE, "kind": "held"}, node_packing_count=4),
]
STORY_NAMES = ["j_plain", "j_in", "j_out", "j_inout", "j_mpi", "j_fail", "j_held"]


def _coerce(variant: str, **fields: Any) -> Step:
    return post(
        f"jobs.create.coerce_{variant}",
        "/jobs/",
        [job(f"coerce/{variant}", **{"tags": {"grp": "coerce"}, **fields})],
        capture={f"j_coerce_{variant}": "0.id"},
        note="spec §14 / issue 9 item 5: integers read as pydantic 1 reads them",
    )


STEPS: list[Step] = [
    post(
        "jobs.create.bulk",
        "/jobs/",
        STORYLINE,
        capture={"story_ids": "*.id", **{name: f"{i}.id" for i, name in enumerate(STORY_NAMES)}},
    ),
    post(
        "jobs.create.with_parents",
        "/jobs/",
        [
            job("kids/one", tags={"grp": "kids"}, parent_ids=["{j_plain}"]),
            job("kids/two", tags={"grp": "kids"}, parent_ids=["{j_plain}", "{j_mpi}"]),
        ],
        capture={"j_child": "0.id", "j_child2": "1.id"},
    ),
    post(
        "jobs.create.bulk",
        "/jobs/",
        [job("hetero/1", tags={"grp": "hetero"}), job("hetero/2", tags={"grp": "hetero"})],
        capture={"j_h1": "0.id", "j_h2": "1.id"},
    ),
    post(
        "jobs.create.single",
        "/jobs/",
        [job("bob/1", app="app_b", tags={"grp": "bob"}, transfers=IN)],
        user="bob",
        capture={"j_b": "0.id"},
    ),
    _coerce("float_num_nodes", num_nodes=2.7),
    _coerce("string_wall_time", wall_time_min="15"),
    _coerce("float_ranks", ranks_per_node=3.0, threads_per_rank="2"),
    _coerce("bool_num_nodes", num_nodes=True),
    _coerce("string_return_code", return_code="-3", node_packing_count="2"),
    _coerce("string_gpus", gpus_per_rank="0.5"),
    _coerce("numeric_tag", tags={"grp": "coerce", "n": 1, "f": 1.5, "b": True}),
    post(
        "jobs.create.slot_with_defaults",
        "/jobs/",
        [job("x/slotdefaults", app="app_slot_defaults", tags={"grp": "slots"}, transfers=IN)],
        note="after apps.put.slot_defaults upstream's slot lacks `recursive`: its bulk create fails (KeyError)",
    ),
    post("jobs.create.string_float_num_nodes", "/jobs/", [job("bad/strfloat", num_nodes="2.5")]),
    post("jobs.create.empty_list", "/jobs/", [], note="spec §12.6: upstream answers 500"),
    post("jobs.create.over_limit", "/jobs/", [job(f"many/{i}") for i in range(5001)]),
    post("jobs.create.foreign_app", "/jobs/", [job("x/foreign", app="app_b")]),
    post("jobs.create.missing_app", "/jobs/", [{"app_id": MISSING, "workdir": "x/missing"}]),
    post("jobs.create.foreign_parent", "/jobs/", [job("x/fparent", parent_ids=["{j_b}"])]),
    post("jobs.create.missing_parent", "/jobs/", [job("x/mparent", parent_ids=[MISSING])]),
    post("jobs.create.duplicate_workdirs", "/jobs/", [job("dup/w"), job("dup/w")]),
    post("jobs.create.unknown_slot", "/jobs/", [job("x/slot", transfers={"nope": IN["inp"]})]),
    post(
        "jobs.create.unknown_alias",
        "/jobs/",
        [job("x/alias", transfers={"inp": {"location_alias": "moon", "path": "/d"}})],
    ),
    post(
        "jobs.create.relative_transfer_path",
        "/jobs/",
        [job("x/relpath", transfers={"inp": {"location_alias": "laptop", "path": "relative/in.dat"}})],
    ),
    post("jobs.create.absolute_workdir", "/jobs/", [job("/abs/workdir")]),
    post("jobs.create.missing_workdir", "/jobs/", [{"app_id": "{app_a}"}]),
    post("jobs.create.params_too_long", "/jobs/", [job("x/long", serialized_parameters="p" * 512001)]),
    post("jobs.create.num_nodes_too_big", "/jobs/", [job("x/big", num_nodes=TOO_BIG_INT)]),
    post("jobs.create.return_code_too_big", "/jobs/", [job("x/bigrc", return_code=TOO_BIG_INT)]),
    post(
        "jobs.create.zero_node_packing",
        "/jobs/",
        [job("x/zeropack", tags={"grp": "zero"}, node_packing_count=0)],
        capture={"j_zero_pack": "0.id"},
        note="spec §12.8: upstream's MPI acquires at the site then divide by zero (hence the delete below)",
    ),
    delete("jobs.delete", "/jobs/{j_zero_pack}", note="before it can break upstream's MPI acquires"),
    post("jobs.create.nested_tag", "/jobs/", [job("x/nested", tags={"a": {"b": "c"}})]),
    post("jobs.create.null_tags", "/jobs/", [job("x/nulltags", tags=None)]),
    post("jobs.create.nul_in_workdir", "/jobs/", [job("x/nul\u0000")]),
    post("jobs.create.nul_in_tag", "/jobs/", [job("x/nultag", tags={"k": "v\u0000"})]),
    post("jobs.create.object_not_list", "/jobs/", job("x/object")),
    post(
        "jobs.create.bad_state_field",
        "/jobs/",
        [job("x/state", state="RUNNING", tags={"grp": "ignored"})],
        capture={"j_ignored_state": "0.id"},
        note="`state` is not a JobCreate field: ignored",
    ),
    Step("jobs.create.malformed_json", "POST", "/jobs/", raw_body=b"[{"),
    # Reads: every filter of the client's Job.objects.filter() (spec §5.2, §11).
    get("jobs.list", "/jobs/"),
    get("jobs.list", "/jobs/", user="bob"),
    get("jobs.list.count_only", "/jobs/", ("limit", "0")),
    get("jobs.list.by_ids", "/jobs/", ("id", "{story_ids}")),
    get("jobs.list.by_ids_foreign", "/jobs/", ("id", "{j_plain}"), ("id", "{j_b}")),
    get("jobs.list.by_parent", "/jobs/", ("parent_id", "{j_mpi}")),
    get("jobs.list.by_app", "/jobs/", ("app_id", "{app_a}")),
    get("jobs.list.by_app_zero", "/jobs/", ("app_id", "0"), note="spec §12.10: upstream ignores 0"),
    get("jobs.list.by_site", "/jobs/", ("site_id", "{site_a}"), ("site_id", "{site_a2}")),
    get("jobs.list.by_state", "/jobs/", ("state", "READY"), ("state", "STAGED_IN"), ("tags", "grp:one")),
    get("jobs.list.by_state_ne", "/jobs/", ("state__ne", "READY"), ("tags", "grp:one")),
    get("jobs.list.by_tags", "/jobs/", ("tags", "grp:one"), ("tags", "kind:mpi")),
    get("jobs.list.by_tag_no_colon", "/jobs/", ("tags", "grp"), note="entries with no colon are dropped"),
    get("jobs.list.by_numeric_tag", "/jobs/", ("tags", "n:1"), ("tags", "b:True")),
    get("jobs.list.by_workdir", "/jobs/", ("workdir__contains", "story/")),
    get("jobs.list.by_workdir_like_chars", "/jobs/", ("workdir__contains", "%")),
    get("jobs.list.pending_cleanup", "/jobs/", ("pending_file_cleanup", "True"), ("tags", "grp:one")),
    get("jobs.list.pending_cleanup_false", "/jobs/", ("pending_file_cleanup", "false"), ("tags", "grp:one")),
    get("jobs.list.updated_after", "/jobs/", ("last_update_after", T0), ("tags", "grp:kids")),
    get("jobs.list.updated_before", "/jobs/", ("last_update_before", T0)),
    get("jobs.list.by_batch_job_zero", "/jobs/", ("batch_job_id", "0")),
    get("jobs.list.ordering", "/jobs/", ("ordering", "-workdir"), ("tags", "grp:one"), ("limit", "3"), ("offset", "1")),
    get("jobs.list.ordering_state", "/jobs/", ("ordering", "state"), ("tags", "grp:one")),
    get("jobs.list.ordering_last_update", "/jobs/", ("ordering", "-last_update"), ("tags", "grp:one")),
    get("jobs.list.bad_ordering", "/jobs/", ("ordering", "bogus")),
    get("jobs.list.bad_state", "/jobs/", ("state", "DANCING")),
    get("jobs.list.bad_state_ne", "/jobs/", ("state__ne", "DANCING")),
    get("jobs.list.bad_bool", "/jobs/", ("pending_file_cleanup", "maybe")),
    get("jobs.list.bad_app_id", "/jobs/", ("app_id", "x")),
    get("jobs.list.huge_id_filter", "/jobs/", ("id", HUGE)),
    get("jobs.get", "/jobs/{j_plain}"),
    get("jobs.get", "/jobs/{j_inout}"),
    get("jobs.get", "/jobs/{j_child2}"),
    get("jobs.get", "/jobs/{j_coerce_float_num_nodes}"),
    get("jobs.get", "/jobs/{j_coerce_numeric_tag}"),
    get("jobs.get.foreign", "/jobs/{j_b}"),
    get("jobs.get.missing", f"/jobs/{MISSING}"),
    get("jobs.get.huge_id", f"/jobs/{HUGE}"),
    get("jobs.get.trailing_slash", "/jobs/{j_plain}/"),
]
