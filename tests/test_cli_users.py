"""`balsam server user add|passwd|list|delete` against the real test database."""

from __future__ import annotations

import os
import subprocess
import sys

from fastapi.testclient import TestClient


def _cli(database_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "balsam.cli", "server", "user", *args],
        # The whole environment: a bare interpreter (the Nix check's) finds its packages through PYTHONPATH.
        env={**os.environ, "BALSAM_DATABASE_URL": database_url},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_user_lifecycle(database_url: str, client: TestClient) -> None:
    added = _cli(database_url, "add", "erin", "--password-stdin", stdin="first-pass\n")
    assert added.returncode == 0 and "created user erin" in added.stdout
    assert client.post("/auth/password/login", data={"username": "erin", "password": "first-pass"}).status_code == 200

    again = _cli(database_url, "add", "erin", "--password-stdin", stdin="x\n")
    assert again.returncode == 1 and "already exists" in again.stderr

    changed = _cli(database_url, "passwd", "erin", "--password-stdin", stdin="second-pass\n")
    assert changed.returncode == 0
    assert client.post("/auth/password/login", data={"username": "erin", "password": "first-pass"}).status_code == 401
    assert client.post("/auth/password/login", data={"username": "erin", "password": "second-pass"}).status_code == 200
    assert _cli(database_url, "passwd", "ghost", "--password-stdin", stdin="x\n").returncode == 1

    listing = _cli(database_url, "list")
    assert listing.returncode == 0
    rows = [line.split("\t") for line in listing.stdout.splitlines()]
    assert [(r[1], r[2]) for r in rows] == [("erin", "password")]

    refused = _cli(database_url, "delete", "erin")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    deleted = _cli(database_url, "delete", "erin", "--yes")
    assert deleted.returncode == 0
    assert _cli(database_url, "list").stdout == ""
    assert _cli(database_url, "delete", "erin", "--yes").returncode == 1
    assert client.post("/auth/password/login", data={"username": "erin", "password": "second-pass"}).status_code == 401


def test_empty_password_rejected(database_url: str) -> None:
    result = _cli(database_url, "add", "frank", "--password-stdin", stdin="\n")
    assert result.returncode != 0 and "empty password" in result.stderr
