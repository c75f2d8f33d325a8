"""Server-side login sessions: random tokens, stored hashed, with an idle timeout on an injected clock.

The browser holds the token in an HttpOnly, SameSite=Strict cookie; the database holds only its
HMAC-SHA256 under ``security.session_key`` (when not configured, a random key kept in a 0600 file beside
the database: access.context.stored_session_key), so a stolen database file cannot be replayed as a cookie,
and whoever can
write the database file cannot forge a session without the key either. Every login makes a new token
(no fixation); logout deletes the row. A session is valid while its user is enabled and it was
used within ``idle`` (``last_seen_at`` is refreshed at most every ``touch_every`` to spare the disk).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from cti.core.clock import Clock, require_aware
from cti.core.principal import Role
from cti.gateway import Gateway

COOKIE_NAME = "cti_session"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str, key: bytes) -> str:
    """What the database keeps of a session token: HMAC-SHA256 under the server's session key."""
    return hmac.new(key, token.encode("utf-8"), hashlib.sha256).hexdigest()


def is_idle_expired(last_seen: datetime, now: datetime, idle: timedelta) -> bool:
    """Pure rule: a session unused for `idle` or longer is over."""
    require_aware(last_seen, "last_seen")
    require_aware(now, "now")
    return now - last_seen >= idle


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    user_id: str
    role: Role
    department: str | None
    display_name: str
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class Lookup:
    session: Session | None
    outcome: str  # ok | missing | expired


class SessionStore:
    """Sessions through the database gateway; `key` makes the stored hash an HMAC (see the module)."""

    def __init__(
        self,
        db: Gateway,
        clock: Clock,
        idle: timedelta,
        touch_every: timedelta | None = None,
        key: bytes | None = None,
    ) -> None:
        if idle <= timedelta(0):
            raise ValueError("idle timeout must be positive")
        self._db = db
        self._clock = clock
        self.idle = idle
        self._touch_every = touch_every if touch_every is not None else min(timedelta(seconds=60), idle / 10)
        self._key = key or secrets.token_bytes(32)

    def now(self) -> datetime:
        return require_aware(self._clock(), "clock()")

    def hash_of(self, token: str) -> str:
        return token_hash(token, self._key)

    async def create(self, user_id: str) -> tuple[str, Session]:
        """A fresh session for a just-authenticated user: returns (cookie token, session)."""
        token = new_token()
        csrf = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.now().isoformat()
        hashed = self.hash_of(token)
        await self._db.write(lambda conn: insert_session(conn, hashed, user_id, csrf, now))
        found = await self.lookup_hash(hashed, touch=False)
        if found.session is None:  # the account was disabled between the two
            raise SessionGone("the session ended right after creation")
        return token, found.session

    async def lookup(self, token: str, *, touch: bool = True) -> Lookup:
        return await self.lookup_hash(self.hash_of(token), touch=touch)

    async def lookup_hash(self, hashed: str, *, touch: bool = True) -> Lookup:
        row = await self._db.read(lambda conn: _session_row(conn, hashed))
        if row is None:
            return Lookup(None, "missing")
        now = self.now()
        last_seen = require_aware(datetime.fromisoformat(str(row["last_seen_at"])), "last_seen_at")
        created = require_aware(datetime.fromisoformat(str(row["created_at"])), "created_at")
        password_changed = require_aware(datetime.fromisoformat(str(row["password_changed_at"])), "password_changed_at")
        if row["disabled"] or created < password_changed or is_idle_expired(last_seen, now, self.idle):
            await self._db.write(lambda conn: delete_session(conn, hashed))
            return Lookup(None, "expired")
        if touch and now - last_seen >= self._touch_every:
            seen = now.isoformat()
            await self._db.write(lambda conn: touch_session(conn, hashed, seen))
            last_seen = now
        return Lookup(
            Session(
                token_hash=hashed,
                user_id=str(row["user_id"]),
                role=Role(str(row["role"])),
                department=row["department"],
                display_name=str(row["display_name"]),
                csrf_token=str(row["csrf_token"]),
                created_at=created,
                last_seen_at=last_seen,
            ),
            "ok",
        )

    async def delete(self, hashed: str) -> None:
        await self._db.write(lambda conn: delete_session(conn, hashed))

    async def purge_expired(self) -> int:
        """Delete every idle-expired session; returns how many."""
        cutoff = (self.now() - self.idle).isoformat()
        return await self._db.write(lambda conn: purge_sessions(conn, cutoff))


class SessionGone(RuntimeError):
    pass


# --- units of work (run whole on the database thread; see cti/gateway.py) ---------------------------


def _session_row(conn: sqlite3.Connection, hashed: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT s.token_hash, s.user_id, s.csrf_token, s.created_at, s.last_seen_at,"
        " u.role, u.department, u.display_name, u.disabled, u.password_changed_at"
        " FROM sessions s JOIN users u ON u.user_id = s.user_id WHERE s.token_hash = ?",
        (hashed,),
    ).fetchone()
    return row


def insert_session(conn: sqlite3.Connection, hashed: str, user_id: str, csrf: str, now: str) -> None:
    conn.execute(
        "INSERT INTO sessions(token_hash, user_id, csrf_token, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)",
        (hashed, user_id, csrf, now, now),
    )


def delete_session(conn: sqlite3.Connection, hashed: str) -> None:
    conn.execute("DELETE FROM sessions WHERE token_hash = ?", (hashed,))


def touch_session(conn: sqlite3.Connection, hashed: str, seen: str) -> None:
    conn.execute("UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?", (seen, hashed))


def purge_sessions(conn: sqlite3.Connection, cutoff: str) -> int:
    # ISO strings of one zone compare correctly; rows are written by this clock's zone.
    return int(conn.execute("DELETE FROM sessions WHERE last_seen_at <= ?", (cutoff,)).rowcount)
