"""Append one row to the hash-chained audit trail from inside a database-gateway unit of work.

Other packages (the calendar's runtime overrides, the supervisor's alert acknowledgements) change
their own rows and audit the change in the same unit, so both commit together or neither does.
The unit runs inside the gateway's BEGIN IMMEDIATE, which holds SQLite's write lock: nobody else
can append between reading the last hash and inserting the new row. Ids and codes only in `detail`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cti.core.principal import Principal
from records.audit import GENESIS, row_hash
from records.rules import iso


def append_audit(
    conn: sqlite3.Connection,
    who: Principal,
    action: str,
    record_type: str,
    record_id: str | int | None,
    at: datetime,
    outcome: str = "ok",
    detail: Mapping[str, Any] | None = None,
) -> int:
    """(inside a unit of work) Append the row; returns its seq."""
    content: dict[str, Any] = {
        "at": iso(at),
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
    last = conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    prev = str(last[0]) if last else GENESIS
    cur = conn.execute(
        "INSERT INTO audit(at, actor, role, department, client_ip, action, record_type, record_id, outcome,"
        " detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (*content.values(), prev, row_hash(prev, content)),
    )
    return int(cur.lastrowid or 0)
