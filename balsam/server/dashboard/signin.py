"""Signing in to the dashboard: an HttpOnly cookie that holds a dashboard-only token, and CSRF protection.

* **The cookie** (`SESSION_COOKIE`) holds a token minted for the dashboard alone (`purpose: dashboard`,
  balsam.server.auth.tokens): the REST API and the websocket refuse it, so a leaked cookie cannot write
  through the API. It is HttpOnly (page scripts never see it), `SameSite=Lax`, limited to the dashboard's
  path, `Secure` whenever the request came over HTTPS (directly or, per `X-Forwarded-Proto`, through a
  proxy), and it expires with its token. Lax rather than Strict, so that a link to a dashboard page from
  mail or chat opens the page signed in; that is safe because no GET changes anything.
* **CSRF.** The two POSTs (sign in, sign out) need a token from the form. Sign-in uses a double-submit
  pair: the login page sets a random nonce in a Strict, HttpOnly cookie and puts an HMAC of it (keyed with the
  server secret) in the form. Sign-out's form token is an HMAC of the session cookie itself. Both POSTs are
  also refused when the browser says the request came from another site (`Sec-Fetch-Site`, `Origin`). The
  login CSRF matters: without it another site could sign a visitor in to the attacker's account.
* **Sign-out** deletes the cookie. The token in it is not revoked (tokens are stateless; it lapses at its
  expiry), which is why it is useless outside the dashboard and never reaches page scripts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from balsam.server.api.deps import DbDep, SettingsDep
from balsam.server.auth import password_login
from balsam.server.auth.throttle import LoginThrottle
from balsam.server.auth.tokens import PURPOSE_DASHBOARD, InvalidToken, TokenUser, create_token, decode_token
from balsam.server.clock import utcnow
from balsam.server.conf import Settings
from balsam.server.db.tables import User

SESSION_COOKIE = "balsam_dashboard"
LOGIN_NONCE_COOKIE = "balsam_dashboard_login"
LOGIN_NONCE_SECONDS = 3600


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in page, the live endpoints answer 401."""


class CsrfRejected(Exception):
    """A POST without a valid CSRF token, or sent from another site."""


def base_path(request: Request) -> str:
    """Where the dashboard is mounted, with any proxy prefix: the cookie path and every link start here."""
    return str(request.scope.get("root_path", "")).rstrip("/") or "/"


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _mac(settings: Settings, kind: str, value: str) -> str:
    key = settings.secret_key().encode()
    return hmac.new(key, f"balsam-dashboard-{kind}:{value}".encode(), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------------------------ the session


def session_user(request: Request, settings: SettingsDep, db: DbDep) -> TokenUser:
    """The signed-in user (a dependency of every page): a valid dashboard token of an existing account."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired()
    try:
        user = decode_token(settings, token, accept=(PURPOSE_DASHBOARD,))
    except InvalidToken:
        raise SignInRequired() from None
    if not _exists(db, user.id):
        raise SignInRequired()  # a deleted account's cookie stops working at once
    return user


SignedIn = Annotated[TokenUser, Depends(session_user)]


def start_session(
    response: Response, request: Request, settings: Settings, user_id: int, username: str, not_after: datetime | None
) -> None:
    """Mint the dashboard token (never outliving `not_after`, the expiry of a token signed in with) and set it."""
    token, expires = create_token(settings, user_id, username, purpose=PURPOSE_DASHBOARD, not_after=not_after)
    _set_cookie(response, request, SESSION_COOKIE, token, max(int((expires - utcnow()).total_seconds()), 0), "lax")
    response.delete_cookie(LOGIN_NONCE_COOKIE, path=base_path(request))


def end_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=base_path(request), secure=is_https(request), httponly=True, samesite="lax"
    )


# ------------------------------------------------------------------------------------------ CSRF


def login_nonce(request: Request) -> str:
    """The nonce the sign-in form's CSRF token is bound to: the browser's, or a new one."""
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE) or ""
    return nonce if len(nonce) >= 32 else secrets.token_urlsafe(32)


def login_form_token(settings: Settings, nonce: str) -> str:
    return _mac(settings, "login", nonce)


def set_login_nonce(response: Response, request: Request, nonce: str) -> None:
    _set_cookie(response, request, LOGIN_NONCE_COOKIE, nonce, LOGIN_NONCE_SECONDS, "strict")


def _set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int, samesite: Literal["lax", "strict"]
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=base_path(request),
        secure=is_https(request),
        httponly=True,
        samesite=samesite,
    )


def check_login_csrf(request: Request, settings: Settings, form_token: str) -> None:
    check_same_site(request)
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE) or ""
    if len(nonce) < 32 or not hmac.compare_digest(login_form_token(settings, nonce), form_token):
        raise CsrfRejected()


def session_form_token(request: Request, settings: Settings) -> str:
    """The CSRF token of forms shown to a signed-in user (sign-out), bound to their session cookie."""
    return _mac(settings, "session", request.cookies.get(SESSION_COOKIE, ""))


def check_session_csrf(request: Request, settings: Settings, form_token: str) -> None:
    check_same_site(request)
    if not hmac.compare_digest(session_form_token(request, settings), form_token):
        raise CsrfRejected()


def check_same_site(request: Request) -> None:
    """Browsers say where a request came from; anything but this origin (or a typed URL) is refused."""
    if request.headers.get("sec-fetch-site", "same-origin") not in {"same-origin", "none"}:
        raise CsrfRejected()
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        # Behind a proxy that rewrites Host, the public host name arrives as X-Forwarded-Host.
        hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "").split(",")[0].strip()}
        if urlsplit(origin).netloc not in hosts:
            raise CsrfRejected()


def safe_next(request: Request, target: str | None) -> str:
    """Where to go after signing in: a path inside the dashboard only (never another site)."""
    base = base_path(request).rstrip("/")
    if target and target.startswith(base + "/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return base + "/"


# ------------------------------------------------------------------------------------------ credentials


def check_password(request: Request, db: Session, username: str, password: str) -> password_login.LoginOutcome:
    """The account these credentials sign in to, under the same login throttle as the API's password login."""
    throttle: LoginThrottle = request.app.state.login_throttle  # set when password login is on (app.mount)
    address = request.client.host if request.client else None
    return password_login.attempt(db, throttle, username, password, address)


def check_api_token(db: Session, settings: Settings, token: str) -> TokenUser | None:
    """The account of a valid API token (as `balsam login` stores it), or None."""
    try:
        user = decode_token(settings, token.strip().removeprefix("Bearer ").strip())
    except InvalidToken:
        return None
    return user if _exists(db, user.id) else None


def _exists(db: Session, user_id: int) -> bool:
    exists = db.execute(select(User.id).where(User.id == user_id)).first() is not None
    db.rollback()
    return exists
