"""Server settings: one `Settings` object, read from the environment and `.env`.

Prefixes: `BALSAM_` (core), `BALSAM_AUTH_` (tokens and login methods), `BALSAM_OAUTH_` (OAuth provider).
A secret can also come from a file: `<NAME>_FILE=/path` (e.g. `BALSAM_AUTH_SECRET_KEY_FILE`), or from
systemd's `$CREDENTIALS_DIRECTORY/<name in lower case>` (e.g. `balsam_auth_secret_key`).
"""

from __future__ import annotations

import enum
import json
import logging
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

logger = logging.getLogger(__name__)


class LoginMethod(str, enum.Enum):
    password = "password"
    oauth_device = "oauth_device"
    oauth_authcode = "oauth_authcode"

    def __str__(self) -> str:
        # The published client compares against Python's enum repr, e.g. "LoginMethod.password".
        return f"LoginMethod.{self.value}"


# Pool connections beyond the request threads: the session sweep and websocket logins run in other threads.
_POOL_RESERVE = 2


# pg_dump and pg_restore send session-level SETs, which PgBouncer in transaction mode would leave behind on
# server connections that API requests then get.
PGBOUNCER_REFUSED = (
    "balsam: {command}: BALSAM_DATABASE_PGBOUNCER is on: set BALSAM_DATABASE_DIRECT_URL to PostgreSQL itself "
    "(pg_dump and pg_restore need a session of their own, which PgBouncer in transaction mode does not give)"
)


class SettingsError(SystemExit):
    """Raised for an invalid configuration; its message is one line that names the setting."""


class SecretFileSource(PydanticBaseSettingsSource):
    """Reads `<PREFIX><FIELD>_FILE` paths and systemd credentials for the fields listed in `secret_fields`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ does all the work

    def __call__(self) -> dict[str, Any]:
        cls = self.settings_cls
        prefix = cls.model_config.get("env_prefix", "")
        found: dict[str, Any] = {}
        for name in getattr(cls, "secret_fields", ()):
            env_name = f"{prefix}{name}".upper()
            path: str | None = os.environ.get(f"{env_name}_FILE")
            if path is None and (cred_dir := os.environ.get("CREDENTIALS_DIRECTORY")):
                candidate = Path(cred_dir) / env_name.lower()
                path = str(candidate) if candidate.exists() else None
            if path is None:
                continue
            try:
                found[name] = Path(path).read_text().strip()
            except OSError as exc:
                raise SettingsError(f"Invalid setting {env_name}_FILE: cannot read {path}: {exc.strerror}") from exc
        return found


class _Base(BaseSettings):
    secret_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit values, the environment, secret files, then `.env`.
        return (init_settings, env_settings, SecretFileSource(settings_cls), dotenv_settings)


def _common_config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix, env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )


class AuthSettings(_Base):
    model_config = _common_config("BALSAM_AUTH_")
    secret_fields = ("secret_key",)

    secret_key: SecretStr | None = Field(None, description="Key that signs access tokens (HS*). Required.")
    algorithm: str = Field("HS256", description="JWT signing algorithm.")
    token_ttl: int = Field(48 * 3600, gt=0, description="Access-token lifetime in seconds.")
    user_check_seconds: float = Field(
        2.0,
        ge=0,
        le=5,
        description="Each worker remembers for this long that a token's account exists, so most requests skip "
        "the lookup; a deleted account's unexpired token stops working within this time (0: look up every "
        "request).",
    )
    login_methods: list[LoginMethod] = Field(
        default_factory=lambda: [LoginMethod.password],
        description='Enabled login methods, a JSON list, e.g. ["password", "oauth_device"].',
    )
    allow_registration: bool = Field(
        False,
        description="Let anyone who reaches the server create a password account with `POST /auth/password/register`. "
        "Off: that route answers 403, and accounts come from `balsam server user add` or OAuth. "
        "`balsam server dev` turns it on.",
    )
    login_failures_per_user: int = Field(
        10,
        ge=0,
        description="Distinct wrong passwords one username may get within `BALSAM_AUTH_LOGIN_FAILURE_WINDOW`; "
        "then its password logins are refused (401 with Retry-After, no hashing) until that window ends. "
        "A password that already failed counts once however often it is re-sent. 0: no limit.",
    )
    login_failures_per_address: int = Field(
        100,
        ge=0,
        description="Distinct (username, password) failures one client address (for IPv6, its /64) may cause within "
        "the window before its password logins are refused. Behind a proxy, set `FORWARDED_ALLOW_IPS` so that this "
        "is the client's address. 0: no limit.",
    )
    login_failure_window: int = Field(
        900, gt=0, description="Seconds of the login throttling window, counted from the first failure in it."
    )

    @field_validator("algorithm")
    @classmethod
    def _hmac_only(cls, value: str) -> str:
        if value not in {"HS256", "HS384", "HS512"}:
            raise ValueError("must be one of HS256, HS384, HS512")
        return value


class OAuthSettings(_Base):
    model_config = _common_config("BALSAM_OAUTH_")
    secret_fields = ("client_secret",)

    provider_name: str = Field("ALCF", description="Name of the provider in the OAuth routes.")
    client_id: str = Field("", description="OAuth client id registered with the provider.")
    client_secret: SecretStr | None = Field(None, description="OAuth client secret.")
    request_uri: str = Field("", description="Provider authorization endpoint.")
    token_uri: str = Field("", description="Provider token endpoint.")
    user_info_uri: str = Field("", description="Provider user-info endpoint; must return a `username`.")
    scope: str = Field("read_basic_user_data", description="Scope requested from the provider.")
    http_timeout: float = Field(10.0, gt=0, description="Timeout in seconds for calls to the provider.")


class Settings(_Base):
    model_config = _common_config("BALSAM_")
    secret_fields = ("database_url", "database_direct_url", "metrics_token")

    database_url: str = Field(
        "postgresql://postgres@localhost:5432/balsam",
        description="SQLAlchemy/libpq URL of the PostgreSQL database (or of the PgBouncer in front of it).",
    )
    database_pgbouncer: bool = Field(
        False,
        description="`BALSAM_DATABASE_URL` leads to PgBouncer in `pool_mode = transaction` (docs/scaling.md): "
        "connect without libpq startup options, which PgBouncer refuses, and rely on no session state across "
        "transactions; each new connection is proven with one `SELECT 1`, so that requests wait out a database "
        "restart behind PgBouncer instead of failing. It gives up the server-side read-only default of the API's connections "
        "(`default_transaction_read_only`, a safety net that makes a stray write outside a transaction fail) and "
        "the UTC `TimeZone` setting (the service writes and compares naive UTC timestamps itself, so the "
        "server's TimeZone does not change what it stores or answers).",
    )
    database_direct_url: str | None = Field(
        None,
        description="URL of PostgreSQL itself, bypassing PgBouncer, for `balsam server migrate`, `backup`, "
        "`restore` and `prune`; unset: they use `BALSAM_DATABASE_URL`. With `BALSAM_DATABASE_PGBOUNCER` on, "
        "`backup` and `restore` require it (pg_dump and pg_restore set session parameters). Best given as "
        "`BALSAM_DATABASE_DIRECT_URL_FILE`.",
    )
    request_threads: int = Field(
        8,
        ge=1,
        description="Threads per worker process that run request handlers; each holds at most one database "
        "connection. With the pool sized from it (below), no request waits for a connection.",
    )
    database_pool_size: int | None = Field(
        None,
        ge=1,
        description="Connections kept open per worker process; unset: `BALSAM_REQUEST_THREADS` + 2 (one per "
        "request thread, plus the session sweep and websocket logins). Mind PostgreSQL's `max_connections`: "
        "workers x (pool + overflow) must fit.",
    )
    database_max_overflow: int = Field(
        2, ge=0, description="Extra connections a worker may open in a burst (closed again when returned)."
    )
    database_reconnect_seconds: float = Field(
        10.0,
        ge=0,
        description="How long a request waits for the database to accept connections again (e.g. during a "
        "restart) before it answers 503.",
    )
    redis_params: dict[str, Any] | None = Field(
        None,
        description='redis-py connection arguments as JSON, e.g. {"unix_socket_path": "/run/redis/redis.sock"}; '
        "unset or null disables pub/sub.",
    )
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR.")
    log_dir: Path | None = Field(None, description="Directory for log files; unset logs to stderr.")
    dev_mode: bool = Field(
        False, description="Development mode: allows a missing secret key (a random per-process key is used)."
    )
    session_expiry_seconds: int = Field(300, gt=0, description="A session with no tick for this long expires.")
    session_sweep_interval_seconds: int = Field(60, gt=0, description="How often the server sweeps expired sessions.")
    metrics_enabled: bool = Field(
        False, description="Serve Prometheus metrics at `/metrics` (docs/operations.md). Off: the route does not exist."
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="When set, `/metrics` requires `Authorization: Bearer <token>` (Prometheus: "
        "`authorization.credentials_file`). Best given as `BALSAM_METRICS_TOKEN_FILE`.",
    )
    metrics_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a worker reuses the job and session counts it read from the database for `/metrics`, "
        "so that frequent scrapes do not repeat the aggregate query.",
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value

    @field_validator("database_url", "database_direct_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = value.split("://", 1)[0]
        if scheme not in {"postgresql", "postgres", "postgresql+psycopg2"}:
            raise ValueError("must be a postgresql:// URL")
        return value

    def pool_size(self) -> int:
        return self.database_pool_size or self.request_threads + _POOL_RESERVE

    def request_thread_count(self) -> int:
        """Request threads, lowered to what an explicitly smaller pool can serve without queueing."""
        fits = self.pool_size() + self.database_max_overflow - _POOL_RESERVE
        return max(1, min(self.request_threads, fits))

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg2 driver spelled out."""
        return _psycopg2_url(self.database_url)

    @property
    def direct_database_url(self) -> str:
        """PostgreSQL itself, for the admin commands: the direct URL when set, else the database URL."""
        return self.database_direct_url or self.database_url

    @property
    def direct_sqlalchemy_url(self) -> str:
        return _psycopg2_url(self.direct_database_url)

    def admin_reaches_pgbouncer(self) -> bool:
        """True when the admin commands' connection goes through PgBouncer in transaction mode."""
        return self.database_pgbouncer and self.database_direct_url is None

    def secret_key(self) -> str:
        assert self.auth.secret_key is not None, "validate_for_serving() resolves the key"
        return self.auth.secret_key.get_secret_value()

    def validate_for_serving(self) -> None:
        """Checks that only matter for a running server (migrations and user admin don't need a key)."""
        if self.auth.secret_key is None or not self.auth.secret_key.get_secret_value():
            if not self.dev_mode:
                raise SettingsError(
                    "Invalid setting BALSAM_AUTH_SECRET_KEY: not set. Set it (or BALSAM_AUTH_SECRET_KEY_FILE); "
                    "only BALSAM_DEV_MODE=1 allows a random per-process key."
                )
            logger.warning("BALSAM_DEV_MODE: using a random secret key; tokens die with this process")
            self.auth.secret_key = SecretStr(secrets.token_urlsafe(32))
        if len(self.secret_key()) < 16 and not self.dev_mode:
            raise SettingsError("Invalid setting BALSAM_AUTH_SECRET_KEY: must be at least 16 characters")

    def redacted(self) -> dict[str, Any]:
        """The effective settings with secrets hidden, for the start-up log."""
        data = self.model_dump(mode="json")
        data["database_url"] = _redact_url(self.database_url)
        if self.database_direct_url is not None:
            data["database_direct_url"] = _redact_url(self.database_direct_url)
        data["auth"]["secret_key"] = "***" if self.auth.secret_key else None
        data["oauth"]["client_secret"] = "***" if self.oauth.client_secret else None
        data["metrics_token"] = "***" if self.metrics_token else None
        return data


def _psycopg2_url(url: str) -> str:
    _, rest = url.split("://", 1)
    return f"postgresql+psycopg2://{rest}"


def _redact_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if at and ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}{sep}{creds}{at}{host}"


def _env_name(model: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic error location into the environment variable the operator has to fix."""
    nested: dict[str, type[BaseSettings]] = {"auth": AuthSettings, "oauth": OAuthSettings}
    if loc and loc[0] in nested:
        model, loc = nested[str(loc[0])], loc[1:]
    prefix = str(model.model_config.get("env_prefix", ""))
    return (prefix + str(loc[0] if loc else "")).upper()


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into a one-line `SettingsError`."""
    try:
        sub = {key: overrides.pop(key) for key in ("auth", "oauth") if key in overrides}
        settings = Settings(
            auth=sub.get("auth") or _build(AuthSettings),
            oauth=sub.get("oauth") or _build(OAuthSettings),
            **overrides,
        )
    except ValidationError as exc:
        raise _one_line(exc, Settings) from None
    return settings


def _build(model: type[_Base]) -> Any:
    try:
        return model()
    except ValidationError as exc:
        raise _one_line(exc, model) from None


def _one_line(exc: ValidationError, model: type[BaseSettings]) -> SettingsError:
    err = exc.errors()[0]
    name = _env_name(model, tuple(err["loc"]))
    value = err.get("input")
    shown = "" if isinstance(value, dict) or name.endswith(("SECRET_KEY", "SECRET", "URL")) else f" (got {value!r})"
    more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return SettingsError(f"Invalid setting {name}: {err['msg']}{shown}{more}")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings object (cached; tests clear the cache to reload)."""
    return load_settings()


def settings_as_json() -> str:
    return json.dumps(get_settings().redacted(), sort_keys=True)
