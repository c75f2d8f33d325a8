"""Websocket wire messages (pydantic), discriminated by ``type``. Their JSON Schema is published
at GET /api/ws/schema.json.

Server -> client messages carry ``seq``: the per-user sequence number. Messages addressed to a user
(``ringing``, ``pop``, ``call_update``, ``presence``, and other packages' typed messages) take the
next number and are kept for replay;
connection-local ones (``hello``, ``snapshot``, ``error``, ``pong``, ``session_expired``) carry the
user's current number without taking a new one, so a client's ``last_seq`` is simply the highest
``seq`` it has seen.

Close codes used by the hub (documented here, the one place):
  1008  policy: the client fell too far behind (its bounded queue overflowed); an ``error`` with
        code ``too_slow`` is sent first when the socket still accepts data
  1009  frame larger than settings.hub.max_message_bytes
  4401  session expired or logged out (after a ``session_expired`` message)
  1001  server shutting down
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

CLOSE_TOO_SLOW = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SESSION_EXPIRED = 4401
CLOSE_GOING_AWAY = 1001


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Server(_Msg):
    seq: int = Field(default=0, ge=0, description="per-user sequence number (see module doc)")


# --- server -> client -------------------------------------------------------------------------


class Hello(_Server):
    type: Literal["hello"] = "hello"
    user_id: str
    role: str
    epoch: str = Field(description="changes when the server restarts: a different epoch means resync")
    heartbeat_seconds: float


class Ringing(_Server):
    """A call is ringing at the operator's seat. No personal data: the call, the seat, what the
    caller chose in the IVR and how long they have waited."""

    type: Literal["ringing"] = "ringing"
    call_id: str
    reference: str = Field(default="", description="受付番号, e.g. 20261202-0007")
    interface: str
    category: str | None = Field(default=None, description="IVR code; None when the caller chose nothing")
    category_label: str = Field(default="未選択", description="the IVR choice in Japanese")
    waited_seconds: int | None = Field(default=None, ge=0, description="time in the queue so far")


# --- the pop: one wire model, composed by screenpop/pop.py and read by screenpop/web/pop_panel.js ---


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PopHistoryItem(_Part):
    """An earlier contact from the same number (within retention), newest first."""

    date: str = Field(description="YYYY-MM-DD, Asia/Tokyo")
    category: str | None
    category_label: str
    outcome: str = Field(description="records outcome code; empty when none was recorded")


class PopCallback(_Part):
    """A callback request of this caller not closed yet, oldest hand-over first."""

    id: int
    department: str = Field(description="department code")
    department_name: str
    status: str
    status_text: str = Field(description="the status in Japanese")
    handover_date: str = Field(description="YYYY-MM-DD: the day it is (or was) handed to the department")


class PopFaq(_Part):
    id: str
    question: str


class Pop(_Server):
    type: Literal["pop"] = "pop"
    call_id: str
    reference: str = Field(default="", description="受付番号 for people, e.g. 20261202-0007 (call_id: machines)")
    caller_number: str | None = None
    caller_number_display: str | None = None  # as people read it: 0422-51-5131 (records/phones.py)
    caller_withheld: bool = False
    category: str | None = None
    category_label: str = "未選択"
    waited_seconds: int = Field(default=0, ge=0)
    office_open: bool = True
    office_reason_text: str = ""
    office_reason: str | None = None  # night/weekend/holiday/year_end/closure/emergency (the consent script's lead)
    history: list[PopHistoryItem] = Field(default_factory=list)
    open_callbacks: list[PopCallback] = Field(default_factory=list)
    faq_suggestions: list[PopFaq] = Field(default_factory=list)
    faq_credit: str = ""  # CC BY: shown with the suggestions


class CallUpdate(_Server):
    type: Literal["call_update"] = "call_update"
    call_id: str
    event: Literal["answered", "transferred", "hangup", "hold", "consult"]
    # hold: {"on_hold": bool}; consult: {"state": "started"|"ended", "extension"} (Asterisk's events)
    detail: dict[str, Any] = Field(default_factory=dict)


class Presence(_Server):
    """An operator's presence as recorded by cti (screenpop/desks.py) and what Asterisk has."""

    type: Literal["presence"] = "presence"
    user_id: str
    state: Literal["ready", "pause", "offline"]
    reason: str | None = None
    interface: str | None = None
    queue_paused: bool | None = Field(
        default=None,
        description="Asterisk's pause flag of this seat's queue member; None when not known "
        "(no AMI link, or the seat is not a member of the queue)",
    )
    link: Literal["up", "down", "off"] = Field(
        default="off",
        description="the AMI link to Asterisk: up (queue_paused is Asterisk's), down (Asterisk's state not "
        "known now; cti's record is applied when the link is back), off (no telephony configured)",
    )
    wrapup_until: str | None = Field(
        default=None, description="後処理 (reason) ends by itself at this time (ISO 8601) unless ended sooner"
    )


class DeskState(_Part):
    """What a (re)connecting page needs to catch up: its seat and presence as cti holds them.
    A page that believed it had a seat and finds ``seat`` None must have it chosen again."""

    seat: str | None = None
    presence: Presence | None = None


class Snapshot(_Server):
    type: Literal["snapshot"] = "snapshot"
    state: DeskState = Field(default_factory=DeskState)


class Error(_Server):
    type: Literal["error"] = "error"
    code: str
    message: str


class Pong(_Server):
    type: Literal["pong"] = "pong"


class SessionExpired(_Server):
    type: Literal["session_expired"] = "session_expired"
    message: str = "セッションの有効期限が切れました。再度ログインしてください"


class FaqResults(_Server):
    type: Literal["faq_results"] = "faq_results"
    q: str
    results: list[dict[str, Any]] = Field(default_factory=list)


ServerMessage = Annotated[
    Hello | Ringing | Pop | CallUpdate | Presence | Snapshot | Error | Pong | SessionExpired | FaqResults,
    Field(discriminator="type"),
]

# --- client -> server -------------------------------------------------------------------------


class Resume(_Msg):
    type: Literal["resume"] = "resume"
    last_seq: int = Field(ge=0)
    epoch: str | None = None


class Ping(_Msg):
    type: Literal["ping"] = "ping"


class PresenceSet(_Msg):
    type: Literal["presence_set"] = "presence_set"
    state: Literal["ready", "pause"]
    reason: str | None = Field(default=None, max_length=64)


class FaqSearch(_Msg):
    type: Literal["faq_search"] = "faq_search"
    q: str = Field(min_length=1, max_length=200)


ClientMessage = Annotated[Resume | Ping | PresenceSet | FaqSearch, Field(discriminator="type")]

_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
_server_adapter: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)

# Connection-local replies: they carry the current seq but take none and are never replayed.
# Everything else sent to a user (these models, and other packages' messages with a ``type``,
# e.g. the supervisor wall's) is numbered and kept for replay.
UNSEQUENCED_TYPES = frozenset({"hello", "snapshot", "error", "pong", "session_expired", "faq_results"})
SEQUENCED_TYPES = frozenset({"ringing", "pop", "call_update", "presence"})  # of the models above


def is_sequenced(kind: str) -> bool:
    return kind not in UNSEQUENCED_TYPES


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Parse one client frame; raises pydantic.ValidationError naming what is wrong."""
    return _client_adapter.validate_json(text)


def schema() -> dict[str, Any]:
    """JSON Schema of both directions."""
    return {
        "$comment": "cti websocket protocol; see screenpop/messages.py for sequence numbers and close codes",
        "server_to_client": _server_adapter.json_schema(),
        "client_to_server": _client_adapter.json_schema(),
        "close_codes": {
            str(CLOSE_TOO_SLOW): "client too slow: its bounded queue overflowed",
            str(CLOSE_TOO_BIG): "frame larger than the configured maximum",
            str(CLOSE_SESSION_EXPIRED): "session expired or logged out",
            str(CLOSE_GOING_AWAY): "server shutting down",
        },
    }
