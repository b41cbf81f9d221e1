"""Start a real gunicorn (uvicorn workers) serving the app, for tests of serving; and load it with requests."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

import balsam.server

GUNICORN_CONF = Path(balsam.server.__file__).with_name("gunicorn.conf.example.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gunicorn:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_healthy(base_url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base_url} did not become healthy")


@contextmanager
def gunicorn(
    env: dict[str, str],
    workdir: Path,
    workers: int = 2,
    extra_args: list[str] | None = None,
    boot_timeout: float = 120.0,
) -> Iterator[Gunicorn]:
    """Run `gunicorn -c gunicorn.conf.example.py balsam.server.main:app` with `env` on a free port."""
    port = free_port()
    full_env = {
        **os.environ,
        # Tests (and the published client's suites) register their users through the API; production's
        # default is off, so turn it on unless the test says otherwise.
        "BALSAM_AUTH_ALLOW_REGISTRATION": "true",
        **env,
        "SERVER_HOST": "127.0.0.1",
        "SERVER_PORT": str(port),
        "GUNICORN_WORKERS": str(workers),
    }
    log_path = workdir / f"gunicorn-{port}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), *(extra_args or []), "balsam.server.main:app"],
            cwd=workdir,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    server = Gunicorn(proc, base_url, log_path)
    try:
        wait_healthy(base_url, timeout=boot_timeout, proc=proc)
        yield server
    except Exception:
        print(server.log()[-4000:])
        raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def serving_worker(server_port: int, client_port: int, worker_pids: set[int]) -> int | None:
    """The worker process that holds the server side of the TCP connection from `client_port` (from /proc)."""
    wanted = f":{server_port:04X}", f":{client_port:04X}"
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[1].endswith(wanted[0]) and fields[2].endswith(wanted[1]):
                    inode = fields[9]
    if inode is None:
        return None
    for pid in worker_pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                        return pid
        except OSError:
            continue
    return None


def one_connection_per_worker(
    server: Gunicorn, workers: int, timeout: float = 180.0
) -> list[http.client.HTTPConnection]:
    """Keep-alive connections to `server`, one served by each of its `workers` worker processes (start the
    server with a long `GUNICORN_KEEPALIVE` if the test leaves them idle). Waits for workers that are still
    booting: gunicorn answers as soon as one worker is up."""
    from tests.ops_helpers import descendants

    port = int(server.base_url.rsplit(":", 1)[1])
    found: dict[int, http.client.HTTPConnection] = {}
    deadline = time.monotonic() + timeout
    while len(found) < workers:
        assert time.monotonic() < deadline, f"connections landed on {len(found)} of {workers} workers"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/healthz")  # the worker has accepted the connection once it answers
        conn.getresponse().read()
        pid = serving_worker(port, conn.sock.getsockname()[1], descendants(server.process.pid))
        if pid is not None and pid not in found:
            found[pid] = conn
        else:
            conn.close()
            time.sleep(0.2)
    return list(found.values())


class Load:
    """Threads sending requests back to back over keep-alive connections, recording every failure."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=("/healthz", {}), daemon=True),
            threading.Thread(target=self._run, args=("/sites/", {"Authorization": f"Bearer {token}"}), daemon=True),
        ]

    def _run(self, path: str, headers: dict[str, str]) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60, headers=headers) as client:
            while not self.stop.is_set():
                try:
                    resp = client.get(path)
                    good = resp.status_code == 200
                    detail = f"{path}: HTTP {resp.status_code} {resp.text[:200]}"
                except httpx.HTTPError as exc:
                    when = datetime.now(UTC).strftime("%H:%M:%S.%f")
                    good, detail = False, f"{when} {path}: {type(exc).__name__}: {exc}"
                with self.lock:
                    if good:
                        self.ok += 1
                    else:
                        self.failures.append(detail)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(90)
