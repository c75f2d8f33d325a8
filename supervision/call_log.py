"""The call log behind the reports: one row per call (ids, times, category, operator id; never a
caller number), written from the tracker's domain events by a task the supervisor context owns.

Events are queued by the event feed (never blocking the telephony listener) and drained in
batches: each batch is one unit of work for the database gateway (one COMMIT, one fsync).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from typing import Any

from cti.core.logs import log_event
from cti.gateway import Gateway
from records.rules import iso

logger = logging.getLogger("supervision.call_log")

SCHEMA = """
CREATE TABLE call_log (
    call_id      TEXT PRIMARY KEY,     -- Asterisk Linkedid; no caller number is kept here
    arrived_at   TEXT NOT NULL,
    category     TEXT,
    queued_at    TEXT,
    answered_at  TEXT,
    ended_at     TEXT,
    abandoned    INTEGER NOT NULL DEFAULT 0,
    after_hours  INTEGER NOT NULL DEFAULT 0,
    operator     TEXT
);
CREATE INDEX call_log_arrived ON call_log(arrived_at)
"""

# (kind, call_id, fields): kind is arrived | routed | queued | answered | abandoned | ended
Entry = tuple[str, str, dict[str, Any]]
CallLogQueue = asyncio.Queue[Entry]


def write_entries(conn: sqlite3.Connection, batch: list[Entry]) -> None:
    """(unit of work) Apply a batch of call-log updates."""
    for kind, call_id, d in batch:
        _write_one(conn, kind, call_id, d)


def _write_one(conn: sqlite3.Connection, kind: str, call_id: str, d: dict[str, Any]) -> None:
    at = iso(d["at"])
    conn.execute("INSERT INTO call_log(call_id, arrived_at, after_hours) VALUES (?,?,?)"
                 " ON CONFLICT(call_id) DO NOTHING", (call_id, at, int(bool(d.get("after_hours")))))
    if kind == "routed":
        conn.execute("UPDATE call_log SET after_hours = max(after_hours, ?), category = coalesce(?, category)"
                     " WHERE call_id = ?", (int(d["closed"]), d["category"], call_id))
    elif kind == "queued":
        conn.execute("UPDATE call_log SET queued_at = coalesce(queued_at, ?), category = coalesce(?, category)"
                     " WHERE call_id = ?", (at, d["category"], call_id))
    elif kind == "answered":
        conn.execute("UPDATE call_log SET answered_at = coalesce(answered_at, ?), operator = ? WHERE call_id = ?",
                     (at, d["operator"], call_id))
    elif kind == "abandoned":
        conn.execute("UPDATE call_log SET abandoned = 1 WHERE call_id = ? AND answered_at IS NULL", (call_id,))
    elif kind == "ended":
        conn.execute("UPDATE call_log SET ended_at = ?, abandoned = max(abandoned, ?) WHERE call_id = ?",
                     (at, int(d["abandoned"]), call_id))


async def write_call_log(db: Gateway, queue: CallLogQueue) -> None:
    """Owned task: drain call-log updates into the database, one unit of work per batch."""
    while True:
        batch = [await queue.get()]
        while not queue.empty():
            batch.append(queue.get_nowait())
        try:
            await db.write(functools.partial(write_entries, batch=batch))
        except asyncio.CancelledError:
            raise
        except Exception:
            log_event(logger, "call_log_write_failed", logging.ERROR, count=len(batch), exc_info=True)
