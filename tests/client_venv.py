"""The published Balsam client (PyPI `balsam==0.7.0a24`) and its sdist, cached outside the repo for tests.

The client lives in its own virtualenv, because it is also a package named `balsam` and pins pydantic 1.
Everything is cached under `$PUBLISHED_CLIENT_CACHE_DIR` (not a BALSAM_ name: conftest clears those), else
`${XDG_CACHE_HOME:-~/.cache}/balsam-service-tests`:
- `client-0.7.0a24/`: the virtualenv, reused while it imports;
- `sdist-0.7.0a24/`: the package's sdist from PyPI, unpacked, for upstream's own test files (which are not in
  the wheel). Nothing of it goes into this repo: tests copy what they run into a temporary directory.
File locks keep concurrent test runs from building either twice. Client processes must run with
`clean_env()`, a temporary HOME and `BALSAM_CLIENT_PATH`, so the real `~/.balsam` is never touched.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

CLIENT_VERSION = "0.7.0a24"
# Only for running upstream's test files inside the client venv; the same versions as requirements/dev.txt.
SUITE_TOOLS = ("pytest==9.0.2", "pytest-timeout==2.4.0")


def cache_dir() -> Path:
    explicit = os.environ.get("PUBLISHED_CLIENT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "balsam-service-tests"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a client process: none of our settings, no PYTHONPATH pointing at this repo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BALSAM_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(extra)
    return env


def _run_ok(cmd: list[str], timeout: float = 120) -> bool:
    result = subprocess.run(cmd, env=clean_env(), cwd="/", capture_output=True, timeout=timeout)
    return result.returncode == 0


def _venv_works(venv: Path) -> bool:
    python = venv / "bin" / "python"
    if not python.exists() or not (venv / "bin" / "balsam").exists():
        return False
    check = "import balsam, balsam.api, balsam.cmdline; assert balsam.__version__ == '0.7.0.a24', balsam.__version__"
    return _run_ok([str(python), "-c", check])


def _pip(venv: Path, *args: str) -> None:
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    result = subprocess.run(cmd, env=clean_env(), cwd="/", capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


class _Locked:
    """An exclusive lock on `<cache>/<name>.lock` for the duration of a `with` block."""

    def __init__(self, name: str) -> None:
        self.base = cache_dir()
        self.base.mkdir(parents=True, exist_ok=True)
        self._path = self.base / f"{name}.lock"

    def __enter__(self) -> Path:
        self._file = open(self._path, "w")  # held until __exit__
        fcntl.flock(self._file, fcntl.LOCK_EX)
        return self.base

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def ensure_client_venv() -> Path:
    with _Locked(f"client-{CLIENT_VERSION}") as base:
        venv = base / f"client-{CLIENT_VERSION}"
        if _venv_works(venv):
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        _pip(venv, "install", "--retries", "10", "--timeout", "60", "--upgrade", "pip")
        _pip(venv, "install", "--retries", "10", "--timeout", "60", f"balsam=={CLIENT_VERSION}")
        if not _venv_works(venv):
            raise RuntimeError(f"balsam=={CLIENT_VERSION} installed into {venv} but does not import")
        return venv


def ensure_suite_venv() -> Path:
    """The client venv with pytest and pytest-timeout added, to run upstream's test files in it."""
    venv = ensure_client_venv()
    python = str(venv / "bin" / "python")
    check = "import importlib.metadata as m; assert m.version('pytest') == '{}' and m.version('pytest-timeout') == '{}'"
    check = check.format(*(spec.split("==")[1] for spec in SUITE_TOOLS))
    with _Locked(f"client-{CLIENT_VERSION}"):
        if not _run_ok([python, "-c", check]):
            _pip(venv, "install", "--retries", "10", "--timeout", "60", *SUITE_TOOLS)
    return venv


def ensure_sdist() -> Path:
    """The unpacked sdist of `balsam==0.7.0a24` (its root directory, holding `tests/`), downloaded once."""
    venv = ensure_client_venv()
    with _Locked(f"sdist-{CLIENT_VERSION}") as base:
        root = base / f"sdist-{CLIENT_VERSION}"
        unpacked = root / f"balsam-{CLIENT_VERSION}"
        if (unpacked / "tests" / "api" / "test_api.py").is_file():
            return unpacked
        shutil.rmtree(root, ignore_errors=True)
        download = root / "download"
        download.mkdir(parents=True)
        # --no-binary: the sdist, which (unlike the wheel) carries upstream's tests/ directory.
        _pip(
            venv,
            "download",
            "--retries",
            "10",
            "--timeout",
            "60",
            "--no-binary",
            ":all:",
            "--no-deps",
            "-d",
            str(download),
            f"balsam=={CLIENT_VERSION}",
        )
        (archive,) = download.glob(f"balsam-{CLIENT_VERSION}.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
        if not (unpacked / "tests" / "api" / "test_api.py").is_file():
            raise RuntimeError(f"{archive} has no tests/api/test_api.py")
        return unpacked
