"""Units of work on callback requests: take one, read, list, change its status, hand over.

Each function runs whole on the database thread inside ``db.write`` (every read of personal data
appends its audit row, so reads are writes too). Scoping is records.rules.authorize; a record
outside one's scope raises `Denied` with the same 404 as a missing one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from cti.core.principal import Principal
from records import rules
from records.contacts import consent_out, contact_out, latest_consent, owned_contact, unknown_call
from records.denials import Denied, hidden
from records.phones import display_phone
from records.rules import Access, Action, RecordsError, Status, iso
from records.trail import SYSTEM, AuditTrail


def not_found(callback_id: int) -> RecordsError:
    return RecordsError(404, "not_found", f"折り返し依頼 {callback_id} はありません", "id")


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def callback_out(row: sqlite3.Row, now: datetime, attempts: Sequence[sqlite3.Row] = ()) -> dict[str, Any]:
    out = {k: row[k] for k in row.keys() if k not in ("consent_id", "handover_at", "purged_at", "request_key")}
    due_by = datetime.fromisoformat(row["due_by"])
    out.update(
        collected_at=_dt(row["collected_at"]), handover_date=date.fromisoformat(row["handover_date"]),
        due_by=due_by, handed_over_at=_dt(row["handed_over_at"]), closed_at=_dt(row["closed_at"]),
        status_text=rules.STATUS_TEXT[Status(row["status"])],
        phone_display=display_phone(row["phone"]),
        overdue=rules.is_overdue(row["status"], due_by, now),
        attempts=[{"at": _dt(a["at"]), "outcome": a["outcome"], "staff": a["staff"]} for a in attempts],
    )
    return out


def with_attempts(conn: sqlite3.Connection, row: sqlite3.Row, now: datetime) -> dict[str, Any]:
    attempts = conn.execute("SELECT at, outcome, staff FROM attempts WHERE callback_id = ? ORDER BY id",
                            (row["id"],)).fetchall()
    return callback_out(row, now, attempts)


def insert_callback(conn: sqlite3.Connection, trail: AuditTrail, who: Principal, public_info: str,
                    values: tuple[Any, ...], audit: dict[str, Any], request_key: str | None = None) -> sqlite3.Row:
    """A callback request: ownership, consent, the row, the contact's outcome, the audit row. A
    `request_key` already saved (the same form saved again) returns that row and writes nothing."""
    call_id = values[0]
    owned_contact(conn, who, call_id, public_info, "create")
    if request_key is not None:
        earlier: sqlite3.Row | None = conn.execute(
            "SELECT * FROM callbacks WHERE request_key = ?", (request_key,)).fetchone()
        if earlier is not None:
            if earlier["call_id"] != call_id or earlier["collected_by"] != who.user_id:
                raise RecordsError(409, "request_key_reused", "この保存の識別子は別の記録に使われています。"
                                   "画面を再読み込みしてください")
            return earlier
    consent = latest_consent(conn, call_id)
    rules.consent_gate(None if consent is None else consent["answer"])
    assert consent is not None  # the gate refused a call without one
    row: sqlite3.Row = conn.execute(
        "INSERT INTO callbacks(consent_id, call_id, department, name, furigana, phone, question, address,"
        " address_reason, email, email_reason, fax, fax_reason, collected_at, collected_by, override_reason,"
        " handover_date, handover_at, due_by, request_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " RETURNING *",
        (consent["id"], *values, request_key),
    ).fetchone()
    conn.execute("UPDATE contacts SET outcome = 'callback_requested' WHERE call_id = ?", (call_id,))
    trail.append_content(conn, {**audit, "record_id": str(row["id"])})
    return row


def scoped_row(conn: sqlite3.Connection, who: Principal, callback_id: int, public_info: str, access: Access,
               action: str) -> sqlite3.Row:
    """The record if `who` may see it; missing and out-of-scope records raise the same 404."""
    row: sqlite3.Row | None = conn.execute("SELECT * FROM callbacks WHERE id = ?", (callback_id,)).fetchone()
    if row is None:
        raise not_found(callback_id)
    try:
        rules.authorize(who, access, public_information_department=public_info,
                        record_department=row["department"], record_status=row["status"])
    except RecordsError as err:
        raise Denied(hidden(err, not_found(callback_id)), action, "callback", callback_id) from None
    return row


def read_callback(conn: sqlite3.Connection, trail: AuditTrail, who: Principal, callback_id: int,
                  public_info: str, now: datetime) -> dict[str, Any]:
    row = scoped_row(conn, who, callback_id, public_info, Access.LIST, "read")
    trail.append(conn, who, "read", "callback", callback_id, at=now)
    return with_attempts(conn, row, now)


def list_callbacks(conn: sqlite3.Connection, trail: AuditTrail, who: Principal, where: Sequence[str],
                   params: Sequence[Any], limit: int, now: datetime) -> list[dict[str, Any]]:
    sql = f"SELECT * FROM callbacks WHERE {' AND '.join(where)} ORDER BY handover_at, id LIMIT ?"
    rows = conn.execute(sql, (*params, limit)).fetchall()
    trail.append(conn, who, "list", "callback", None, detail={"ids": [r["id"] for r in rows]}, at=now)
    return [callback_out(r, now) for r in rows]


def change(conn: sqlite3.Connection, trail: AuditTrail, who: Principal, callback_id: int, version: int,
           action: Action, public_info: str, max_attempts: int, now: datetime,
           apply: Callable[[], Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """start / attempt / close: scope, version, the status machine, the row, the audit row."""
    row = scoped_row(conn, who, callback_id, public_info, Access.UPDATE, str(action))
    if row["version"] != version:
        raise RecordsError(409, "version_conflict",
                           "他の職員が先に更新しました。最新の内容を読み込み直してください", "version")
    failed = 0
    if action is Action.ATTEMPT_NOT_REACHED:
        failed = int(conn.execute("SELECT count(*) FROM attempts WHERE callback_id = ? AND outcome = 'not_reached'",
                                  (callback_id,)).fetchone()[0])
    nxt = rules.transition(row["status"], action, failed_attempts=failed, max_attempts=max_attempts)
    extra: dict[str, Any] = dict(apply()) if apply else {}
    if action in (Action.ATTEMPT_REACHED, Action.ATTEMPT_NOT_REACHED):
        conn.execute("INSERT INTO attempts(callback_id, at, outcome, staff) VALUES (?,?,?,?)",
                     (callback_id, iso(now), "reached" if action is Action.ATTEMPT_REACHED else "not_reached",
                      who.user_id))
    if nxt in rules.CLOSED_STATES:
        extra["closed_at"] = iso(now)
    sets = ", ".join(["status = ?", "version = version + 1", *[f"{k} = ?" for k in extra]])
    conn.execute(f"UPDATE callbacks SET {sets} WHERE id = ? AND version = ?",
                 (str(nxt), *extra.values(), callback_id, version))
    trail.append(conn, who, str(action), "callback", callback_id, detail={"from": row["status"], "to": str(nxt)},
                 at=now)
    updated: sqlite3.Row = conn.execute("SELECT * FROM callbacks WHERE id = ?", (callback_id,)).fetchone()
    return with_attempts(conn, updated, now)


def hand_over_due(conn: sqlite3.Connection, trail: AuditTrail, at: datetime, public_info: str) -> list[int]:
    """Hand over every received record whose handover instant has come; returns their ids."""
    rows = conn.execute("SELECT id, status, department FROM callbacks WHERE status = 'received'"
                        " AND handover_at <= ? ORDER BY id", (iso(at),)).fetchall()
    for row in rows:
        rules.transition(row["status"], Action.HAND_OVER)
        conn.execute("UPDATE callbacks SET status = 'handed_over', handed_over_at = ?, version = version + 1"
                     " WHERE id = ?", (iso(at), row["id"]))
        trail.append(conn, SYSTEM, "hand_over", "callback", row["id"],
                     detail={"department": row["department"], "also": public_info}, at=at)
    return [int(r["id"]) for r in rows]


def calls_callbacks(conn: sqlite3.Connection, call_id: str, now: datetime) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM callbacks WHERE call_id = ? ORDER BY id", (call_id,)).fetchall()
    return [with_attempts(conn, r, now) for r in rows]


def read_call(conn: sqlite3.Connection, trail: AuditTrail, who: Principal, call_id: str, public_info: str,
              call_open: bool, now: datetime) -> dict[str, Any]:
    """One call's records (contact, consents, callback requests) for its operator while it is open."""
    row = conn.execute("SELECT * FROM contacts WHERE call_id = ?", (call_id,)).fetchone()
    if row is None:
        raise unknown_call(call_id)
    try:
        rules.authorize(who, Access.READ_CALL, public_information_department=public_info,
                        call_operator=row["operator"], call_open=call_open)
    except RecordsError as err:
        raise Denied(hidden(err, unknown_call(call_id)), "read", "call", call_id) from None
    consents = conn.execute("SELECT * FROM consents WHERE call_id = ? ORDER BY id", (call_id,)).fetchall()
    callbacks = calls_callbacks(conn, call_id, now)
    trail.append(conn, who, "read", "call", call_id, detail={"callbacks": [c["id"] for c in callbacks]})
    return {"contact": contact_out(row), "consents": [consent_out(c) for c in consents], "callbacks": callbacks}
