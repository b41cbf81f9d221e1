"""The dashboard's routes: sign-in, the pages, and the two endpoints its live updates use.

Thin handlers: what a page shows comes from balsam.server.dashboard.views, sign-in and CSRF from
balsam.server.dashboard.signin, rendering from balsam.server.dashboard.templating.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from balsam.server.api.deps import DbDep, SettingsDep
from balsam.server.auth.tokens import PURPOSE_SUBSCRIBE, TokenUser, create_token
from balsam.server.clock import utcnow
from balsam.server.conf import LoginMethod, Settings
from balsam.server.dashboard import filters, signin, views
from balsam.server.dashboard.signin import SignedIn
from balsam.server.dashboard.templating import SECURITY_HEADERS, render
from balsam.server.schemas.common import INT64_MAX, LookupId

router = APIRouter(include_in_schema=False)

NAV = (
    ("/", "Overview"),
    ("/jobs", "Jobs"),
    ("/failures", "Failures"),
    ("/throughput", "Throughput"),
    ("/apps", "Apps"),
    ("/batch-jobs", "Batch jobs"),
)
LIVE_TOKEN_SECONDS = 60
# How often a page refreshes its counts when the websocket is unavailable (no Redis), and at the least
# when it is up (site lights and ages change with time alone).
POLL_SECONDS = 15
QUIET_REFRESH_SECONDS = 60


def _page(
    request: Request, user: TokenUser, settings: Settings, template: str, context: dict[str, Any], title: str
) -> HTMLResponse:
    return render(
        request,
        template,
        {
            **context,
            "title": title,
            "user": user,
            "nav": NAV,
            "csrf_token": signin.session_form_token(request, settings),
            "poll_seconds": POLL_SECONDS,
            "quiet_refresh_seconds": QUIET_REFRESH_SECONDS,
        },
    )


# ------------------------------------------------------------------------------------------ sign-in


def _password_enabled(settings: Settings) -> bool:
    return LoginMethod.password in settings.auth.login_methods


@router.get("/login", name="login")
def login_form(request: Request, settings: SettingsDep, next: str | None = None) -> HTMLResponse:
    return _login_page(request, settings, signin.safe_next(request, next))


def _login_page(
    request: Request, settings: Settings, next_path: str, error: str = "", username: str = "", status_code: int = 200
) -> HTMLResponse:
    nonce = signin.login_nonce(request)
    response = render(
        request,
        "login.html",
        {
            "title": "Sign in",
            "user": None,
            "nav": (),
            "next": next_path,
            "error": error,
            "username": username,
            "password_enabled": _password_enabled(settings),
            "login_csrf": signin.login_form_token(settings, nonce),
        },
        status_code=status_code,
    )
    signin.set_login_nonce(response, request, nonce)
    return response


@router.post("/login")
def login(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    csrf_token: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    next_path = signin.safe_next(request, next)
    signin.check_login_csrf(request, settings, csrf_token)
    user: TokenUser | None
    if token.strip():
        user = signin.check_api_token(db, settings, token)
        error = "That token is not valid (expired, mistyped, or from another server)."
    elif not _password_enabled(settings):
        user, error = None, "Password sign-in is disabled on this server; sign in with an access token."
    elif username and password:
        outcome = signin.check_password(request, db, username, password)
        if outcome.retry_after is not None:
            error = f"Too many failed sign-ins for this account or address; try again in {outcome.retry_after} s."
            refused = _login_page(request, settings, next_path, error, username, status_code=429)
            refused.headers["Retry-After"] = str(outcome.retry_after)
            return refused
        user = TokenUser(outcome.user_id, username) if outcome.user_id is not None else None
        error = "Wrong username or password."
    else:
        user, error = None, "Enter your username and password, or an access token."
    if user is None:
        return _login_page(request, settings, next_path, error, username, status_code=401)
    response = RedirectResponse(next_path, status_code=303, headers=SECURITY_HEADERS)
    signin.start_session(response, request, settings, user.id, user.username, user.expires)
    return response


@router.post("/logout")
def logout(request: Request, settings: SettingsDep, csrf_token: Annotated[str, Form()] = "") -> Response:
    signin.check_session_csrf(request, settings, csrf_token)
    response = RedirectResponse(signin.base_path(request).rstrip("/") + "/login", status_code=303)
    signin.end_session(response, request)
    return response


# ------------------------------------------------------------------------------------------ pages


@router.get("/", name="overview")
def overview(request: Request, user: SignedIn, db: DbDep, settings: SettingsDep) -> HTMLResponse:
    context = views.overview(db, user.id, utcnow(), settings.session_expiry_seconds)
    return _page(request, user, settings, "overview.html", context, "Overview")


@router.get("/jobs")
def job_table(request: Request, user: SignedIn, db: DbDep, settings: SettingsDep) -> HTMLResponse:
    query = filters.parse(request.query_params)
    context = views.job_table(db, user.id, query)
    response = _page(request, user, settings, "jobs.html", context, "Jobs")
    if query.errors:
        response.status_code = 400
    return response


@router.get("/jobs/{job_id}")
def job_detail(job_id: LookupId, request: Request, user: SignedIn, db: DbDep, settings: SettingsDep) -> HTMLResponse:
    context = views.job_page(db, user.id, job_id)
    return _page(request, user, settings, "job.html", context, f"Job {job_id}")


@router.get("/failures")
def failures(
    request: Request, user: SignedIn, db: DbDep, settings: SettingsDep, site_id: LookupId | None = None
) -> HTMLResponse:
    context = views.failures(db, user.id, site_id)
    return _page(request, user, settings, "failures.html", context, "Recent failures")


@router.get("/throughput")
def throughput(request: Request, user: SignedIn, db: DbDep, settings: SettingsDep) -> HTMLResponse:
    context = views.throughput(db, user.id, utcnow())
    return _page(request, user, settings, "throughput.html", context, "Throughput")


@router.get("/apps")
def app_list(request: Request, user: SignedIn, db: DbDep, settings: SettingsDep) -> HTMLResponse:
    return _page(request, user, settings, "apps.html", views.app_list(db, user.id), "Apps")


@router.get("/batch-jobs")
def batch_job_list(
    request: Request,
    user: SignedIn,
    db: DbDep,
    settings: SettingsDep,
    state: str | None = None,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> HTMLResponse:
    context = views.batch_job_list(db, user.id, state, offset)
    return _page(request, user, settings, "batch_jobs.html", context, "Batch jobs")


# ------------------------------------------------------------------------------------------ live updates


@router.get("/live/overview")
def live_overview(request: Request, user: SignedIn, db: DbDep, settings: SettingsDep) -> HTMLResponse:
    """The overview's live part alone, which the page swaps in when something changed."""
    context = views.overview(db, user.id, utcnow(), settings.session_expiry_seconds)
    return _page(request, user, settings, "_overview_live.html", context, "Overview")


@router.get("/live/token")
def live_token(request: Request, user: SignedIn, settings: SettingsDep) -> JSONResponse:
    """A credential for the page's script to open `/subscribe-user` with: the session cookie is HttpOnly, so the
    script cannot send it. The token is good for LIVE_TOKEN_SECONDS and only for the websocket (its purpose
    claim), so it cannot call the REST API; only this origin's scripts can read the reply."""
    signin.check_same_site(request)
    token, expires = create_token(settings, user.id, user.username, purpose=PURPOSE_SUBSCRIBE, ttl=LIVE_TOKEN_SECONDS)
    return JSONResponse({"token": token, "expires": expires.isoformat()}, headers=SECURITY_HEADERS)
