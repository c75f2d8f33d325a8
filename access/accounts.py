"""Staff accounts (operators, supervisors, department staff, admins) in the app's SQLite database.

Accounts are pre-registered by an admin (``cti user add``); there is no self sign-up. Passwords are
hashed with argon2id (argon2-cffi's PasswordHasher) and rehashed at login when the hasher's
parameters changed. The hash work runs in threads, a bounded number at once (access/passwords.py).
Every change is a synchronous unit of work run whole through the database gateway (cti/gateway.py).

The component ``accounts`` owns two tables: ``users`` and ``sessions`` (see access/sessions.py).
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from access.passwords import PasswordWork, default_hasher
from cti.core.clock import Clock, require_aware
from cti.core.principal import Role
from cti.gateway import Gateway

USER_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
MAX_NAME_CHARS = 64

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
            f"ユーザーIDが不正です: {user_id!r}（2〜32文字。英小文字・数字・'.'・'_'・'-'、先頭は英小文字か数字）"
        )
    return user_id


def validate_display_name(name: str) -> str:
    """A name shown on screens: no control characters (NUL, escapes, newlines), no lone surrogates,
    and not made only of invisible characters (zero-width spaces, joiners, BOM)."""
    if len(name) > MAX_NAME_CHARS:
        raise AccountError(f"表示名が長すぎます（{MAX_NAME_CHARS}文字まで）")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
        raise AccountError("表示名に制御文字は使えません")
    if name and all(unicodedata.category(ch) in ("Cf", "Zs", "Zl", "Zp") for ch in name):
        raise AccountError("表示名が空白や見えない文字だけです")
    return name


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"パスワードが短すぎます（{MIN_PASSWORD_CHARS}文字以上）")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"パスワードが長すぎます（{MAX_PASSWORD_CHARS}文字まで）")
    if any(unicodedata.category(ch) == "Cs" or ch == "\0" for ch in password):
        raise AccountError("パスワードに使えない文字（NULなど）があります")
    return password


def validate_role_department(
    role: str, department: str | None, known_departments: Iterable[str]
) -> tuple[Role, str | None]:
    try:
        parsed = Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise AccountError(f"役割が不正です: {role!r}（{choices} のいずれか）") from None
    if parsed is Role.DEPARTMENT:
        known = sorted(known_departments)
        if not department:
            raise AccountError("役割 'department' には担当課の指定（--department CODE）が必要です")
        if department not in known:
            raise AccountError(f"担当課コードが不明です: {department!r}（登録済み: {', '.join(known)}）")
        return parsed, department
    if department:
        raise AccountError(f"--department は役割 'department' にだけ指定できます（指定された役割: {role!r}）")
    return parsed, None


class AccountStore:
    """The users table, through the database gateway: every change is one synchronous unit below."""

    def __init__(self, db: Gateway, clock: Clock, passwords: PasswordWork | None = None) -> None:
        self._db = db
        self._clock = clock
        self.passwords = passwords or PasswordWork(default_hasher())
        self._dummy_hash: str | None = None

    def _now(self) -> str:
        return require_aware(self._clock(), "clock()").isoformat()

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
        validate_display_name(display_name)
        hashed = await self.passwords.hash(password)
        now = self._now()
        await self._db.write(lambda conn: insert_user(conn, user_id, parsed_role, dept, display_name, hashed, now))
        return User(user_id, parsed_role, dept, display_name, False, now)

    async def get(self, user_id: str) -> User | None:
        row = await self._db.read(lambda conn: _user_row(conn, user_id))
        return _user(row) if row else None

    async def all_users(self) -> list[User]:
        rows = await self._db.read(
            lambda conn: conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY user_id").fetchall()
        )
        return [_user(r) for r in rows]

    async def set_disabled(self, user_id: str, disabled: bool = True) -> None:
        """Disable (or re-enable) an account; disabling also ends all its sessions (one unit)."""
        await self._db.write(lambda conn: set_disabled(conn, user_id, disabled))

    async def reset_password(self, user_id: str, password: str) -> None:
        """Set a new password and end every session of the account (one unit)."""
        validate_password(password)
        hashed = await self.passwords.hash(password)
        now = self._now()
        await self._db.write(lambda conn: reset_password(conn, user_id, hashed, now))

    async def authenticate(self, user_id: str, password: str) -> AuthResult:
        """Check a password. Unknown ids cost the same hash work as known ones (no user oracle);
        a disabled account's password is checked as well, so its answer takes as long."""
        row = await self._db.read(lambda conn: _user_row(conn, user_id, with_hash=True))
        if row is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self.passwords.hash("cti-dummy-password-for-timing")
            await self.passwords.verify(self._dummy_hash, password)
            return AuthResult(None, "unknown_user")
        stored = str(row["password_hash"])
        if not await self.passwords.verify(stored, password):
            return AuthResult(None, "wrong_password")
        user = _user(row)
        if user.disabled:
            return AuthResult(None, "disabled")
        if self.passwords.needs_rehash(stored):
            rehashed = await self.passwords.hash(password)
            await self._db.write(lambda conn: replace_hash(conn, user_id, stored, rehashed))
        return AuthResult(user, "ok")


# --- units of work (run whole on the database thread; see cti/gateway.py) ---------------------------

_USER_COLUMNS = "user_id, role, department, display_name, disabled, created_at"


def _user_row(conn: sqlite3.Connection, user_id: str, *, with_hash: bool = False) -> sqlite3.Row | None:
    columns = _USER_COLUMNS + (", password_hash" if with_hash else "")
    row: sqlite3.Row | None = conn.execute(f"SELECT {columns} FROM users WHERE user_id = ?", (user_id,)).fetchone()
    return row


def insert_user(
    conn: sqlite3.Connection, user_id: str, role: Role, department: str | None, display_name: str, hashed: str, now: str
) -> None:
    try:
        conn.execute(
            "INSERT INTO users(user_id, role, department, display_name, password_hash, disabled,"
            " created_at, password_changed_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
            (user_id, role.value, department, display_name, hashed, now, now),
        )
    except sqlite3.IntegrityError:
        raise DuplicateUser(f"ユーザーIDは登録済みです: {user_id!r}") from None


def set_disabled(conn: sqlite3.Connection, user_id: str, disabled: bool) -> None:
    """The flag and (when disabling) the end of every session, committed together."""
    cur = conn.execute("UPDATE users SET disabled = ? WHERE user_id = ?", (1 if disabled else 0, user_id))
    if cur.rowcount == 0:
        raise UnknownUser(f"ユーザーが存在しません: {user_id!r}")
    if disabled:
        conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))


def reset_password(conn: sqlite3.Connection, user_id: str, hashed: str, now: str) -> None:
    cur = conn.execute(
        "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE user_id = ?", (hashed, now, user_id)
    )
    if cur.rowcount == 0:
        raise UnknownUser(f"ユーザーが存在しません: {user_id!r}")
    conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))


def replace_hash(conn: sqlite3.Connection, user_id: str, old: str, new: str) -> None:
    """A rehash with new parameters; a no-op when the password changed meanwhile."""
    conn.execute("UPDATE users SET password_hash = ? WHERE user_id = ? AND password_hash = ?", (new, user_id, old))


@dataclass(frozen=True, slots=True)
class AuthResult:
    user: User | None
    outcome: str  # ok | unknown_user | wrong_password | disabled


def _user(row: sqlite3.Row) -> User:
    return User(
        user_id=str(row["user_id"]),
        role=Role(str(row["role"])),
        department=row["department"],
        display_name=str(row["display_name"]),
        disabled=bool(row["disabled"]),
        created_at=str(row["created_at"]),
    )
