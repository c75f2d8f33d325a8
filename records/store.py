"""The records service over the app's one aiosqlite connection.

Every change commits in one transaction with its audit row; transactions are serialised with an
asyncio.Lock because the connection is shared by all coroutines. Every read of personal data is
audited too (who, role, department, client IP, record, time), and so is every refused attempt.
Rules come from records.rules (pure); this module only fetches, stores and audits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol, TypeVar

import aiosqlite

from cti.core.clock import Clock, require_aware
from cti.core.logs import log_event, redact_digits
from cti.core.principal import Principal, Role
from records import rules
from records.audit import GENESIS, row_hash
from records.models import AttemptIn, CallbackIn, CloseIn, ConsentIn, ContactIn, ContactUpdate
from records.rules import Access, Action, RecordsError, Status, iso
from records.settings import RecordsSettings

logger = logging.getLogger("records")

SYSTEM = Principal(user_id="system", role=Role.ADMIN, department=None, client_ip="-")


class OfficeStatus(Protocol):
    @property
    def open(self) -> bool: ...


class OfficeCalendar(Protocol):
    """What records needs from cti.calendar.rules.Calendars."""

    def office(self, at: datetime) -> OfficeStatus: ...
    def handover_date(self, collected_at: datetime) -> date: ...
    def office_opening_on(self, day: date) -> datetime: ...


MAX_BATCH = 256
T = TypeVar("T")


def _begin_unit(conn: sqlite3.Connection, begin: bool) -> None:
    if begin:
        conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("SAVEPOINT unit")
    except BaseException:
        if begin:
            conn.execute("ROLLBACK")
        raise


def _append_audit(conn: sqlite3.Connection, content: dict[str, Any]) -> None:
    last = conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    prev = str(last[0]) if last else GENESIS
    conn.execute(
        "INSERT INTO audit(at, actor, role, department, client_ip, action, record_type, record_id, outcome,"
        " detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (*content.values(), prev, row_hash(prev, content)),
    )


def _insert_callback(
    conn: sqlite3.Connection, who: Principal, public_info: str, values: tuple[Any, ...], audit: dict[str, Any]
) -> sqlite3.Row:
    """The unit of work of a callback request: checks, row, contact outcome, audit row; then the row."""
    call_id = values[0]
    found = conn.execute(
        "SELECT c.operator, s.id, s.answer FROM contacts c LEFT JOIN consents s"
        " ON s.id = (SELECT max(id) FROM consents WHERE call_id = c.call_id) WHERE c.call_id = ?",
        (call_id,),
    ).fetchone()
    if found is None:
        raise _unknown_call(call_id)
    rules.authorize(who, Access.WRITE_CALL, public_information_department=public_info, call_operator=found[0])
    rules.consent_gate(found[2])
    row: sqlite3.Row = conn.execute(
        "INSERT INTO callbacks(consent_id, call_id, department, name, furigana, phone, question, address,"
        " address_reason, email, email_reason, fax, fax_reason, collected_at, collected_by, override_reason,"
        " handover_date, handover_at, due_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING *",
        (found[1], *values),
    ).fetchone()
    conn.execute("UPDATE contacts SET outcome = 'callback_requested' WHERE call_id = ?", (call_id,))
    _append_audit(conn, {**audit, "record_id": str(row["id"])})
    return row


def _unknown_call(call_id: str) -> RecordsError:
    return RecordsError(404, "unknown_call", f"通話 {call_id} の記録がありません（先に通話の記録を作成してください）",
                        "call_id")


def _run_unit(
    conn: sqlite3.Connection, begin: bool, release: bool, fn: Callable[..., T], args: tuple[Any, ...]
) -> T:
    """In the connection's thread: BEGIN or SAVEPOINT, the body, [RELEASE]; on failure nothing of it stays."""
    conn.execute("BEGIN IMMEDIATE" if begin else "SAVEPOINT unit")
    try:
        result = fn(conn, *args)
    except BaseException:
        if begin:
            conn.execute("ROLLBACK")  # the batch holds only this unit
        else:
            _rollback_unit(conn)
        raise
    if release and not begin:
        conn.execute("RELEASE unit")
    return result


def _run_alone(conn: sqlite3.Connection, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """In the connection's thread: BEGIN IMMEDIATE, the body, COMMIT; ROLLBACK on any failure."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _rollback_unit(conn: sqlite3.Connection) -> None:
    conn.execute("ROLLBACK TO unit")
    conn.execute("RELEASE unit")


def _release_unit(conn: sqlite3.Connection) -> None:
    conn.execute("RELEASE unit")


@dataclass
class _Batch:
    done: asyncio.Future[None]
    size: int = 0
    result: Any = None  # the last unit's result (handed back under the lock)


async def _uncancellable(aw: Awaitable[T]) -> T:
    """Await `aw` to its end even if the caller is cancelled meanwhile (then re-raise the cancel).

    A statement already queued to the connection's thread runs anyway; the batch bookkeeping must
    know whether it did, or a transaction would be left open behind everyone's back.
    """
    task = asyncio.ensure_future(aw)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class RecordsService:
    def __init__(
        self,
        db: aiosqlite.Connection,
        settings: RecordsSettings,
        calendar: OfficeCalendar,
        clock: Clock,
        office_closes: time = time(17, 15),
    ) -> None:
        self.db = db
        self.settings = settings
        self.calendar = calendar
        self.clock = clock
        self.office_closes = office_closes
        self.lock = asyncio.Lock()
        self._pending = 0  # callers inside or queued for transaction()
        self._batch: _Batch | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.departments: dict[str, str] = {d.code: d.name for d in settings.departments}
        self.public_info = settings.public_information_department

    # ---- plumbing --------------------------------------------------------------------------

    def now(self) -> datetime:
        return require_aware(self.clock(), "clock()")

    async def _queue_and_lock(self) -> None:
        """Count this unit as waiting (the group commit reads it), then take the lock; a caller
        cancelled while waiting is uncounted and must not leave a batch uncommitted."""
        self._pending += 1
        try:
            await self.lock.acquire()
        except BaseException:
            self._pending -= 1
            self._commit_if_abandoned()
            raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One unit of work (a change and its audit row) on the shared connection, with group commit.

        Bodies run one at a time (an asyncio.Lock), each inside a SAVEPOINT so a failing body
        changes nothing. Bodies queued behind each other share one BEGIN IMMEDIATE .. COMMIT: the
        last body of a burst (nobody else waiting, or the batch is full) commits, and every caller
        returns only after the COMMIT that holds its rows, so an acknowledged record is durable.
        With synchronous=FULL this turns one fsync per request into one fsync per burst.
        """
        await self._queue_and_lock()
        batch: _Batch | None = None
        try:
            batch = await self._join_batch(_begin_unit)
            try:
                yield self.db
            except BaseException:
                await _uncancellable(self._sync(_rollback_unit))
                raise
            if self._pending > 1 and batch.size < MAX_BATCH:
                await _uncancellable(self._sync(_release_unit))  # else the COMMIT below ends the savepoint
        finally:
            await self._leave(batch)
        await asyncio.shield(batch.done)

    async def _join_batch(self, fn: Callable[..., T], *args: Any) -> _Batch:
        """(lock held) Run the first hop of a unit, opening the batch if none is open; count the unit in."""
        begin = self._batch is None
        if begin:
            self._batch = _Batch(asyncio.get_running_loop().create_future())
        batch = self._batch
        assert batch is not None
        try:
            batch.result = await _uncancellable(self._sync(fn, begin, *args))
        except BaseException:
            if begin and not self.db.in_transaction:
                self._batch = None  # nothing was opened
            raise
        batch.size += 1
        return batch

    async def _leave(self, batch: _Batch | None) -> None:
        """(lock held) The last unit of a burst, or of a full batch, commits; then release the lock."""
        self._pending -= 1
        try:
            if self._batch is not None and (self._pending == 0 or self._batch.size >= MAX_BATCH):
                await asyncio.shield(self._commit())
        finally:
            self.lock.release()

    async def unit(self, fn: Callable[..., T], *args: Any) -> T:
        """transaction() for a unit written as one synchronous function `fn(conn, *args)`.

        BEGIN (when the batch starts), SAVEPOINT, the body and its rollback on failure all run in
        ONE hop into the connection's thread; the group commit is the same as transaction()'s.
        """
        await self._queue_and_lock()
        if self._batch is None and self._pending == 1:
            # Alone: BEGIN, the body and COMMIT in one hop (a queued caller starts the next batch).
            try:
                return await _uncancellable(self._sync(_run_alone, fn, args))
            finally:
                self._pending -= 1
                self.lock.release()
        batch: _Batch | None = None
        try:
            batch = await self._join_batch(_run_unit, self._pending > 1, fn, args)
            result: T = batch.result
        finally:
            await self._leave(batch)
        await asyncio.shield(batch.done)
        return result

    async def _sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(sqlite3_connection, *args)` in the connection's own thread: one hop for many statements.

        aiosqlite's per-call thread hop (~0.15 ms) dominates short statements; units of work on the
        hot path (creating a callback with its audit row) run as one synchronous function instead.
        """
        result: T = await self.db._execute(fn, self.db._conn, *args)  # type: ignore[no-untyped-call]
        return result

    async def _commit(self) -> None:
        """COMMIT the open batch (lock held) and wake its callers; on failure all of them fail."""
        batch, self._batch = self._batch, None
        if batch is None:
            return
        try:
            await self.db.execute("COMMIT")
        except BaseException as exc:
            if self.db.in_transaction:
                await self.db.execute("ROLLBACK")
            if not batch.done.done():
                batch.done.set_exception(exc)
            batch.done.exception()  # mark retrieved for callers that were cancelled meanwhile
            raise
        if not batch.done.done():
            batch.done.set_result(None)

    def _commit_if_abandoned(self) -> None:
        """A waiter was cancelled after the previous body left the batch open for it: commit it."""
        if self._pending == 0 and self._batch is not None:
            task = asyncio.get_running_loop().create_task(self._commit_locked())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _commit_locked(self) -> None:
        async with self.lock:
            if self._pending == 0:
                await self._commit()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection outside any transaction (VACUUM, checkpoints): commits an open batch first."""
        await self._queue_and_lock()
        try:
            await asyncio.shield(self._commit())
            yield self.db
        finally:
            self._pending -= 1
            self.lock.release()

    async def aclose(self) -> None:
        """Wait for commits started on behalf of cancelled callers (the service owns those tasks)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        async with self.db.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self.db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def audit(
        self,
        who: Principal,
        action: str,
        record_type: str,
        record_id: str | int | None,
        outcome: str = "ok",
        detail: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """Append one hash-chained audit row. Call inside a transaction. Ids and codes only."""
        await self._sync(_append_audit, self._audit_content(who, action, record_type, record_id, outcome, detail, at))

    def _audit_content(
        self, who: Principal, action: str, record_type: str, record_id: str | int | None, outcome: str = "ok",
        detail: Mapping[str, Any] | None = None, at: datetime | None = None,
    ) -> dict[str, Any]:
        return {
            "at": iso(at or self.now()),
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

    async def audit_alone(self, who: Principal, action: str, record_type: str, record_id: str | int | None,
                          outcome: str, detail: Mapping[str, Any] | None = None) -> None:
        async with self.transaction():
            await self.audit(who, action, record_type, record_id, outcome, detail)

    def _authorize(self, principal: Principal | None, access: Access, **kw: Any) -> Principal:
        return rules.authorize(principal, access, public_information_department=self.public_info, **kw)

    async def _denied(self, principal: Principal, err: RecordsError, action: str, rtype: str, rid: Any) -> None:
        await self.audit_alone(principal, action, rtype, rid, "denied", {"code": err.code})
        log_event(logger, "records_access_denied", level=logging.WARNING, user=principal.user_id,
                  action=action, record_type=rtype, record_id=str(rid), code=err.code)

    # ---- contacts ----------------------------------------------------------------------------

    async def create_contact(self, principal: Principal | None, data: ContactIn) -> dict[str, Any]:
        who = self._authorize(principal, Access.CREATE)
        started = _aware_input(data.started_at, "started_at") if data.started_at else self.now()
        number = _caller_digits(data.caller_number)
        async with self.transaction() as db:
            if await self._one("SELECT 1 FROM contacts WHERE call_id = ?", (data.call_id,)):
                raise RecordsError(409, "duplicate_call", f"通話 {data.call_id} の記録は既にあります", "call_id")
            await db.execute(
                "INSERT INTO contacts(call_id, operator, started_at, ivr_category, faq_entries, caller_number)"
                " VALUES (?,?,?,?,?,?)",
                (data.call_id, who.user_id, iso(started), data.ivr_category, json.dumps(data.faq_entries), number),
            )
            await self.audit(who, "create", "contact", data.call_id)
        log_event(logger, "contact_created", call_id=data.call_id, operator=who.user_id)
        return await self._contact_dict(data.call_id)

    async def _require_contact(self, call_id: str) -> aiosqlite.Row:
        row = await self._one("SELECT * FROM contacts WHERE call_id = ?", (call_id,))
        if row is None:
            raise _unknown_call(call_id)
        return row

    async def call_taken(
        self, call_id: str, operator: str, *, started_at: datetime | None = None, caller_number: str | None = None,
        ivr_category: str | None = None,
    ) -> bool:
        """The telephony side saw `operator` answer call `call_id`: make sure the contact exists.

        Idempotent (the operator screen may create the same contact through the API); returns True
        when this call created it. Audited as the system.
        """
        started = require_aware(started_at, "started_at") if started_at else self.now()
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO contacts(call_id, operator, started_at, ivr_category, caller_number)"
                " VALUES (?,?,?,?,?) ON CONFLICT(call_id) DO NOTHING",
                (call_id, operator, iso(started), ivr_category, _caller_digits(caller_number)),
            )
            created = cur.rowcount == 1
            if created:
                await self.audit(SYSTEM, "create", "contact", call_id, detail={"operator": operator})
        if created:
            log_event(logger, "contact_created", call_id=call_id, operator=operator, source="telephony")
        return created

    async def update_contact(self, principal: Principal | None, call_id: str, data: ContactUpdate) -> dict[str, Any]:
        who = self._authorize(principal, Access.CREATE)
        if data.outcome == "transferred":
            if not data.transfer_department:
                raise rules.invalid("missing_field", "transfer_department", "転送先の課を選んでください")
        if data.transfer_department is not None and data.transfer_department not in self.departments:
            raise rules.invalid("unknown_department", "transfer_department",
                                f"担当課「{data.transfer_department}」は登録されていません")
        if data.gap_note is not None and data.outcome != "unanswered":
            raise rules.invalid("gap_note_without_gap", "gap_note",
                                "FAQ不足のメモは「回答できなかった」場合のみ入力できます")
        note = None
        if data.gap_note is not None and data.gap_note.strip():
            note = data.gap_note.strip()
            if len(note) > self.settings.max_question_chars:
                raise rules.invalid("too_long", "gap_note",
                                    f"FAQ不足のメモが長すぎます（{self.settings.max_question_chars}文字以内）")
        ended = _aware_input(data.ended_at, "ended_at") if data.ended_at else None
        async with self.transaction() as db:
            contact = await self._require_contact(call_id)
            self._authorize(who, Access.WRITE_CALL, call_operator=contact["operator"])
            fields: dict[str, Any] = {}
            if ended is not None:
                fields["ended_at"] = iso(ended)
            if data.outcome is not None:
                fields["outcome"] = data.outcome
                fields["transfer_department"] = data.transfer_department if data.outcome == "transferred" else None
            if data.ivr_category is not None:
                fields["ivr_category"] = data.ivr_category
            if data.faq_entries is not None:
                fields["faq_entries"] = json.dumps(data.faq_entries)
            if fields:
                assignments = ", ".join(f"{k} = ?" for k in fields)
                await db.execute(f"UPDATE contacts SET {assignments} WHERE call_id = ?", (*fields.values(), call_id))
            if data.outcome == "unanswered":
                # A gap entry for the FAQ authors: the category and the entries that did not help.
                faq = fields.get("faq_entries", contact["faq_entries"])
                await db.execute(
                    "INSERT INTO faq_gaps(call_id, ivr_category, faq_entries, note, created_at) VALUES (?,?,?,?,?)"
                    " ON CONFLICT(call_id) DO UPDATE SET note = excluded.note, faq_entries = excluded.faq_entries",
                    (call_id, fields.get("ivr_category", contact["ivr_category"]), faq, note, iso(self.now())),
                )
            await self.audit(who, "update", "contact", call_id, detail={"fields": sorted(fields)})
        return await self._contact_dict(call_id)

    async def _contact_dict(self, call_id: str) -> dict[str, Any]:
        row = await self._one("SELECT * FROM contacts WHERE call_id = ?", (call_id,))
        assert row is not None
        return _contact_out(row)

    # ---- consent -----------------------------------------------------------------------------

    async def record_consent(self, principal: Principal | None, call_id: str, data: ConsentIn) -> dict[str, Any]:
        who = self._authorize(principal, Access.CREATE)
        script = self.settings.consent_script
        if data.script_id is not None and data.script_id != script.id:
            raise rules.invalid("unknown_consent_script", "script_id",
                                f"同意文「{data.script_id}」は現在の同意文（{script.id}）ではありません")
        if data.script_version is not None and data.script_version != script.version:
            raise rules.invalid("stale_consent_script", "script_version",
                                f"同意文の版が違います（現在は第{script.version}版）")
        async with self.transaction() as db:
            contact = await self._require_contact(call_id)
            self._authorize(who, Access.WRITE_CALL, call_operator=contact["operator"])
            cur = await db.execute(
                "INSERT INTO consents(call_id, answer, script_id, script_version, operator, at) VALUES (?,?,?,?,?,?)",
                (call_id, data.answer, script.id, script.version, who.user_id, iso(self.now())),
            )
            consent_id = cur.lastrowid
            if data.answer == "no":
                await db.execute(
                    "UPDATE contacts SET outcome = 'declined' WHERE call_id = ? AND outcome IS NULL", (call_id,)
                )
            await self.audit(who, "consent", "consent", consent_id, detail={"call_id": call_id, "answer": data.answer})
        log_event(logger, "consent_recorded", call_id=call_id, consent_id=consent_id, answer=data.answer)
        row = await self._one("SELECT * FROM consents WHERE id = ?", (consent_id,))
        assert row is not None
        return _consent_out(row)

    # ---- callbacks ---------------------------------------------------------------------------

    async def create_callback(self, principal: Principal | None, call_id: str, data: CallbackIn) -> dict[str, Any]:
        who = self._authorize(principal, Access.CREATE)
        fields = rules.validate_callback(
            data.model_dump(), departments=self.departments, max_question_chars=self.settings.max_question_chars
        )
        collected = self.now()
        override = rules.office_closed_gate(self.calendar.office(collected).open, who, data.override_reason)
        handover_date = self.calendar.handover_date(collected)
        handover_at = self.calendar.office_opening_on(handover_date)
        due_by = rules.overdue_deadline(handover_date, self.office_closes, self.settings.overdue_grace_hours)
        values = (call_id, fields.department, fields.name, fields.furigana, fields.phone,
                  fields.question, fields.address, fields.address_reason, fields.email, fields.email_reason,
                  fields.fax, fields.fax_reason, iso(collected), who.user_id, override,
                  handover_date.isoformat(), iso(handover_at), iso(due_by))
        audit = self._audit_content(who, "create", "callback", None, detail={
            "call_id": call_id, "department": fields.department, "override": override is not None}, at=collected)
        # One thread hop for the whole unit of work (see unit()).
        row = await self.unit(_insert_callback, who, self.public_info, values, audit)
        callback_id = int(row["id"])
        log_event(logger, "callback_created", call_id=call_id, callback_id=callback_id,
                  department=fields.department, handover_date=handover_date.isoformat())
        return self._callback_out(row)

    async def _callback_row(self, callback_id: int) -> aiosqlite.Row:
        row = await self._one("SELECT * FROM callbacks WHERE id = ?", (callback_id,))
        if row is None:
            raise RecordsError(404, "not_found", f"折り返し依頼 {callback_id} はありません", "id")
        return row

    async def _callback_dict(self, callback_id: int) -> dict[str, Any]:
        row = await self._callback_row(callback_id)
        attempts = await self._all(
            "SELECT at, outcome, staff FROM attempts WHERE callback_id = ? ORDER BY id", (callback_id,)
        )
        return self._callback_out(row, attempts)

    def _callback_out(self, row: aiosqlite.Row, attempts: Sequence[aiosqlite.Row] = ()) -> dict[str, Any]:
        out = {k: row[k] for k in row.keys() if k not in ("consent_id", "handover_at", "purged_at")}
        due_by = datetime.fromisoformat(row["due_by"])
        out.update(
            collected_at=_dt(row["collected_at"]), handover_date=date.fromisoformat(row["handover_date"]),
            due_by=due_by, handed_over_at=_dt(row["handed_over_at"]), closed_at=_dt(row["closed_at"]),
            status_text=rules.STATUS_TEXT[Status(row["status"])],
            overdue=rules.is_overdue(row["status"], due_by, self.now()),
            attempts=[{"at": _dt(a["at"]), "outcome": a["outcome"], "staff": a["staff"]} for a in attempts],
        )
        return out

    async def get_callback(self, principal: Principal | None, callback_id: int) -> dict[str, Any]:
        who = rules.require_principal(principal)
        row = await self._callback_row(callback_id)
        try:
            self._authorize(who, Access.LIST, record_department=row["department"], record_status=row["status"])
        except RecordsError as err:
            await self._denied(who, err, "read", "callback", callback_id)
            raise
        async with self.transaction():
            await self.audit(who, "read", "callback", callback_id)
            out = await self._callback_dict(callback_id)
        return out

    async def list_callbacks(
        self, principal: Principal | None, *, status: str | None = None, overdue: bool | None = None,
        department: str | None = None, limit: int = 200,
    ) -> list[dict[str, Any]]:
        who = self._authorize(principal, Access.LIST)
        where, params = ["purged_at IS NULL"], []
        if not rules.sees_all(who, self.public_info):
            where.append("department = ? AND status != 'received'")
            params.append(who.department)
        elif department:
            where.append("department = ?")
            params.append(department)
        if status:
            try:
                Status(status)
            except ValueError:
                raise rules.invalid("unknown_status", "status", f"状態「{status}」はありません") from None
            where.append("status = ?")
            params.append(status)
        if overdue is not None:
            now = iso(self.now())
            where.append("status NOT IN ('closed','closed_unreached') AND due_by < ?" if overdue
                         else "(status IN ('closed','closed_unreached') OR due_by >= ?)")
            params.append(now)
        sql = f"SELECT * FROM callbacks WHERE {' AND '.join(where)} ORDER BY handover_at, id LIMIT ?"
        async with self.transaction():
            rows = await self._all(sql, (*params, max(1, min(limit, 1000))))
            await self.audit(who, "list", "callback", None, detail={"ids": [r["id"] for r in rows]})
        return [self._callback_out(r) for r in rows]

    async def _change(
        self, principal: Principal | None, callback_id: int, version: int, action: Action,
        apply: Any = None,
    ) -> dict[str, Any]:
        who = rules.require_principal(principal)
        now = self.now()
        denied: RecordsError | None = None
        async with self.transaction() as db:
            row = await self._callback_row(callback_id)
            try:
                self._authorize(who, Access.UPDATE, record_department=row["department"], record_status=row["status"])
            except RecordsError as err:
                denied = err
            if denied is None:
                if row["version"] != version:
                    raise RecordsError(409, "version_conflict",
                                       "他の職員が先に更新しました。最新の内容を読み込み直してください", "version")
                failed = 0
                if action is Action.ATTEMPT_NOT_REACHED:
                    r = await self._one("SELECT count(*) FROM attempts WHERE callback_id = ? AND outcome ="
                                        " 'not_reached'", (callback_id,))
                    failed = int(r[0]) if r else 0
                nxt = rules.transition(row["status"], action, failed_attempts=failed,
                                       max_attempts=self.settings.max_callback_attempts)
                extra: dict[str, Any] = apply(now) if apply else {}
                if action in (Action.ATTEMPT_REACHED, Action.ATTEMPT_NOT_REACHED):
                    await db.execute("INSERT INTO attempts(callback_id, at, outcome, staff) VALUES (?,?,?,?)",
                                     (callback_id, iso(now), "reached" if action is Action.ATTEMPT_REACHED
                                      else "not_reached", who.user_id))
                if nxt in rules.CLOSED_STATES:
                    extra["closed_at"] = iso(now)
                sets = ", ".join(["status = ?", "version = version + 1", *[f"{k} = ?" for k in extra]])
                cur = await db.execute(f"UPDATE callbacks SET {sets} WHERE id = ? AND version = ?",
                                       (str(nxt), *extra.values(), callback_id, version))
                if cur.rowcount != 1:  # pragma: no cover - the lock and the check above make this unreachable
                    raise RecordsError(409, "version_conflict", "他の職員が先に更新しました", "version")
                await self.audit(who, str(action), "callback", callback_id,
                                 detail={"from": row["status"], "to": str(nxt)}, at=now)
        if denied is not None:
            await self._denied(who, denied, str(action), "callback", callback_id)
            raise denied
        log_event(logger, "callback_changed", callback_id=callback_id, action=str(action), user=who.user_id)
        return await self._callback_dict(callback_id)

    async def start(self, principal: Principal | None, callback_id: int, version: int) -> dict[str, Any]:
        return await self._change(principal, callback_id, version, Action.START)

    async def attempt(self, principal: Principal | None, callback_id: int, data: AttemptIn) -> dict[str, Any]:
        action = Action.ATTEMPT_REACHED if data.outcome == "reached" else Action.ATTEMPT_NOT_REACHED
        return await self._change(principal, callback_id, data.version, action)

    async def close(self, principal: Principal | None, callback_id: int, data: CloseIn) -> dict[str, Any]:
        summary = data.summary.strip()
        if not summary:
            raise rules.invalid("missing_field", "summary", "回答の要約を入力してください")
        if len(summary) > rules.MAX_SUMMARY_CHARS:
            raise rules.invalid("too_long", "summary", f"回答の要約が長すぎます（{rules.MAX_SUMMARY_CHARS}文字以内）")
        return await self._change(principal, callback_id, data.version, Action.CLOSE,
                                  apply=lambda _now: {"answer_summary": summary})

    # ---- one call's records (the operator screen) ---------------------------------------------

    async def get_call(self, principal: Principal | None, call_id: str) -> dict[str, Any]:
        who = rules.require_principal(principal)
        contact = await self._require_contact(call_id)
        try:
            self._authorize(who, Access.READ_CALL, call_operator=contact["operator"])
        except RecordsError as err:
            await self._denied(who, err, "read", "call", call_id)
            raise
        async with self.transaction():
            consents = await self._all("SELECT * FROM consents WHERE call_id = ? ORDER BY id", (call_id,))
            ids = [r["id"] for r in await self._all("SELECT id FROM callbacks WHERE call_id = ? ORDER BY id",
                                                    (call_id,))]
            callbacks = [await self._callback_dict(i) for i in ids]
            await self.audit(who, "read", "call", call_id, detail={"callbacks": ids})
        return {"contact": _contact_out(contact), "consents": [_consent_out(c) for c in consents],
                "callbacks": callbacks}

    # ---- FAQ gaps ------------------------------------------------------------------------------

    async def faq_gaps(self, principal: Principal | None, limit: int = 200) -> list[dict[str, Any]]:
        """Calls the FAQ could not answer, newest first (the note is free text: the read is audited)."""
        who = self._authorize(principal, Access.FAQ_GAPS)
        async with self.transaction():
            rows = await self._all(
                "SELECT id, call_id, ivr_category, faq_entries, note, created_at FROM faq_gaps"
                " ORDER BY created_at DESC, id DESC LIMIT ?", (max(1, min(limit, 1000)),)
            )
            await self.audit(who, "list", "faq_gap", None, detail={"ids": [r["id"] for r in rows]})
        return [{"id": r["id"], "call_id": r["call_id"], "category": r["ivr_category"],
                 "faq_entries": json.loads(r["faq_entries"]), "note": r["note"],
                 "created_at": _dt(r["created_at"])} for r in rows]

    # ---- handover ----------------------------------------------------------------------------

    async def hand_over_due(self, now: datetime | None = None) -> list[int]:
        """Hand over every received record whose handover instant has come; returns their ids."""
        at = require_aware(now or self.now(), "now")
        if not self.calendar.office(at).open:
            # A closure added after the records were taken moved the office's opening: they wait for it
            # (the department must not get records, and read them off-hours, while the office is closed).
            return []
        async with self.transaction() as db:
            rows = await self._all(
                "SELECT id, status, department FROM callbacks WHERE status = 'received' AND handover_at <= ?"
                " ORDER BY id", (iso(at),)
            )
            for row in rows:
                rules.transition(row["status"], Action.HAND_OVER)
                await db.execute(
                    "UPDATE callbacks SET status = 'handed_over', handed_over_at = ?, version = version + 1"
                    " WHERE id = ?", (iso(at), row["id"])
                )
                await self.audit(SYSTEM, "hand_over", "callback", row["id"],
                                 detail={"department": row["department"], "also": self.public_info}, at=at)
        ids = [int(r["id"]) for r in rows]
        if ids:
            log_event(logger, "callbacks_handed_over", count=len(ids), ids=ids)
        return ids

    # ---- screen-pop queries (no personal data in the answers) ----------------------------------

    async def caller_history(self, number: str, now: datetime | None = None, limit: int = 5) -> list[dict[str, Any]]:
        """Recent contacts of this caller number (date, category, outcome), newest first."""
        digits = _caller_digits(number)
        if not digits:
            return []
        at = require_aware(now or self.now(), "now")
        since = iso(rules.retention_cutoff(at, self.settings.retention_days))
        rows = await self._all(
            "SELECT call_id, started_at, ivr_category, outcome, transfer_department FROM contacts"
            " WHERE caller_number = ? AND started_at > ? AND started_at <= ? ORDER BY started_at DESC LIMIT ?",
            (digits, since, iso(at), limit),
        )
        return [{"call_id": r["call_id"], "date": datetime.fromisoformat(r["started_at"]).date(),
                 "category": r["ivr_category"], "outcome": r["outcome"],
                 "transfer_department": r["transfer_department"]} for r in rows]

    async def open_callbacks_for(self, number: str) -> list[dict[str, Any]]:
        """Not-yet-closed callback requests from this caller (id, department, status, handover date)."""
        digits = _caller_digits(number)
        if not digits:
            return []
        rows = await self._all(
            "SELECT cb.id, cb.department, cb.status, cb.handover_date FROM callbacks cb"
            " JOIN contacts c ON c.call_id = cb.call_id"
            " WHERE (c.caller_number = ? OR cb.phone = ?) AND cb.status NOT IN ('closed','closed_unreached')"
            " AND cb.purged_at IS NULL ORDER BY cb.id",
            (digits, digits),
        )
        return [{"id": r["id"], "department": r["department"], "status": r["status"],
                 "status_text": rules.STATUS_TEXT[Status(r["status"])],
                 "handover_date": date.fromisoformat(r["handover_date"])} for r in rows]


def _aware_input(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise rules.invalid("naive_datetime", field, f"{field} には時差（例: +09:00）を付けてください")
    return value


def _caller_digits(raw: str | None) -> str | None:
    """Caller ID as digits (national form when +81); None when withheld or not a number."""
    if not raw:
        return None
    text = unicodedata.normalize("NFKC", raw).strip().replace("-", "").replace(" ", "")
    if text.startswith("+81"):
        text = "0" + text[3:]
    return text if text.isdigit() and text.isascii() else None


def _contact_out(row: aiosqlite.Row) -> dict[str, Any]:
    return {"call_id": row["call_id"], "operator": row["operator"], "started_at": _dt(row["started_at"]),
            "ended_at": _dt(row["ended_at"]), "ivr_category": row["ivr_category"],
            "faq_entries": json.loads(row["faq_entries"]), "outcome": row["outcome"],
            "transfer_department": row["transfer_department"]}


def _consent_out(row: aiosqlite.Row) -> dict[str, Any]:
    return {"id": row["id"], "call_id": row["call_id"], "answer": row["answer"], "script_id": row["script_id"],
            "script_version": row["script_version"], "operator": row["operator"], "at": _dt(row["at"])}


async def run_periodic(service: RecordsService, interval: float, job: str) -> None:
    """A loop owned by records_ctx: hands over due records (and purges daily). Errors are logged."""
    from records.retention import purge  # late: retention imports this module

    last_purge: date | None = None
    while True:
        try:
            await service.hand_over_due()
            today = service.now().date()
            if job == "all" and last_purge != today:
                result = await purge(service)
                last_purge = today
                log_event(logger, "retention_purge_done", **result.counts())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_event(logger, "records_periodic_failed", level=logging.ERROR, error=type(exc).__name__,
                      detail=redact_digits(str(exc))[:200])
        await asyncio.sleep(interval)


__all__ = ["SYSTEM", "RecordsService", "run_periodic", "timedelta"]
