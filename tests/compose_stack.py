"""The project's docker-compose.yml, unchanged, run with podman-compose and brought up in stages.

Debian 12's podman 4.3 ignores `condition: service_healthy`, and podman-compose trips over its dependency graph
("depends on container ... not found in input list"); nor does podman run healthchecks by itself without
systemd. So, as docs/deployment.md tells podman users: db and redis first, waiting on `podman healthcheck run`;
then the one-shot migrate, whose exit code must be 0; then the server.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.containers import Podman, run
from tests.ops_helpers import ROOT
from tests.serving import wait_healthy

COMPOSE_FILE = ROOT / "docker-compose.yml"
PROJECT_LABEL = "io.podman.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def dotenv_from_example(values: dict[str, str]) -> str:
    """.env.example with `values` filled in, the way an operator edits a copy of it."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    for key, value in values.items():
        setting = re.compile(rf"^#?\s*{re.escape(key)}=")
        index = next((i for i, line in enumerate(lines) if setting.match(line)), None)
        if index is None:
            lines.append(f"{key}={value}")
        else:
            lines[index] = f"{key}={value}"
    return "\n".join(lines) + "\n"


@dataclass
class ComposeProject:
    """A compose project with a unique name and published port, in a directory of its own (the compose file
    copied unchanged, and the .env beside it), so that runs in parallel do not collide."""

    podman: Podman
    directory: Path
    port: int
    name: str = field(default_factory=lambda: f"balsamci{uuid.uuid4().hex[:10]}")

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(COMPOSE_FILE, self.directory / "docker-compose.yml")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_env(self, values: dict[str, str]) -> None:
        (self.directory / ".env").write_text(dotenv_from_example(values))

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return run(
            [sys.executable, "-m", "podman_compose", "--in-pod", "false", "-p", self.name, *args],
            env=self.podman.env,
            cwd=self.directory,
            check=check,
            timeout=timeout,
        )

    def containers(self, service: str | None = None) -> list[str]:
        filters = ["--filter", f"label={PROJECT_LABEL}={self.name}"]
        if service is not None:
            filters += ["--filter", f"label={SERVICE_LABEL}={service}"]
        listed = self.podman.run("ps", "--all", *filters, "--format", "{{.Names}}").stdout
        return listed.split()

    def container(self, service: str) -> str:
        (name,) = self.containers(service)
        return name

    def inspect(self, service: str) -> dict[str, object]:
        (data,) = json.loads(self.podman.run("inspect", self.container(service)).stdout)
        assert isinstance(data, dict)
        return data

    def logs(self, service: str) -> str:
        result = self.podman.run("logs", self.container(service), check=False)
        return result.stdout + result.stderr

    def wait_healthy(self, service: str, timeout: float = 180) -> None:
        """Run the service's healthcheck (podman runs none by itself without systemd) until it passes."""
        name = self.container(service)
        deadline = time.monotonic() + timeout
        while self.podman.run("healthcheck", "run", name, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{service} did not become healthy:\n{self.logs(service)[-3000:]}")
            time.sleep(1)

    # The stages of `up` (see the module docstring).
    def up_db_and_redis(self) -> None:
        self.compose("up", "--detach", "--no-build", "db", "redis")
        self.wait_healthy("db")
        self.wait_healthy("redis")

    def migrate(self) -> None:
        self.compose("up", "--detach", "--no-build", "--no-deps", "migrate")
        exit_code = self.podman.run("wait", self.container("migrate"), timeout=300).stdout.strip()
        assert exit_code == "0", f"migrate exited {exit_code}:\n{self.logs('migrate')[-3000:]}"

    def up_server(self) -> None:
        self.compose("up", "--detach", "--no-build", "--no-deps", "server")
        try:
            wait_healthy(self.base_url, timeout=180)
        except TimeoutError:
            raise AssertionError(f"the server did not answer /healthz:\n{self.logs('server')[-3000:]}") from None
        self.wait_healthy("server")

    def up(self) -> None:
        self.up_db_and_redis()
        self.migrate()
        self.up_server()

    def down(self) -> None:
        self.compose("down")

    def exec(self, service: str, *cmd: str, input: str | None = None) -> str:
        return self.podman.run("exec", "--interactive", self.container(service), *cmd, input=input).stdout

    def tool(self, *cmd: str) -> str:
        """`compose --profile tools run --rm backup [cmd]`: the backup service, or another command in it."""
        return self.compose("--profile", "tools", "run", "--rm", "--no-deps", "backup", *cmd).stdout

    def volume_dir(self, volume: str) -> Path:
        mountpoint = self.podman.run("volume", "inspect", f"{self.name}_{volume}", "--format", "{{.Mountpoint}}")
        return Path(mountpoint.stdout.strip())

    def psql(self, sql: str) -> list[str]:
        out = self.exec("db", "psql", "-U", "balsam", "-d", "balsam", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql)
        return out.splitlines()

    def snapshot(self) -> dict[str, str]:
        """Every table's row count and a digest of its rows, and every sequence's state, keyed by name."""
        tables = self.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        sequences = self.psql("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1")
        parts = [
            f"SELECT 'table {t}', count(*) || ' ' || md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), ''))"
            f' FROM "{t}" AS r'
            for t in tables
        ] + [f"SELECT 'sequence {s}', last_value || ' ' || is_called FROM \"{s}\"" for s in sequences]
        rows = self.psql(" UNION ALL ".join(parts)) if parts else []
        return dict(row.split("|", 1) for row in rows)

    def destroy(self) -> None:
        """Everything the project made, even after a failure: containers, volumes and its network."""
        self.compose("--profile", "tools", "down", "--volumes", "--timeout", "5", check=False, timeout=300)
        for name in self.containers():
            self.podman.run("rm", "--force", "--time", "0", name, check=False)
        self.podman.run("volume", "prune", "--force", "--filter", f"label={PROJECT_LABEL}={self.name}", check=False)
        # Networks are the one thing kept in the host's podman configuration.
        self.podman.run("network", "rm", "--force", f"{self.name}_default", check=False)


@dataclass
class Timings:
    steps: list[tuple[str, float, bool]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        ok = False
        try:
            yield
            ok = True
        finally:
            self.steps.append((name, time.monotonic() - started, ok))

    def table(self) -> str:
        width = max((len(name) for name, _, _ in self.steps), default=10)
        lines = [f"{name:<{width}}  {seconds:7.1f} s{'' if ok else '  FAILED'}" for name, seconds, ok in self.steps]
        total = sum(seconds for _, seconds, _ in self.steps)
        return "\n".join([*lines, f"{'total':<{width}}  {total:7.1f} s"])
