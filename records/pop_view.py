"""The screen pop's read model: a caller's recent contacts and open callback requests.

Reads (``db.read``) keyed by the caller number; the answers carry no personal data (dates,
categories, outcomes, departments, statuses), so they are not audited.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from records import rules
from records.rules import Status


def caller_history(conn: sqlite3.Connection, digits: str, since: str, until: str, exclude: Collection[str],
                   limit: int) -> list[dict[str, Any]]:
    """Recent contacts of this caller number (date, category, outcome), newest first; calls still
    live (the one being popped) are not history."""
    rows = conn.execute(
        "SELECT call_id, started_at, ivr_category, outcome, transfer_department FROM contacts"
        " WHERE caller_number = ? AND started_at > ? AND started_at <= ? ORDER BY started_at DESC LIMIT ?",
        (digits, since, until, limit + len(exclude)),
    ).fetchall()
    return [{"call_id": r["call_id"], "date": datetime.fromisoformat(r["started_at"]).date(),
             "category": r["ivr_category"], "outcome": r["outcome"],
             "transfer_department": r["transfer_department"]} for r in rows if r["call_id"] not in exclude][:limit]


def open_callbacks_for(conn: sqlite3.Connection, digits: str) -> list[dict[str, Any]]:
    """Not-yet-closed callback requests from this caller (id, department, status, handover date)."""
    rows = conn.execute(
        "SELECT cb.id, cb.department, cb.status, cb.handover_date FROM callbacks cb"
        " JOIN contacts c ON c.call_id = cb.call_id"
        " WHERE (c.caller_number = ? OR cb.phone = ?) AND cb.status NOT IN ('closed','closed_unreached')"
        " AND cb.purged_at IS NULL ORDER BY cb.id",
        (digits, digits),
    ).fetchall()
    return [{"id": r["id"], "department": r["department"], "status": r["status"],
             "status_text": rules.STATUS_TEXT[Status(r["status"])],
             "handover_date": date.fromisoformat(r["handover_date"])} for r in rows]
