"""Auth (spec §1): discovery, registration, password login, `me`, and the OAuth routes.

Captures: alice_id, bob_id, token_alice, token_bob; with the device flow enabled also device_code, user_code.
The OAuth steps run whatever the configuration: with password login only, both servers answer 404 there (see the
README for an OAuth-enabled upstream). No step reaches the provider itself: there is none here.
"""

from __future__ import annotations

from typing import Any

from tools.differential.sequences.common import get, post
from tools.differential.steps import ANON, BAD_TOKEN, Step

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
OAUTH_ERROR_REDIRECT = (
    "spec §12.11: a provider's error redirect carries no `code`; upstream answers 422 instead of handling it"
)


def _register(user: str) -> Step:
    return post(
        "auth.register",
        "/auth/password/register",
        {"username": f"{user}-{{run}}", "password": f"pw-{user}"},
        user=ANON,
        capture={f"{user}_id": "id"},
    )


def _login(user: str) -> Step:
    return Step(
        "auth.login",
        "POST",
        "/auth/password/login",
        form={"username": f"{user}-{{run}}", "password": f"pw-{user}"},
        user=ANON,
        capture={f"token_{user}": "access_token"},
    )


def _form(name: str, path: str, form: dict[str, str], **kw: Any) -> Step:
    return Step(name, "POST", path, form=form, user=ANON, **kw)


STEPS: list[Step] = [
    get("auth.how", "/auth/how", user=ANON),
    _register("alice"),
    _register("bob"),
    post("auth.register.duplicate", "/auth/password/register", {"username": "alice-{run}", "password": "x"}, user=ANON),
    post("auth.register.missing_password", "/auth/password/register", {"username": "carol-{run}"}, user=ANON),
    post(
        "auth.register.username_list",
        "/auth/password/register",
        {"username": ["carol"], "password": "x"},
        user=ANON,
    ),
    post(
        "auth.register.password_int",
        "/auth/password/register",
        {"username": "dave-{run}", "password": 12345},
        user=ANON,
        note="pydantic 1 turns an int into a str field's text",
    ),
    post(
        "auth.register.unknown_field",
        "/auth/password/register",
        {"username": "erin-{run}", "password": "x", "email": "e@example.org"},
        user=ANON,
    ),
    Step("auth.register.empty_body", "POST", "/auth/password/register", raw_body=b"", user=ANON),
    Step("auth.register.malformed_json", "POST", "/auth/password/register", raw_body=b'{"username": ', user=ANON),
    _login("alice"),
    _login("bob"),
    _form("auth.login.wrong_password", "/auth/password/login", {"username": "alice-{run}", "password": "nope"}),
    _form("auth.login.unknown_user", "/auth/password/login", {"username": "nobody-{run}", "password": "x"}),
    _form("auth.login.missing_password", "/auth/password/login", {"username": "alice-{run}"}),
    _form(
        "auth.login.grant_type_password",
        "/auth/password/login",
        {"username": "alice-{run}", "password": "pw-alice", "grant_type": "password", "scope": ""},
    ),
    _form(
        "auth.login.bad_grant_type",
        "/auth/password/login",
        {"username": "alice-{run}", "password": "pw-alice", "grant_type": "client_credentials"},
    ),
    Step(
        "auth.login.json_body",
        "POST",
        "/auth/password/login",
        body={"username": "alice-{run}", "password": "pw-alice"},
        user=ANON,
    ),
    get("auth.me", "/auth/password/me"),
    get("auth.me", "/auth/password/me", user="bob"),
    get("auth.me.anonymous", "/auth/password/me", user=ANON),
    get("auth.me.bad_token", "/auth/password/me", user=BAD_TOKEN),
    # Device flow (spec §1.4) and the authorization-code routes (§1.5).
    _form(
        "auth.device.login",
        "/auth/device/login",
        {"client_id": "{client_uuid}", "scope": ""},
        capture={"device_code": "device_code", "user_code": "user_code"},
    ),
    _form(
        "auth.device.login.reused_client_id",
        "/auth/device/login",
        {"client_id": "{client_uuid}"},
        note="spec §12.11: upstream's primary-key clash",
    ),
    _form("auth.device.login.bad_client_id", "/auth/device/login", {"client_id": "not-a-uuid"}),
    _form("auth.device.login.missing_client_id", "/auth/device/login", {"scope": ""}),
    _form(
        "auth.device.token.pending",
        "/auth/device/token",
        {"grant_type": DEVICE_GRANT, "device_code": "{device_code}", "client_id": "{client_uuid}"},
    ),
    _form(
        "auth.device.token.bad_grant",
        "/auth/device/token",
        {"grant_type": "password", "device_code": "x", "client_id": "{client_uuid}"},
    ),
    _form(
        "auth.device.token.unknown_code",
        "/auth/device/token",
        {"grant_type": DEVICE_GRANT, "device_code": "nope", "client_id": "{client_uuid}"},
    ),
    _form("auth.device.token.missing_fields", "/auth/device/token", {"grant_type": DEVICE_GRANT}),
    get(
        "auth.oauth.verify",
        "/auth/oauth/ALCF/login/device",
        ("user_code", "{user_code}"),
        user=ANON,
        capture={"device_state": "location:state"},
    ),
    get("auth.oauth.verify.unknown_code", "/auth/oauth/ALCF/login/device", ("user_code", "BCDF-GHJK"), user=ANON),
    get("auth.oauth.verify.missing_code", "/auth/oauth/ALCF/login/device", user=ANON),
    get("auth.oauth.login", "/auth/oauth/ALCF/login", user=ANON, capture={"browser_state": "location:state"}),
    get("auth.oauth.login.unknown_provider", "/auth/oauth/NOPE/login", user=ANON),
    get(
        "auth.oauth.callback.unknown_state",
        "/auth/oauth/ALCF/callback",
        ("code", "abc"),
        ("state", "BROWSER-FLOW nope"),
        user=ANON,
    ),
    get(
        "auth.oauth.callback.forged_denial",
        "/auth/oauth/ALCF/callback",
        ("code", "x"),
        ("state", "DEVICE-FLOW {user_code} forged"),
        ("error", "access_denied"),
        user=ANON,
        deliberate="spec §12.11: upstream honours an error callback without checking its state, so anyone who "
        "knows a user_code can deny it; we check the state first. Only a browser calls this route",
    ),
    _form(
        "auth.device.token.after_forged_denial",
        "/auth/device/token",
        {"grant_type": DEVICE_GRANT, "device_code": "{device_code}", "client_id": "{client_uuid}"},
        note="spec §12.11: upstream lets an unverified state deny the attempt",
    ),
    get("auth.oauth.callback.missing_state", "/auth/oauth/ALCF/callback", ("code", "abc"), user=ANON),
    get(
        "auth.oauth.callback.denied",
        "/auth/oauth/ALCF/callback",
        ("state", "{device_state}"),
        ("error", "access_denied"),
        ("error_description", "The user said no"),
        user=ANON,
        deliberate=OAUTH_ERROR_REDIRECT,
    ),
    _form(
        "auth.device.token.after_denial",
        "/auth/device/token",
        {"grant_type": DEVICE_GRANT, "device_code": "{device_code}", "client_id": "{client_uuid}"},
    ),
    get(
        "auth.oauth.callback.browser_error",
        "/auth/oauth/ALCF/callback",
        ("state", "{browser_state}"),
        ("error", "server_error"),
        user=ANON,
        deliberate=OAUTH_ERROR_REDIRECT,
    ),
]
