"""The comparison of each step's two exchanges, the text summary and the JSON report."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tools.differential.compare import INTENDED, OTHER, OUR_BUG, Verdict, classify, reply_shape, shape_diff
from tools.differential.runner import Exchange
from tools.differential.steps import Step

CATEGORY_TITLES = {
    OUR_BUG: "(b) bugs on our side: we fail where upstream succeeds, or we answer 5xx",
    INTENDED: "(a) intended per spec §14/§12: upstream fails or answers a wrong 2xx",
    OTHER: "(c) other differences",
}
EXCERPT = 240


@dataclass
class Result:
    section: str
    step: Step
    upstream: Exchange
    ours: Exchange
    verdict: Verdict | None = None
    shape_diffs: list[str] = field(default_factory=list)

    @property
    def compared(self) -> bool:
        return self.upstream.skipped is None and self.ours.skipped is None

    @property
    def status_code_differs(self) -> bool:
        return self.compared and self.upstream.status != self.ours.status


def compare(section: str, step: Step, upstream: Exchange, ours: Exchange) -> Result:
    result = Result(section, step, upstream, ours)
    if result.compared:
        result.verdict = classify(upstream.status, ours.status, step.deliberate)
        if result.verdict is None and step.compare_body:
            result.shape_diffs = shape_diff(
                reply_shape(upstream.status, upstream.body), reply_shape(ours.status, ours.body)
            )
    return result


def excerpt(text: str, limit: int = EXCERPT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def route_coverage(openapi: dict[str, Any], results: list[Result]) -> tuple[list[str], list[str]]:
    """(covered, uncovered) OpenAPI operations of our server, matched against the paths actually sent."""
    sent: set[tuple[str, str]] = set()
    for result in results:
        for exchange in (result.upstream, result.ours):
            if exchange.url:
                path = re.sub(r"^\w+://[^/]+", "", exchange.url).split("?")[0]
                sent.add((exchange.method.upper(), path))
    covered: list[str] = []
    uncovered: list[str] = []
    for path, operations in sorted(openapi.get("paths", {}).items()):
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
        for method in sorted(operations):
            label = f"{method.upper()} {path}"
            hit = any(m == method.upper() and pattern.match(p) for m, p in sent)
            (covered if hit else uncovered).append(label)
    return covered, uncovered


def summary(results: list[Result], meta: dict[str, Any], show_shapes: bool) -> str:
    kinds = {r.step.name for r in results}
    compared = [r for r in results if r.compared]
    lines = [
        f"Differential run {meta['run']}: upstream {meta['upstream']} vs ours {meta['ours']}",
        f"  request kinds: {len(kinds)}   requests (steps sent to both): {len(compared)}"
        f"   skipped: {len(results) - len(compared)}",
    ]
    if "routes_covered" in meta:
        lines.append(
            f"  our OpenAPI operations exercised: {len(meta['routes_covered'])}"
            f" of {len(meta['routes_covered']) + len(meta['routes_uncovered'])}, plus the websocket"
        )
        lines.extend(f"    not exercised: {label}" for label in meta["routes_uncovered"])
    by_category = Counter(r.verdict.category for r in results if r.verdict)
    lines.append(
        "  status-class differences: "
        + ", ".join(f"{cat}={by_category.get(cat, 0)}" for cat in (OUR_BUG, INTENDED, OTHER))
    )
    for category in (OUR_BUG, INTENDED, OTHER):
        selected = [r for r in results if r.verdict and r.verdict.category == category]
        if not selected:
            continue
        lines += ["", CATEGORY_TITLES[category]]
        for r in selected:
            lines += _difference_lines(r)
    skipped = [r for r in results if not r.compared]
    if skipped:
        lines += ["", "Skipped (a value they need was not captured on one side):"]
        lines += [f"  [{r.section}] {r.step.name}: {r.upstream.skipped or r.ours.skipped}" for r in skipped]
    same_class = [r for r in results if r.verdict is None and r.status_code_differs]
    if same_class:
        lines += ["", "Same class, different status code:"]
        lines += [
            f"  {r.step.name}: {r.step.method} {r.step.path} upstream {r.upstream.status}, ours {r.ours.status}"
            for r in same_class
        ]
    shaped = [r for r in results if r.shape_diffs]
    lines += ["", f"Body-shape differences (keys, types, datetime forms, states, counts): {len(shaped)} requests"]
    if show_shapes:
        for difference, names in grouped_shape_diffs(shaped):
            shown = ", ".join(names[:5]) + (f", ... ({len(names)} requests)" if len(names) > 5 else "")
            lines.append(f"  {difference}\n      in: {shown}")
    else:
        lines.append("  (listed with --shapes, and in the JSON report)")
    return "\n".join(lines)


def grouped_shape_diffs(results: list[Result]) -> list[tuple[str, list[str]]]:
    """Each distinct shape difference (list positions folded into `[*]`) with the request kinds showing it,
    most frequent first."""
    groups: dict[str, list[str]] = {}
    for r in results:
        for line in r.shape_diffs:
            key = re.sub(r" \(x\d+\)$", "", re.sub(r"\[\d+\]", "[*]", line))
            names = groups.setdefault(key, [])
            if r.step.name not in names:
                names.append(r.step.name)
    return sorted(groups.items(), key=lambda item: -len(item[1]))


def _difference_lines(r: Result) -> list[str]:
    assert r.verdict is not None
    lines = [
        f"  - {r.step.name}  [{r.section}]",
        f"      {r.step.method} {r.ours.url or r.step.path}",
    ]
    if r.ours.request_body:
        lines.append(f"      body: {excerpt(r.ours.request_body, 160)}")
    lines += [
        f"      upstream {r.upstream.status or r.upstream.error}: {excerpt(r.upstream.text)}",
        f"      ours     {r.ours.status or r.ours.error}: {excerpt(r.ours.text)}",
        f"      why: {r.verdict.reason}",
    ]
    if r.step.note:
        lines.append(f"      note: {r.step.note}")
    return lines


def _exchange_json(exchange: Exchange) -> dict[str, Any]:
    return {
        "status": exchange.status,
        "url": exchange.url,
        "request_body": exchange.request_body,
        "body": excerpt(exchange.text, 20000),
        "headers": exchange.headers,
        "skipped": exchange.skipped,
        "error": exchange.error,
        "captured": exchange.captured,
        "capture_errors": exchange.capture_errors,
        "seconds": round(exchange.seconds, 4),
    }


def to_json(results: list[Result], meta: dict[str, Any]) -> str:
    kinds = {r.step.name for r in results}
    document = {
        "meta": meta,
        "request_kinds": len(kinds),
        "requests": sum(1 for r in results if r.compared),
        "differences": {
            cat: [r.step.name for r in results if r.verdict and r.verdict.category == cat]
            for cat in (OUR_BUG, INTENDED, OTHER)
        },
        "results": [
            {
                "section": r.section,
                "name": r.step.name,
                "method": r.step.method,
                "path": r.step.path,
                "note": r.step.note,
                "deliberate": r.step.deliberate,
                "category": r.verdict.category if r.verdict else None,
                "reason": r.verdict.reason if r.verdict else None,
                "status_code_differs": r.status_code_differs,
                "shape_diffs": r.shape_diffs,
                "upstream": _exchange_json(r.upstream),
                "ours": _exchange_json(r.ours),
            }
            for r in results
        ],
    }
    return json.dumps(document, indent=2, default=str)
