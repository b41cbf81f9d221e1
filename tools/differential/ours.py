"""`--start-ours`: run this checkout's server with `balsam server dev` (embedded PostgreSQL, a throwaway data
dir) for the duration of the comparison."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.serving import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def started_server(
    port: int | None, data_dir: Path | None, env: dict[str, str], log_path: Path, timeout: float = 180.0
) -> Iterator[str]:
    """Yields the base URL of a fresh `balsam server dev`; stops it (and removes a temporary data dir) after."""
    port = port or free_port()
    temporary = data_dir is None
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="balsam-diff-"))
    command = [
        sys.executable,
        "-m",
        "balsam.cli",
        "server",
        "dev",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            try:
                wait_healthy(url, timeout, proc)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"our server did not start: {exc}; see {log_path}") from None
            yield url
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # `balsam server dev` stops gunicorn, Redis and PostgreSQL
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            if temporary:
                shutil.rmtree(data_dir, ignore_errors=True)
