"""One password login attempt under the login throttle, shared by POST /auth/password/login and the
dashboard's sign-in form, so that both count against the same limits (balsam.server.auth.throttle)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from balsam.server.auth.passwords import verify_password
from balsam.server.auth.throttle import LoginThrottle
from balsam.server.crud import users


@dataclass(frozen=True)
class LoginOutcome:
    user_id: int | None  # None: refused (wrong credentials, or throttled when retry_after is set)
    retry_after: int | None = None


def attempt(db: Session, throttle: LoginThrottle, username: str, password: str, address: str | None) -> LoginOutcome:
    """Check the throttle, then the password; record the failure or clear the username's counter."""
    limits = throttle.limits(username, address)
    check = throttle.check(db, limits)
    if check.retry_after is not None:
        return LoginOutcome(None, check.retry_after)  # refused before any lookup or hashing
    user = users.get_by_username(db, username) if "\x00" not in username else None
    # Read the columns before the rollback, which expires the object (a reload would be another query).
    user_id, hashed = (user.id, user.hashed_password) if user is not None else (None, None)
    db.rollback()
    # Unknown user, OAuth-only user and wrong password all look alike; none of them is slow (spec §11).
    if user_id is None or hashed is None or not verify_password(hashed, password):
        throttle.record_failure(db, limits, username, password)
        return LoginOutcome(None)
    if check.user_counted:
        throttle.record_success(db, username)
    return LoginOutcome(user_id)
