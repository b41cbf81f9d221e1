"""Static checks of the Docker and systemd deployment files (tests/test_compose.py runs the compose stack).

What is checked: docker-compose.yml parses and wires the services as documented (healthchecked PostgreSQL,
unpublished Redis, migrations before serving, no default secret); compose interpolation, done here the way
compose does it, refuses an unset or empty secret and otherwise yields a server configuration that passes the
server's own validation; the Dockerfile's COPY sources exist and survive .dockerignore, it installs the pinned
requirements then the package without deps, runs as a non-root user, and its CMD starts gunicorn with the
shipped config on `balsam.server.main:app` (checked with `gunicorn --check-config`); the systemd units parse,
use existing `balsam server` subcommands, and pass `systemd-analyze verify` when that tool is installed.
Not run here: the units under a real systemd. `docker build` and the compose stack run, with podman, in
tests/test_compose.py.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from balsam.server.cli import build_parser
from balsam.server.conf import load_settings
from balsam.server.ops.settings_doc import all_names
from tests.ops_helpers import ROOT

SECRET = "compose-test-secret-0123456789abcdef"
PASSWORD = "compose-pg-password"
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class ComposeRefused(Exception):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        present = name in env and (env[name] != "" or not (op or "").startswith(":"))
        if present:
            return env[name]
        if op and op.endswith("?"):
            raise ComposeRefused(f"{name}: {arg}")
        return arg if op else ""

    return _VAR.sub(substitute, value)


def compose_file() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def compose_vars() -> set[str]:
    return {m["name"] for m in _VAR.finditer((ROOT / "docker-compose.yml").read_text())}


def _run_balsam_argv(argv: list[str]) -> None:
    """The argv is a `balsam server ...` command line that this package accepts."""
    assert argv[:2] == ["balsam", "server"], argv
    args = build_parser().parse_args(argv[2:])
    assert callable(args.func)


# ---------------------------------------------------------------------------------------------- docker compose


def test_compose_services_are_wired_as_documented() -> None:
    services = compose_file()["services"]
    assert set(services) == {"db", "redis", "migrate", "server", "backup"}
    db, redis, migrate, server = services["db"], services["redis"], services["migrate"], services["server"]

    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert re.fullmatch(r"postgres:\d+", db["image"]), "PostgreSQL pinned to a major version"
    assert "healthcheck" in redis
    for internal in (db, redis):
        assert "ports" not in internal, "PostgreSQL and Redis are not published on the host"

    assert migrate["command"] == ["balsam", "server", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert server["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert server["depends_on"]["db"]["condition"] == "service_healthy"
    assert "command" not in server, "the server runs the image's CMD"
    for service in (migrate, services["backup"]):
        _run_balsam_argv(service["command"])
    for service in (migrate, server, services["backup"]):
        assert service["build"] == "." and (ROOT / "Dockerfile").is_file()
        assert service["image"] == "balsam-server:local"
    assert services["backup"]["profiles"] == ["tools"], "backup runs only on demand"

    assert "/readyz" in " ".join(server["healthcheck"]["test"]), "the server is healthy when it is ready"
    published = interpolate(server["ports"], {})
    assert published == ["127.0.0.1:8000:8000"], "by default the API is published on localhost only"
    assert set(compose_file()["volumes"]) == {"pgdata", "backups"}


def test_compose_refuses_to_start_without_a_secret_key() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    uses = [m for m in _VAR.finditer(text) if m["name"] in {"BALSAM_AUTH_SECRET_KEY", "POSTGRES_PASSWORD"}]
    assert uses and all(m["op"] == ":?" for m in uses), "required, and empty counts as unset"
    assert SECRET not in text
    data = compose_file()
    with pytest.raises(ComposeRefused, match="BALSAM_AUTH_SECRET_KEY"):
        interpolate(data, {"POSTGRES_PASSWORD": PASSWORD})
    with pytest.raises(ComposeRefused, match="BALSAM_AUTH_SECRET_KEY"):
        interpolate(data, {"POSTGRES_PASSWORD": PASSWORD, "BALSAM_AUTH_SECRET_KEY": ""})
    with pytest.raises(ComposeRefused, match="POSTGRES_PASSWORD"):
        interpolate(data, {"BALSAM_AUTH_SECRET_KEY": SECRET})
    # .env.example copied as is leaves both empty, so compose still refuses.
    from dotenv import dotenv_values

    example = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}
    with pytest.raises(ComposeRefused):
        interpolate(data, example)


def test_compose_environment_is_a_valid_server_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    data = interpolate(compose_file(), {"POSTGRES_PASSWORD": PASSWORD, "BALSAM_AUTH_SECRET_KEY": SECRET})
    server_env = data["services"]["server"]["environment"]
    db_env = data["services"]["db"]["environment"]
    assert all(isinstance(v, str) for v in server_env.values()), "compose environment values must be strings"
    assert set(server_env) <= all_names(), "every variable compose sets is a documented setting"
    assert server_env["BALSAM_DATABASE_URL"] == (
        f"postgresql://{db_env['POSTGRES_USER']}:{PASSWORD}@db:5432/{db_env['POSTGRES_DB']}"
    )
    for name, value in server_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT / "deploy")  # no stray .env
    settings = load_settings()
    settings.validate_for_serving()
    assert settings.auth.secret_key is not None and settings.auth.secret_key.get_secret_value() == SECRET
    assert settings.redis_params == {"host": "redis", "port": 6379}
    assert settings.auth.allow_registration is False, "registration is closed unless the operator opens it"
    assert data["services"]["migrate"]["environment"]["BALSAM_DATABASE_URL"] == server_env["BALSAM_DATABASE_URL"]


def test_every_compose_variable_is_documented_in_env_example() -> None:
    example = (ROOT / ".env.example").read_text()
    for name in compose_vars():
        assert re.search(rf"^#?{name}=", example, re.MULTILINE), f"{name} is missing from .env.example"


# ---------------------------------------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def dockerignore_excludes(path: str) -> bool:
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace("**/", "")) for p in prefixes):
            excluded = not negate
    return excluded


def test_dockerfile_copies_existing_files_and_installs_pinned_deps() -> None:
    instructions = dockerfile_instructions()
    (base,) = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert re.fullmatch(r"python:3\.\d+-slim-\w+", base), "a slim, pinned Python base"
    copies = [shlex.split(rest)[:-1] for keyword, rest in instructions if keyword == "COPY"]
    assert copies
    for sources in copies:
        for source in sources:
            assert not source.startswith("--")
            assert (ROOT / source).exists(), f"COPY source {source} does not exist"
            assert not dockerignore_excludes(source), f"COPY source {source} is excluded by .dockerignore"
    for private in (".env", ".git", ".venv", ".balsam-dev", "tests", "balsam/server/__pycache__"):
        assert dockerignore_excludes(private), f"{private} must not reach the build context"

    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip install --no-compile -r /tmp/requirements.txt" in runs
    assert ["requirements/deploy.txt", "/tmp/requirements.txt"] in [
        shlex.split(rest) for keyword, rest in instructions if keyword == "COPY"
    ]
    assert "--no-deps /tmp/src" in runs
    pins = [line for line in (ROOT / "requirements/deploy.txt").read_text().splitlines() if line and line[0] != "#"]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.]+", line) for line in pins), "every dep pinned"


def test_dockerfile_runs_as_non_root_with_gunicorn_cmd() -> None:
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert keywords.index("USER") < keywords.index("CMD")
    assert "useradd --system --uid 10001 --gid balsam" in " ".join(rest for k, rest in instructions if k == "RUN")
    (cmd,) = [json.loads(rest) for keyword, rest in instructions if keyword == "CMD"]
    assert cmd == ["gunicorn", "-c", "/etc/balsam/gunicorn.conf.py", "balsam.server.main:app"]
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert 'with_name("gunicorn.conf.example.py")' in runs and "/etc/balsam/gunicorn.conf.py" in runs
    assert "ENV" in keywords and any("SERVER_HOST=0.0.0.0" in rest for k, rest in instructions if k == "ENV")
    assert "HEALTHCHECK" in keywords and "/readyz" in dict(instructions)["HEALTHCHECK"]


def test_image_cmd_loads_the_shipped_config_and_app(tmp_path: Path) -> None:
    """The CMD, with the symlinked config resolved, passes gunicorn's own configuration check."""
    import balsam.server

    config = Path(balsam.server.__file__).with_name("gunicorn.conf.example.py")
    env = {
        **os.environ,
        "BALSAM_AUTH_SECRET_KEY": SECRET,
        "BALSAM_DATABASE_URL": f"postgresql://balsam:{PASSWORD}@db:5432/balsam",
        "SERVER_HOST": "0.0.0.0",
        "SERVER_PORT": "8000",
    }
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", str(config), "balsam.server.main:app"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    missing_key = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", str(config), "balsam.server.main:app"],
        env={k: v for k, v in env.items() if k != "BALSAM_AUTH_SECRET_KEY"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing_key.returncode != 0 and "BALSAM_AUTH_SECRET_KEY" in missing_key.stdout + missing_key.stderr


# ---------------------------------------------------------------------------------------------- systemd units


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert line.endswith("]"), f"{path.name}: bad section header {line!r}"
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}: {line!r} outside a section or without ="
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "RestrictSUIDSGID": "yes",
}


def test_systemd_units_parse_and_use_real_commands() -> None:
    server = parse_unit(ROOT / "deploy" / "balsam.service")
    backup = parse_unit(ROOT / "deploy" / "balsam-backup.service")
    timer = parse_unit(ROOT / "deploy" / "balsam-backup.timer")

    service = server["Service"]
    assert shlex.split(service["ExecStart"][0])[1:] == [
        "-c",
        "/etc/balsam/gunicorn.conf.py",
        "balsam.server.main:app",
    ]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    pre = shlex.split(service["ExecStartPre"][0])
    _run_balsam_argv(["balsam", *pre[1:]])
    assert pre[1:] == ["server", "migrate"]
    assert service["User"] == ["balsam"] and service["KillMode"] == ["mixed"]

    run = backup["Service"]
    assert run["Type"] == ["oneshot"]
    argv = shlex.split(run["ExecStart"][0])
    _run_balsam_argv(["balsam", *argv[1:]])
    assert argv[1:3] == ["server", "backup"]
    backup_dir = dict(v.split("=", 1) for v in run["Environment"])["BALSAM_BACKUP_DIR"]
    assert run["ReadWritePaths"] == [backup_dir]

    for unit in (service, run):
        for key, value in HARDENING.items():
            assert unit.get(key) == [value], f"{key}={value}"

    assert timer["Timer"]["Unit"] == ["balsam-backup.service"]
    assert timer["Timer"]["Persistent"] == ["true"] and timer["Timer"]["OnCalendar"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]

    prune = parse_unit(ROOT / "deploy" / "balsam-prune.service")["Service"]
    prune_timer = parse_unit(ROOT / "deploy" / "balsam-prune.timer")
    argv = shlex.split(prune["ExecStart"][0])
    _run_balsam_argv(["balsam", *argv[1:]])
    assert argv[1:3] == ["server", "prune"] and prune["Type"] == ["oneshot"] and prune["User"] == ["balsam"]
    for key, value in HARDENING.items():
        assert prune.get(key) == [value], f"{key}={value}"
    assert prune_timer["Timer"]["Unit"] == ["balsam-prune.service"] and prune_timer["Timer"]["Persistent"] == ["true"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    bindir = str(Path(sys.executable).parent)
    for name in (
        "balsam.service",
        "balsam-backup.service",
        "balsam-backup.timer",
        "balsam-prune.service",
        "balsam-prune.timer",
    ):
        text = (ROOT / "deploy" / name).read_text().replace("/opt/balsam/venv/bin", bindir)
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(p) for p in sorted(tmp_path.iterdir()))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
