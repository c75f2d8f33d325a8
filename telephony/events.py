"""Domain events of the call tracker: frozen dataclasses with a snake_case ``type``.

Every event carries ``call_id`` (Asterisk's Linkedid: one id for all legs of a call) and ``at``
(an aware datetime from the tracker's injected clock). Operator events carry ``interface``: the
queue member's interface (``Local/101@operator-phones``, ``PJSIP/op101``), never a channel name.

Events hold personal data (caller numbers and names) as *data* for the screen pop and the
records; they must never be logged as such (log ``type`` and ``call_id`` only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar

from cti.core.clock import require_aware


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainEvent:
    type: ClassVar[str] = "domain_event"

    call_id: str
    at: datetime

    def __post_init__(self) -> None:
        require_aware(self.at, f"{self.type}.at")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``type`` first, datetimes as ISO 8601 strings."""
        out: dict[str, Any] = {"type": self.type}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, separators=(",", ":"))


# ---- inbound calls ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CallArrived(DomainEvent):
    """A citizen's call reached the center (first leg in an inbound context)."""

    type: ClassVar[str] = "call_arrived"
    caller_number: str | None
    caller_name: str | None
    dialled_number: str | None
    resynced: bool = False  # discovered by a resync, not seen arriving


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRouted(DomainEvent):
    """The FastAGI routing decision (``CTI_ROUTE``): open -> queue, closed -> announcement."""

    type: ClassVar[str] = "call_routed"
    route: str  # "open" | "closed" (whatever CTI_ROUTE said)
    reason: str | None  # closed reason code (CTI_CLOSED_REASON), e.g. "night", "holiday"
    category: str | None  # CTI_CATEGORY when already known


@dataclass(frozen=True, slots=True, kw_only=True)
class CallQueued(DomainEvent):
    type: ClassVar[str] = "call_queued"
    queue: str
    position: int | None
    category: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorRinging(DomainEvent):
    """A queue member's phone rings for this call (the moment to pop the screen)."""

    type: ClassVar[str] = "operator_ringing"
    interface: str
    member_name: str | None
    queue: str | None
    caller_number: str | None
    caller_name: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorMissed(DomainEvent):
    """A member rang and did not answer this call."""

    type: ClassVar[str] = "operator_missed"
    interface: str
    reason: str  # "no_answer" | "caller_hung_up" | "answered_elsewhere" | "ended_while_disconnected"
    ring_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorConnected(DomainEvent):
    type: ClassVar[str] = "operator_connected"
    interface: str
    member_name: str | None
    queue: str | None
    hold_time: int | None  # seconds the caller waited in the queue
    resynced: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred(DomainEvent):
    type: ClassVar[str] = "call_transferred"
    target: str | None  # "200@departments" (extension@context), or a channel/interface
    interface: str | None  # the operator who transferred, when known
    method: str  # "blind" | "attended" | "redirect" | "queue"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallHoldChanged(DomainEvent):
    """The citizen was put on hold, or taken off it, while talking with the operator: Asterisk's
    Hold/Unhold of a leg (the operator's hold, a consult) or MusicOnHoldStart/Stop of the citizen."""

    type: ClassVar[str] = "call_hold_changed"
    on_hold: bool
    interface: str | None  # the connected operator


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsultChanged(DomainEvent):
    """The operator's consult leg to a department (an attended transfer in progress) appeared
    (``started``) or hung up without the transfer happening (``ended``: cancelled, not answered).
    A completed consult is a ``call_transferred`` (method ``attended``) instead."""

    type: ClassVar[str] = "consult_changed"
    state: str  # "started" | "ended"
    extension: str | None  # the department's extension (201)
    interface: str | None  # the connected operator


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAbandoned(DomainEvent):
    """The caller hung up while waiting in the queue."""

    type: ClassVar[str] = "call_abandoned"
    queue: str | None
    position: int | None
    hold_time: int | None  # seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(DomainEvent):
    """Every channel of the call has hung up (or Asterisk no longer has it after a reconnect)."""

    type: ClassVar[str] = "call_ended"
    reason: str  # "answered" | "abandoned" | "closed" | "not_answered" | "ended_while_disconnected"
    hung_up_by: str | None  # "citizen" | "operator" | "department" (a transfer target) | "system" | None (unknown)
    cause: int | None  # Q.850 cause of the citizen's leg
    cause_text: str | None
    last_state: str
    duration_s: float
    talk_s: float | None
    interface: str | None  # the operator who took the call, if any


# ---- outbound callbacks (click-to-call), linked by CTI_CALLBACK_ID -----------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRingingStaff(DomainEvent):
    type: ClassVar[str] = "callback_ringing_staff"
    callback_id: str | None
    interface: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackStaffAnswered(DomainEvent):
    type: ClassVar[str] = "callback_staff_answered"
    callback_id: str | None
    interface: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackDialingCitizen(DomainEvent):
    type: ClassVar[str] = "callback_dialing_citizen"
    callback_id: str | None
    number: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackCitizenAnswered(DomainEvent):
    type: ClassVar[str] = "callback_citizen_answered"
    callback_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackEnded(DomainEvent):
    type: ClassVar[str] = "callback_ended"
    callback_id: str | None
    # "completed" | "staff_no_answer" | "citizen_no_answer" | "citizen_busy" | "citizen_unreachable"
    # | "cancelled" | "failed" | "ended_while_disconnected"
    outcome: str
    hung_up_by: str | None
    cause: int | None
    duration_s: float
    talk_s: float | None
    interface: str | None


EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.type: cls
    for cls in (
        CallArrived,
        CallRouted,
        CallQueued,
        OperatorRinging,
        OperatorMissed,
        OperatorConnected,
        CallTransferred,
        CallHoldChanged,
        ConsultChanged,
        CallAbandoned,
        CallEnded,
        CallbackRingingStaff,
        CallbackStaffAnswered,
        CallbackDialingCitizen,
        CallbackCitizenAnswered,
        CallbackEnded,
    )
}


def describe(event: DomainEvent) -> str:
    """One readable line (Japanese first, English in brackets), for `cti replay` and the console."""
    d = event.as_dict()
    when = event.at.strftime("%H:%M:%S.%f")[:-3]
    text = _DESCRIPTIONS.get(event.type, "{type}").format(**{k: ("-" if v is None else v) for k, v in d.items()})
    return f"{when} {event.call_id} {text}"


_DESCRIPTIONS: dict[str, str] = {
    "call_arrived": "着信 (call arrived) 発信者 {caller_number} {caller_name} → {dialled_number}",
    "call_routed": "振り分け (routed) {route} 理由 {reason} 分類 {category}",
    "call_queued": "待ち行列 (queued) {queue} 順番 {position}",
    "operator_ringing": "呼出中 (operator ringing) {interface} {member_name}",
    "operator_missed": "不応答 (operator missed) {interface} {reason} {ring_ms}ms",
    "operator_connected": "応答 (operator connected) {interface} 待ち時間 {hold_time}s",
    "call_transferred": "転送 (transferred) → {target} ({method})",
    "call_hold_changed": "保留 (hold) {on_hold} {interface}",
    "consult_changed": "相談転送 (consult) {state} → {extension}",
    "call_abandoned": "放棄 (abandoned) {queue} 待ち時間 {hold_time}s",
    "call_ended": "終話 (ended) {reason} 切断 {hung_up_by} cause {cause} 通話 {talk_s}s",
    "callback_ringing_staff": "折り返し: 職員呼出 (callback ringing staff) {interface} #{callback_id}",
    "callback_staff_answered": "折り返し: 職員応答 (staff answered) {interface} #{callback_id}",
    "callback_dialing_citizen": "折り返し: 市民へ発信 (dialing citizen) {number} #{callback_id}",
    "callback_citizen_answered": "折り返し: 市民応答 (citizen answered) #{callback_id}",
    "callback_ended": "折り返し終了 (callback ended) {outcome} 切断 {hung_up_by} 通話 {talk_s}s #{callback_id}",
}
