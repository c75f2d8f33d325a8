"""The screen side's tables (component "screenpop"; see cti.gateway.migrate_sync)."""

from __future__ import annotations

COMPONENT = "screenpop"
MIGRATIONS: list[str] = [
    """
CREATE TABLE operator_desks (                                -- screenpop/desks.py
    user_id     TEXT PRIMARY KEY,
    interface   TEXT UNIQUE,                                 -- queue member interface; NULL: no seat
    presence    TEXT CHECK (presence IN ('ready', 'pause')), -- NULL: not chosen since the seat was taken
    reason      TEXT,                                        -- the away reason (離席理由, 後処理, 不在着信)
    changed_at  TEXT NOT NULL
);
CREATE TABLE call_reference_days (                           -- screenpop/references.py
    day         TEXT PRIMARY KEY,                            -- YYYY-MM-DD, Asia/Tokyo
    reserved    INTEGER NOT NULL                             -- numbers 1..reserved may have been given
);
CREATE TABLE call_references (
    call_id     TEXT PRIMARY KEY,                            -- Asterisk's Linkedid
    day         TEXT NOT NULL,                               -- YYYY-MM-DD, Asia/Tokyo
    number      INTEGER NOT NULL CHECK (number >= 1),
    UNIQUE (day, number)
)
""",
]
