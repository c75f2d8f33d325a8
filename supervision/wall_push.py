"""The owned task that pushes the live wall to supervisors, and the overdue-callback count it shows."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import datetime

from cti.core.logs import log_event
from cti.gateway import Gateway
from records.rules import iso
from supervision.event_feed import EventFeed
from supervision.messages import WallUpdate

logger = logging.getLogger("supervision.wall")


def overdue_callbacks(conn: sqlite3.Connection, now: datetime) -> int:
    """(read) Callback requests past their deadline and not closed (a count only)."""
    row = conn.execute(
        "SELECT count(*) FROM callbacks WHERE status NOT IN ('closed','closed_unreached') AND purged_at IS NULL"
        " AND due_by < ?", (iso(now),)
    ).fetchone()
    return int(row[0]) if row else 0


async def count_overdue(db: Gateway, now: datetime) -> int:
    return await db.read(lambda conn: overdue_callbacks(conn, now))


async def push_wall(db: Gateway, feed: EventFeed, interval: float = 1.0, refresh_every: int = 5) -> None:
    """Owned task: push the wall to supervisors when it changed (and every few seconds for the waits);
    refresh the overdue-callback count every 30 s."""
    last_version = -1
    ticks = 0
    while True:
        try:
            if ticks % 30 == 0:
                feed.wall.set_overdue_callbacks(await count_overdue(db, feed.clock()))
            if feed.wall.version != last_version or ticks % refresh_every == 0:
                last_version = feed.wall.version
                feed.send_to_supervisors(WallUpdate(state=feed.view()))
        except asyncio.CancelledError:
            raise
        except Exception:
            log_event(logger, "wall_push_failed", logging.ERROR, exc_info=True)
        ticks += 1
        await asyncio.sleep(interval)
