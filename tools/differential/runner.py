"""Sending steps to one server and recording what came back."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tools.differential.compare import NO_ANSWER
from tools.differential.steps import ANON, BAD_TOKEN, MissingValue, Step, select, substitute, substitute_query

# A well-formed HS256 JWT signed with a key neither server has.
FORGED_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOjEsInVzZXJuYW1lIjoibm9ib2R5IiwiZXhwIjo0MTAyNDQ0ODAwfQ."
    "zr6Tb1XGz1NfG6EhfuX6kvSxzQ9JxEk4kG7EXdbuQ1o"
)


LOCATION = "location:"  # a capture selector `location:NAME` reads query parameter NAME of a redirect's Location


def location_parameter(location: str, name: str) -> str:
    values = parse_qs(urlsplit(location).query).get(name)
    if not values:
        raise LookupError(f"no {name!r} in the Location {location!r}")
    return values[0]


@dataclass
class Exchange:
    """One step as sent to one server."""

    status: int = NO_ANSWER
    body: Any = None  # parsed JSON, else the text
    text: str = ""
    method: str = ""
    url: str = ""
    request_body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None  # why it was not sent (a placeholder with no value on this server)
    error: str | None = None  # transport error, when there was no answer
    captured: dict[str, Any] = field(default_factory=dict)
    capture_errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class Target:
    """One server and the values captured from its replies so far."""

    label: str
    base_url: str
    values: dict[str, Any]
    timeout: float = 120.0
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        # A fresh connection per request: upstream's 204-with-body replies (spec §12.9) break the connection
        # they were sent on, and a reused one would turn the *next* request into a connection reset.
        self.http = httpx.Client(
            base_url=self.base_url.rstrip("/"),
            timeout=self.timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def close(self) -> None:
        self.http.close()

    def auth_headers(self, user: str) -> dict[str, str]:
        if user == ANON:
            return {}
        if user == BAD_TOKEN:
            return {"Authorization": f"Bearer {FORGED_TOKEN}"}
        token = self.values.get(f"token_{user}")
        if token is None:
            raise MissingValue(f"token_{user}")
        return {"Authorization": f"Bearer {token}"}

    def send(self, step: Step) -> Exchange:
        if step.method == "WS":
            from tools.differential.websocket import exchange

            return exchange(self, step)
        record = Exchange(method=step.method)
        try:
            path = substitute(step.path, self.values)
            query = substitute_query(step.query, self.values)
            headers = self.auth_headers(step.user)
            kwargs: dict[str, Any] = {"params": query, "headers": headers}
            if step.raw_body is not None:
                kwargs["content"] = step.raw_body
                headers["Content-Type"] = "application/json"
                record.request_body = step.raw_body[:300].decode("utf-8", errors="replace")
            elif step.form is not None:
                kwargs["data"] = substitute(dict(step.form), self.values)
                record.request_body = json.dumps(kwargs["data"])
            elif step.body is not None:
                payload = substitute(step.body, self.values)
                kwargs["content"] = json.dumps(payload).encode()
                headers["Content-Type"] = "application/json"
                record.request_body = _excerpt(payload)
        except MissingValue as exc:
            record.skipped = f"no value for {{{exc.args[0]}}} on {self.label}"
            return record
        started = time.monotonic()
        try:
            response = self.http.request(step.method, path, **kwargs)
        except httpx.HTTPError as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            record.seconds = time.monotonic() - started
            return record
        record.seconds = time.monotonic() - started
        record.url = str(response.request.url)
        record.status = response.status_code
        record.text = response.text
        record.headers = {
            k: v for k, v in response.headers.items() if k.lower() == "location" or k.lower().startswith("x-")
        }
        try:
            record.body = response.json() if response.content else None
        except ValueError:
            record.body = response.text
        self.capture(step, record)
        return record

    def capture(self, step: Step, record: Exchange) -> None:
        for name, selector in step.capture.items():
            if not 200 <= record.status < 400:
                record.capture_errors[name] = f"status {record.status}"
                continue
            try:
                if selector.startswith(LOCATION):
                    value = location_parameter(record.headers.get("location", ""), selector.removeprefix(LOCATION))
                else:
                    value = select(record.body, selector)
            except LookupError as exc:
                record.capture_errors[name] = str(exc)
                continue
            record.captured[name] = value
            self.values[name] = value


def _excerpt(payload: Any, limit: int = 300) -> str:
    text = json.dumps(payload)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
