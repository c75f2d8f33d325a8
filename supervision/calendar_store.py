"""The calendar's runtime state in the database: overrides added from the supervisor screen and the
emergency close switch, so they survive a restart and every process (cti serve, `cti calendar at`,
the records CLI) sees the same calendar.

Writes are units of work for the database gateway (cti.gateway): the row and its audit row
(records' hash chain) commit together. Callers change the in-memory Calendars only after
``await db.write(...)`` returned, i.e. after the COMMIT: a failed COMMIT changes nothing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aiohttp import web

from cti.calendar.rules import Calendars, Override, Which
from cti.core.principal import Principal
from cti.gateway import Database, Gateway
from records.audit_trail import append_audit

RUNTIME_PREFIX = "rt-"

SCHEMA = """
CREATE TABLE calendar_overrides (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('closure','opening')),
    applies_to  TEXT NOT NULL CHECK (applies_to IN ('call_center','office','both')),
    start       TEXT NOT NULL,
    end         TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    removed_by  TEXT,
    removed_at  TEXT
);
CREATE TABLE calendar_state (
    key         TEXT PRIMARY KEY,
    value       TEXT
)
"""


class OverrideGone(LookupError):
    """The override was removed meanwhile (by another request)."""


@dataclass(frozen=True, slots=True)
class RuntimeState:
    overrides: list[Override]
    emergency_reason: str | None


# ---- reads ---------------------------------------------------------------------------------------


def read_state(conn: sqlite3.Connection) -> RuntimeState:
    """(database thread) The live runtime overrides and the emergency switch; none when the tables
    do not exist yet (a database never migrated by cti serve)."""
    try:
        rows = conn.execute("SELECT * FROM calendar_overrides WHERE removed_at IS NULL ORDER BY id").fetchall()
        state = conn.execute("SELECT value FROM calendar_state WHERE key = 'emergency_reason'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return RuntimeState([], None)
        raise
    overrides = [
        Override(kind=row["kind"], applies_to=Which(row["applies_to"]), start=datetime.fromisoformat(row["start"]),
                 end=datetime.fromisoformat(row["end"]), reason=row["reason"], id=f"{RUNTIME_PREFIX}{row['id']}")
        for row in rows
    ]
    reason = str(state[0]) if state is not None and state[0] else None
    return RuntimeState(overrides, reason)


def apply_state(calendars: Calendars, state: RuntimeState) -> int:
    """Put the stored runtime state into `calendars` (overrides already there are kept); returns
    how many overrides were added."""
    known = {o.id for o in calendars.overrides}
    added = 0
    for override in state.overrides:
        if override.id not in known:
            calendars.add_override(override)
            added += 1
    if state.emergency_reason is not None:
        calendars.set_emergency(state.emergency_reason)
    return added


async def load_runtime_state(db: Gateway, calendars: Calendars) -> int:
    """Re-apply persisted runtime overrides and the emergency switch (at startup)."""
    return apply_state(calendars, await db.read(read_state))


async def read_stored_state(path: Path) -> RuntimeState:
    """The runtime state stored in the database file at `path` (CLIs); empty if there is no file
    (the CLI does not create one just to read it)."""
    if not await asyncio.to_thread(path.exists):
        return RuntimeState([], None)
    db = await Database.open(path, {})
    try:
        return await db.read(read_state)
    finally:
        await db.close()


# ---- units of work (each with its audit row) ------------------------------------------------------


def save_emergency(
    conn: sqlite3.Connection, who: Principal, reason: str | None, was_active: bool, at: datetime
) -> None:
    conn.execute("INSERT INTO calendar_state(key, value) VALUES ('emergency_reason', ?)"
                 " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (reason,))
    append_audit(conn, who, "emergency_on" if reason is not None else "emergency_off", "calendar", "emergency",
                 at, detail={"was_active": was_active})


def insert_override(conn: sqlite3.Connection, who: Principal, override: Override, at: datetime) -> Override:
    """Store the override; returns it with its runtime id ("rt-<row id>")."""
    cur = conn.execute(
        "INSERT INTO calendar_overrides(kind, applies_to, start, end, reason, created_by, created_at)"
        " VALUES (?,?,?,?,?,?,?)",
        (override.kind, override.applies_to.value, override.start.isoformat(), override.end.isoformat(),
         override.reason, who.user_id, at.isoformat()),
    )
    stored = Override(kind=override.kind, applies_to=override.applies_to, start=override.start, end=override.end,
                      reason=override.reason, id=f"{RUNTIME_PREFIX}{cur.lastrowid}")
    append_audit(conn, who, "override_add", "calendar", stored.id, at,
                 detail={"kind": stored.kind, "applies_to": stored.applies_to.value,
                         "start": stored.start.isoformat(), "end": stored.end.isoformat()})
    return stored


def delete_override(conn: sqlite3.Connection, who: Principal, override: Override, at: datetime) -> None:
    """Mark the override removed (the row stays for the record); OverrideGone if it already was."""
    cur = conn.execute(
        "UPDATE calendar_overrides SET removed_at = ?, removed_by = ? WHERE id = ? AND removed_at IS NULL",
        (at.isoformat(), who.user_id, int(override.id.removeprefix(RUNTIME_PREFIX))),
    )
    if cur.rowcount != 1:
        raise OverrideGone(override.id)
    append_audit(conn, who, "override_remove", "calendar", override.id, at, detail={"kind": override.kind})


# ---- app context ------------------------------------------------------------------------------------


def calendar_ctx(
    database: web.AppKey[Database], calendars: web.AppKey[Calendars]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that loads the stored runtime state into the app's calendars. It runs right
    after the database context, before anything that routes calls or hands records over."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await load_runtime_state(app[database], app[calendars])
        yield

    return ctx
