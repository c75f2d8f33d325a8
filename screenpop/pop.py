"""Pure screen-pop composer: what an operator sees when a call is offered to them.

``compose_pop`` takes everything already fetched (the call snapshot, the office calendar status,
the caller's earlier contacts, open callback requests, FAQ suggestions) and returns the wire
model itself, :class:`screenpop.messages.Pop` (one model: what the dispatcher sends, what
/api/ws/schema.json publishes and what the page reads). No I/O, no clock: `now` is passed in.

Choices: an unknown IVR category code is shown as その他 (code "other") rather than failing the
pop; a call with no category (the caller did not choose) has category None and label 未選択;
a withheld caller number ("anonymous", "unknown", empty) gives caller_number None and
caller_withheld True; history is newest first, open callbacks by hand-over date (the oldest,
most urgent, first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from cti.core.clock import TOKYO, require_aware
from faq.categories import CATEGORY_LABELS
from records.phones import display_phone
from screenpop.messages import Pop, PopCallback, PopFaq, PopHistoryItem

NO_CATEGORY_LABEL = "未選択"
WITHHELD_NUMBERS = frozenset({"", "anonymous", "unknown", "<unknown>", "private", "restricted", "withheld"})
MAX_HISTORY = 5
MAX_FAQ = 5


class OfficeStatus(Protocol):
    """What the pop needs from cti.calendar.rules.Status."""

    @property
    def open(self) -> bool: ...

    @property
    def reason_text(self) -> str: ...

    @property
    def reason(self) -> str | None: ...  # a StrEnum: night, weekend, holiday, year_end, closure, emergency


@dataclass(frozen=True)
class CallSnapshot:
    call_id: str
    caller_number: str | None
    category: str | None  # IVR code: koseki, zei, hoken, gomi, kosodate, other
    waited_seconds: float
    reference: str = ""  # 受付番号 (screenpop/reference.py)


@dataclass(frozen=True)
class Contact:
    """An earlier contact from the same number (within retention)."""

    contacted_at: datetime
    category: str | None
    outcome: str


@dataclass(frozen=True)
class OpenCallback:
    """A callback request not closed yet, as records' open_callbacks_for gives it."""

    id: int
    department: str  # code
    status: str
    status_text: str
    handover_date: date


@dataclass(frozen=True)
class FaqSuggestion:
    id: str
    question: str


def category_of(code: str | None) -> tuple[str | None, str]:
    """(normalised code, Japanese label) for an IVR category code."""
    if code is None or not code.strip():
        return None, NO_CATEGORY_LABEL
    code = code.strip().lower()
    if code not in CATEGORY_LABELS:
        code = "other"
    return code, CATEGORY_LABELS[code]


def compose_pop(
    call: CallSnapshot,
    office: OfficeStatus,
    history: Sequence[Contact],
    open_callbacks: Sequence[OpenCallback],
    faq: Sequence[FaqSuggestion],
    *,
    now: datetime,
    faq_credit: str = "",
    department_names: Mapping[str, str] | None = None,
    max_history: int = MAX_HISTORY,
    max_faq: int = MAX_FAQ,
) -> Pop:
    """Compose the pop; raise ValueError naming the bad field on invalid input."""
    require_aware(now, "now")
    if not call.call_id or not call.call_id.strip():
        raise ValueError("call_id is empty")
    if call.waited_seconds < 0:
        raise ValueError(f"waited_seconds must not be negative; got {call.waited_seconds}")
    if max_history < 0 or max_faq < 0:
        raise ValueError("max_history and max_faq must not be negative")
    number = (call.caller_number or "").strip()
    withheld = number.lower() in WITHHELD_NUMBERS
    category, label = category_of(call.category)

    items = []
    for contact in history:
        require_aware(contact.contacted_at, "history contacted_at")
        if contact.contacted_at <= now:  # a contact "in the future" is a clock error upstream: not shown
            items.append(contact)
    items.sort(key=lambda c: c.contacted_at, reverse=True)
    pop_history = [
        PopHistoryItem(
            date=c.contacted_at.astimezone(TOKYO).date().isoformat(),
            category=category_of(c.category)[0],
            category_label=category_of(c.category)[1],
            outcome=c.outcome,
        )
        for c in items[:max_history]
    ]

    names = department_names or {}
    pop_callbacks = [
        PopCallback(
            id=cb.id,
            department=cb.department,
            department_name=names.get(cb.department, cb.department),
            status=cb.status,
            status_text=cb.status_text,
            handover_date=cb.handover_date.isoformat(),
        )
        for cb in sorted(open_callbacks, key=lambda cb: (cb.handover_date, cb.id))
    ]

    suggestions: list[FaqSuggestion] = []
    seen: set[str] = set()
    for item in faq:
        if item.id not in seen:
            seen.add(item.id)
            suggestions.append(item)
    suggestions = suggestions[:max_faq]

    return Pop(
        call_id=call.call_id.strip(),
        reference=call.reference,
        caller_number=None if withheld else number,
        caller_number_display=None if withheld else display_phone(number),
        caller_withheld=withheld,
        category=category,
        category_label=label,
        waited_seconds=int(call.waited_seconds),
        office_open=office.open,
        office_reason_text="" if office.open else office.reason_text,
        office_reason=None if office.open or office.reason is None else str(office.reason),
        history=pop_history,
        open_callbacks=pop_callbacks,
        faq_suggestions=[PopFaq(id=f.id, question=f.question) for f in suggestions],
        faq_credit=faq_credit if suggestions else "",
    )
