"""Comparing two replies (pure, no I/O): status classes, the classification of a difference, body shapes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Synthetic status for a request that got no HTTP answer at all (connection refused or reset, timeout).
NO_ANSWER = 0

INTENDED = "a"  # intended per spec §14/§12: upstream fails (5xx) or answers a wrong 2xx the client never relies on
OUR_BUG = "b"  # we fail where upstream succeeds, or we answer 5xx: fix on our side
OTHER = "c"  # anything else (e.g. we accept what upstream rejects); needs a reason

_DATETIME = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(?P<tz>Z|[+-]\d\d:?\d\d)?$")

# Keys whose values (not only types) are compared: they show the behaviour, unlike ids and timestamps.
VALUE_KEYS = frozenset({"count", "state", "from_state", "to_state", "direction", "job_mode", "token_type"})


def status_class(status: int) -> str:
    if status == NO_ANSWER:
        return "no answer"
    return f"{status // 100}xx"


@dataclass(frozen=True)
class Verdict:
    category: str  # INTENDED, OUR_BUG or OTHER
    reason: str


def classify(upstream: int, ours: int, deliberate: str | None = None) -> Verdict | None:
    """None when both statuses are in the same class (and ours is not a 5xx); otherwise what it means.

    `deliberate` is the step's spec reference for an intended difference. It can excuse a 4xx of ours
    where upstream answers 2xx (a wrong 2xx per spec §14), but never a 5xx or no answer of ours: those are
    bugs even when upstream fails the same way.
    """
    up, we = status_class(upstream), status_class(ours)
    if we in {"5xx", "no answer"}:
        return Verdict(OUR_BUG, f"we answer {we} where upstream answers {up}")
    if up == we:
        return None
    if up in {"5xx", "no answer"}:
        outcome = "we succeed" if we == "2xx" else f"we give a clear {we}"
        return Verdict(INTENDED, deliberate or f"upstream fails ({up}) where {outcome} (spec §12, §14.2)")
    if up == "2xx" and we == "4xx":
        if deliberate:
            return Verdict(INTENDED, f"upstream's 2xx is wrong here: {deliberate}")
        return Verdict(OUR_BUG, "we reject (4xx) what upstream accepts (2xx): the client retries it for ~34 min")
    if up in {"2xx", "3xx"} and we in {"3xx", "4xx"}:
        return Verdict(OUR_BUG, f"we answer {we} where upstream answers {up}")
    return Verdict(OTHER, deliberate or f"we answer {we} where upstream answers {up}")


def shape(value: Any, key: str | None = None) -> Any:
    """A JSON value reduced to its structure: types, datetime forms (naive / with offset), list lengths, and
    the values of VALUE_KEYS and of a bare scalar reply. Ids, names and timestamps drop out."""
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(item, key) for item in value]
    if key in VALUE_KEYS:
        return f"{_type(value)}={value!r}"
    return _type(value)


def reply_shape(status: int, body: Any) -> Any:
    """The shape compared for a reply: full for 2xx; for errors only the top-level keys (error texts and
    pydantic's validation detail legitimately differ); nothing for 204 (upstream sends a stray `null`)."""
    if status == 204:
        return "no content"
    if 200 <= status < 300:
        return shape(body) if not isinstance(body, int | bool) else f"{_type(body)}={body!r}"
    if isinstance(body, dict):
        return "keys(" + ", ".join(sorted(body)) + ")"
    return _type(body)


def shape_diff(upstream: Any, ours: Any, path: str = "$") -> list[str]:
    """Human-readable differences between two shapes, one line per differing path."""
    if isinstance(upstream, dict) and isinstance(ours, dict):
        lines: list[str] = []
        for key in sorted(set(upstream) | set(ours), key=str):
            sub = f"{path}.{key}"
            if key not in ours:
                lines.append(f"{sub}: only upstream has it ({_brief(upstream[key])})")
            elif key not in upstream:
                lines.append(f"{sub}: only ours has it ({_brief(ours[key])})")
            else:
                lines.extend(shape_diff(upstream[key], ours[key], sub))
        return lines
    if isinstance(upstream, list) and isinstance(ours, list):
        if len(upstream) != len(ours):
            return [f"{path}: {len(upstream)} items upstream, {len(ours)} ours"]
        lines = []
        for index, (a, b) in enumerate(zip(upstream, ours, strict=True)):
            lines.extend(shape_diff(a, b, f"{path}[{index}]"))
        return _collapse(lines)
    if upstream != ours:
        return [f"{path}: upstream {_brief(upstream)}, ours {_brief(ours)}"]
    return []


def _collapse(lines: list[str]) -> list[str]:
    """The same difference in many list items is reported once, as `[*]`, with a count."""
    generic: dict[str, int] = {}
    for line in lines:
        key = re.sub(r"\[\d+\]", "[*]", line)
        generic[key] = generic.get(key, 0) + 1
    return [line if n == 1 else f"{line} (x{n})" for line, n in generic.items()]


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"  # 0 versus 0.0: the client's pydantic models accept either
    if isinstance(value, str):
        match = _DATETIME.match(value)
        if match:
            return "datetime+offset" if match.group("tz") else "datetime(naive)"
        return "str"
    return type(value).__name__
