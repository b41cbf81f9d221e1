"""OAuth device-code and authorization-code flows against the configured provider (spec §1.4, §1.5).

Fixes over upstream (spec §12.11, §12.12): the callback handles provider errors without a `code`; a denial
only counts after its `state` is verified; expired user codes are refused; a reused `client_id` is fine;
error bodies carry the RFC 8628 `error` key next to `detail`; the browser flow issues a token.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse

from balsam.server.api.deps import DbDep, SettingsDep
from balsam.server.auth.oauth_provider import ProviderError, authorize_url, fetch_username
from balsam.server.auth.tokens import create_token
from balsam.server.crud import device_codes, users
from balsam.server.db.tables import User
from balsam.server.schemas.auth import DeviceCodeOut, TokenOut

logger = logging.getLogger(__name__)
router = APIRouter(tags=["auth"])
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def _oauth_error(code: str, status_code: int = 400) -> JSONResponse:
    return JSONResponse({"detail": code, "error": code}, status_code=status_code)


def _check_provider(provider: str, settings: SettingsDep) -> None:
    if provider != settings.oauth.provider_name:
        raise HTTPException(404, "Unknown OAuth provider")


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.post("/auth/device/login", response_model=DeviceCodeOut)
def device_login(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    client_id: Annotated[uuid.UUID, Form()],
    scope: Annotated[str, Form(max_length=1024)] = "",
) -> DeviceCodeOut:
    with db.begin():
        attempt = device_codes.start_attempt(db, client_id, scope.replace("\x00", ""))
        uri = f"{_base_url(request)}/auth/oauth/{settings.oauth.provider_name}/login/device"
        return DeviceCodeOut(
            device_code=attempt.device_code,
            user_code=attempt.user_code,
            verification_uri=uri,
            verification_uri_complete=f"{uri}?user_code={attempt.user_code}",
            expires_in=device_codes.DEVICE_CODE_LIFETIME.total_seconds(),
            interval=device_codes.POLL_INTERVAL_SECONDS,
        )


@router.post("/auth/device/token", response_model=None)
def device_token(
    db: DbDep,
    settings: SettingsDep,
    grant_type: Annotated[str, Form()],
    device_code: Annotated[str, Form()],
    client_id: Annotated[str, Form()],
) -> TokenOut | JSONResponse:
    # The client polls this in a tight loop on any 4xx (spec §11): every branch is one indexed lookup.
    if grant_type != DEVICE_GRANT:
        return _oauth_error("unsupported_grant_type")
    try:
        client_uuid = uuid.UUID(client_id)
    except ValueError:
        return _oauth_error("invalid_client")
    with db.begin():
        attempt = device_codes.attempt_for_token(db, client_uuid, device_code)
        if attempt is None:
            return _oauth_error("invalid_client")
        if attempt.denied:
            return _oauth_error("access_denied", 403)
        if attempt.expiration <= device_codes.utcnow():
            return _oauth_error("expired_token")
        if attempt.user_id is None:
            return _oauth_error("authorization_pending")
        user = db.get(User, attempt.user_id)
        db.delete(attempt)
        if user is None:
            return _oauth_error("invalid_client")
        user_id, username = user.id, user.username
    token, expiration = create_token(settings, user_id, username)
    return TokenOut(access_token=token, expiration=expiration)


@router.get("/auth/oauth/{provider}/login")
def browser_login(provider: str, request: Request, db: DbDep, settings: SettingsDep) -> RedirectResponse:
    _check_provider(provider, settings)
    with db.begin():
        state = device_codes.issue_state(db, "BROWSER-FLOW")
    redirect = f"{_base_url(request)}/auth/oauth/{provider}/callback"
    return RedirectResponse(authorize_url(settings.oauth, redirect, state), status_code=307)


@router.get("/auth/oauth/{provider}/login/device", response_model=None)
def device_verification(
    provider: str,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    user_code: Annotated[str, Query(max_length=32)],
) -> RedirectResponse | JSONResponse:
    _check_provider(provider, settings)
    with db.begin():
        attempt = device_codes.live_attempt_by_user_code(db, user_code)
        if attempt is None:
            return _oauth_error("invalid_client")
        state = device_codes.issue_state(db, f"DEVICE-FLOW {attempt.user_code}")
    redirect = f"{_base_url(request)}/auth/oauth/{provider}/callback"
    return RedirectResponse(authorize_url(settings.oauth, redirect, state), status_code=307)


@router.get("/auth/oauth/{provider}/callback")
def callback(
    provider: str,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    state: Annotated[str, Query(max_length=512)],
    code: Annotated[str | None, Query(max_length=4096)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
    error_description: Annotated[str | None, Query(max_length=4096)] = None,
) -> JSONResponse:
    _check_provider(provider, settings)
    with db.begin():
        if not device_codes.consume_state(db, state):
            return _oauth_error("invalid_state")
        device_user_code = state.split(" ")[1] if state.startswith("DEVICE-FLOW ") else None
        if error is not None:
            if error == "access_denied" and device_user_code:
                attempt = device_codes.live_attempt_by_user_code(db, device_user_code)
                if attempt is not None:
                    attempt.denied = True
            return JSONResponse({"error": error, "error_description": error_description or ""})
    if code is None:
        return _oauth_error("invalid_request")
    redirect = f"{_base_url(request)}/auth/oauth/{provider}/callback"
    try:
        username = fetch_username(settings.oauth, code, redirect)
    except ProviderError as exc:
        logger.warning("OAuth provider exchange failed: %s", exc)
        return _oauth_error("provider_error", 502)
    with db.begin():
        user = users.get_or_create_external(db, username)
        if device_user_code is not None:
            attempt = device_codes.live_attempt_by_user_code(db, device_user_code)
            if attempt is None:
                return _oauth_error("expired_token")
            attempt.user_id = user.id
            return JSONResponse({"username": user.username, "message": "Login approved; return to your terminal."})
        user_id, name = user.id, user.username
    token, expiration = create_token(settings, user_id, name)
    return JSONResponse(
        {"username": name, **TokenOut(access_token=token, expiration=expiration).model_dump(mode="json")}
    )
