"""Staff accounts (operators, supervisors, department staff, admins) in the app's SQLite database.

Accounts are pre-registered by an admin (``cti user add``); there is no self sign-up. Passwords are
hashed with argon2id (argon2-cffi's PasswordHasher) and rehashed at login when the hasher's
parameters changed. The hash work runs in a thread so the event loop never stalls on it.

The component ``accounts`` owns two tables: ``users`` and ``sessions`` (see access/sessions.py).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass

import aiosqlite
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cti.core.clock import Clock, require_aware
from cti.core.principal import Role

USER_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
MAX_NAME_CHARS = 64
HASH_CONCURRENCY = 4

_V1 = """
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('operator', 'supervisor', 'department', 'admin')),
    department TEXT,
    display_name TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL,
    CHECK ((role = 'department') = (department IS NOT NULL))
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id)
"""

# v2: the faq_editor role. SQLite cannot change a CHECK in place: the table is rebuilt. Dropping the
# old table deletes its rows first, and sessions go with them (ON DELETE CASCADE): everyone logs in
# again once after the upgrade.
_V2 = """
CREATE TABLE users_v2 (
    user_id TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('operator', 'supervisor', 'department', 'admin', 'faq_editor')),
    department TEXT,
    display_name TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    password_changed_at TEXT NOT NULL,
    CHECK ((role = 'department') = (department IS NOT NULL))
);
INSERT INTO users_v2 SELECT user_id, role, department, display_name, password_hash, disabled, created_at,
    password_changed_at FROM users;
DROP TABLE users;
ALTER TABLE users_v2 RENAME TO users
"""

MIGRATIONS: dict[str, list[str]] = {"accounts": [_V1, _V2]}


class AccountError(ValueError):
    """Bad input for an account operation; the message says what is wrong (Japanese / English)."""


class UnknownUser(AccountError):
    pass


class DuplicateUser(AccountError):
    pass


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    role: Role
    department: str | None
    display_name: str
    disabled: bool
    created_at: str


def validate_user_id(user_id: str) -> str:
    if not USER_ID_PATTERN.match(user_id):
        raise AccountError(
            f"ユーザーIDが不正です / invalid user id {user_id!r}: "
            "2-32 characters, lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return user_id


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"パスワードが短すぎます / password too short: at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"パスワードが長すぎます / password too long: at most {MAX_PASSWORD_CHARS} characters")
    return password


def validate_role_department(
    role: str, department: str | None, known_departments: Iterable[str]
) -> tuple[Role, str | None]:
    try:
        parsed = Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise AccountError(f"役割が不正です / unknown role {role!r}; choose one of: {choices}") from None
    if parsed is Role.DEPARTMENT:
        known = sorted(known_departments)
        if not department:
            raise AccountError("担当課の指定が必要です / role 'department' needs --department CODE")
        if department not in known:
            raise AccountError(f"担当課コードが不明です / unknown department {department!r}; known: {', '.join(known)}")
        return parsed, department
    if department:
        raise AccountError(f"担当課は department 役割のみ / --department is only for role 'department', not {role!r}")
    return parsed, None


def default_hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's RFC 9106 low-memory defaults."""
    return PasswordHasher()


class AccountStore:
    """The users table. One shared aiosqlite connection (autocommit; explicit transactions)."""

    def __init__(self, conn: aiosqlite.Connection, clock: Clock, hasher: PasswordHasher | None = None) -> None:
        self._conn = conn
        self._clock = clock
        self._hasher = hasher or default_hasher()
        self._dummy_hash: str | None = None
        # Each argon2 computation holds memory_cost KiB (64 MiB by default): bound how many run at
        # once so a burst of logins cannot exhaust memory through the thread pool.
        self._slots = asyncio.Semaphore(HASH_CONCURRENCY)

    def _now(self) -> str:
        return require_aware(self._clock(), "clock()").isoformat()

    async def _hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def _check(self, stored: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(self._verify, stored, password)

    async def add(
        self,
        user_id: str,
        role: str,
        password: str,
        *,
        department: str | None = None,
        display_name: str = "",
        known_departments: Iterable[str] = (),
    ) -> User:
        validate_user_id(user_id)
        parsed_role, dept = validate_role_department(role, department, known_departments)
        validate_password(password)
        if len(display_name) > MAX_NAME_CHARS:
            raise AccountError(f"表示名が長すぎます / display name too long: at most {MAX_NAME_CHARS} characters")
        hashed = await self._hash(password)
        now = self._now()
        try:
            await self._conn.execute(
                "INSERT INTO users(user_id, role, department, display_name, password_hash, disabled,"
                " created_at, password_changed_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
                (user_id, parsed_role.value, dept, display_name, hashed, now, now),
            )
        except aiosqlite.IntegrityError:
            raise DuplicateUser(f"ユーザーIDは登録済みです / user {user_id!r} already exists") from None
        return User(user_id, parsed_role, dept, display_name, False, now)

    async def get(self, user_id: str) -> User | None:
        async with self._conn.execute(
            "SELECT user_id, role, department, display_name, disabled, created_at FROM users WHERE user_id = ?",
            (user_id,),
        ) as cur:
            row = await cur.fetchone()
        return _user(row) if row else None

    async def all_users(self) -> list[User]:
        async with self._conn.execute(
            "SELECT user_id, role, department, display_name, disabled, created_at FROM users ORDER BY user_id"
        ) as cur:
            rows = await cur.fetchall()
        return [_user(r) for r in rows]

    async def set_disabled(self, user_id: str, disabled: bool = True) -> None:
        """Disable (or re-enable) an account; disabling also ends all its sessions.

        Single autocommit statements (the connection is shared with other components' batches):
        the session lookup rejects a disabled user's sessions by itself, so a crash between the
        two statements cannot leave a usable session behind.
        """
        cur = await self._conn.execute(
            "UPDATE users SET disabled = ? WHERE user_id = ?", (1 if disabled else 0, user_id)
        )
        if cur.rowcount == 0:
            raise UnknownUser(f"ユーザーが存在しません / no such user {user_id!r}")
        if disabled:
            await self._conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    async def reset_password(self, user_id: str, password: str) -> None:
        """Set a new password and end every session of the account (sessions older than the
        password change are rejected at lookup as well, so this holds even across a crash)."""
        validate_password(password)
        hashed = await self._hash(password)
        cur = await self._conn.execute(
            "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE user_id = ?",
            (hashed, self._now(), user_id),
        )
        if cur.rowcount == 0:
            raise UnknownUser(f"ユーザーが存在しません / no such user {user_id!r}")
        await self._conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    async def authenticate(self, user_id: str, password: str) -> AuthResult:
        """Check a password. Unknown ids cost the same hash work as known ones (no user oracle)."""
        async with self._conn.execute(
            "SELECT user_id, role, department, display_name, disabled, created_at, password_hash"
            " FROM users WHERE user_id = ?",
            (user_id,),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self._hash("cti-dummy-password-for-timing")
            await self._check(self._dummy_hash, password)
            return AuthResult(None, "unknown_user")
        stored = str(row["password_hash"])
        if not await self._check(stored, password):
            return AuthResult(None, "wrong_password")
        user = _user(row)
        if user.disabled:
            return AuthResult(None, "disabled")
        if self._hasher.check_needs_rehash(stored):
            await self._conn.execute(
                "UPDATE users SET password_hash = ? WHERE user_id = ? AND password_hash = ?",
                (await self._hash(password), user_id, stored),
            )
        return AuthResult(user, "ok")

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(stored, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True, slots=True)
class AuthResult:
    user: User | None
    outcome: str  # ok | unknown_user | wrong_password | disabled


def _user(row: aiosqlite.Row) -> User:
    return User(
        user_id=str(row["user_id"]),
        role=Role(str(row["role"])),
        department=row["department"],
        display_name=str(row["display_name"]),
        disabled=bool(row["disabled"]),
        created_at=str(row["created_at"]),
    )
