"""One click-to-call dials once, whichever cti node gets the click (and whatever the browser retries).

The telephony side refuses a second Originate for a callback while its attempt is live, but that
state is in one node's memory: with two nodes a click retried on the other node (the first node died
or answered late) would dial the citizen twice. Before originating, the node *claims* the callback
in the store: one row per callback, held for `CLAIM_SECONDS` (an attempt's ring time and then some).
The claim is a unit of work, so it is decided under the gateway's one-writer lock: of two nodes
claiming at once, exactly one gets it. A failed Originate releases the claim at once. The node that
holds a claim may claim again (its own telephony state refuses a second live attempt, and lets the
staff dial again once an attempt ended), so on one node nothing changes.

Component "dial_claims" (no personal data: the callback id, who, when, which node).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

COMPONENT = "dial_claims"
MIGRATIONS: list[str] = [
    """
    CREATE TABLE dial_claims (
        callback_id  INTEGER PRIMARY KEY,
        claimed_by   TEXT NOT NULL,
        node         TEXT NOT NULL,
        claimed_at   TEXT NOT NULL,
        expires_at   TEXT NOT NULL
    )
    """,
]
CLAIM_SECONDS = 60


def migrations() -> dict[str, list[str]]:
    return {COMPONENT: MIGRATIONS}


def claim(conn: sqlite3.Connection, callback_id: int, user: str, node: str, now: datetime) -> bool:
    """(unit) Claim the callback for one Originate; False while another claim on it is live."""
    at, until = now.isoformat(), (now + timedelta(seconds=CLAIM_SECONDS)).isoformat()
    cur = conn.execute(
        "INSERT INTO dial_claims(callback_id, claimed_by, node, claimed_at, expires_at) VALUES (?,?,?,?,?)"
        " ON CONFLICT(callback_id) DO UPDATE SET claimed_by = excluded.claimed_by, node = excluded.node,"
        " claimed_at = excluded.claimed_at, expires_at = excluded.expires_at"
        " WHERE dial_claims.expires_at <= excluded.claimed_at OR dial_claims.node = excluded.node",
        (callback_id, user, node, at, until),
    )
    return cur.rowcount == 1


def release(conn: sqlite3.Connection, callback_id: int, node: str) -> None:
    """(unit) Give the claim back (the Originate failed: the staff may click again at once)."""
    conn.execute("DELETE FROM dial_claims WHERE callback_id = ? AND node = ?", (callback_id, node))
