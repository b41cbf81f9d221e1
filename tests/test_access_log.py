"""GUNICORN_ACCESS_LOG: on by default (a line per request), off means no access log at all, with a real gunicorn."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.serving import gunicorn


@pytest.mark.parametrize("setting", [None, "off"])
def test_access_log_on_by_default_and_off_when_asked(
    server_env: dict[str, str], tmp_path: Path, setting: str | None
) -> None:
    logs = tmp_path / "logs"
    env = {**server_env, "BALSAM_LOG_DIR": str(logs)}
    if setting is not None:
        env["GUNICORN_ACCESS_LOG"] = setting
    with gunicorn(env, tmp_path, workers=1) as server:
        for _ in range(3):
            assert httpx.get(f"{server.base_url}/auth/how").status_code == 200
    access = logs / "gunicorn-access.log"
    lines = access.read_text().splitlines() if access.exists() else []
    if setting is None:
        assert sum("GET /auth/how" in line for line in lines) == 3, lines
    else:
        assert lines == []
    # The error log is kept either way: the master's start-up lines are in it.
    assert "Booting worker" in (logs / "gunicorn-error.log").read_text()
