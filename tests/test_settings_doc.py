"""docs/settings.md and .env.example are generated from the settings classes and must be up to date."""

from __future__ import annotations

import re
import subprocess
import sys

from balsam.server.conf import AuthSettings, OAuthSettings, Settings
from balsam.server.ops import settings_doc
from balsam.server.ops.backup import BackupSettings
from tests.ops_helpers import ROOT

STALE = "is stale: regenerate with `python -m balsam.server.ops.settings_doc{flag} > {path}`"


def test_settings_md_is_up_to_date() -> None:
    path = ROOT / "docs" / "settings.md"
    assert path.read_text() == settings_doc.render_markdown(), STALE.format(flag="", path="docs/settings.md")


def test_env_example_is_up_to_date() -> None:
    path = ROOT / ".env.example"
    assert path.read_text() == settings_doc.render_env_example(), STALE.format(
        flag=" --env-example", path=".env.example"
    )


def test_every_settings_field_is_documented() -> None:
    names = settings_doc.all_names()
    for model in (Settings, AuthSettings, OAuthSettings, BackupSettings):
        prefix = str(model.model_config["env_prefix"])
        for field in model.model_fields:
            if model is Settings and field in {"auth", "oauth"}:
                continue
            assert f"{prefix}{field}".upper() in names


def test_gunicorn_environment_contract_matches_the_config_file() -> None:
    conf = (ROOT / "balsam" / "server" / "gunicorn.conf.example.py").read_text()
    read = set(re.findall(r"""(?:environ\.get|env_int|env_switch)\(\s*["']([A-Z_]+)["']""", conf))
    documented = {var.name for var in settings_doc.GUNICORN_ENV}
    assert read - {"BALSAM_LOG_DIR"} == documented  # BALSAM_LOG_DIR is a core setting, documented there


def test_env_example_is_a_loadable_dotenv_without_a_working_secret() -> None:
    """Copied to `.env` as is, the example parses, but the server refuses to start: no default secret."""
    from dotenv import dotenv_values

    values = dotenv_values(ROOT / ".env.example")
    assert values == {"BALSAM_AUTH_SECRET_KEY": "", "POSTGRES_PASSWORD": ""}


def test_generator_cli_writes_the_same_output() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "balsam.server.ops.settings_doc"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out == settings_doc.render_markdown()
