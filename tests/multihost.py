"""Several API hosts on one PostgreSQL through PgBouncer, for tests/test_multihost.py and bench/bench_scaling.py.

- `PgBouncer`: Debian's pgbouncer in `pool_mode = transaction` in front of the harness's PostgreSQL (reached over
  its unix socket), listening on TCP addresses given by the caller. It refuses to run as root, so under root it
  runs as the same unprivileged account as the harness's PostgreSQL.
- `HostNetwork`: where the hosts live. As root with `ip` available, each host is a network namespace of its own
  with a veth pair to the root namespace (its own address, its own loopback, its own port space), made here and
  removed on exit; otherwise two loopback addresses, 127.0.0.2 and 127.0.0.3. Redis is reached over its unix
  socket in both cases (a path in the shared file system), PgBouncer over TCP.
- `ApiHost`: one gunicorn master with its own workers on one host; can be HUP-reloaded, SIGKILLed (master and
  workers) and started again.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.harness import PgEndpoint
from tests.ops_helpers import descendants, process_alive
from tests.serving import GUNICORN_CONF, wait_healthy

PGBOUNCER = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
API_PORT = 8000  # each namespace has its own port space; on loopback addresses a free port is picked instead


def _unprivileged() -> pwd.struct_passwd | None:
    return pwd.getpwnam("nobody") if os.geteuid() == 0 else None


@dataclass
class Host:
    name: str
    address: str  # where clients reach the host's API
    pgbouncer_address: str  # where the host reaches PgBouncer
    netns: str | None = None

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run on this host: inside its network namespace, if it has one (`ip netns exec` execs it)."""
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv


class HostNetwork:
    """Two hosts: network namespaces joined to the root namespace by veth pairs, or loopback addresses."""

    def __init__(self, count: int = 2) -> None:
        self.count = count
        self.hosts: list[Host] = []
        self.namespaces = os.geteuid() == 0 and shutil.which("ip") is not None
        tag = os.getpid() % 100000
        self._subnet = f"10.213.{os.getpid() % 250}"
        self._names = [f"bmh{tag}{chr(ord('a') + i)}" for i in range(count)]

    @property
    def pgbouncer_listen(self) -> list[str]:
        return [h.pgbouncer_address for h in self.hosts]

    def _ip(self, *args: str, netns: str | None = None) -> None:
        argv = ["ip", *(["-n", netns] if netns else []), *args]
        subprocess.run(argv, check=True, capture_output=True, text=True)

    def __enter__(self) -> HostNetwork:
        if not self.namespaces:
            self.hosts = [Host(f"host-{i}", f"127.0.0.{i + 2}", "127.0.0.1") for i in range(self.count)]
            return self
        try:
            for i, name in enumerate(self._names):
                outside, inside = f"{self._subnet}.{4 * i + 1}", f"{self._subnet}.{4 * i + 2}"
                self._ip("netns", "add", name)
                self._ip("link", "add", f"{name}0", "type", "veth", "peer", "name", f"{name}1")
                self._ip("link", "set", f"{name}1", "netns", name)
                self._ip("addr", "add", f"{outside}/30", "dev", f"{name}0")
                self._ip("link", "set", f"{name}0", "up")
                self._ip("addr", "add", f"{inside}/30", "dev", f"{name}1", netns=name)
                self._ip("link", "set", f"{name}1", "up", netns=name)
                self._ip("link", "set", "lo", "up", netns=name)
                self.hosts.append(Host(f"host-{i}", inside, outside, netns=name))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.namespaces:
            return
        for name in self._names:
            # Deleting the namespace deletes its end of the pair, and with it the other end.
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            subprocess.run(["ip", "link", "del", f"{name}0"], capture_output=True, check=False)


@dataclass
class PgBouncer:
    """pgbouncer in transaction pooling mode; `url(db)` is what an API host puts in BALSAM_DATABASE_URL."""

    directory: Path
    pg: PgEndpoint
    listen: list[str]
    port: int = 0
    default_pool_size: int = 20
    max_client_conn: int = 1000
    # After a failed connect to PostgreSQL (during a restart or failover), PgBouncer refuses every client of the
    # pool for this long before it tries again; its default of 15 s turns a 1 s restart into 15 s of errors.
    server_login_retry: float = 1.0
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "pgbouncer.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def url(self, database: str, address: str | None = None) -> str:
        return f"postgresql://{self.pg.user}@{address or self.listen[0]}:{self.port}/{database}"

    def _write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "users.txt").write_text(f'"{self.pg.user}" ""\n')
        ini = self.directory / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={self.pg.host} port={self.pg.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = {','.join(self.listen)}\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.directory / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.default_pool_size}\n"
            f"max_client_conn = {self.max_client_conn}\n"
            f"server_login_retry = {self.server_login_retry}\n"
            f"admin_users = {self.pg.user}\n"
            f"logfile = {self.log_path}\n"
            f"pidfile = {self.directory / 'pgbouncer.pid'}\n"
        )
        account = _unprivileged()
        if account is not None:
            for path in (self.directory, *self.directory.iterdir()):
                os.chown(path, account.pw_uid, account.pw_gid)
        return ini

    def start(self, timeout: float = 20.0) -> None:
        assert PGBOUNCER is not None, "pgbouncer is not installed"
        if not self.port:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                self.port = int(sock.getsockname()[1])
        ini = self._write_config()
        account = _unprivileged()
        kwargs: dict[str, object] = {}
        if account is not None:
            kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        self.process = subprocess.Popen(  # type: ignore[call-overload]
            [PGBOUNCER, str(ini)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "stderr.log", "ab"),  # noqa: SIM115 - the child keeps it
            **kwargs,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {self.process.returncode}:\n{self.log()[-2000:]}")
            try:
                with socket.create_connection((self.listen[0], self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"pgbouncer did not listen on {self.listen[0]}:{self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # SIGINT: wait for clients' transactions, then exit
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def pgbouncer(directory: Path, pg: PgEndpoint, listen: list[str], **options: float) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(directory, pg, listen, **options)  # type: ignore[arg-type]
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()


@dataclass
class ApiHost:
    """One gunicorn master and its workers, serving the app on `host`; its log accumulates across restarts."""

    host: Host
    env: dict[str, str]
    workdir: Path
    workers: int = 2
    extra_args: list[str] = field(default_factory=list)  # more gunicorn arguments, e.g. the access log off
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    _log_offset: int = field(default=0, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host.address}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.host.name}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, boot_timeout: float = 120.0) -> None:
        if not self.port:
            self.port = API_PORT if self.host.netns else _free_port(self.host.address)
        self.workdir.mkdir(parents=True, exist_ok=True)
        full_env = {
            **os.environ,
            "BALSAM_AUTH_ALLOW_REGISTRATION": "true",
            **self.env,
            "SERVER_HOST": self.host.address,
            "SERVER_PORT": str(self.port),
            "GUNICORN_WORKERS": str(self.workers),
        }
        argv = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), *self.extra_args, "balsam.server.main:app"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.host.command(argv), cwd=self.workdir, env=full_env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_healthy(self.base_url, timeout=boot_timeout, proc=self.process)
        except Exception:
            print(self.log()[-4000:])
            raise

    def worker_pids(self) -> set[int]:
        assert self.process is not None
        return {pid for pid in descendants(self.process.pid) if process_alive(pid)}

    def wait_workers(self, count: int | None = None, timeout: float = 120.0) -> set[int]:
        wanted = count or self.workers
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) >= wanted:
                return pids
            time.sleep(0.2)
        raise TimeoutError(f"{self.host.name}: {wanted} workers did not start")

    def hup(self, timeout: float = 120.0) -> set[int]:
        """Graceful reload; returns the new workers once every old one has gone."""
        assert self.process is not None
        old = self.wait_workers()
        os.kill(self.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.worker_pids()
            if len(current) >= self.workers and not current & old:
                with suppress(httpx.HTTPError):
                    if httpx.get(f"{self.base_url}/healthz", timeout=5).status_code == 200:
                        return current
            time.sleep(0.2)
        raise AssertionError(f"{self.host.name}: HUP reload did not complete:\n{self.log()[-4000:]}")

    def kill(self) -> set[int]:
        """SIGKILL the master and every worker at once, as a crashed machine would stop them."""
        assert self.process is not None
        victims = {self.process.pid, *self.worker_pids()}
        for pid in victims:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(30)
        deadline = time.monotonic() + 30
        while any(process_alive(pid) for pid in victims):
            assert time.monotonic() < deadline, "killed gunicorn processes did not go away"
            time.sleep(0.05)
        return victims

    def restart(self) -> None:
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        workers = self.worker_pids()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for pid in workers:  # orphans of a master that did not shut down cleanly
            with suppress(ProcessLookupError):
                if process_alive(pid):
                    os.kill(pid, signal.SIGKILL)


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])
