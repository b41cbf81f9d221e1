"""Generate docs/settings.md and .env.example from the settings classes.

    python -m balsam.server.ops.settings_doc             > docs/settings.md
    python -m balsam.server.ops.settings_doc --env-example > .env.example

tests/test_settings_doc.py fails when either file is stale.
"""

from __future__ import annotations

import argparse
import enum
import json
import re
import sys
from dataclasses import dataclass
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from balsam.server.conf import AuthSettings, OAuthSettings, Settings, _Base
from balsam.server.ops.backup import BackupSettings

REGENERATE = "python -m balsam.server.ops.settings_doc"


@dataclass(frozen=True)
class EnvVar:
    name: str
    type: str
    default: str  # "" when unset
    description: str
    secret: bool = False
    required: bool = False


@dataclass(frozen=True)
class Group:
    title: str
    intro: str
    variables: tuple[EnvVar, ...]


# Read by balsam/server/gunicorn.conf.example.py (plain environment, no `.env`): the process manager's contract.
GUNICORN_ENV = (
    EnvVar("BALSAM_BIND", "str", "", "Full bind address, e.g. `unix:/run/balsam/balsam.sock`; overrides the next two."),
    EnvVar("SERVER_HOST", "str", "127.0.0.1", "Address to listen on (TCP)."),
    EnvVar("SERVER_PORT", "int", "8000", "Port to listen on (TCP)."),
    EnvVar("GUNICORN_WORKERS", "int", "2 x CPUs, at most 8", "Worker processes."),
    EnvVar("GUNICORN_TIMEOUT", "int", "60", "Seconds a worker may stay silent before the master kills it."),
    EnvVar(
        "GUNICORN_GRACEFUL_TIMEOUT",
        "int",
        "30",
        "Seconds old workers get to finish in-flight requests on reload (HUP) or stop (TERM).",
    ),
    EnvVar(
        "GUNICORN_KEEPALIVE",
        "int",
        "2",
        "Seconds an idle keep-alive connection stays open. Keep it clear of the site agent's poll intervals"
        " (about 1 s, then 5 s and more): see the gunicorn config file.",
    ),
    EnvVar(
        "GUNICORN_ACCESS_LOG",
        "str",
        "on",
        "`on` or `off` (also true/false, 1/0, yes/no; anything else stops gunicorn). `off`: no access log, for a"
        " service behind a proxy that keeps one; `on`: one line per request, to `BALSAM_LOG_DIR`/gunicorn-access.log"
        " or stdout.",
    ),
    EnvVar(
        "FORWARDED_ALLOW_IPS",
        "str",
        "127.0.0.1",
        "Proxies whose X-Forwarded-* headers are trusted (comma-separated; `*` for any).",
    ),
)

# Read by the gunicorn hooks in balsam.server.serving (process environment of the master).
SERVING_ENV = (
    EnvVar(
        "PROMETHEUS_MULTIPROC_DIR",
        "path",
        "a fresh directory per start",
        "Directory of the workers' metric files (prometheus-client multiprocess mode). Unset: the master makes "
        "`balsam-metrics-*` under `$RUNTIME_DIRECTORY` or the temporary directory and removes it on exit. Set: "
        "used as is and emptied at start; one per gunicorn instance.",
    ),
)

# Only docker-compose.yml reads these (interpolation from `.env` next to it).
COMPOSE_ENV = (
    EnvVar(
        "POSTGRES_PASSWORD",
        "str",
        "",
        "Password of the `balsam` role in the compose PostgreSQL; compose refuses to start without it. "
        "Use URL-safe characters (e.g. `openssl rand -hex 24`): it is embedded in the database URL.",
        secret=True,
        required=True,
    ),
    EnvVar(
        "BALSAM_PUBLISH",
        "str",
        "127.0.0.1:8000",
        "Host address:port where compose publishes the API (put a TLS proxy in front).",
    ),
)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    text = str(annotation)
    text = re.sub(r"\b(?:[a-z_]+\.)+([A-Za-z_]+)", r"\1", text)
    return text.replace("typing.", "").replace("NoneType", "None")


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return ""
    else:
        value = field.default
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=lambda v: v.value if isinstance(v, enum.Enum) else str(v))
    return str(value)


def _from_model(model: type[_Base], skip: tuple[str, ...] = ()) -> tuple[EnvVar, ...]:
    prefix = str(model.model_config.get("env_prefix", ""))
    secrets = set(getattr(model, "secret_fields", ()))
    found = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        required = (model, name) == (AuthSettings, "secret_key")
        found.append(
            EnvVar(
                name=f"{prefix}{name}".upper(),
                type=_type_name(field.annotation),
                default=_default(field),
                description=field.description or "",
                secret=name in secrets,
                required=required,
            )
        )
    return tuple(found)


def groups() -> list[Group]:
    return [
        Group(
            "Core (`BALSAM_`)",
            "Read by every server process, `balsam server migrate` and `balsam server user`.",
            _from_model(Settings, skip=("auth", "oauth")),
        ),
        Group(
            "Authentication (`BALSAM_AUTH_`)", "Token signing and the enabled login methods.", _from_model(AuthSettings)
        ),
        Group(
            "OAuth provider (`BALSAM_OAUTH_`)",
            "Only used when `BALSAM_AUTH_LOGIN_METHODS` includes an `oauth_*` method.",
            _from_model(OAuthSettings),
        ),
        Group(
            "Backups (`BALSAM_BACKUP_`)",
            "Defaults for `balsam server backup` and `balsam server restore`; their flags override them.",
            _from_model(BackupSettings),
        ),
        Group(
            "Gunicorn (process environment only)",
            "Read by `balsam/server/gunicorn.conf.example.py` when gunicorn starts and on every HUP, from the "
            "environment of the gunicorn master (not from `.env`); the last one by its hooks (balsam.server.serving).",
            GUNICORN_ENV + SERVING_ENV,
        ),
        Group(
            "Docker Compose only",
            "Interpolated by `docker compose` from the `.env` file next to `docker-compose.yml`.",
            COMPOSE_ENV,
        ),
    ]


def all_names() -> set[str]:
    return {var.name for group in groups() for var in group.variables}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    out = [
        "# Settings reference",
        "",
        f"<!-- Generated by `{REGENERATE} > docs/settings.md`; do not edit. tests/test_settings_doc.py checks it. -->",
        "",
        "The server reads its settings from, in order of precedence: the process environment, secret files, and a "
        "`.env` file in its working directory (the same `NAME=value` lines as the environment; see `.env.example`). "
        "Names are case-insensitive. A JSON value (lists, objects) is written as JSON, e.g. "
        '`BALSAM_AUTH_LOGIN_METHODS=["password"]`.',
        "",
        "**Secrets** (marked *secret* below) can also come from a file: set `<NAME>_FILE=/path/to/file` (e.g. "
        "`BALSAM_AUTH_SECRET_KEY_FILE`), or, under systemd, pass a credential named after the variable in lower "
        "case (`LoadCredential=balsam_auth_secret_key:/etc/balsam/secret_key`); it is read from "
        "`$CREDENTIALS_DIRECTORY`.",
        "",
        "Each worker builds its settings when it starts, so a reload (`kill -HUP <gunicorn master>`) applies changes "
        "made to `.env` or to secret files; changes to the master's environment need a restart (docs/upgrade.md).",
        "",
    ]
    for group in groups():
        out += [
            f"## {group.title}",
            "",
            group.intro,
            "",
            "| Variable | Type | Default | Description |",
            "|---|---|---|---|",
        ]
        for var in group.variables:
            notes = []
            if var.required:
                notes.append("**required**")
            if var.secret:
                notes.append("*secret*")
            note = f" ({', '.join(notes)})" if notes else ""
            default = f"`{_cell(var.default)}`" if var.default else "unset"
            out.append(f"| `{var.name}` | `{_cell(var.type)}` | {default} | {_cell(var.description)}{note} |")
        out.append("")
    return "\n".join(out)


def render_env_example() -> str:
    out = [
        "# Balsam service settings: copy to `.env` and edit. Every setting is listed with its default.",
        f"# Generated by `{REGENERATE} --env-example > .env.example`; do not edit. Reference: docs/settings.md",
        "#",
        "# Lines starting with `#` are ignored; uncomment a line to change a setting. The environment takes",
        "# precedence over this file. Secrets can instead come from files: <NAME>_FILE=/path.",
        "# Docker Compose reads this file too (for the ${...} references in docker-compose.yml).",
    ]
    for group in groups():
        out += ["", f"# ---- {group.title.replace('`', '')} ----"]
        for var in group.variables:
            out.append(f"# {var.description} [{var.type}]".replace("`", ""))
            if var.required:
                out.append(f"{var.name}=")
            else:
                out.append(f"#{var.name}={var.default}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-example", action="store_true", help="print .env.example instead of docs/settings.md")
    args = parser.parse_args(argv)
    sys.stdout.write(render_env_example() if args.env_example else render_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
