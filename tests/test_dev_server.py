"""`balsam server dev`: one command brings up PostgreSQL, Redis and gunicorn; data persists; Ctrl-C stops it all."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.ops_helpers import ROOT, descendants, process_alive
from tests.serving import free_port

pytestmark = pytest.mark.serving


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    argv = ["server", "dev", "--data-dir", str(data_dir), "--port", str(port), "--demo-user", "--workers", "2"]
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "balsam.cli", *argv],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like a terminal: Ctrl-C goes to this process group
        )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """After a failure: SIGKILL the dev server's whole process group, so no gunicorn or database outlives the test."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, runs: int) -> str:
    """Wait for the `runs`-th banner in the log and return the demo password it printed."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if text.count("press Ctrl-C to stop") >= runs:
            return re.findall(r"demo user: demo\s+password: (\S+)", text)[-1]
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    raise AssertionError(f"dev server did not come up:\n{log.read_text(errors='replace')[-4000:]}")


def _children(proc: subprocess.Popen[bytes], data_dir: Path) -> set[int]:
    """Every process the dev server runs: its descendants plus the daemonised PostgreSQL and its backends."""
    postmaster = int((data_dir / "postgres" / "pgdata" / "postmaster.pid").read_text().split()[0])
    return descendants(proc.pid) | {postmaster} | descendants(postmaster)


def _assert_all_gone(pids: set[int]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(process_alive(pid) for pid in pids):
        time.sleep(0.2)
    assert [pid for pid in pids if process_alive(pid)] == []


def _login(base: str, password: str) -> str:
    resp = httpx.post(f"{base}/auth/password/login", data={"username": "demo", "password": password})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def test_dev_server_persists_data_and_stops_every_child(tmp_path: Path) -> None:
    data_dir = tmp_path / "dev"
    log = tmp_path / "dev.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    first = _start(data_dir, port, log)
    try:
        password = _wait_ready(first, log, 1)
        health = httpx.get(f"{base}/healthz").json()
        assert health == {"status": "ok", "database": "ok", "redis": "ok"}
        token = _login(base, password)
        auth = {"Authorization": f"Bearer {token}"}
        site = httpx.post(f"{base}/sites/", headers=auth, json={"name": "laptop", "path": "/home/me/site"})
        assert site.status_code == 201, site.text
        # A local server lets anyone register (production's default is off).
        joined = httpx.post(f"{base}/auth/password/register", json={"username": "newcomer", "password": "pw"})
        assert joined.status_code == 201, joined.text
        pids = _children(first, data_dir)
        assert len(pids) >= 5, "gunicorn master, two workers, redis and postgres"
        os.killpg(first.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert first.wait(120) == 0
    finally:
        _kill_group(first)
    _assert_all_gone(pids)
    assert (data_dir / "secret_key").stat().st_mode & 0o077 == 0
    assert "stopped" in log.read_text()

    second = _start(data_dir, port, log)
    try:
        assert _wait_ready(second, log, 2) == password
        # Same key, same database: the first run's token still works and the site is still there.
        listing = httpx.get(f"{base}/sites/", headers=auth)
        assert listing.status_code == 200, listing.text
        assert [s["name"] for s in listing.json()["results"]] == ["laptop"]
        # SIGHUP to the dev server reloads gunicorn: new workers, same master, still serving.
        master = int(re.findall(r"gunicorn master pid (\d+)", log.read_text())[-1])
        old_workers = descendants(master)
        os.kill(second.pid, signal.SIGHUP)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            current = {pid for pid in descendants(master) if process_alive(pid)}
            if len(current) == 2 and current.isdisjoint(old_workers):
                break
            time.sleep(0.3)
        assert current.isdisjoint(old_workers) and len(current) == 2
        # The new workers may still be importing the app: the request waits in the listen backlog meanwhile.
        assert httpx.get(f"{base}/sites/", headers=auth, timeout=60).status_code == 200
        pids = _children(second, data_dir)
        second.terminate()  # SIGTERM to the dev process alone, as a service manager would
        assert second.wait(120) == 0
    finally:
        _kill_group(second)
    _assert_all_gone(pids)
