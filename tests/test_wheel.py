"""The built wheel ships the migrations and the dashboard's templates and assets, and `balsam server migrate`
works from it in a clean venv, where the dashboard's sign-in page renders."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from balsam.server.db.migrate import head_revision
from tests.harness import PgEndpoint

ROOT = Path(__file__).resolve().parent.parent


def _run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.needs_network
def test_wheel_contains_migrations_and_migrates(tmp_path: Path, pg: PgEndpoint) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT, cwd=tmp_path)
    (wheel,) = dist.glob("balsam_service-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "balsam/server/db/alembic.ini" in names
    assert "balsam/server/db/migrations/env.py" in names
    assert any(n.startswith("balsam/server/db/migrations/versions/0001_") for n in names)
    assert "balsam/server/gunicorn.conf.example.py" in names
    # The dashboard loads nothing from a CDN: every template and asset in the source tree is in the wheel.
    dashboard = ROOT / "balsam/server/dashboard"
    shipped = {
        str(path.relative_to(ROOT))
        for folder in ("templates", "static")
        for path in (dashboard / folder).iterdir()
        if path.is_file()
    }
    assert shipped and shipped <= names, sorted(shipped - names)

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    _run(venv / "bin/pip", "install", "-q", "-r", ROOT / "requirements/deploy.txt", wheel, cwd=tmp_path)
    database = pg.create_database("balsam_wheel")
    try:
        env = {"BALSAM_DATABASE_URL": pg.url(database), "PATH": f"{venv}/bin:/usr/bin:/bin"}
        # Run from an empty directory so nothing is imported from the source tree.
        result = _run(venv / "bin/balsam", "server", "migrate", cwd=tmp_path, env=env)
        assert f"schema: empty -> {head_revision()}" in result.stdout  # every revision shipped in the wheel
        origin = _run(venv / "bin/python", "-c", "import balsam; print(balsam.__file__)", cwd=tmp_path, env=env)
        assert str(venv) in origin.stdout
        login_page = (
            "from fastapi.testclient import TestClient\n"
            "from balsam.server.main import create_app\n"
            "web = TestClient(create_app())\n"
            "page = web.get('/dashboard/login')\n"
            "script = web.get('/dashboard/static/dashboard.js')\n"
            "print(page.status_code, 'csrf_token' in page.text, script.status_code)\n"
        )
        rendered = _run(
            venv / "bin/python", "-c", login_page, cwd=tmp_path, env={**env, "BALSAM_AUTH_SECRET_KEY": "k" * 40}
        )
        assert rendered.stdout.split() == ["200", "True", "200"], rendered.stdout
    finally:
        pg.drop_database(database)
