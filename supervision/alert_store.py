"""Access alerts in the database: stored when raised (so they survive a restart and have a stable
id), listed until a supervisor acknowledges them, the acknowledgement audited in records' trail.

Every function here is a unit of work or a read for the database gateway (fn(conn) -> T). An
alert holds ids and numbers only (no personal data).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cti.core.principal import Principal
from records.rules import iso
from records.trail import AuditTrail
from supervision.alerts import Alert

SCHEMA = """
CREATE TABLE access_alerts (
    id             INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    kind           TEXT NOT NULL,
    user_id        TEXT,
    count          INTEGER NOT NULL,
    window_seconds INTEGER NOT NULL,
    text           TEXT NOT NULL               -- ids and numbers only
)
"""

# Version 2 of the "supervisor" component: alerts are acknowledged by a supervisor.
ACKNOWLEDGEMENT_SCHEMA = """
ALTER TABLE access_alerts ADD COLUMN acknowledged_at TEXT;
ALTER TABLE access_alerts ADD COLUMN acknowledged_by TEXT;
CREATE INDEX access_alerts_open ON access_alerts(acknowledged_at, id)
"""

LIST_LIMIT = 200


class AlertNotFound(LookupError):
    pass


class AlreadyAcknowledged(Exception):
    def __init__(self, alert: dict[str, Any]) -> None:
        super().__init__(f"alert {alert['id']} was already acknowledged")
        self.alert = alert


def as_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": int(row["id"]), "kind": row["kind"], "at": row["at"], "text": row["text"],
            "user_id": row["user_id"], "count": int(row["count"]), "window_seconds": int(row["window_seconds"]),
            "acknowledged_at": row["acknowledged_at"], "acknowledged_by": row["acknowledged_by"]}


def insert_alerts(conn: sqlite3.Connection, alerts: Sequence[Alert]) -> list[dict[str, Any]]:
    """(unit of work) Store the alerts; returns them as stored (with their ids), in order."""
    stored = []
    for a in alerts:
        row = conn.execute(
            "INSERT INTO access_alerts(at, kind, user_id, count, window_seconds, text) VALUES (?,?,?,?,?,?)"
            " RETURNING *", (iso(a.at), a.kind, a.user_id, a.count, a.window_seconds, a.text),
        ).fetchone()
        stored.append(as_dict(row))
    return stored


def open_alerts(conn: sqlite3.Connection, limit: int = LIST_LIMIT, *, with_acknowledged: bool = False
                ) -> list[dict[str, Any]]:
    """(read) The newest alerts, not yet acknowledged ones only unless asked; newest first."""
    where = "" if with_acknowledged else " WHERE acknowledged_at IS NULL"
    rows = conn.execute(f"SELECT * FROM access_alerts{where} ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    return [as_dict(r) for r in rows]


def acknowledge(
    conn: sqlite3.Connection, trail: AuditTrail, alert_id: int, who: Principal, at: datetime
) -> dict[str, Any]:
    """(unit of work) Mark the alert acknowledged by `who` and audit it; returns the alert."""
    row = conn.execute("SELECT * FROM access_alerts WHERE id = ?", (alert_id,)).fetchone()
    if row is None:
        raise AlertNotFound(alert_id)
    if row["acknowledged_at"] is not None:
        raise AlreadyAcknowledged(as_dict(row))
    updated = conn.execute(
        "UPDATE access_alerts SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ? RETURNING *",
        (iso(at), who.user_id, alert_id),
    ).fetchone()
    trail.append(conn, who, "acknowledge", "access_alert", alert_id, at=at,
                 detail={"kind": row["kind"], "account": row["user_id"]})
    return as_dict(updated)
