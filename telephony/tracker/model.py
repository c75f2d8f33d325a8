"""The call model: one live call made of small pieces, each holding one concern.

A ``Call`` is keyed by Asterisk's ``Linkedid``; its pieces are filled by the handlers of
``inbound``, ``callback``, ``transfer`` and ``hangups``, and read by ``CallSnapshot`` (the immutable
view the API, the screen pop and call control get). Channel names are reduced to their *base*
(``Local/101@x-00000001;2`` -> ``Local/101@x-00000001``) so both halves of a Local channel count as
one party.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telephony.tracker.table import Kind, State

_UNKNOWN_VALUES = frozenset({"", "<unknown>", "<Unknown>"})
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]+$")
UP = "6"  # ChannelState of an answered channel


def channel_base(channel: str) -> str:
    """``Local/101@operator-phones-00000001;2`` -> ``Local/101@operator-phones-00000001``."""
    semi = channel.rfind(";")
    return channel[:semi] if semi > 0 and channel[semi + 1 :].isdigit() else channel


def interface_of(channel: str) -> str:
    """The device/member interface of a channel name: ``PJSIP/op101-0000000a`` -> ``PJSIP/op101``."""
    return _CHANNEL_SUFFIX.sub("", channel_base(channel))


def clean(value: str | None) -> str | None:
    """A caller id / exten value, or None for Asterisk's ways of saying "none"."""
    return None if value is None or value in _UNKNOWN_VALUES else value


def to_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


class Chan:
    """One live channel (by Uniqueid) of a call."""

    __slots__ = ("base", "context", "name", "state", "uid")

    def __init__(self, uid: str, name: str, context: str, state: str) -> None:
        self.uid = uid
        self.name = name
        self.base = channel_base(name)
        self.context = context
        self.state = state


class Ring:
    """A queue member ringing for the call."""

    __slots__ = ("interface", "member_name", "queue", "since")

    def __init__(self, interface: str, member_name: str | None, queue: str | None, since: datetime) -> None:
        self.interface = interface
        self.member_name = member_name
        self.queue = queue
        self.since = since


@dataclass(eq=False)
class Legs:
    """The call's live channels and which party each channel base belongs to."""

    origin_base: str
    channels: dict[str, Chan] = field(default_factory=dict)  # Uniqueid -> channel
    citizen: set[str] = field(default_factory=set)
    operator: set[str] = field(default_factory=set)  # queue members' legs, the staff phone of a callback
    system_hangup: set[str] = field(default_factory=set)  # bases the dialplan hung up (Hangup app)

    def role(self, base: str) -> str | None:
        if base in self.citizen:
            return "citizen"
        if base in self.operator:
            return "operator"
        return None

    def live(self, base: str) -> bool:
        return any(chan.base == base for chan in self.channels.values())

    def member_channel(self, base: str | None) -> str | None:
        """The channel of a member leg that is bridged with the citizen: ``PJSIP/101-0000000a``
        itself, or the ``;1`` half of a Local member (``;2`` runs the member's dialplan)."""
        if base is None:
            return None
        for chan in self.channels.values():
            if chan.base == base and (chan.name == base or chan.name.endswith(";1")):
                return chan.name
        return None

    def citizen_channel(self) -> str | None:
        for chan in self.channels.values():
            if chan.base in self.citizen:
                return chan.name
        return None


@dataclass(eq=False)
class Caller:
    arrived: bool = False  # call_arrived sent
    number: str | None = None
    name: str | None = None
    dialled_number: str | None = None


@dataclass(eq=False)
class Routing:
    route: str | None = None  # open | closed (CTI_ROUTE)
    closed_reason: str | None = None
    category: str | None = None  # the IVR choice
    pending: bool = False  # CTI_ROUTE=closed seen, call_routed waits for CTI_CLOSED_REASON


@dataclass(eq=False)
class Seat:
    """The queue side: where the call waits, who rings, who holds it now."""

    queue: str | None = None
    position: int | None = None
    hold_time: int | None = None
    ringing: dict[str, Ring] = field(default_factory=dict)  # member channel base -> ring
    interface: str | None = None  # the connected operator (inbound) or the staff phone (callback)
    member_name: str | None = None
    connected_base: str | None = None  # the member leg now in the bridge with the citizen
    connected_at: datetime | None = None  # first connection (talk time counts from it)

    def release(self) -> None:
        """The operator's ownership ends (the call went back into the queue)."""
        self.interface = None
        self.member_name = None
        self.connected_base = None


@dataclass(eq=False)
class Transfer:
    target: str | None = None  # transferred_to
    bases: set[str] = field(default_factory=set)  # legs of the transfer target (department phones)


@dataclass(eq=False)
class Hold:
    """Why the citizen is on hold now: the legs Asterisk reported Hold (or, for the citizen's leg,
    MusicOnHoldStart) for and no Unhold/MusicOnHoldStop yet, and the consult leg, if any."""

    legs: set[str] = field(default_factory=set)  # "hold:<base>" / "moh:<base>"
    consult_base: str | None = None  # the operator's consult leg to a department (Local/201@consult-…)
    consult_extension: str | None = None

    @property
    def on_hold(self) -> bool:
        return bool(self.legs)


@dataclass(eq=False)
class Hangup:
    """What the end of the call will be classified from (see ``outcomes``)."""

    abandoned: bool = False
    citizen_gone: bool = False
    hung_up_by: str | None = None
    cause: int | None = None  # the citizen's leg
    cause_text: str | None = None
    last_cause: int | None = None  # the last leg that hung up


@dataclass(eq=False)
class CallbackLeg:
    callback_id: str | None = None
    staff_up: bool = False
    citizen_answered_at: datetime | None = None
    citizen_dial_status: str | None = None


@dataclass(eq=False)
class Call:
    call_id: str
    kind: Kind
    created_at: datetime
    legs: Legs
    state: State = State.ARRIVING
    steps: dict[str, datetime] = field(default_factory=dict)  # state -> first time reached
    caller: Caller = field(default_factory=Caller)
    routing: Routing = field(default_factory=Routing)
    seat: Seat = field(default_factory=Seat)
    transfer: Transfer = field(default_factory=Transfer)
    hold: Hold = field(default_factory=Hold)
    hangup: Hangup = field(default_factory=Hangup)
    callback: CallbackLeg = field(default_factory=CallbackLeg)

    def enter(self, state: State, at: datetime) -> None:
        """Set the state outside the table (classification of a new call), recording the step."""
        self.state = state
        self.steps.setdefault(state.value, at)


@dataclass(frozen=True)
class CallSnapshot:
    """An immutable view of one call, for the API, the screen pop and call control."""

    call_id: str
    kind: str
    state: str
    caller_number: str | None
    caller_name: str | None
    dialled_number: str | None
    citizen_channel: str | None  # the citizen's leg (Redirect/Hangup target for call control)
    operator_channel: str | None  # the connected member's leg in the bridge (Atxfer/PlayDTMF target)
    on_hold: bool  # the citizen hears hold (Asterisk's Hold/MusicOnHoldStart)
    consult_extension: str | None  # a consult leg to this department is up (attended transfer)
    category: str | None
    route: str | None
    closed_reason: str | None
    queue: str | None
    position: int | None
    hold_time: int | None
    ringing: tuple[str, ...]  # interfaces ringing now
    interface: str | None  # the connected operator (inbound) or the staff phone (callback)
    transferred_to: str | None
    callback_id: str | None
    steps: tuple[tuple[str, datetime], ...]  # (state, first time reached), in order
    channels: int  # live channels

    @classmethod
    def of(cls, call: Call) -> CallSnapshot:
        return cls(
            call_id=call.call_id,
            kind=call.kind.value,
            state=call.state.value,
            caller_number=call.caller.number,
            caller_name=call.caller.name,
            dialled_number=call.caller.dialled_number,
            citizen_channel=call.legs.citizen_channel(),
            operator_channel=call.legs.member_channel(call.seat.connected_base),
            on_hold=call.hold.on_hold,
            consult_extension=call.hold.consult_extension,
            category=call.routing.category,
            route=call.routing.route,
            closed_reason=call.routing.closed_reason,
            queue=call.seat.queue,
            position=call.seat.position,
            hold_time=call.seat.hold_time,
            ringing=tuple(r.interface for r in call.seat.ringing.values()),
            interface=call.seat.interface,
            transferred_to=call.transfer.target,
            callback_id=call.callback.callback_id,
            steps=tuple(sorted(call.steps.items(), key=lambda item: item[1])),
            channels=len(call.legs.channels),
        )

    def step(self, state: str) -> datetime | None:
        for name, at in self.steps:
            if name == state:
                return at
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "kind": self.kind,
            "state": self.state,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "dialled_number": self.dialled_number,
            "category": self.category,
            "route": self.route,
            "closed_reason": self.closed_reason,
            "queue": self.queue,
            "position": self.position,
            "hold_time": self.hold_time,
            "ringing": list(self.ringing),
            "interface": self.interface,
            "transferred_to": self.transferred_to,
            "on_hold": self.on_hold,
            "consult_extension": self.consult_extension,
            "callback_id": self.callback_id,
            "steps": {name: at.isoformat() for name, at in self.steps},
        }
