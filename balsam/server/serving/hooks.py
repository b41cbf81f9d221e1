"""gunicorn server hooks: check the settings and the code as a new worker would load them, in a child
interpreter, before gunicorn starts workers and before a HUP replaces them; and keep the directory of the
workers' Prometheus metrics (balsam.server.serving.multiprocess)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from balsam.server.serving import multiprocess

# Run in a child interpreter, so the master never imports the application or its libraries.
_CHECK = (
    "import balsam.server.main; from balsam.server.conf import load_settings; load_settings().validate_for_serving()"
)


def _settings_problem() -> str | None:
    """Check the application as a new worker would load it: None when fine, else a one-line error.

    A child process imports `balsam.server.main` and validates the settings (environment, `.env` in the working
    directory, secret files). The master itself imports neither, so that workers forked after a HUP run the
    code and libraries installed at that moment.
    """
    env = dict(os.environ)
    env.pop(multiprocess.ENV, None)  # the check records no metrics: leave no files of its own in the directory
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    # The master's SIGCHLD handler reaps any child (waitpid(-1)) and would take the check's exit status; hold
    # SIGCHLD until the check has been waited for. Workers that exit meanwhile are reaped when it is released.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        result = subprocess.run(
            [sys.executable, "-c", _CHECK], env=env, capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        return "the settings check timed out"
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    if result.returncode == 0:
        return None
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"the settings check exited with status {result.returncode}"


_created_metrics_dir: Path | None = None


def on_starting(server: Any) -> None:
    """Fail fast, in the master, with a one-line message when the settings are invalid; then prepare the
    metrics directory that the workers will inherit."""
    global _created_metrics_dir
    problem = _settings_problem()
    if problem:
        raise SystemExit(f"balsam: {problem}")
    path, created = multiprocess.prepare()
    multiprocess.load_library()
    _created_metrics_dir = path if created else None
    server.log.info("balsam: Prometheus multiprocess directory %s", path)


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited (reload, crash, shutdown): its live gauges no longer count."""
    multiprocess.worker_exited(worker.pid)


def on_exit(server: Any) -> None:
    if _created_metrics_dir is not None:
        multiprocess.remove(_created_metrics_dir)


def on_reload(server: Any) -> None:
    """On HUP: when the new code or settings would not load, keep the running workers instead of replacing them.

    gunicorn calls this hook just before it forks `cfg.workers` new workers and then stops the surplus (oldest)
    ones; with zero new workers nothing is stopped. The next HUP re-reads this file, restoring `workers`.
    """
    problem = _settings_problem()
    if problem:
        server.log.error("balsam: reload refused, the running workers keep serving: %s", problem)
        server.cfg.set("workers", 0)
