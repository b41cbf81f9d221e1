"""Rootful podman for the compose test, with storage of its own, and local stand-ins for the base images.

There is no registry here, so the images that the Dockerfile and docker-compose.yml name (`python:3.13-slim-trixie`,
`postgres:17`, `redis:8-alpine`) are built from Debian trixie with debootstrap (tests/container_images/) and
tagged with exactly those names. They live in an image store under the cache directory, keyed by a hash of the
recipe and the month (so Debian's updates arrive), which every run reads as a read-only additional image store:
a warm run builds nothing but our own image. Each run has its own podman storage under a work directory
(CONTAINERS_CONF / CONTAINERS_STORAGE_CONF), so the host's podman storage is left alone. Networks stay in the
host's netavark configuration, because subnets and bridge names must not collide with other runs.

The podman settings are those that work on Debian 12's podman 4.3 without systemd: runc (crun fails on the
RLIMIT defaults and hybrid cgroups), cgroupfs, no default ulimits, logs and events in files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

IMAGES_DIR = Path(__file__).with_name("container_images")
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP = ["debootstrap", "--variant=minbase", "--include=ca-certificates", SUITE]
# Containerfile in IMAGES_DIR -> the name the project's Dockerfile / docker-compose.yml use.
STAND_INS = {
    "python": "docker.io/library/python:3.13-slim-trixie",
    "postgres": "docker.io/library/postgres:17",
    "redis": "docker.io/library/redis:8-alpine",
}
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# An image store not used for this long (by any key but the current one) is deleted.
STALE_STORE_DAYS = 3

CONTAINERS_CONF = """\
[containers]
default_ulimits = []
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{workdir}/libpod"

[network]
network_backend = "netavark"
"""

STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{graphroot}"
runroot = "{workdir}/runroot"

[storage.options]
additionalimagestores = [{stores}]
"""


class PodmanUnavailable(Exception):
    """Podman cannot run containers on this machine; the message says why."""


def missing_tools() -> str | None:
    """Why the compose test cannot run here, or None."""
    if os.geteuid() != 0:
        return "the compose test needs rootful podman (run as root)"
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install podman runc)"
    return None


@dataclass
class Podman:
    """`podman` with a private storage (and the read-only stores in `stores`) under `workdir`."""

    workdir: Path
    graphroot: Path
    stores: Sequence[Path] = ()

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "containers.conf").write_text(CONTAINERS_CONF.format(workdir=self.workdir))
        stores = ", ".join(f'"{store}"' for store in self.stores)
        (self.workdir / "storage.conf").write_text(
            STORAGE_CONF.format(graphroot=self.graphroot, workdir=self.workdir, stores=stores)
        )

    @property
    def env(self) -> dict[str, str]:
        """The environment of podman and podman-compose: nothing from the caller's but PATH and HOME."""
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "CONTAINERS_CONF": str(self.workdir / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.workdir / "storage.conf"),
            # The OCI format drops HEALTHCHECK; docker-compose.yml's services rely on the image's.
            "BUILDAH_FORMAT": "docker",
        }

    def run(
        self, *args: str | Path, check: bool = True, timeout: float = 600, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(["podman", *args], env=self.env, check=check, timeout=timeout, input=input)

    def build(self, context: Path, tag: str, *args: str | Path) -> None:
        """`podman build` on the host network, with the host's CA bundle mounted for this build only (a TLS
        proxy may stand between pip and PyPI); nothing of it stays in the image."""
        mounts = ["-v", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"] if HOST_CA_BUNDLE.exists() else []
        self.run("build", "--network", "host", *mounts, "-t", tag, *args, context, timeout=1200)

    def remove_everything(self) -> None:
        """Remove this storage's containers, pods and volumes; then the storage itself with the work dir."""
        self.run("rm", "--all", "--force", "--time", "0", check=False)
        self.run("pod", "rm", "--all", "--force", check=False)
        self.run("volume", "rm", "--all", "--force", check=False)
        _unmount_below(self.workdir)
        _unmount_below(self.graphroot)
        shutil.rmtree(self.workdir, ignore_errors=True)


def run(
    cmd: Sequence[str | Path],
    *,
    env: dict[str, str],
    check: bool = True,
    timeout: float = 600,
    input: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(c) for c in cmd],
        env=env,
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {result.returncode}\n"
            f"stdout: {result.stdout[-3000:]}\nstderr: {result.stderr[-3000:]}"
        )
    return result


def _unmount_below(path: Path) -> None:
    """Unmount whatever a crashed podman may have left mounted under `path` (so that it can be deleted)."""
    prefix = f"{path.resolve()}/"
    with open("/proc/self/mounts") as mounts:
        targets = [line.split()[1] for line in mounts]
    for target in sorted((t for t in targets if t.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", target], check=False, capture_output=True)


def recipe_key() -> str:
    """Changes with the recipe (debootstrap command, Containerfiles, entrypoints, names) and every month."""
    digest = hashlib.sha256()
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    digest.update(repr((DEBOOTSTRAP, MIRROR, sorted(STAND_INS.items()), CONTAINERS_CONF, month)).encode())
    for path in sorted(IMAGES_DIR.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """BALSAM_TEST_CONTAINER_CACHE, else /var/cache/balsam-ci when it can be written, else ~/.cache/balsam-ci."""
    if configured := os.environ.get("BALSAM_TEST_CONTAINER_CACHE"):
        root = Path(configured)
    else:
        root = Path("/var/cache/balsam-ci")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            root = Path.home() / ".cache" / "balsam-ci"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def base_image_store(workdir: Path) -> Iterator[tuple[Path, str]]:
    """The read-only store holding the stand-in base images, built first if needed; yields (store, how).

    A shared lock on the store's lock file is held while it is in use, so that pruning (an exclusive lock,
    never waited for) cannot delete it from under another run; building holds the exclusive lock.
    """
    root = cache_root()
    key = recipe_key()
    store = root / f"images-{key}"
    complete = store / ".complete"
    with open(root / f"images-{key}.lock", "a+") as lock:
        how = "cached"
        if not complete.exists():
            # Nobody holds a shared lock on an incomplete store: this waits only for another run's build.
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not complete.exists():
                _build_store(store, workdir / "builder")
                complete.touch()
                how = "built"
        fcntl.flock(lock, fcntl.LOCK_SH)
        os.utime(complete)  # last use, for pruning
        _prune_stores(root, keep=key)
        yield store, how


def _build_store(store: Path, workdir: Path) -> None:
    if store.exists():  # an interrupted build
        _unmount_below(store)
        shutil.rmtree(store)
    if shutil.which("debootstrap") is None:
        raise PodmanUnavailable("debootstrap is not installed (Debian: apt-get install debootstrap)")
    builder = Podman(workdir, graphroot=store)
    rootfs = workdir / "rootfs"
    try:
        run([*DEBOOTSTRAP, rootfs, MIRROR], env=builder.env, timeout=1200)
        # What an image does not need: downloaded packages and package lists.
        for junk in ("var/cache/apt", "var/lib/apt/lists"):
            shutil.rmtree(rootfs / junk, ignore_errors=True)
        base = f"localhost/balsam-ci/{SUITE}-minbase:latest"
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            imported = subprocess.run(
                ["podman", "import", "-", base], stdin=tar.stdout, env=builder.env, capture_output=True, text=True
            )
        assert tar.returncode == 0 and imported.returncode == 0, imported.stderr
        shutil.rmtree(rootfs)
        for name, tag in STAND_INS.items():
            builder.build(
                IMAGES_DIR,
                tag,
                "--layers=false",
                "--build-arg",
                f"BASE={base}",
                "-f",
                IMAGES_DIR / f"{name}.Containerfile",
            )
        # A container that cannot start here would fail every later step: say so now, with podman's words.
        probe = builder.run("run", "--rm", STAND_INS["redis"], "true", check=False)
        if probe.returncode != 0:
            raise PodmanUnavailable(f"podman cannot run a container here: {probe.stderr.strip()[-500:]}")
    finally:
        builder.run("rm", "--all", "--force", check=False)
        _unmount_below(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


def _prune_stores(root: Path, keep: str) -> None:
    """Delete other keys' stores that no run is using and that were last used STALE_STORE_DAYS ago."""
    for lock_path in root.glob("images-*.lock"):
        key = lock_path.stem.removeprefix("images-")
        store = root / f"images-{key}"
        if key == keep:
            continue
        marker = store / ".complete"
        # A lock file just created belongs to a run that is about to build that store.
        last_use = max(lock_path.stat().st_mtime, marker.stat().st_mtime if marker.exists() else 0.0)
        if time.time() - last_use < STALE_STORE_DAYS * 86400:
            continue
        with open(lock_path, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # in use
            _unmount_below(store)
            shutil.rmtree(store, ignore_errors=True)
            lock_path.unlink(missing_ok=True)
