"""Server-side login sessions: random tokens, stored hashed, with an idle timeout on an injected clock.

The browser holds the token in an HttpOnly, SameSite=Strict cookie; the database holds only its
SHA-256, so a stolen database file cannot be replayed as a cookie. Every login makes a new token
(no fixation); logout deletes the row. A session is valid while its user is enabled and it was
used within ``idle`` (``last_seen_at`` is refreshed at most every ``touch_every`` to spare the disk).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiosqlite

from cti.core.clock import Clock, require_aware
from cti.core.principal import Role

COOKIE_NAME = "cti_session"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_BYTES = 32


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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
    def __init__(
        self,
        conn: aiosqlite.Connection,
        clock: Clock,
        idle: timedelta,
        touch_every: timedelta | None = None,
    ) -> None:
        if idle <= timedelta(0):
            raise ValueError("idle timeout must be positive")
        self._conn = conn
        self._clock = clock
        self.idle = idle
        self._touch_every = touch_every if touch_every is not None else min(timedelta(seconds=60), idle / 10)

    def now(self) -> datetime:
        return require_aware(self._clock(), "clock()")

    async def create(self, user_id: str) -> tuple[str, Session]:
        """A fresh session for a just-authenticated user: returns (cookie token, session)."""
        token = new_token()
        csrf = secrets.token_urlsafe(TOKEN_BYTES)
        now = self.now().isoformat()
        await self._conn.execute(
            "INSERT INTO sessions(token_hash, user_id, csrf_token, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)",
            (token_hash(token), user_id, csrf, now, now),
        )
        found = await self.lookup(token)
        if found.session is None:  # pragma: no cover - the user vanished between the two statements
            raise RuntimeError("session vanished right after creation")
        return token, found.session

    async def lookup(self, token: str, *, touch: bool = True) -> Lookup:
        return await self.lookup_hash(token_hash(token), touch=touch)

    async def lookup_hash(self, hashed: str, *, touch: bool = True) -> Lookup:
        async with self._conn.execute(
            "SELECT s.token_hash, s.user_id, s.csrf_token, s.created_at, s.last_seen_at,"
            " u.role, u.department, u.display_name, u.disabled, u.password_changed_at"
            " FROM sessions s JOIN users u ON u.user_id = s.user_id WHERE s.token_hash = ?",
            (hashed,),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return Lookup(None, "missing")
        now = self.now()
        last_seen = require_aware(datetime.fromisoformat(str(row["last_seen_at"])), "last_seen_at")
        created = require_aware(datetime.fromisoformat(str(row["created_at"])), "created_at")
        password_changed = require_aware(datetime.fromisoformat(str(row["password_changed_at"])), "password_changed_at")
        if row["disabled"] or created < password_changed or is_idle_expired(last_seen, now, self.idle):
            await self._conn.execute("DELETE FROM sessions WHERE token_hash = ?", (hashed,))
            return Lookup(None, "expired")
        if touch and now - last_seen >= self._touch_every:
            await self._conn.execute(
                "UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?", (now.isoformat(), hashed)
            )
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
        await self._conn.execute("DELETE FROM sessions WHERE token_hash = ?", (hashed,))

    async def purge_expired(self) -> int:
        """Delete every idle-expired session; returns how many."""
        cutoff = (self.now() - self.idle).isoformat()
        # ISO strings of one zone compare correctly; rows are written by this clock's zone.
        cur = await self._conn.execute("DELETE FROM sessions WHERE last_seen_at <= ?", (cutoff,))
        return int(cur.rowcount)
