"""The audit trail writer: appends hash-chained rows inside whatever unit of work is running.

Every package that audits (records, supervision, the calendar) appends through `AuditTrail.append`
inside its own unit (``await db.write(fn)``), so the change and its audit row commit together and
the chain's order is the database thread's order. Rows hold ids and codes only, never personal data.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from cti.core.clock import Clock, require_aware
from cti.core.principal import Principal, Role
from records.audit import GENESIS, Anchor, Problem, row_hash, verify_chain
from records.rules import iso

SYSTEM = Principal(user_id="system", role=Role.ADMIN, department=None, client_ip="-")

AuditContent = dict[str, Any]


class AuditTrail:
    """Who appends (the key, the clock); `append` runs on the database thread inside a unit."""

    def __init__(self, clock: Clock, key: bytes | None = None) -> None:
        self.clock = clock
        self.key = key

    def content(
        self, who: Principal, action: str, record_type: str, record_id: str | int | None, outcome: str = "ok",
        detail: Mapping[str, Any] | None = None, at: datetime | None = None,
    ) -> AuditContent:
        return {
            "at": iso(at or require_aware(self.clock(), "clock()")),
            "actor": who.user_id,
            "role": str(who.role),
            "department": who.department,
            "client_ip": who.client_ip,
            "action": action,
            "record_type": record_type,
            "record_id": None if record_id is None else str(record_id),
            "outcome": outcome,
            "detail": json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        }

    def append(
        self, conn: sqlite3.Connection, who: Principal, action: str, record_type: str,
        record_id: str | int | None, outcome: str = "ok", detail: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """(database thread, inside a unit) Append one row chained to the last one."""
        self.append_content(conn, self.content(who, action, record_type, record_id, outcome, detail, at))

    def append_content(self, conn: sqlite3.Connection, content: AuditContent) -> None:
        last = conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        prev = str(last[0]) if last else GENESIS
        conn.execute(
            "INSERT INTO audit(at, actor, role, department, client_ip, action, record_type, record_id, outcome,"
            " detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (*content.values(), prev, row_hash(prev, content, self.key)),
        )

    def unit(
        self, who: Principal, action: str, record_type: str, record_id: str | int | None, outcome: str = "ok",
        detail: Mapping[str, Any] | None = None,
    ) -> Callable[[sqlite3.Connection], None]:
        """A unit of work that only appends this row: ``await db.write(trail.unit(...))``."""
        content = self.content(who, action, record_type, record_id, outcome, detail)
        return lambda conn: self.append_content(conn, content)


def head(conn: sqlite3.Connection) -> Anchor | None:
    """The chain's last row as an anchor (None while the trail is empty)."""
    row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else Anchor(int(row[0]), str(row[1]))


def verify(conn: sqlite3.Connection, key: bytes | None, anchor: Anchor | None = None) -> tuple[int, list[Problem]]:
    """(read) The whole chain checked with the key, the AUTOINCREMENT mark and an external anchor."""
    rows = [dict(r) for r in conn.execute("SELECT * FROM audit ORDER BY seq")]
    hw = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
    return len(rows), verify_chain(rows, int(hw[0]) if hw else None, key=key, anchor=anchor)
