"""User accounts: set-based reads and race-safe creation."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from balsam.server.auth.passwords import hash_password
from balsam.server.db.tables import User


def get_by_username(db: Session, username: str) -> User | None:
    return db.scalars(select(User).where(User.username == username)).first()


def create(db: Session, username: str, password: str | None) -> User | None:
    """Insert a user; None when the name is taken (also when a concurrent insert won the race)."""
    hashed = hash_password(password) if password is not None else None
    row = db.execute(
        insert(User)
        .values(username=username, hashed_password=hashed)
        .on_conflict_do_nothing(index_elements=[User.username])
        .returning(User.id)
    ).first()
    if row is None:
        return None
    return db.get(User, row.id)


def get_or_create_external(db: Session, username: str) -> User:
    """The local account for an OAuth identity (created without a password)."""
    user = get_by_username(db, username)
    if user is not None:
        return user
    created = create(db, username, None)
    if created is not None:
        return created
    user = get_by_username(db, username)
    assert user is not None
    return user


def set_password(db: Session, username: str, password: str) -> bool:
    user = get_by_username(db, username)
    if user is None:
        return False
    user.hashed_password = hash_password(password)
    return True


def list_all(db: Session) -> list[User]:
    return list(db.scalars(select(User).order_by(User.id)))


def delete_by_username(db: Session, username: str) -> bool:
    """Delete the user and, by cascade, their sites, apps, jobs and everything below them."""
    return db.execute(delete(User).where(User.username == username).returning(User.id)).first() is not None
