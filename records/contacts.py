"""Units of work on one call's records: the contact, its consents, its outcome and FAQ gap.

Each function runs whole on the database thread inside ``db.write`` (records.service builds the
closures). The contact is created by the server when the tracker sees an operator answer
(`insert_taken`); the browser never names the operator, the caller number or the times.
"""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cti.core.principal import Principal
from records import rules
from records.denials import Denied, hidden
from records.rules import Access, RecordsError
from records.settings import ConsentScript
from records.trail import SYSTEM, AuditTrail


def unknown_call(call_id: str) -> RecordsError:
    return RecordsError(404, "unknown_call", f"通話 {call_id} の記録がありません", "call_id")


def caller_digits(raw: str | None) -> str | None:
    """Caller ID as digits (national form when +81); None when withheld or not a number."""
    if not raw:
        return None
    text = unicodedata.normalize("NFKC", raw).strip().replace("-", "").replace(" ", "")
    if text.startswith("+81"):
        text = "0" + text[3:]
    return text if text.isdigit() and text.isascii() and len(text) <= 32 else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def contact_out(row: sqlite3.Row) -> dict[str, Any]:
    return {"call_id": row["call_id"], "operator": row["operator"], "started_at": _dt(row["started_at"]),
            "ended_at": _dt(row["ended_at"]), "ivr_category": row["ivr_category"],
            "faq_entries": json.loads(row["faq_entries"]), "outcome": row["outcome"],
            "transfer_department": row["transfer_department"]}


def consent_out(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "call_id": row["call_id"], "answer": row["answer"], "script_id": row["script_id"],
            "script_version": row["script_version"], "operator": row["operator"], "at": _dt(row["at"])}


def insert_taken(conn: sqlite3.Connection, trail: AuditTrail, call_id: str, operator: str, started: str,
                 ivr_category: str | None, number: str | None) -> bool:
    """The server saw `operator` answer: create the contact once (True when this unit created it)."""
    cur = conn.execute(
        "INSERT INTO contacts(call_id, operator, started_at, ivr_category, caller_number) VALUES (?,?,?,?,?)"
        " ON CONFLICT(call_id) DO NOTHING",
        (call_id, operator, started, ivr_category, number),
    )
    if cur.rowcount != 1:
        return False
    trail.append(conn, SYSTEM, "create", "contact", call_id, detail={"operator": operator})
    return True


def end_call(conn: sqlite3.Connection, call_id: str, ended: str) -> bool:
    """The call hung up (server clock); statistics only, so no audit row."""
    cur = conn.execute("UPDATE contacts SET ended_at = ? WHERE call_id = ? AND ended_at IS NULL", (ended, call_id))
    return cur.rowcount == 1


def owned_contact(conn: sqlite3.Connection, who: Principal, call_id: str, public_info: str,
                  action: str) -> sqlite3.Row:
    """The contact, if `who` may write to it (operators: the call the server gave them); else 404."""
    row: sqlite3.Row | None = conn.execute("SELECT * FROM contacts WHERE call_id = ?", (call_id,)).fetchone()
    if row is None:
        raise unknown_call(call_id)
    try:
        rules.authorize(who, Access.WRITE_CALL, public_information_department=public_info,
                        call_operator=row["operator"])
    except RecordsError as err:
        raise Denied(hidden(err, unknown_call(call_id)), action, "call", call_id) from None
    return row


def latest_consent(conn: sqlite3.Connection, call_id: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, answer FROM consents WHERE call_id = ? ORDER BY id DESC LIMIT 1", (call_id,)).fetchone()
    return row


def update_contact(conn: sqlite3.Connection, trail: AuditTrail, who: Principal, public_info: str, call_id: str,
                   fields: Mapping[str, Any], gap: bool, note: str | None, now: str) -> sqlite3.Row:
    contact = owned_contact(conn, who, call_id, public_info, "update")
    if note is not None:
        # The note is free text about the caller's question: personal data, so only with consent.
        consent = latest_consent(conn, call_id)
        if consent is None or consent["answer"] != "yes":
            raise RecordsError(409, "consent_missing" if consent is None else "consent_refused",
                               "FAQ不足のメモ（自由記述）は、お客様が記録に同意した通話でのみ保存できます。"
                               "メモを空にして記録してください", "gap_note")
    if fields:
        assignments = ", ".join(f"{k} = ?" for k in fields)
        conn.execute(f"UPDATE contacts SET {assignments} WHERE call_id = ?", (*fields.values(), call_id))
    if gap:
        # A gap entry for the FAQ authors: the category and the entries that did not help.
        conn.execute(
            "INSERT INTO faq_gaps(call_id, ivr_category, faq_entries, note, created_at) VALUES (?,?,?,?,?)"
            " ON CONFLICT(call_id) DO UPDATE SET note = excluded.note, faq_entries = excluded.faq_entries",
            (call_id, fields.get("ivr_category", contact["ivr_category"]),
             fields.get("faq_entries", contact["faq_entries"]), note, now),
        )
    trail.append(conn, who, "update", "contact", call_id, detail={"fields": sorted(fields)})
    row: sqlite3.Row = conn.execute("SELECT * FROM contacts WHERE call_id = ?", (call_id,)).fetchone()
    return row


def record_consent(conn: sqlite3.Connection, trail: AuditTrail, who: Principal, public_info: str, call_id: str,
                   answer: str, script: ConsentScript, now: str) -> sqlite3.Row:
    owned_contact(conn, who, call_id, public_info, "consent")
    cur = conn.execute(
        "INSERT INTO consents(call_id, answer, script_id, script_version, operator, at) VALUES (?,?,?,?,?,?)",
        (call_id, answer, script.id, script.version, who.user_id, now),
    )
    consent_id = cur.lastrowid
    if answer == "no":
        conn.execute("UPDATE contacts SET outcome = 'declined' WHERE call_id = ? AND outcome IS NULL", (call_id,))
    trail.append(conn, who, "consent", "consent", consent_id, detail={"call_id": call_id, "answer": answer})
    row: sqlite3.Row = conn.execute("SELECT * FROM consents WHERE id = ?", (consent_id,)).fetchone()
    return row


def faq_gaps(conn: sqlite3.Connection, trail: AuditTrail, who: Principal, limit: int) -> list[dict[str, Any]]:
    """Calls the FAQ could not answer, newest first (the note is free text: the read is audited)."""
    rows = conn.execute(
        "SELECT id, call_id, ivr_category, faq_entries, note, created_at FROM faq_gaps"
        " ORDER BY created_at DESC, id DESC LIMIT ?", (limit,)
    ).fetchall()
    trail.append(conn, who, "list", "faq_gap", None, detail={"ids": [r["id"] for r in rows]})
    return [{"id": r["id"], "call_id": r["call_id"], "category": r["ivr_category"],
             "faq_entries": json.loads(r["faq_entries"]), "note": r["note"],
             "created_at": _dt(r["created_at"])} for r in rows]
