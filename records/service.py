"""RecordsService: the records facade over the database gateway (cti.gateway.Database).

Each method checks what needs no database (roles, field rules, the calendar), then runs ONE unit
of work on the database thread (records.contacts / records.callbacks: the change or the audited
read together with its audit row) and returns after the COMMIT that holds it. The gateway does the
group commit; no transaction spans an await. In-memory state (which calls are open) changes only
after the write returned. Logs carry ids and codes only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from cti.core.clock import Clock, require_aware
from cti.core.logs import log_event
from cti.core.principal import Principal
from cti.gateway import Database
from records import callbacks as cb_units
from records import contacts as contact_units
from records import pop_view, rules
from records.callback_fields import validate_callback
from records.calls import OpenCalls
from records.denials import Denied, Refused, run_scoped
from records.models import AttemptIn, CallbackIn, CloseIn, ConsentIn, ContactUpdate
from records.rules import Access, Action, RecordsError, Status, iso
from records.settings import RecordsSettings
from records.trail import SYSTEM, AuditTrail

logger = logging.getLogger("records")
T = TypeVar("T")
MAX_LIST = 1000


class OfficeStatus(Protocol):
    @property
    def open(self) -> bool: ...


class OfficeCalendar(Protocol):
    """What records needs from cti.calendar.rules.Calendars."""

    def office(self, at: datetime) -> OfficeStatus: ...
    def handover_date(self, collected_at: datetime) -> date: ...
    def office_opening_on(self, day: date) -> datetime: ...


class RecordsService:
    def __init__(self, db: Database, settings: RecordsSettings, calendar: OfficeCalendar, clock: Clock,
                 office_closes: time = time(17, 15)) -> None:
        self.db = db
        self.settings = settings
        self.calendar = calendar
        self.clock = clock
        self.office_closes = office_closes
        self.trail = AuditTrail(clock, settings.audit_key_bytes())
        self.calls = OpenCalls(timedelta(minutes=settings.after_call_minutes))
        self.departments: dict[str, str] = {d.code: d.name for d in settings.departments}
        self.public_info = settings.public_information_department

    def now(self) -> datetime:
        return require_aware(self.clock(), "clock()")

    async def _scoped(self, who: Principal, body: Callable[..., T]) -> T:
        """Run `body(conn)` as one unit; a refusal inside it is audited, committed, then raised."""
        out = await self.db.write(partial(run_scoped, trail=self.trail, who=who, body=body))
        if isinstance(out, Refused):
            d = out.denied
            log_event(logger, "records_access_denied", level=logging.WARNING, user=who.user_id, action=d.action,
                      record_type=d.record_type, record_id=str(d.record_id), code=d.err.code)
            raise d.err
        return out

    async def audit_alone(self, who: Principal, action: str, record_type: str, record_id: str | int | None,
                          outcome: str, detail: Mapping[str, Any] | None = None) -> None:
        """One audit row as its own unit (for events with no change of records: a call placed, a backup)."""
        await self.db.write(self.trail.unit(who, action, record_type, record_id, outcome, detail))

    async def _authorize(self, principal: Principal | None, access: Access, action: str, record_type: str,
                         **kw: Any) -> Principal:
        """The role check before any record is touched; a refusal of a logged-in user is audited."""
        who = rules.require_principal(principal)
        try:
            return rules.authorize(who, access, public_information_department=self.public_info, **kw)
        except RecordsError as err:
            await self.audit_alone(who, action, record_type, None, "denied", {"code": err.code})
            log_event(logger, "records_access_denied", level=logging.WARNING, user=who.user_id, action=action,
                      record_type=record_type, code=err.code)
            raise

    # ---- calls: created and ended by the server (the tracker's events) ---------------------------

    async def call_taken(self, call_id: str, operator: str, *, caller_number: str | None = None,
                         ivr_category: str | None = None) -> bool:
        """The tracker saw `operator` answer call `call_id`: create its contact (server clock, the caller
        number from Asterisk); idempotent. The call is then open to that operator."""
        self.calls.connected(call_id, operator)  # first: the pop's history must not show this live call
        started = iso(self.now())
        created = await self.db.write(partial(contact_units.insert_taken, trail=self.trail, call_id=call_id,
                                               operator=operator, started=started, ivr_category=ivr_category,
                                               number=contact_units.caller_digits(caller_number)))
        if created:
            log_event(logger, "contact_created", call_id=call_id, operator=operator, source="telephony")
        return created

    async def call_ended(self, call_id: str) -> None:
        at = self.now()
        self.calls.ended(call_id, at)
        await self.db.write(partial(contact_units.end_call, call_id=call_id, ended=iso(at)))

    async def update_contact(self, principal: Principal | None, call_id: str, data: ContactUpdate) -> dict[str, Any]:
        who = await self._authorize(principal, Access.CREATE, "update", "contact")
        if data.outcome == "transferred" and not data.transfer_department:
            raise rules.invalid("missing_field", "transfer_department", "転送先の課を選んでください")
        if data.transfer_department is not None and data.transfer_department not in self.departments:
            raise rules.invalid("unknown_department", "transfer_department",
                                "選ばれた転送先の課は登録されていません")
        if data.gap_note is not None and data.outcome != "unanswered":
            raise rules.invalid("gap_note_without_gap", "gap_note",
                                "FAQ不足のメモは「回答できなかった」場合のみ入力できます")
        note = data.gap_note.strip() if data.gap_note and data.gap_note.strip() else None
        if note is not None and len(note) > self.settings.max_question_chars:
            raise rules.invalid("too_long", "gap_note",
                                f"FAQ不足のメモが長すぎます（{self.settings.max_question_chars}文字以内）")
        fields: dict[str, Any] = {}
        if data.outcome is not None:
            fields["outcome"] = data.outcome
            fields["transfer_department"] = data.transfer_department if data.outcome == "transferred" else None
        if data.ivr_category is not None:
            fields["ivr_category"] = data.ivr_category
        if data.faq_entries is not None:
            fields["faq_entries"] = json.dumps(data.faq_entries)
        row = await self._scoped(who, partial(
            contact_units.update_contact, trail=self.trail, who=who, public_info=self.public_info, call_id=call_id,
            fields=fields, gap=data.outcome == "unanswered", note=note, now=iso(self.now())))
        return contact_units.contact_out(row)

    async def record_consent(self, principal: Principal | None, call_id: str, data: ConsentIn) -> dict[str, Any]:
        who = await self._authorize(principal, Access.CREATE, "consent", "consent")
        script = self.settings.consent_script
        if data.script_id is not None and data.script_id != script.id:
            raise rules.invalid("unknown_consent_script", "script_id",
                                f"同意文「{data.script_id}」は現在の同意文（{script.id}）ではありません")
        if data.script_version is not None and data.script_version != script.version:
            raise rules.invalid("stale_consent_script", "script_version",
                                f"同意文の版が違います（現在は第{script.version}版）")
        row = await self._scoped(who, partial(
            contact_units.record_consent, trail=self.trail, who=who, public_info=self.public_info, call_id=call_id,
            answer=data.answer, script=script, now=iso(self.now())))
        log_event(logger, "consent_recorded", call_id=call_id, consent_id=row["id"], answer=data.answer)
        return contact_units.consent_out(row)

    async def get_call(self, principal: Principal | None, call_id: str) -> dict[str, Any]:
        """One call's records for its operator while the call is theirs and open; admins always."""
        # the role part first (department staff: 403 whatever the id); a refusal is audited
        own = principal.user_id if principal is not None else None  # (the record's operator is checked after)
        who = await self._authorize(principal, Access.READ_CALL, "read", "call", call_operator=own)
        now = self.now()
        call_open = self.calls.may_read(call_id, who.user_id, now)

        return await self._scoped(who, partial(cb_units.read_call, trail=self.trail, who=who, call_id=call_id,
                                               public_info=self.public_info, call_open=call_open, now=now))

    # ---- callback requests -------------------------------------------------------------------

    async def create_callback(self, principal: Principal | None, call_id: str, data: CallbackIn,
                              request_key: str | None = None) -> dict[str, Any]:
        """`request_key`: the page's key of this 保存; the same key again answers the row saved first."""
        who = await self._authorize(principal, Access.CREATE, "create", "callback")
        fields = validate_callback(
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
        audit = self.trail.content(who, "create", "callback", None, detail={
            "call_id": call_id, "department": fields.department, "override": override is not None}, at=collected)
        row = await self._scoped(who, partial(cb_units.insert_callback, trail=self.trail, who=who,
                                              public_info=self.public_info, values=values, audit=audit,
                                              request_key=request_key))
        log_event(logger, "callback_created", call_id=call_id, callback_id=row["id"],
                  department=fields.department, handover_date=handover_date.isoformat())
        return cb_units.callback_out(row, collected)

    async def get_callback(self, principal: Principal | None, callback_id: int) -> dict[str, Any]:
        who = await self._authorize(principal, Access.LIST, "read", "callback")
        return await self._scoped(who, partial(cb_units.read_callback, trail=self.trail, who=who,
                                               callback_id=callback_id, public_info=self.public_info, now=self.now()))

    async def check_scope(self, principal: Principal | None, callback_id: int) -> None:
        """404 (audited as denied) unless `principal` may see this record; reads no personal data."""
        who = await self._authorize(principal, Access.LIST, "read", "callback")
        try:  # a read (the department page polls this); only a refusal writes its audit row
            await self.db.read(partial(cb_units.scoped_row, who=who, callback_id=callback_id,
                                       public_info=self.public_info, access=Access.LIST, action="call_status"))
        except Denied as denied:
            await self.audit_alone(who, denied.action, denied.record_type, callback_id, "denied",
                                   {"code": denied.err.code})
            log_event(logger, "records_access_denied", level=logging.WARNING, user=who.user_id,
                      action=denied.action, record_type=denied.record_type, record_id=str(callback_id),
                      code=denied.err.code)
            raise denied.err from None

    async def list_callbacks(
        self, principal: Principal | None, *, status: str | None = None, overdue: bool | None = None,
        department: str | None = None, limit: int = 200,
    ) -> list[dict[str, Any]]:
        who = await self._authorize(principal, Access.LIST, "list", "callback")
        now = self.now()
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
            where.append("status NOT IN ('closed','closed_unreached') AND due_by < ?" if overdue
                         else "(status IN ('closed','closed_unreached') OR due_by >= ?)")
            params.append(iso(now))
        return await self.db.write(partial(cb_units.list_callbacks, trail=self.trail, who=who, where=where,
                                           params=params, limit=max(1, min(limit, MAX_LIST)), now=now))

    async def _change(self, principal: Principal | None, callback_id: int, version: int, action: Action,
                      apply: Callable[[], Mapping[str, Any]] | None = None) -> dict[str, Any]:
        who = await self._authorize(principal, Access.UPDATE, str(action), "callback")
        out = await self._scoped(who, partial(
            cb_units.change, trail=self.trail, who=who, callback_id=callback_id, version=version, action=action,
            public_info=self.public_info, max_attempts=self.settings.max_callback_attempts, now=self.now(),
            apply=apply))
        log_event(logger, "callback_changed", callback_id=callback_id, action=str(action), user=who.user_id)
        return out

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
                                  apply=lambda: {"answer_summary": summary})

    async def hand_over_due(self, now: datetime | None = None) -> list[int]:
        """Hand over every received record whose handover instant has come; returns their ids."""
        at = require_aware(now or self.now(), "now")
        if not self.calendar.office(at).open:
            # A closure added after the records were taken moved the office's opening: they wait for it
            # (the department must not get records, and read them off-hours, while the office is closed).
            return []
        ids = await self.db.write(partial(cb_units.hand_over_due, trail=self.trail, at=at,
                                          public_info=self.public_info))
        if ids:
            log_event(logger, "callbacks_handed_over", count=len(ids), ids=ids)
        return ids

    # ---- FAQ gaps and the screen pop ------------------------------------------------------------

    async def faq_gaps(self, principal: Principal | None, limit: int = 200) -> list[dict[str, Any]]:
        who = await self._authorize(principal, Access.FAQ_GAPS, "list", "faq_gap")
        return await self.db.write(partial(contact_units.faq_gaps, trail=self.trail, who=who,
                                           limit=max(1, min(limit, MAX_LIST))))

    async def caller_history(self, number: str, now: datetime | None = None, limit: int = 5) -> list[dict[str, Any]]:
        """Recent contacts of this caller number (date, category, outcome), newest first."""
        digits = contact_units.caller_digits(number)
        if not digits:
            return []
        at = require_aware(now or self.now(), "now")
        since = iso(rules.retention_cutoff(at, self.settings.retention_days))
        return await self.db.read(partial(pop_view.caller_history, digits=digits, since=since, until=iso(at),
                                          exclude=self.calls.live_ids(), limit=limit))

    async def open_callbacks_for(self, number: str) -> list[dict[str, Any]]:
        digits = contact_units.caller_digits(number)
        if not digits:
            return []
        return await self.db.read(partial(pop_view.open_callbacks_for, digits=digits))


__all__ = ["SYSTEM", "OfficeCalendar", "RecordsService"]
