"""Refusals inside a unit of work: undo the unit's own work, keep the audit row of the refusal.

A unit raises `Denied` when the principal may not touch a record. `run_scoped` (the unit's body
runs inside SAVEPOINT scope) rolls back whatever the body did, appends the "denied" audit row and
hands back a `Refused`, so the refusal is committed like any other unit and the caller raises its
error afterwards. Records outside one's scope answer exactly like missing ones (404): the status
must not tell whether a record id exists; the audit row still says "denied".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from cti.core.principal import Principal
from records.rules import RecordsError
from records.trail import AuditTrail

T = TypeVar("T")


class Denied(Exception):
    def __init__(self, err: RecordsError, action: str, record_type: str, record_id: str | int | None) -> None:
        super().__init__(err.code)
        self.err = err
        self.action = action
        self.record_type = record_type
        self.record_id = record_id


@dataclass(frozen=True, slots=True)
class Refused:
    denied: Denied


def run_scoped(conn: sqlite3.Connection, trail: AuditTrail, who: Principal,
               body: Callable[[sqlite3.Connection], T]) -> T | Refused:
    """(database thread) `body(conn)`; on Denied: nothing of the body stays, the refusal is audited."""
    conn.execute("SAVEPOINT scope")
    try:
        value = body(conn)
    except Denied as denied:
        _undo(conn)
        trail.append(conn, who, denied.action, denied.record_type, denied.record_id, "denied",
                     {"code": denied.err.code})
        return Refused(denied)
    except BaseException:
        _undo(conn)
        raise
    conn.execute("RELEASE scope")
    return value


def _undo(conn: sqlite3.Connection) -> None:
    conn.execute("ROLLBACK TO scope")
    conn.execute("RELEASE scope")


def hidden(err: RecordsError, not_found: RecordsError) -> RecordsError:
    """Another's record answers like a missing one (the role check ran before, on no record at all);
    only the own call after its after-call work keeps its 403: it reveals nothing new to them."""
    return not_found if err.status == 403 and err.code != "call_closed" else err
