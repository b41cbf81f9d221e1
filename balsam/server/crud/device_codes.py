"""OAuth device-flow attempts and single-use `state` values (spec §1.4, §1.5)."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from balsam.server.clock import utcnow
from balsam.server.db.tables import AuthState, DeviceCodeAttempt

DEVICE_CODE_LIFETIME = timedelta(seconds=300)
POLL_INTERVAL_SECONDS = 3.0
# Letters that cannot spell words or be confused with digits: A, E, I, O, U and Y removed.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
STALE_AFTER = timedelta(minutes=30)
STATE_LIFETIME = timedelta(minutes=15)


def new_user_code() -> str:
    letters = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"


def purge_stale(db: Session) -> None:
    now = utcnow()
    db.execute(
        delete(DeviceCodeAttempt).where(
            or_(DeviceCodeAttempt.expiration < now - STALE_AFTER, DeviceCodeAttempt.denied.is_(True))
        )
    )
    db.execute(delete(AuthState).where(AuthState.created_at < now - STATE_LIFETIME))


def start_attempt(db: Session, client_id: uuid.UUID, scope: str) -> DeviceCodeAttempt:
    purge_stale(db)
    while True:
        user_code = new_user_code()
        taken = db.execute(select(DeviceCodeAttempt.id).where(DeviceCodeAttempt.user_code == user_code)).first()
        if taken is None:
            break
    attempt = DeviceCodeAttempt(
        client_id=client_id,
        device_code=secrets.token_urlsafe(48),
        user_code=user_code,
        scope=scope,
        expiration=utcnow() + DEVICE_CODE_LIFETIME,
        denied=False,
    )
    db.add(attempt)
    db.flush()
    return attempt


def live_attempt_by_user_code(db: Session, user_code: str) -> DeviceCodeAttempt | None:
    return db.scalars(
        select(DeviceCodeAttempt).where(
            DeviceCodeAttempt.user_code == user_code.strip().upper(),
            DeviceCodeAttempt.expiration > utcnow(),
            DeviceCodeAttempt.denied.is_(False),
        )
    ).first()


def attempt_for_token(db: Session, client_id: uuid.UUID, device_code: str) -> DeviceCodeAttempt | None:
    return db.scalars(
        select(DeviceCodeAttempt)
        .where(DeviceCodeAttempt.client_id == client_id, DeviceCodeAttempt.device_code == device_code)
        .with_for_update()
    ).first()


def issue_state(db: Session, prefix: str) -> str:
    state = f"{prefix} {secrets.token_urlsafe(24)}"
    db.add(AuthState(state=state))
    return state


def consume_state(db: Session, state: str) -> bool:
    """True once per issued state; false for an unknown, expired or already used one."""
    row = db.execute(
        delete(AuthState)
        .where(AuthState.state == state, AuthState.created_at > utcnow() - STATE_LIFETIME)
        .returning(AuthState.state)
    ).first()
    return row is not None
