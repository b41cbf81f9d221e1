"""The pure parts of the differential tool (tools/differential): placeholders, selectors, classification,
body shapes. The tool itself needs upstream running and is not part of CI."""

from __future__ import annotations

import pytest

from tools.differential.compare import INTENDED, NO_ANSWER, OTHER, OUR_BUG, classify, reply_shape, shape_diff
from tools.differential.runner import location_parameter
from tools.differential.sequences import all_steps
from tools.differential.steps import PLACEHOLDER, MissingValue, Step, select, substitute, substitute_query


def test_a_whole_string_placeholder_keeps_the_value_type() -> None:
    values = {"job": 7, "ids": [1, 2], "run": "ab12"}
    body = {"id": "{job}", "parent_ids": "{ids}", "workdir": "w/{run}/{job}", "n": 3, "none": None}
    assert substitute(body, values) == {"id": 7, "parent_ids": [1, 2], "workdir": "w/ab12/7", "n": 3, "none": None}
    assert substitute(["{job}", ("{run}",)], values) == [7, ["ab12"]]


def test_a_missing_value_raises_with_its_name() -> None:
    with pytest.raises(MissingValue) as caught:
        substitute({"id": "{site_a}"}, {})
    assert caught.value.args[0] == "site_a"


def test_a_list_value_repeats_the_query_key() -> None:
    pairs = (("id", "{ids}"), ("tags", "grp:{run}"), ("limit", "0"))
    assert substitute_query(pairs, {"ids": [3, 4], "run": "x"}) == [
        ("id", "3"),
        ("id", "4"),
        ("tags", "grp:x"),
        ("limit", "0"),
    ]


def test_text_without_identifier_braces_is_left_alone() -> None:
    assert substitute("echo { name } {}", {}) == "echo { name } {}"


def test_select_walks_keys_indices_and_maps_over_lists() -> None:
    reply = {"count": 2, "results": [{"id": 5}, {"id": 6}]}
    assert select(reply, "results.1.id") == 6
    assert select(reply, "results.*.id") == [5, 6]
    assert select([{"id": 9}], "0.id") == 9
    assert select(reply, "") is reply
    for bad in ("results.2.id", "nope", "count.x", "*.id"):
        with pytest.raises(LookupError):
            select(reply, bad)


@pytest.mark.parametrize(
    ("upstream", "ours", "deliberate", "expected"),
    [
        (200, 201, None, None),
        (404, 400, None, None),
        (500, 500, None, OUR_BUG),  # our 5xx is a bug even when upstream fails too
        (200, 500, None, OUR_BUG),
        (200, NO_ANSWER, None, OUR_BUG),
        (200, 422, None, OUR_BUG),
        (200, 422, "spec §14.1", INTENDED),
        (500, 422, None, INTENDED),
        (500, 201, None, INTENDED),
        (NO_ANSWER, 422, None, INTENDED),
        (307, 404, None, OUR_BUG),
        (422, 200, None, OTHER),
        (400, 200, "reason", OTHER),
    ],
)
def test_classification(upstream: int, ours: int, deliberate: str | None, expected: str | None) -> None:
    verdict = classify(upstream, ours, deliberate)
    assert (verdict.category if verdict else None) == expected
    if verdict and deliberate:
        assert deliberate in verdict.reason


def test_shapes_show_keys_types_datetime_forms_and_states_but_not_ids() -> None:
    upstream = {"id": 1, "state": "READY", "last_update": "2024-01-02T03:04:05.1+00:00", "tags": {"a": "b"}}
    ours = {"id": 2, "state": "READY", "last_update": "2024-01-02T03:04:05.1", "tags": {}, "extra": None}
    assert shape_diff(reply_shape(200, upstream), reply_shape(200, ours)) == [
        "$.extra: only ours has it ('null')",
        "$.last_update: upstream 'datetime+offset', ours 'datetime(naive)'",
        "$.tags.a: only upstream has it ('str')",
    ]
    assert shape_diff(reply_shape(200, {**upstream, "state": "RUNNING"}), reply_shape(200, upstream)) == [
        "$.state: upstream \"str='RUNNING'\", ours \"str='READY'\""
    ]


def test_reply_shapes_of_errors_lists_and_empty_replies() -> None:
    assert reply_shape(204, None) == reply_shape(204, "") == "no content"
    assert reply_shape(404, {"error": "Not found"}) == "keys(error)"
    assert reply_shape(200, 3) == "number=3"
    same_item = [{"state": "READY"}] * 3
    assert shape_diff(reply_shape(200, same_item), reply_shape(200, same_item[:2])) == ["$: 3 items upstream, 2 ours"]
    changed = [{"state": "RUNNING"}] * 3
    assert shape_diff(reply_shape(200, same_item), reply_shape(200, changed)) == [
        "$[*].state: upstream \"str='READY'\", ours \"str='RUNNING'\" (x3)"
    ]


def test_every_placeholder_in_the_sequences_is_captured_by_an_earlier_step() -> None:
    known = {"run", "client_uuid"}  # set by the runner for both servers
    for _section, step in all_steps():
        for template in (step.path, step.query, step.body, step.form, step.ws_first_frame, step.ws_trigger):
            for name in _placeholders(template):
                assert name in known, f"{step.name}: {{{name}}} is used before any step captures it"
        known |= set(step.capture)
        if step.ws_trigger is not None:
            known |= set(step.ws_trigger.capture)


def _placeholders(template: object) -> set[str]:
    if isinstance(template, str):
        return set(PLACEHOLDER.findall(template))
    if isinstance(template, dict):
        return set().union(*(_placeholders(k) | _placeholders(v) for k, v in template.items()))
    if isinstance(template, list | tuple):
        return set().union(*(_placeholders(item) for item in template))
    if isinstance(template, Step):  # a websocket step's trigger
        return _placeholders((template.path, template.query, template.body, template.form))
    return set()


def test_a_location_capture_reads_the_redirects_query() -> None:
    location = "https://provider.example/authorize?response_type=code&state=DEVICE-FLOW%20BCDF-GHJK%20x1"
    assert location_parameter(location, "state") == "DEVICE-FLOW BCDF-GHJK x1"
    with pytest.raises(LookupError):
        location_parameter(location, "code")
