"""The directory of prometheus-client's multiprocess mode, owned by the gunicorn master.

Every worker keeps its metric values in memory-mapped files there, and a scrape of any worker adds them up. The
master prepares it before forking any worker (so the workers inherit `PROMETHEUS_MULTIPROC_DIR` and import
prometheus-client already in that mode), removes a dead worker's live-gauge files, and deletes the directory
on exit if it made it. Counters of workers that exited stay, so totals keep growing across reloads.

- `PROMETHEUS_MULTIPROC_DIR` set by the operator: that directory is used and emptied at start; give each
  gunicorn instance its own.
- unset: a fresh directory `balsam-metrics-*` under `$RUNTIME_DIRECTORY` (systemd) or the temporary directory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare() -> tuple[Path, bool]:
    """Create or empty the directory and export it to the workers; returns (path, created here)."""
    given = os.environ.get(ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # left by an earlier run: its counters must not leak into this one
            stale.unlink(missing_ok=True)
        return path, False
    base = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0] or None
    path = Path(tempfile.mkdtemp(prefix="balsam-metrics-", dir=base))
    os.environ[ENV] = str(path)
    return path, True


def load_library() -> None:
    """Import prometheus-client's multiprocess helpers in the master, after `prepare()` set the directory and
    before any worker exists: `worker_exited` runs in gunicorn's SIGCHLD handler, where an import could be
    interrupted by the next signal. (Forked workers inherit the module, already in multiprocess mode.)"""
    import prometheus_client.multiprocess  # noqa: F401


def worker_exited(pid: int) -> None:
    """Drop the live-gauge values of a worker that is gone (its counters stay in the totals)."""
    if not os.environ.get(ENV):
        return
    from prometheus_client import multiprocess  # loaded by load_library(): no import happens here

    multiprocess.mark_process_dead(pid)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
