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
    """A call is ringing at the operator's seat. No personal data: ids only."""

    type: Literal["ringing"] = "ringing"
    call_id: str
    interface: str


class Pop(_Server):
    type: Literal["pop"] = "pop"
    call_id: str
    caller_number: str | None = None
    caller_withheld: bool = False
    category: str | None = None
    category_label: str | None = None
    waited_seconds: float | None = None
    office_open: bool | None = None
    office_reason_text: str | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)
    open_callbacks: list[dict[str, Any]] = Field(default_factory=list)
    faq_suggestions: list[dict[str, Any]] = Field(default_factory=list)
    faq_credit: str | None = None  # CC BY: shown with the suggestions


class CallUpdate(_Server):
    type: Literal["call_update"] = "call_update"
    call_id: str
    event: Literal["answered", "transferred", "hangup"]
    detail: dict[str, Any] = Field(default_factory=dict)


class Presence(_Server):
    type: Literal["presence"] = "presence"
    user_id: str
    state: Literal["ready", "pause", "offline"]
    reason: str | None = None
    interface: str | None = None


class Snapshot(_Server):
    type: Literal["snapshot"] = "snapshot"
    state: dict[str, Any] = Field(default_factory=dict)


class Error(_Server):
    type: Literal["error"] = "error"
    code: str
    message: str


class Pong(_Server):
    type: Literal["pong"] = "pong"


class SessionExpired(_Server):
    type: Literal["session_expired"] = "session_expired"
    message: str = "セッションの有効期限が切れました。再度ログインしてください / Session expired; please log in again."


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


def parse_server_message(text: str | bytes) -> ServerMessage:
    return _server_adapter.validate_json(text)


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
