"""The declarative model of a request sequence, and placeholder substitution (pure, no I/O).

A sequence is a list of `Step`s. Each step is sent to both servers in turn, with the placeholders in its path,
query, body and form replaced by that server's own values: ids differ between the servers, so a step
`capture`s values from its reply under a name that later steps use as `{name}`.

Placeholder rules:
- a string that is exactly `{name}` becomes the value itself (an int stays an int, a list stays a list);
- `{name}` inside a longer string is replaced by the value's text;
- in a query, a pair whose value is a list placeholder becomes one pair per item (`id=1&id=2`), as the
  published client encodes list filters;
- a name with no value (its capturing step failed on that server) raises `MissingValue`, and the step is
  recorded as skipped on that server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Who sends the request: a user name known to the run ("alice", "bob"), ANON (no Authorization header) or
# BAD_TOKEN (a syntactically valid but unsigned bearer token).
ANON = "anon"
BAD_TOKEN = "bad-token"


class MissingValue(KeyError):
    """A placeholder names a value that was not captured on this server."""


@dataclass(frozen=True)
class Step:
    """One request, sent to both servers.

    name: the request kind, e.g. "jobs.patch.status_updater" (dotted: resource, method, variant). Several
      steps may share a kind when they send the same request shape.
    method: HTTP method, or "WS" for a websocket exchange (see websocket.py).
    path: path template; any query string belongs in `query`.
    query: (key, value) pairs; values are templates.
    body: a JSON template (None: no body). `form` instead sends application/x-www-form-urlencoded.
    raw_body: bytes sent as is with Content-Type application/json (for malformed JSON).
    user: whose token authorises it (ANON / BAD_TOKEN for none / a bad one).
    capture: name -> selector into the JSON reply (see `select`), or `location:PARAM` for a query parameter of
      a redirect's Location header; stored per server.
    deliberate: why a status-class difference here is intended (spec reference); the report still lists it.
    compare_body: False to compare the status only (a reply whose content is not part of the contract).
    note: what the step exercises, shown in the report.
    """

    name: str
    method: str
    path: str
    query: tuple[tuple[str, Any], ...] = ()
    body: Any = None
    form: Mapping[str, Any] | None = None
    raw_body: bytes | None = None
    user: str = "alice"
    capture: Mapping[str, str] = field(default_factory=dict)
    deliberate: str | None = None
    compare_body: bool = True
    note: str = ""
    ws_first_frame: str | None = None  # WS only: the first text frame (usually "{token_<user>}")
    ws_trigger: Step | None = None  # WS only: an HTTP step sent while connected, expected to publish


def substitute(template: Any, values: Mapping[str, Any]) -> Any:
    """`template` with every `{name}` replaced from `values` (rules in the module docstring)."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template)
        if whole:
            return _lookup(values, whole.group(1))
        return PLACEHOLDER.sub(lambda m: _text(_lookup(values, m.group(1))), template)
    if isinstance(template, dict):
        return {substitute(key, values): substitute(value, values) for key, value in template.items()}
    if isinstance(template, list | tuple):
        return [substitute(item, values) for item in template]
    return template


def substitute_query(pairs: tuple[tuple[str, Any], ...], values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Query pairs with placeholders replaced; a list value repeats its key."""
    out: list[tuple[str, str]] = []
    for key, template in pairs:
        value = substitute(template, values)
        items = value if isinstance(value, list) else [value]
        out.extend((key, _text(item)) for item in items)
    return out


def select(data: Any, selector: str) -> Any:
    """Pick a value out of a JSON reply.

    `a.b.0` walks dict keys and list indices; `*` maps the rest of the selector over a list
    (`*.id` -> the ids of every item); the empty selector is the whole reply. Raises LookupError when the
    reply has no such value.
    """
    if selector == "":
        return data
    head, _, rest = selector.partition(".")
    if head == "*":
        if not isinstance(data, list):
            raise LookupError(f"'*' applied to {type(data).__name__}")
        return [select(item, rest) for item in data]
    if isinstance(data, list):
        try:
            return select(data[int(head)], rest)
        except (ValueError, IndexError):
            raise LookupError(f"no index {head!r} in a list of {len(data)}") from None
    if isinstance(data, dict):
        if head not in data:
            raise LookupError(f"no key {head!r}")
        return select(data[head], rest)
    raise LookupError(f"cannot select {head!r} from {type(data).__name__}")


def _lookup(values: Mapping[str, Any], name: str) -> Any:
    if name not in values:
        raise MissingValue(name)
    return values[name]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
