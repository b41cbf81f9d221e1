"""Login throttling against password guessing, shared by every worker and every host through PostgreSQL (the
`login_throttle` table), so it works without Redis.

The policy (settings `BALSAM_AUTH_LOGIN_FAILURES_PER_USER`, `..._PER_ADDRESS`, `..._FAILURE_WINDOW`):
- A failed password login adds a short keyed digest of (username, password) to two counters: the username's
  and the client address's (an IPv6 address counts as its /64). A counter's window opens with its first
  failure and lasts `login_failure_window` seconds; then it starts afresh.
- A counter counts *distinct* digests. The published client re-sends a failed login in a tight loop for as long
  as it runs (spec §11): counting repeats would turn one typo into a lockout that lasts as long as that terminal
  stays open. Someone guessing has to try different passwords, and each of those counts.
- A counter that reaches its limit refuses logins for that username (or from that address) until its window
  ends: 401 with `Retry-After`, before any user lookup or password hashing. Refused attempts are not counted and
  do not extend the lock, so every lock ends; a client looping with the right password gets in then. A
  successful login clears its username's counter.
- The refusal is a 401, never a 429 (spec §11): the published client loops on any 4xx during login whatever the
  status, so a 429 would tell it nothing more, and 401 is what the login route's contract answers for "no token".
Costs: a refusal is one primary-key read, then nothing for a few seconds (the worker remembers the lock); a failure
adds one short transaction (skipped when this worker recorded the same failure moments ago); a success adds a
delete only when the username had a counter.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from balsam.server.auth.recent import Recent
from balsam.server.clock import utcnow
from balsam.server.conf import AuthSettings
from balsam.server.db.tables import LoginThrottle as Counter

logger = logging.getLogger(__name__)

_MAX_PLAIN_USERNAME = 256  # the users.username column; longer (or NUL-bearing) names are keyed by a digest
_RECORDED_TTL_SECONDS = 30.0
# A worker trusts its memory of a lock this long before reading the table again, so that
# `balsam server user unlock` takes effect everywhere within seconds.
_LOCK_MEMORY_SECONDS = 5.0
_PURGE_INTERVAL_SECONDS = 300.0


def user_key(username: str) -> str:
    if len(username) <= _MAX_PLAIN_USERNAME and "\x00" not in username:
        return f"user:{username}"
    return "user#" + hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()


def address_key(host: str) -> str:
    """`addr:<ip>`; an IPv6 address counts as its /64, which one client usually holds whole."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"addr:{host[:100]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"addr:{ip.ipv4_mapped}"
        return f"addr:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"addr:{ip}"


@dataclass(frozen=True)
class Check:
    """What the counters say before a login is tried."""

    retry_after: int | None  # seconds until the lock ends; None when the login may proceed
    user_counted: bool  # the username has a counter (a success clears it)


@dataclass(frozen=True)
class _Limit:
    key: str
    limit: int


class LoginThrottle:
    """One per worker process: the policy above, with a per-process memory in front of the shared table."""

    def __init__(self, auth: AuthSettings, digest_key: bytes) -> None:
        self.per_user = auth.login_failures_per_user
        self.per_address = auth.login_failures_per_address
        self.window = timedelta(seconds=auth.login_failure_window)
        self._digest_key = digest_key
        self._locked = Recent(ttl=_LOCK_MEMORY_SECONDS)  # key -> time.monotonic() at which its lock ends
        self._recorded = Recent(ttl=min(_RECORDED_TTL_SECONDS, auth.login_failure_window / 2))
        self._next_purge = 0.0

    def limits(self, username: str, address: str | None) -> list[_Limit]:
        found = []
        if self.per_user:
            found.append(_Limit(user_key(username), self.per_user))
        # An unknown address (a unix socket with no trusted forwarding header) would lump every client together.
        if self.per_address and address:
            found.append(_Limit(address_key(address), self.per_address))
        return found

    def check(self, db: Session, limits: list[_Limit]) -> Check:
        if not limits:
            return Check(None, False)
        remembered = [until for item in limits if (until := self._locked.get(item.key)) is not None]
        wait = max(remembered, default=0.0) - time.monotonic()
        if wait > 0:
            return Check(math.ceil(wait), False)
        now = utcnow()
        rows = db.execute(
            select(Counter.key, Counter.locked_until).where(Counter.key.in_([item.key for item in limits]))
        ).all()
        db.rollback()  # end the read; writes open their own transaction
        wait = 0.0
        for row in rows:
            if row.locked_until is not None and row.locked_until > now:
                seconds = (row.locked_until - now).total_seconds()
                self._remember_lock(row.key, seconds)
                wait = max(wait, seconds)
        user_counted = self.per_user > 0 and any(row.key == limits[0].key for row in rows)
        return Check(math.ceil(wait) if wait else None, user_counted)

    def fingerprint(self, username: str, password: str) -> str:
        message = b"balsam-login-failure\x00" + username.encode("utf-8", "surrogatepass") + b"\x00"
        return hmac.new(self._digest_key, message + password.encode("utf-8", "surrogatepass"), "sha256").hexdigest()[
            :16
        ]

    def record_failure(self, db: Session, limits: list[_Limit], username: str, password: str) -> None:
        digest = self.fingerprint(username, password)
        todo = sorted((item for item in limits if (item.key, digest) not in self._recorded), key=lambda i: i.key)
        if not todo:
            return  # this worker counted this very failure moments ago: the client's retry loop
        now = utcnow()
        newly_locked: list[tuple[str, int, datetime]] = []
        with db.begin():
            self._purge_now_and_then(db, now)
            # Create or lock the counters, in key order (every caller locks them in the same order).
            stmt = insert(Counter).values([{"key": item.key, "window_start": now} for item in todo])
            rows = db.execute(
                stmt.on_conflict_do_update(index_elements=[Counter.key], set_={"key": stmt.excluded.key}).returning(
                    Counter.key, Counter.window_start, Counter.fingerprints, Counter.locked_until
                )
            ).all()
            limit_of = {item.key: item.limit for item in todo}
            changes = []
            for row in rows:
                start, digests, until = row.window_start, list(row.fingerprints), row.locked_until
                if start <= now - self.window:
                    start, digests, until = now, [], None
                limit = limit_of[row.key]
                if digest not in digests and len(digests) < limit:
                    digests.append(digest)
                if len(digests) >= limit and not (until is not None and until > now):
                    until = start + self.window
                    newly_locked.append((row.key, len(digests), until))
                changes.append({"key": row.key, "window_start": start, "fingerprints": digests, "locked_until": until})
            db.execute(update(Counter), changes)
        for item in todo:
            self._recorded.add((item.key, digest))
        for key, count, until in newly_locked:
            self._remember_lock(key, (until - now).total_seconds())
            # Once per lockout: only the transaction that crossed the limit gets here.
            logger.warning(
                "Login throttled: %s had %d failed logins with distinct passwords within %d s; password logins "
                "for it are refused until %s UTC",
                key,
                count,
                self.window.total_seconds(),
                until.isoformat(timespec="seconds"),
            )

    def _remember_lock(self, key: str, seconds: float) -> None:
        self._locked.add(key, time.monotonic() + seconds, ttl=min(seconds, _LOCK_MEMORY_SECONDS))

    def record_success(self, db: Session, username: str) -> None:
        with db.begin():
            clear(db, [user_key(username)])

    def _purge_now_and_then(self, db: Session, now: datetime) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + _PURGE_INTERVAL_SECONDS
        purge_expired(db, now, self.window)


def purge_expired(db: Session | Connection, now: datetime, window: timedelta) -> int:
    """Delete counters whose window and lock are over (in the caller's transaction); returns how many."""
    result = db.execute(
        delete(Counter)
        .where(Counter.window_start <= now - window)
        .where(or_(Counter.locked_until.is_(None), Counter.locked_until <= now))
        .returning(Counter.key)
    )
    return len(result.all())


def clear(db: Session, keys: list[str]) -> int:
    """Delete the counters of `keys` (in the caller's transaction): lifts their locks within seconds in every
    worker (`balsam server user unlock`). Returns how many there were."""
    return len(db.execute(delete(Counter).where(Counter.key.in_(keys)).returning(Counter.key)).all())
