"""Inputs the database cannot take, or that cannot be decoded at all, get a 4xx JSON answer (never a 500).

Found by fuzzing the OpenAPI schema with schemathesis (docs/testing.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/jobs/", {"workdir__contains": "a\x00b"}),
        ("/transfers/", {"job_state": "\x00"}),
        ("/batch-jobs/", {"queue": "\x00X"}),
        ("/sites/", {"name": "x\x00"}),
        ("/apps/", {"site_name": "\x00"}),
        ("/events/", {"to_state": "RUNNING\x00"}),
        ("/jobs/", {"tags": "k:\x00"}),
    ],
)
def test_nul_in_query_parameters_is_422(
    make_user: Callable[[str], TestClient], path: str, params: dict[str, str]
) -> None:
    alice = make_user("alice")
    resp = alice.get(path, params=params)
    assert resp.status_code == 422
    (error,) = resp.json()["detail"]
    assert error["loc"][0] == "query" and "NUL" in error["msg"]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_undecodable_job_bodies_are_422(make_user: Callable[[str], TestClient], method: str) -> None:
    alice = make_user("alice")
    resp = alice.request(
        method, "/jobs/", content=b"\xee\xa8\x99e\xff\xfe", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["type"] == "json_invalid"


def test_nul_in_login_form_is_an_ordinary_failure(client: TestClient) -> None:
    resp = client.post("/auth/password/login", data={"username": "a\x00b", "password": "x"})
    assert resp.status_code == 401
