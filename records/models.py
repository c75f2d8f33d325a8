"""Wire models of the records API (pydantic); the OpenAPI document is generated from them.

Contacts are created by the server (records.plugin, on the tracker's operator_connected), so no
model lets a browser name a call's operator, caller number or times.
Field checks that need Japanese messages naming the field (phone, reasons, lengths, department)
live in records.rules; these models fix shapes and types.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["resolved", "transferred", "callback_requested", "declined", "unanswered"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=20000)


class ContactClaim(_In):
    """No fields: a browser cannot name a call, its caller number or its times (the server does)."""


class ContactUpdate(_In):
    """The end of a call: outcome and the FAQ entries used. The server sets the operator, the caller
    number and every time (from the tracker and its own clock); the browser sends none of them."""

    outcome: Outcome | None = None
    transfer_department: str | None = Field(None, description="department code when outcome = transferred")
    ivr_category: str | None = Field(None, max_length=64)
    faq_entries: list[str] | None = Field(None, max_length=50)
    gap_note: str | None = Field(None, description="outcome = unanswered: what the FAQ lacked (personal data)")


class ConsentIn(_In):
    answer: Literal["yes", "no"]
    script_id: str | None = Field(None, description="default: the configured consent script")
    script_version: int | None = None


class CallbackIn(_In):
    name: str | None = None
    furigana: str | None = None
    phone: str | None = Field(None, description="日中の連絡先: fixed, mobile or 050 number; full-width accepted")
    question: str | None = None
    department: str | None = None
    address: str | None = None
    address_reason: str | None = None
    email: str | None = None
    email_reason: str | None = None
    fax: str | None = None
    fax_reason: str | None = None
    override_reason: str | None = Field(
        None, description="supervisor: why a callback is taken while the office is open"
    )


class VersionIn(_In):
    version: int = Field(ge=1, description="the version read; a stale one gets 409")


class AttemptIn(VersionIn):
    outcome: Literal["reached", "not_reached"]


class CloseIn(VersionIn):
    summary: str = Field(min_length=1, description="what was answered")


class ContactOut(BaseModel):
    call_id: str
    operator: str
    started_at: datetime
    ended_at: datetime | None
    ivr_category: str | None
    faq_entries: list[str]
    outcome: Outcome | None
    transfer_department: str | None


class ConsentOut(BaseModel):
    id: int
    call_id: str
    answer: Literal["yes", "no"]
    script_id: str
    script_version: int
    operator: str
    at: datetime


class AttemptOut(BaseModel):
    at: datetime
    outcome: Literal["reached", "not_reached"]
    staff: str


class CallbackOut(BaseModel):
    id: int
    call_id: str
    department: str
    status: str
    status_text: str
    version: int
    collected_at: datetime
    collected_by: str
    handover_date: date
    due_by: datetime
    overdue: bool
    name: str | None
    furigana: str | None
    phone: str | None
    question: str | None
    address: str | None
    address_reason: str | None
    email: str | None
    email_reason: str | None
    fax: str | None
    fax_reason: str | None
    override_reason: str | None
    answer_summary: str | None
    handed_over_at: datetime | None
    closed_at: datetime | None
    attempts: list[AttemptOut] = Field(default_factory=list)


class CallbackList(BaseModel):
    items: list[CallbackOut]


class CallRecords(BaseModel):
    contact: ContactOut
    consents: list[ConsentOut]
    callbacks: list[CallbackOut]


class FaqGapOut(BaseModel):
    id: int
    call_id: str
    category: str | None
    faq_entries: list[str]
    note: str | None
    created_at: datetime


class FaqGapList(BaseModel):
    items: list[FaqGapOut]


class ErrorBody(BaseModel):
    code: str
    message: str = Field(description="Japanese, names the field")
    field: str | None = None


class FieldErrorOut(BaseModel):
    field: str | None
    code: str
    message: str = Field(description="Japanese, names the field")


class ErrorOut(BaseModel):
    error: ErrorBody = Field(description="the first error")
    errors: list[FieldErrorOut] | None = Field(None, description="422: every field error of the form at once")
