"""SQLite schema of records, as ordered migrations under the component "records".

Personal-data columns (purged after the retention period, erased by `cti wipe`) are listed in
PERSONAL_COLUMNS; everything else is statistics that may stay.
The audit table is append-only: triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

from collections.abc import Mapping

V1 = """
CREATE TABLE contacts (
    call_id        TEXT PRIMARY KEY,            -- Asterisk Linkedid
    operator       TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    ended_at       TEXT,
    ivr_category   TEXT,
    faq_entries    TEXT NOT NULL DEFAULT '[]',  -- JSON list of FAQ entry ids
    outcome        TEXT CHECK (outcome IN ('resolved','transferred','callback_requested','declined','unanswered')),
    transfer_department TEXT,
    caller_number  TEXT,                        -- personal data
    purged_at      TEXT
);
CREATE INDEX contacts_caller ON contacts(caller_number, started_at);
CREATE INDEX contacts_started ON contacts(started_at);

CREATE TABLE consents (
    id             INTEGER PRIMARY KEY,
    call_id        TEXT NOT NULL REFERENCES contacts(call_id),
    answer         TEXT NOT NULL CHECK (answer IN ('yes','no')),
    script_id      TEXT NOT NULL,
    script_version INTEGER NOT NULL,
    operator       TEXT NOT NULL,
    at             TEXT NOT NULL
);
CREATE INDEX consents_call ON consents(call_id, id);

CREATE TABLE callbacks (
    id             INTEGER PRIMARY KEY,
    call_id        TEXT NOT NULL REFERENCES contacts(call_id),
    consent_id     INTEGER NOT NULL REFERENCES consents(id),
    department     TEXT NOT NULL,
    name           TEXT,
    furigana       TEXT,
    phone          TEXT,
    question       TEXT,
    address        TEXT,
    address_reason TEXT,
    email          TEXT,
    email_reason   TEXT,
    fax            TEXT,
    fax_reason     TEXT,
    answer_summary TEXT,
    collected_at   TEXT NOT NULL,
    collected_by   TEXT NOT NULL,
    override_reason TEXT,
    handover_date  TEXT NOT NULL,
    handover_at    TEXT NOT NULL,
    due_by         TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'received'
                   CHECK (status IN ('received','handed_over','in_progress','closed','closed_unreached')),
    handed_over_at TEXT,
    closed_at      TEXT,
    version        INTEGER NOT NULL DEFAULT 1,
    purged_at      TEXT
);
CREATE INDEX callbacks_status ON callbacks(status, handover_at);
CREATE INDEX callbacks_department ON callbacks(department, status);
CREATE INDEX callbacks_collected ON callbacks(collected_at);
CREATE INDEX callbacks_call ON callbacks(call_id);

CREATE TABLE attempts (
    id             INTEGER PRIMARY KEY,
    callback_id    INTEGER NOT NULL REFERENCES callbacks(id),
    at             TEXT NOT NULL,
    outcome        TEXT NOT NULL CHECK (outcome IN ('reached','not_reached')),
    staff          TEXT NOT NULL
);
CREATE INDEX attempts_callback ON attempts(callback_id);

CREATE TABLE audit (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    at             TEXT NOT NULL,
    actor          TEXT NOT NULL,
    role           TEXT NOT NULL,
    department     TEXT,
    client_ip      TEXT NOT NULL,
    action         TEXT NOT NULL,
    record_type    TEXT NOT NULL,
    record_id      TEXT,
    outcome        TEXT NOT NULL,
    detail         TEXT NOT NULL DEFAULT '{}',  -- JSON, ids and codes only
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END
"""

# v2: FAQ gaps ("could not answer") for the FAQ authors, and purge bookkeeping.
V2 = """
CREATE TABLE faq_gaps (
    id             INTEGER PRIMARY KEY,
    call_id        TEXT NOT NULL UNIQUE REFERENCES contacts(call_id),
    ivr_category   TEXT,
    faq_entries    TEXT NOT NULL DEFAULT '[]',
    note           TEXT,                        -- free text: personal data
    created_at     TEXT NOT NULL,
    purged_at      TEXT
);
CREATE INDEX faq_gaps_created ON faq_gaps(created_at);
CREATE TABLE purge_runs (
    id             INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    cutoff         TEXT NOT NULL,
    kind           TEXT NOT NULL,               -- purge | wipe
    contacts       INTEGER NOT NULL,
    callbacks      INTEGER NOT NULL,
    faq_gaps       INTEGER NOT NULL
)
"""

# v3: the page's key of one 保存 of a callback form: a save repeated after its answer was lost (the
# cti node died between its commit and its reply) finds the row saved the first time.
V3 = """
ALTER TABLE callbacks ADD COLUMN request_key TEXT;
CREATE UNIQUE INDEX callbacks_request_key ON callbacks(request_key)
"""

MIGRATIONS: list[str] = [V1, V2, V3]
COMPONENT = "records"


def migrations() -> dict[str, list[str]]:
    """The mapping to merge into the database gateway's migrations (cti.app.migrations)."""
    from records import dial_claims

    return {COMPONENT: MIGRATIONS, **dial_claims.migrations()}


# table -> personal-data columns; the column that dates the collection
PERSONAL_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "contacts": ("caller_number",),
    "callbacks": (
        "name", "furigana", "phone", "question", "address", "address_reason",
        "email", "email_reason", "fax", "fax_reason", "answer_summary", "override_reason",
    ),
    "faq_gaps": ("note",),
}
COLLECTED_AT: Mapping[str, str] = {"contacts": "started_at", "callbacks": "collected_at", "faq_gaps": "created_at"}
EXPORT_TABLES: tuple[str, ...] = ("contacts", "consents", "callbacks", "attempts", "faq_gaps", "audit")
