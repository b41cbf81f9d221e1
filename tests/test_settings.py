"""Settings: environment, `.env`, secret files, systemd credentials, and one-line error messages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from balsam.server.conf import LoginMethod, SettingsError, load_settings


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path) -> Iterator[Path]:
    """Run in an empty directory with no BALSAM_* variables, restoring everything afterwards."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    for name in list(os.environ):
        if name.startswith("BALSAM_") or name == "CREDENTIALS_DIRECTORY":
            del os.environ[name]
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(saved_cwd)
    os.environ.clear()
    os.environ.update(saved_env)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.auth.login_methods == [LoginMethod.password]
    assert settings.auth.token_ttl == 48 * 3600
    assert settings.redis_params is None
    assert settings.session_expiry_seconds == 300
    assert settings.auth.secret_key is None


def test_from_environment() -> None:
    os.environ.update(
        {
            "BALSAM_DATABASE_URL": "postgresql://u:pw@db:5432/balsam",
            "BALSAM_REDIS_PARAMS": '{"unix_socket_path": "/run/redis.sock"}',
            "BALSAM_LOG_LEVEL": "debug",
            "BALSAM_AUTH_SECRET_KEY": "k" * 32,
            "BALSAM_AUTH_TOKEN_TTL": "3600",
            "BALSAM_AUTH_LOGIN_METHODS": '["password", "oauth_device"]',
            "BALSAM_OAUTH_CLIENT_ID": "cid",
            "BALSAM_OAUTH_SCOPE": "openid",
        }
    )
    settings = load_settings()
    assert settings.sqlalchemy_url == "postgresql+psycopg2://u:pw@db:5432/balsam"
    assert settings.redis_params == {"unix_socket_path": "/run/redis.sock"}
    assert settings.log_level == "DEBUG"
    assert settings.secret_key() == "k" * 32
    assert settings.auth.token_ttl == 3600
    assert settings.auth.login_methods == [LoginMethod.password, LoginMethod.oauth_device]
    assert (settings.oauth.client_id, settings.oauth.scope) == ("cid", "openid")


def test_from_dotenv_with_env_taking_precedence(isolated_env: Path) -> None:
    (isolated_env / ".env").write_text(
        "BALSAM_LOG_LEVEL=WARNING\nBALSAM_AUTH_TOKEN_TTL=60\nBALSAM_OAUTH_CLIENT_ID=from-dotenv\n"
    )
    os.environ["BALSAM_LOG_LEVEL"] = "ERROR"
    settings = load_settings()
    assert settings.log_level == "ERROR"
    assert settings.auth.token_ttl == 60
    assert settings.oauth.client_id == "from-dotenv"


def test_secret_from_file(isolated_env: Path) -> None:
    secret = isolated_env / "secret"
    secret.write_text("file-secret-0123456789abcdef\n")
    os.environ["BALSAM_AUTH_SECRET_KEY_FILE"] = str(secret)
    os.environ["BALSAM_OAUTH_CLIENT_SECRET_FILE"] = str(secret)
    settings = load_settings()
    assert settings.secret_key() == "file-secret-0123456789abcdef"
    assert settings.oauth.client_secret is not None
    assert settings.oauth.client_secret.get_secret_value() == "file-secret-0123456789abcdef"


def test_secret_from_systemd_credentials(isolated_env: Path) -> None:
    creds = isolated_env / "creds"
    creds.mkdir()
    (creds / "balsam_auth_secret_key").write_text("credential-secret-0123456789")
    (creds / "balsam_database_url").write_text("postgresql://balsam@/balsam?host=/run/postgresql")
    os.environ["CREDENTIALS_DIRECTORY"] = str(creds)
    settings = load_settings()
    assert settings.secret_key() == "credential-secret-0123456789"
    assert settings.database_url.endswith("host=/run/postgresql")


def test_unreadable_secret_file_is_one_line() -> None:
    os.environ["BALSAM_AUTH_SECRET_KEY_FILE"] = "/nonexistent/secret"
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("Invalid setting BALSAM_AUTH_SECRET_KEY_FILE: cannot read /nonexistent/secret")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("BALSAM_AUTH_TOKEN_TTL", "soon", "Invalid setting BALSAM_AUTH_TOKEN_TTL: "),
        ("BALSAM_AUTH_TOKEN_TTL", "-5", "Invalid setting BALSAM_AUTH_TOKEN_TTL: Input should be greater than 0"),
        ("BALSAM_AUTH_LOGIN_METHODS", '["magic"]', "Invalid setting BALSAM_AUTH_LOGIN_METHODS: "),
        ("BALSAM_AUTH_ALGORITHM", "RS256", "Invalid setting BALSAM_AUTH_ALGORITHM: "),
        ("BALSAM_LOG_LEVEL", "loud", "Invalid setting BALSAM_LOG_LEVEL: "),
        ("BALSAM_DATABASE_URL", "mysql://x/y", "Invalid setting BALSAM_DATABASE_URL: "),
        ("BALSAM_REDIS_PARAMS", "{not json", "Invalid setting BALSAM_REDIS_PARAMS"),
        ("BALSAM_OAUTH_HTTP_TIMEOUT", "0", "Invalid setting BALSAM_OAUTH_HTTP_TIMEOUT: "),
        ("BALSAM_SESSION_EXPIRY_SECONDS", "never", "Invalid setting BALSAM_SESSION_EXPIRY_SECONDS: "),
    ],
)
def test_invalid_setting_is_one_line_naming_it(name: str, value: str, expected: str) -> None:
    os.environ[name] = value
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(expected), message


def test_secrets_not_echoed_in_errors_or_log() -> None:
    os.environ["BALSAM_DATABASE_URL"] = "mysql://user:hunter2@db/x"
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "hunter2" not in str(err.value)
    os.environ["BALSAM_DATABASE_URL"] = "postgresql://user:hunter2@db/x"
    os.environ["BALSAM_AUTH_SECRET_KEY"] = "topsecret-0123456789"
    os.environ["BALSAM_OAUTH_CLIENT_SECRET"] = "oauth-hunter3"
    shown = str(load_settings().redacted())
    assert "hunter2" not in shown and "topsecret" not in shown and "hunter3" not in shown
    assert "user:***@db" in shown


def test_serving_requires_a_secret_key_unless_dev_mode() -> None:
    settings = load_settings()
    with pytest.raises(SettingsError, match=r"^Invalid setting BALSAM_AUTH_SECRET_KEY: not set"):
        settings.validate_for_serving()
    os.environ["BALSAM_AUTH_SECRET_KEY"] = "short"
    with pytest.raises(SettingsError, match="at least 16 characters"):
        load_settings().validate_for_serving()
    os.environ.pop("BALSAM_AUTH_SECRET_KEY")
    os.environ["BALSAM_DEV_MODE"] = "1"
    dev = load_settings()
    dev.validate_for_serving()
    assert len(dev.secret_key()) >= 32


def test_app_refuses_to_start_without_key(tmp_path: Path) -> None:
    """The real entry point: gunicorn's config fails in the master with the one-line message."""
    import subprocess
    import sys

    from tests.serving import GUNICORN_CONF

    env = {k: v for k, v in os.environ.items() if not k.startswith("BALSAM_")}
    env.update({"SERVER_PORT": "0", "GUNICORN_WORKERS": "1"})
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "balsam.server.main:app"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "Invalid setting BALSAM_AUTH_SECRET_KEY: not set" in result.stderr + result.stdout


def test_pool_sized_from_request_threads() -> None:
    """By default every request thread has a pooled connection (plus two for the sweep and websocket logins);
    an explicitly smaller pool lowers the thread count instead, so requests wait for a thread, not a connection."""
    default = load_settings()
    assert default.pool_size() == default.request_threads + 2
    assert default.request_thread_count() == default.request_threads
    assert load_settings(request_threads=20).pool_size() == 22
    small = load_settings(request_threads=16, database_pool_size=6, database_max_overflow=0)
    assert small.pool_size() == 6 and small.request_thread_count() == 4
    assert load_settings(request_threads=4, database_pool_size=1, database_max_overflow=0).request_thread_count() == 1


def test_pgbouncer_mode_and_the_direct_url(tmp_path: Path) -> None:
    from balsam.server.db.engine import admin_connect_args, connect_args

    settings = load_settings()
    assert settings.database_pgbouncer is False and settings.database_direct_url is None
    assert connect_args(settings) == {"options": "-c timezone=UTC -c default_transaction_read_only=on"}
    assert settings.direct_sqlalchemy_url == settings.sqlalchemy_url

    direct = tmp_path / "direct-url"
    direct.write_text("postgresql://admin:s3cret@db:5432/balsam\n")
    os.environ.update(
        {
            "BALSAM_DATABASE_URL": "postgresql://api:pw@pgbouncer:6432/balsam",
            "BALSAM_DATABASE_PGBOUNCER": "true",
            "BALSAM_DATABASE_DIRECT_URL_FILE": str(direct),
        }
    )
    settings = load_settings()
    assert connect_args(settings) == {}  # PgBouncer refuses libpq startup options
    assert settings.direct_sqlalchemy_url == "postgresql+psycopg2://admin:s3cret@db:5432/balsam"
    assert not settings.admin_reaches_pgbouncer()
    assert admin_connect_args(settings) == {"options": "-c timezone=UTC"}
    assert settings.redacted()["database_direct_url"] == "postgresql://admin:***@db:5432/balsam"

    del os.environ["BALSAM_DATABASE_DIRECT_URL_FILE"]
    settings = load_settings()
    assert settings.admin_reaches_pgbouncer() and admin_connect_args(settings) == {}
    assert settings.direct_database_url == "postgresql://api:pw@pgbouncer:6432/balsam"


def test_direct_url_must_be_postgres() -> None:
    os.environ["BALSAM_DATABASE_DIRECT_URL"] = "mysql://x@y/z"
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value) == "Invalid setting BALSAM_DATABASE_DIRECT_URL: Value error, must be a postgresql:// URL"


def test_backup_refuses_pgbouncer_without_a_direct_url(capsys: pytest.CaptureFixture[str]) -> None:
    from balsam.server.cli import main as cli_main

    os.environ.update({"BALSAM_DATABASE_PGBOUNCER": "1", "BALSAM_BACKUP_DIR": "."})
    assert cli_main(["backup"]) == 2
    assert "set BALSAM_DATABASE_DIRECT_URL" in capsys.readouterr().err
