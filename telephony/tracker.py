"""The call tracker: AMI event dicts in, domain events out. Pure and sans-I/O (h11 style).

``CallTracker(clock).feed(event)`` takes one AMI event (a ``Mapping[str, str]``, as parsed by
``telephony.frames`` or flattened from panoramisk) and returns the domain events it causes
(``telephony.events``). Calls are keyed by Asterisk's ``Linkedid``. The state machine is data:
``TRANSITIONS[(state, trigger)] -> state``; a trigger that is not allowed in the current state is
ignored (counted in ``stats``), which is what keeps duplicated or out-of-order AMI events harmless
(a second ``DialEnd``, an ``AgentRingNoAnswer`` after the caller left...).

Works on the full event stream (``cti replay`` of a capture) and on the filtered stream the AMI
adapter subscribes to (no ``Newexten``, only ``CTI_*`` ``VarSet``): ``Newexten`` only refines
things (who hung up, redirect transfers, IVR state, callback detection without CTI_CALLBACK_ID).

No leaks: each call keeps the set of its live channels (by Uniqueid); when the last one hangs up the
call ends and is dropped (a bounded list of recent snapshots is kept). Hung-up Uniqueids and ended
Linkedids are remembered (bounded) so that a late event can never resurrect a call.
``resync(channels, queue_entries)`` reconciles with Asterisk's ``CoreShowChannels`` after every
(re)connect.

Contract with the dialplan / FastAGI server (channel variables, VarSet):
``CTI_ROUTE`` (open|closed, set LAST by the route AGI; ``CTI_CLOSED_REASON`` and ``CTI_CATEGORY``
set before it travel in ``call_routed``), ``CTI_CATEGORY`` (IVR choice), ``CTI_CALLBACK_ID``
(Originate ``Variable:`` of a click-to-call). A transfer is seen as the citizen's channel entering a
transfer context (call control's Redirect, or the dialplan's own).

Nothing here logs personal data: caller numbers and names are event *data*, never log fields.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from cti.core.clock import Clock, require_aware
from cti.core.logs import log_event
from telephony.events import (
    CallAbandoned,
    CallArrived,
    CallbackCitizenAnswered,
    CallbackDialingCitizen,
    CallbackEnded,
    CallbackRingingStaff,
    CallbackStaffAnswered,
    CallEnded,
    CallQueued,
    CallRouted,
    CallTransferred,
    DomainEvent,
    OperatorConnected,
    OperatorMissed,
    OperatorRinging,
)

logger = logging.getLogger(__name__)


class State(StrEnum):
    ARRIVING = "arriving"
    ROUTED = "routed"
    IN_IVR = "in_ivr"
    QUEUED = "queued"
    OFFERED = "offered"
    CONNECTED = "connected"
    TRANSFERRED = "transferred"
    ABANDONED = "abandoned"
    # outbound callback legs
    CB_RINGING_STAFF = "callback_ringing_staff"
    CB_STAFF_ANSWERED = "callback_staff_answered"
    CB_DIALING_CITIZEN = "callback_dialing_citizen"
    CB_CONNECTED = "callback_connected"
    ENDED = "ended"


class Trigger(StrEnum):
    ROUTE = "route"
    IVR = "ivr"
    QUEUE = "queue"
    RING = "ring"
    MISS = "miss"  # a member stopped ringing, others still ring
    MISS_LAST = "miss_last"  # the last ringing member stopped ringing
    CONNECT = "connect"
    TRANSFER = "transfer"
    ABANDON = "abandon"
    STAFF_ANSWER = "staff_answer"
    DIAL_CITIZEN = "dial_citizen"
    CITIZEN_ANSWER = "citizen_answer"
    END = "end"


class Kind(StrEnum):
    INBOUND = "inbound"
    CALLBACK = "callback"
    UNKNOWN = "unknown"  # not classified yet (e.g. an Originate before it reaches its context)


S, T = State, Trigger
_PRE_QUEUE = (S.ARRIVING, S.ROUTED, S.IN_IVR)
_TABLE: list[tuple[Iterable[State], Trigger, State]] = [
    ((S.ARRIVING,), T.ROUTE, S.ROUTED),
    ((S.ARRIVING, S.ROUTED), T.IVR, S.IN_IVR),
    ((*_PRE_QUEUE, S.CONNECTED, S.TRANSFERRED), T.QUEUE, S.QUEUED),
    ((*_PRE_QUEUE, S.QUEUED, S.OFFERED, S.TRANSFERRED), T.RING, S.OFFERED),
    ((S.OFFERED,), T.MISS, S.OFFERED),
    ((S.OFFERED,), T.MISS_LAST, S.QUEUED),
    ((*_PRE_QUEUE, S.QUEUED, S.OFFERED, S.TRANSFERRED), T.CONNECT, S.CONNECTED),
    ((*_PRE_QUEUE, S.QUEUED, S.OFFERED, S.CONNECTED), T.TRANSFER, S.TRANSFERRED),
    ((S.QUEUED, S.OFFERED), T.ABANDON, S.ABANDONED),
    ((S.CB_RINGING_STAFF,), T.STAFF_ANSWER, S.CB_STAFF_ANSWERED),
    ((S.CB_RINGING_STAFF, S.CB_STAFF_ANSWERED), T.DIAL_CITIZEN, S.CB_DIALING_CITIZEN),
    ((S.CB_STAFF_ANSWERED, S.CB_DIALING_CITIZEN), T.CITIZEN_ANSWER, S.CB_CONNECTED),
    ((S.CB_CONNECTED,), T.TRANSFER, S.TRANSFERRED),
    ([s for s in State if s is not S.ENDED], T.END, S.ENDED),
]
TRANSITIONS: dict[tuple[State, Trigger], State] = {}
for _sources, _trigger, _target in _TABLE:
    for _source in _sources:
        TRANSITIONS[(_source, _trigger)] = _target
# A member that stops ringing after another took the call, or after the caller left, does not
# change the state.
for _source in (S.CONNECTED, S.TRANSFERRED, S.ABANDONED, S.QUEUED):
    TRANSITIONS[(_source, T.MISS)] = _source
    TRANSITIONS[(_source, T.MISS_LAST)] = _source

WANTED_VARIABLES = frozenset(
    {"CTI_ROUTE", "CTI_CLOSED_REASON", "CTI_CATEGORY", "CTI_CALLBACK_ID", "CTI_IVR_TRY"}
)
# Variables the route AGI (or the dialplan's static fallback) sets together with CTI_ROUTE: while
# they arrive, a "closed" call_routed waits for its CTI_CLOSED_REASON.
ROUTE_DETAIL_VARIABLES = frozenset(
    {"CTI_ROUTE", "CTI_OFFICE", "CTI_CLOSED_REASON", "CTI_NEXT_OPEN", "CTI_NEXT_OPEN_EPOCH", "CTI_ROUTE_SOURCE"}
)
IVR_APPLICATIONS = frozenset({"Background", "BackGround", "Read", "WaitExten", "Playback", "ControlPlayback"})
_UNKNOWN_VALUES = frozenset({"", "<unknown>", "<Unknown>"})
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-fA-F]+$")
UP = "6"


def channel_base(channel: str) -> str:
    """``Local/101@operator-phones-00000001;2`` -> ``Local/101@operator-phones-00000001``."""
    semi = channel.rfind(";")
    return channel[:semi] if semi > 0 and channel[semi + 1 :].isdigit() else channel


def interface_of(channel: str) -> str:
    """The device/member interface of a channel name: ``PJSIP/op101-0000000a`` -> ``PJSIP/op101``."""
    return _CHANNEL_SUFFIX.sub("", channel_base(channel))


def _clean(value: str | None) -> str | None:
    return None if value is None or value in _UNKNOWN_VALUES else value


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class TrackerConfig:
    """Dialplan contexts the tracker must know (defaults: the lab dialplan in dialplan/)."""

    inbound_contexts: frozenset[str] = frozenset({"from-pstn"})
    callback_contexts: frozenset[str] = frozenset({"outbound-callback"})
    transfer_contexts: frozenset[str] = frozenset({"departments"})
    recent_limit: int = 200  # ended-call snapshots kept for the console
    tombstone_limit: int = 20000  # hung-up Uniqueids / ended Linkedids remembered

    def __post_init__(self) -> None:
        if self.recent_limit < 0 or self.tombstone_limit < 1:
            raise ValueError("recent_limit must be >= 0 and tombstone_limit >= 1")
        if not self.inbound_contexts:
            raise ValueError("inbound_contexts must name at least one dialplan context")

    @classmethod
    def from_call_control(cls, call_control: _CallControlLike,
                          inbound_contexts: Iterable[str] = ("from-pstn",)) -> TrackerConfig:
        """From ``settings.call_control`` (its callback and transfer contexts)."""
        return cls(inbound_contexts=frozenset(inbound_contexts),
                   callback_contexts=frozenset({call_control.callback_context}),
                   transfer_contexts=frozenset({call_control.transfer_context}))


class _CallControlLike(Protocol):
    callback_context: str
    transfer_context: str


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
            "callback_id": self.callback_id,
            "steps": {name: at.isoformat() for name, at in self.steps},
        }


class _Chan:
    __slots__ = ("base", "context", "name", "state", "uid")

    def __init__(self, uid: str, name: str, context: str, state: str) -> None:
        self.uid = uid
        self.name = name
        self.base = channel_base(name)
        self.context = context
        self.state = state


class _Ring:
    __slots__ = ("interface", "member_name", "queue", "since")

    def __init__(self, interface: str, member_name: str | None, queue: str | None, since: datetime) -> None:
        self.interface = interface
        self.member_name = member_name
        self.queue = queue
        self.since = since


@dataclass(eq=False)
class _Call:
    call_id: str
    kind: Kind
    created_at: datetime
    origin_base: str
    state: State = State.ARRIVING
    steps: dict[str, datetime] = field(default_factory=dict)
    channels: dict[str, _Chan] = field(default_factory=dict)
    citizen_bases: set[str] = field(default_factory=set)
    operator_bases: set[str] = field(default_factory=set)
    system_hangup_bases: set[str] = field(default_factory=set)
    arrived: bool = False
    caller_number: str | None = None
    caller_name: str | None = None
    dialled_number: str | None = None
    category: str | None = None
    route: str | None = None
    closed_reason: str | None = None
    queue: str | None = None
    position: int | None = None
    hold_time: int | None = None
    ringing: dict[str, _Ring] = field(default_factory=dict)  # member channel base -> ring
    interface: str | None = None
    member_name: str | None = None
    connected_base: str | None = None
    connected_at: datetime | None = None
    agent_connect_seen: bool = False
    transferred_to: str | None = None
    abandoned: bool = False
    citizen_gone: bool = False
    hung_up_by: str | None = None
    agent_complete_reason: str | None = None
    cause: int | None = None
    cause_text: str | None = None
    last_cause: int | None = None
    callback_id: str | None = None
    staff_up: bool = False
    citizen_answered_at: datetime | None = None
    citizen_dial_status: str | None = None
    route_pending: bool = False  # CTI_ROUTE=closed seen, call_routed waits for CTI_CLOSED_REASON
    transfer_hint: bool = False  # AgentComplete Reason=transfer (the target comes from other events)

    def role(self, base: str) -> str | None:
        if base in self.citizen_bases:
            return "citizen"
        if base in self.operator_bases:
            return "operator"
        return None

    def citizen_channel(self) -> str | None:
        for chan in self.channels.values():
            if chan.base in self.citizen_bases:
                return chan.name
        return None


class _BoundedSet:
    """Insertion-ordered set that forgets its oldest members beyond `limit`."""

    __slots__ = ("_items", "_limit")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: dict[str, None] = {}

    def add(self, item: str) -> None:
        items = self._items
        items[item] = None
        if len(items) > self._limit:
            del items[next(iter(items))]

    def discard(self, item: str) -> None:
        self._items.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __len__(self) -> int:
        return len(self._items)


Handler = Callable[[Mapping[str, str], list[DomainEvent]], None]


class CallTracker:
    """Tracks live calls from AMI events; see the module docstring."""

    def __init__(self, clock: Clock, config: TrackerConfig | None = None) -> None:
        self._clock = clock
        self.config = config or TrackerConfig()
        self._calls: dict[str, _Call] = {}
        self._chan_call: dict[str, str] = {}  # live Uniqueid -> Linkedid
        self._dead_uids = _BoundedSet(self.config.tombstone_limit)
        self._ended_ids = _BoundedSet(self.config.tombstone_limit)
        self._recent: deque[CallSnapshot] = deque(maxlen=self.config.recent_limit)
        self._route_pending: set[str] = set()  # call ids with a deferred call_routed
        self.stats: dict[str, int] = {"events": 0, "ignored_transitions": 0, "calls_ended": 0}
        self._inbound = self.config.inbound_contexts
        self._callback = self.config.callback_contexts
        self._transfer = self.config.transfer_contexts
        self._handlers: dict[str, Handler] = {
            "Newchannel": self._on_caller_info,
            "NewCallerid": self._on_caller_info,
            "Newstate": self._on_newstate,
            "Newexten": self._on_newexten,
            "VarSet": self._on_varset,
            "AGIExecStart": self._on_agi,
            "QueueCallerJoin": self._on_queue_join,
            "QueueCallerAbandon": self._on_queue_abandon,
            "AgentCalled": self._on_agent_called,
            "AgentRingNoAnswer": self._on_agent_ring_no_answer,
            "AgentConnect": self._on_agent_connect,
            "AgentComplete": self._on_agent_complete,
            "DialBegin": self._on_dial_begin,
            "DialEnd": self._on_dial_end,
            "BridgeEnter": self._on_bridge_enter,
            "BlindTransfer": self._on_blind_transfer,
            "AttendedTransfer": self._on_attended_transfer,
            "OriginateResponse": self._on_originate_response,
            "Rename": self._on_rename,
            "HangupRequest": self._on_hangup_request,
            "Hangup": self._on_hangup,
        }

    # ---- public API --------------------------------------------------------------------------

    def feed(self, event: Mapping[str, str]) -> list[DomainEvent]:
        """Apply one AMI event; return the domain events it causes (often none). Never raises on
        unknown, duplicated or out-of-order events."""
        handler = self._handlers.get(event.get("Event", ""))
        if handler is None:
            return []
        self.stats["events"] += 1
        out: list[DomainEvent] = []
        if self._route_pending:
            self._flush_route_unless_detail(event, out)
        handler(event, out)
        return out

    def _flush_route_unless_detail(self, event: Mapping[str, str], out: list[DomainEvent]) -> None:
        """A deferred call_routed goes out with the first event of its call that is not part of
        the routing itself (the AGI's other SET VARIABLEs)."""
        call = self._calls.get(event.get("Linkedid", ""))
        if call is None or not call.route_pending:
            return
        name = event.get("Event")
        if name in ("AGIExecStart", "AGIExecEnd"):
            return
        if name == "VarSet" and event.get("Variable", "").lstrip("_") in ROUTE_DETAIL_VARIABLES:
            return
        self._emit_route(call, out, self._now())

    def live_calls(self) -> list[CallSnapshot]:
        return [self._snapshot(call) for call in self._calls.values()]

    def get(self, call_id: str) -> CallSnapshot | None:
        call = self._calls.get(call_id)
        return self._snapshot(call) if call is not None else None

    def recent_calls(self) -> list[CallSnapshot]:
        """Snapshots of the most recently ended calls, oldest first (bounded)."""
        return list(self._recent)

    def call_for_interface(self, interface: str) -> CallSnapshot | None:
        """The live call an operator interface is on: connected first, else ringing for it."""
        ringing: _Call | None = None
        for call in self._calls.values():
            if call.interface == interface and call.state is not State.TRANSFERRED:
                return self._snapshot(call)
            if ringing is None and any(r.interface == interface for r in call.ringing.values()):
                ringing = call
        return self._snapshot(ringing) if ringing is not None else None

    def __len__(self) -> int:
        return len(self._calls)

    def resync(
        self, channels: Sequence[Mapping[str, str]], queue_entries: Sequence[Mapping[str, str]] = ()
    ) -> list[DomainEvent]:
        """Reconcile with Asterisk after a (re)connect.

        `channels` are the ``CoreShowChannel`` events of a ``CoreShowChannels`` action,
        `queue_entries` the ``QueueEntry`` events of ``QueueStatus``. Known calls Asterisk no
        longer has end with reason ``ended_while_disconnected``; calls Asterisk has that are
        unknown here are created (``call_arrived`` with ``resynced=True``, then what can be
        inferred); known calls get no second ``call_arrived``.
        """
        out: list[DomainEvent] = []
        present: dict[str, list[Mapping[str, str]]] = {}
        for chan in channels:
            linkedid, uid = chan.get("Linkedid"), chan.get("Uniqueid")
            if linkedid and uid and chan.get("Channel"):
                present.setdefault(linkedid, []).append(chan)
        entries: dict[str, Mapping[str, str]] = {}
        for entry in queue_entries:
            key = entry.get("Uniqueid") or entry.get("Channel")
            if key:
                entries[key] = entry
        ended = created = 0
        for gone in [c for c in self._calls.values() if c.call_id not in present]:
            self._end(gone, out, disconnected=True)
            ended += 1
        for linkedid, chans in present.items():
            call = self._calls.get(linkedid)
            if call is None:
                created += 1
                self._ended_ids.discard(linkedid)  # Asterisk says it is alive: trust Asterisk
                self._resync_new(linkedid, chans, entries, out)
            else:
                self._resync_known(call, chans, entries, out)
        log_event(logger, "tracker_resync", channels=len(channels), calls=len(self._calls), ended=ended,
                  created=created)
        return out

    # ---- helpers -----------------------------------------------------------------------------

    def _now(self) -> datetime:
        return require_aware(self._clock(), "tracker clock")

    def _fire(self, call: _Call, trigger: Trigger, now: datetime) -> bool:
        target = TRANSITIONS.get((call.state, trigger))
        if target is None:
            self.stats["ignored_transitions"] += 1
            return False
        call.state = target
        call.steps.setdefault(target.value, now)
        return True

    def _touch(self, ev: Mapping[str, str], out: list[DomainEvent]) -> tuple[_Call, _Chan] | None:
        """The call and channel of an event with Channel/Uniqueid/Linkedid, creating them if new."""
        uid = ev.get("Uniqueid")
        linkedid = ev.get("Linkedid")
        if not uid or not linkedid:
            return None
        call = self._calls.get(linkedid)
        if call is not None:  # fast path: a known channel of a live call
            chan = call.channels.get(uid)
            if chan is not None:
                return call, chan
        return self._touch_ids(linkedid, uid, ev.get("Channel", ""), ev.get("Context", ""),
                               ev.get("ChannelState", ""), ev.get("Exten", ""), out)

    def _touch_ids(self, linkedid: str, uid: str, name: str, context: str, state: str, exten: str,
                   out: list[DomainEvent]) -> tuple[_Call, _Chan] | None:
        if uid in self._dead_uids or linkedid in self._ended_ids or not name:
            return None
        call = self._calls.get(linkedid)
        if call is None:
            kind = Kind.INBOUND if context in self._inbound else Kind.UNKNOWN
            now = self._now()
            call = _Call(linkedid, kind, now, channel_base(name))
            call.steps[call.state.value] = now
            if kind is Kind.INBOUND:
                call.citizen_bases.add(call.origin_base)
            self._calls[linkedid] = call
            if context in self._callback:
                self._make_callback(call, out)
        chan = call.channels.get(uid)
        if chan is None:
            chan = _Chan(uid, name, context, state)
            call.channels[uid] = chan
            self._chan_call[uid] = linkedid
            if uid == linkedid and chan.base != call.origin_base and call.kind is Kind.UNKNOWN:
                call.origin_base = chan.base  # events arrived out of order: the oldest leg is the origin
            if context in self._inbound and call.kind is not Kind.CALLBACK:
                if call.kind is Kind.UNKNOWN:
                    call.kind = Kind.INBOUND
                if chan.base not in call.operator_bases:
                    call.citizen_bases.add(chan.base)
                if call.dialled_number is None:
                    call.dialled_number = _clean(exten)
        return call, chan

    def _arrive(self, call: _Call, out: list[DomainEvent], now: datetime | None = None,
                resynced: bool = False) -> None:
        if call.arrived or call.kind is not Kind.INBOUND:
            return
        call.arrived = True
        out.append(CallArrived(call_id=call.call_id, at=now or self._now(), caller_number=call.caller_number,
                               caller_name=call.caller_name, dialled_number=call.dialled_number,
                               resynced=resynced))

    def _make_inbound(self, call: _Call, chan: _Chan) -> None:
        if call.kind is Kind.UNKNOWN:
            call.kind = Kind.INBOUND
        if call.kind is Kind.INBOUND and chan.base not in call.operator_bases:
            call.citizen_bases.add(chan.base)

    def _make_callback(self, call: _Call, out: list[DomainEvent]) -> None:
        if call.kind is not Kind.UNKNOWN:
            return
        now = self._now()
        call.kind = Kind.CALLBACK
        call.state = State.CB_RINGING_STAFF
        call.steps[call.state.value] = now
        call.operator_bases.add(call.origin_base)
        call.interface = interface_of(call.origin_base)
        out.append(CallbackRingingStaff(call_id=call.call_id, at=now, callback_id=call.callback_id,
                                        interface=call.interface))
        if call.staff_up:
            self._staff_answered(call, out, now)

    def _staff_answered(self, call: _Call, out: list[DomainEvent], now: datetime) -> None:
        if call.state is State.CB_RINGING_STAFF and self._fire(call, Trigger.STAFF_ANSWER, now):
            out.append(CallbackStaffAnswered(call_id=call.call_id, at=now, callback_id=call.callback_id,
                                             interface=call.interface))

    def _transfer_to(self, call: _Call, target: str | None, method: str, interface: str | None,
                     out: list[DomainEvent]) -> None:
        if call.state is State.TRANSFERRED and (target is None or target == call.transferred_to):
            return
        now = self._now()
        if call.state is State.TRANSFERRED or self._fire(call, Trigger.TRANSFER, now):
            call.transferred_to = target or call.transferred_to
            call.hung_up_by = None  # whatever AgentComplete said, a transfer is not a hangup
            out.append(CallTransferred(call_id=call.call_id, at=now, target=target,
                                       interface=interface or call.interface, method=method))

    def _miss(self, call: _Call, base: str, reason: str, ring_ms: int | None, out: list[DomainEvent],
              now: datetime | None = None) -> None:
        ring = call.ringing.pop(base, None)
        if ring is None:
            return
        now = now or self._now()
        if ring_ms is None:
            ring_ms = int((now - ring.since).total_seconds() * 1000)
        trigger = Trigger.MISS if call.ringing else Trigger.MISS_LAST
        if self._fire(call, trigger, now):
            out.append(OperatorMissed(call_id=call.call_id, at=now, interface=ring.interface, reason=reason,
                                      ring_ms=ring_ms))

    def _connect(self, call: _Call, base: str | None, interface: str, member_name: str | None,
                 queue: str | None, hold_time: int | None, out: list[DomainEvent], now: datetime,
                 resynced: bool = False) -> None:
        if base is not None:
            call.ringing.pop(base, None)
            call.operator_bases.add(base)
        if not self._fire(call, Trigger.CONNECT, now):
            return
        call.interface = interface
        call.member_name = member_name
        call.connected_base = base
        call.connected_at = now
        if hold_time is None and (queued := call.steps.get(State.QUEUED.value)) is not None:
            hold_time = int((now - queued).total_seconds())
        call.hold_time = hold_time
        out.append(OperatorConnected(call_id=call.call_id, at=now, interface=interface, member_name=member_name,
                                     queue=queue or call.queue, hold_time=hold_time, resynced=resynced))

    # ---- handlers ----------------------------------------------------------------------------

    def _on_caller_info(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        """Newchannel and NewCallerid: the citizen's number (and name) may arrive with either."""
        touched = self._touch(ev, out)
        if touched is None:
            return
        call, chan = touched
        if call.kind is Kind.INBOUND and chan.base in call.citizen_bases:
            self._update_caller(call, ev)
            if call.caller_number is not None:
                self._arrive(call, out)

    def _update_caller(self, call: _Call, ev: Mapping[str, str]) -> None:
        number = _clean(ev.get("CallerIDNum"))
        if number is not None:
            call.caller_number = number
            name = _clean(ev.get("CallerIDName"))
            if name is not None:
                call.caller_name = name

    def _on_newstate(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        touched = self._touch(ev, out)
        if touched is None:
            return
        call, chan = touched
        if ev.get("ChannelState") == UP and chan.base == call.origin_base and call.kind is not Kind.INBOUND:
            call.staff_up = True
            if call.kind is Kind.CALLBACK:
                self._staff_answered(call, out, self._now())

    def _on_newexten(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        context = ev.get("Context", "")
        app = ev.get("Application", "")
        if context in self._callback:
            touched = self._touch(ev, out)
            if touched is not None:
                self._make_callback(touched[0], out)
        elif app == "Hangup":
            if context in self._inbound or context in self._transfer:
                touched = self._touch(ev, out)
                if touched is not None:
                    touched[0].system_hangup_bases.add(touched[1].base)
        elif context in self._transfer:
            touched = self._touch(ev, out)
            if touched is not None:
                call, chan = touched
                if call.role(chan.base) == "citizen":
                    self._transfer_to(call, f"{ev.get('Exten', '')}@{context}", "redirect", None, out)
        elif context in self._inbound and not app.startswith("App"):
            touched = self._touch(ev, out)
            if touched is None:
                return
            call, chan = touched
            if call.kind is Kind.INBOUND and chan.base in call.citizen_bases:
                self._arrive(call, out)
                if app in IVR_APPLICATIONS and call.route != "closed":
                    self._fire(call, Trigger.IVR, self._now())

    def _emit_route(self, call: _Call, out: list[DomainEvent], now: datetime) -> None:
        call.route_pending = False
        self._route_pending.discard(call.call_id)
        if call.route is not None and self._fire(call, Trigger.ROUTE, now):
            out.append(CallRouted(call_id=call.call_id, at=now, route=call.route, reason=call.closed_reason,
                                  category=call.category))

    def _on_varset(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        variable = ev.get("Variable", "")
        if variable[:1] == "_":
            variable = variable.lstrip("_")  # Set(__CTI_CATEGORY=...): inherited by the call's new legs
        if variable not in WANTED_VARIABLES:
            return
        touched = self._touch(ev, out)
        if touched is None:
            return
        call, chan = touched
        value = ev.get("Value", "")
        if variable == "CTI_ROUTE":
            if not value or call.route is not None:
                return  # empty, or the inherited copy on another leg
            if call.kind is Kind.UNKNOWN:
                self._make_inbound(call, chan)
            if call.kind is not Kind.INBOUND:
                return
            call.route = value
            now = self._now()
            self._arrive(call, out, now)
            if value == "closed" and call.closed_reason is None:
                call.route_pending = True
                self._route_pending.add(call.call_id)
            else:
                self._emit_route(call, out, now)
        elif variable == "CTI_CLOSED_REASON":
            call.closed_reason = value or None
            if call.route_pending:
                self._emit_route(call, out, self._now())
        elif variable == "CTI_CATEGORY":
            call.category = value or None
        elif variable == "CTI_IVR_TRY":
            if call.kind is Kind.INBOUND and call.route != "closed":
                self._fire(call, Trigger.IVR, self._now())
        elif variable == "CTI_CALLBACK_ID":
            if value:
                call.callback_id = value
                self._make_callback(call, out)

    def _on_agi(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        touched = self._touch(ev, out)
        if touched is not None and touched[0].kind is Kind.INBOUND and touched[1].base in touched[0].citizen_bases:
            self._arrive(touched[0], out)

    def _on_queue_join(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        touched = self._touch(ev, out)
        if touched is None:
            return
        call, chan = touched
        self._make_inbound(call, chan)
        if call.kind is not Kind.INBOUND:
            return
        now = self._now()
        self._arrive(call, out, now)
        call.queue = ev.get("Queue") or call.queue
        call.position = _int(ev.get("Position"))
        if self._fire(call, Trigger.QUEUE, now):
            out.append(CallQueued(call_id=call.call_id, at=now, queue=call.queue or "", position=call.position,
                                  category=call.category))

    def _on_queue_abandon(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        touched = self._touch(ev, out)
        if touched is None:
            return
        call = touched[0]
        now = self._now()
        for base in list(call.ringing):
            self._miss(call, base, "caller_hung_up", None, out, now)
        if self._fire(call, Trigger.ABANDON, now):
            call.abandoned = True
            call.hung_up_by = "citizen"
            hold = _int(ev.get("HoldTime"))
            call.hold_time = hold
            out.append(CallAbandoned(call_id=call.call_id, at=now, queue=ev.get("Queue") or call.queue,
                                     position=_int(ev.get("Position")), hold_time=hold))

    def _on_agent_called(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        touched = self._touch(ev, out)
        dest = ev.get("DestChannel")
        if touched is None or not dest:
            return
        call, chan = touched
        self._make_inbound(call, chan)
        base = channel_base(dest)
        if call.kind is not Kind.INBOUND or base in call.ringing or base in call.citizen_bases:
            return
        if base in self._dead_bases_of(call, base):
            return
        now = self._now()
        self._arrive(call, out, now)
        call.operator_bases.add(base)
        interface = ev.get("Interface") or interface_of(dest)
        member = _clean(ev.get("MemberName"))
        queue = ev.get("Queue") or call.queue
        if self._fire(call, Trigger.RING, now):
            call.ringing[base] = _Ring(interface, member, queue, now)
            out.append(OperatorRinging(call_id=call.call_id, at=now, interface=interface, member_name=member,
                                       queue=queue, caller_number=call.caller_number,
                                       caller_name=call.caller_name))

    def _dead_bases_of(self, call: _Call, base: str) -> set[str]:
        """{base} if that member leg is known and all its channels already hung up (late event)."""
        if base in call.operator_bases and not any(c.base == base for c in call.channels.values()):
            return {base}
        return set()

    def _on_agent_ring_no_answer(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        call = self._calls.get(ev.get("Linkedid", ""))
        dest = ev.get("DestChannel")
        if call is None or not dest:
            return
        self._miss(call, channel_base(dest), "no_answer", _int(ev.get("RingTime")), out)

    def _on_agent_connect(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        touched = self._touch(ev, out)
        dest = ev.get("DestChannel")
        if touched is None or not dest:
            return
        call, chan = touched
        self._make_inbound(call, chan)
        if call.kind is not Kind.INBOUND or call.agent_connect_seen:
            return
        call.agent_connect_seen = True
        now = self._now()
        self._arrive(call, out, now)
        base = channel_base(dest)
        ring = call.ringing.get(base)
        interface = ev.get("Interface") or (ring.interface if ring else interface_of(dest))
        self._connect(call, base, interface, _clean(ev.get("MemberName")), ev.get("Queue"),
                      _int(ev.get("HoldTime")), out, now)
        # Members still ringing for this call were answered elsewhere (ringall / autofill).
        for other in list(call.ringing):
            self._miss(call, other, "answered_elsewhere", None, out, now)

    def _on_agent_complete(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        call = self._calls.get(ev.get("Linkedid", ""))
        if call is None:
            return
        reason = ev.get("Reason", "")
        call.agent_complete_reason = reason
        if call.state is State.TRANSFERRED:
            return  # the member left after a transfer; the call goes on
        if reason == "agent":
            call.hung_up_by = "operator"
        elif reason == "caller":
            call.hung_up_by = "citizen"
        elif reason == "transfer":
            # Asterisk sends it beside BlindTransfer/AttendedTransfer (which carry the target):
            # recorded, not announced twice.
            call.transfer_hint = True

    def _on_dial_begin(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        dest = ev.get("DestChannel")
        if not dest or "Channel" not in ev:
            return  # an Originate's own dial (no caller channel): nothing to learn
        touched = self._touch(ev, out)
        if touched is None:
            return
        call, chan = touched
        if call.kind is Kind.UNKNOWN and ev.get("Context", "") in self._callback:
            self._make_callback(call, out)
        if call.kind is not Kind.CALLBACK or call.role(chan.base) != "operator":
            return
        dest_base = channel_base(dest)
        if dest_base in call.operator_bases:
            return
        call.citizen_bases.add(dest_base)
        now = self._now()
        # In the callback context the dialplan's extension is the citizen's number; a trunk leg's
        # own DestExten may be "s" or empty.
        if ev.get("Context", "") in self._callback:
            number = _clean(ev.get("Exten")) or _clean(ev.get("DestExten"))
        else:
            number = _clean(ev.get("DestExten")) or _clean(ev.get("Exten"))
        if call.dialled_number is None:
            call.dialled_number = number
        if self._fire(call, Trigger.DIAL_CITIZEN, now):
            out.append(CallbackDialingCitizen(call_id=call.call_id, at=now, callback_id=call.callback_id,
                                              number=number))

    def _on_dial_end(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        dest = ev.get("DestChannel")
        linkedid = ev.get("Linkedid") or ev.get("DestLinkedid")
        if not dest or not linkedid:
            return
        call = self._calls.get(linkedid)
        if call is None:
            return
        status = ev.get("DialStatus", "")
        base = channel_base(dest)
        if "Channel" not in ev:
            # The Originate's dial of its first leg: ANSWER means the staff phone answered.
            if status == "ANSWER" and base == call.origin_base and call.kind is not Kind.INBOUND:
                call.staff_up = True
                if call.kind is Kind.CALLBACK:
                    self._staff_answered(call, out, self._now())
            return
        if call.kind is Kind.INBOUND:
            if base in call.ringing and status != "ANSWER":
                if status == "NOANSWER":
                    reason = "no_answer"
                elif call.interface is not None:
                    reason = "answered_elsewhere"
                elif call.citizen_gone or call.abandoned:
                    reason = "caller_hung_up"
                elif status in ("BUSY", "CONGESTION", "CHANUNAVAIL"):
                    reason = "unavailable"
                else:
                    reason = "no_answer"
                self._miss(call, base, reason, None, out)
        elif call.kind is Kind.CALLBACK and base in call.citizen_bases:
            if status == "ANSWER":
                now = self._now()
                if self._fire(call, Trigger.CITIZEN_ANSWER, now):
                    call.citizen_answered_at = now
                    out.append(CallbackCitizenAnswered(call_id=call.call_id, at=now, callback_id=call.callback_id))
            elif call.citizen_dial_status is None:
                call.citizen_dial_status = status

    def _on_bridge_enter(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        touched = self._touch(ev, out)
        if touched is None:
            return
        call, chan = touched
        # Fallback when AgentConnect was not seen: a ringing member's leg entered the bridge.
        if call.kind is Kind.INBOUND and not call.agent_connect_seen and chan.base in call.ringing:
            ring = call.ringing[chan.base]
            self._connect(call, chan.base, ring.interface, ring.member_name, ring.queue, None, out, self._now())

    def _on_blind_transfer(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        if ev.get("Result") != "Success":
            return
        call = self._calls.get(ev.get("TransfereeLinkedid", "")) or self._calls.get(
            ev.get("TransfererLinkedid", ""))
        if call is None:
            return
        exten, context = ev.get("Extension", ""), ev.get("Context", "")
        target = f"{exten}@{context}" if context else exten or None
        transferer = ev.get("TransfererChannel")
        self._transfer_to(call, target, "blind", interface_of(transferer) if transferer else None, out)

    def _on_attended_transfer(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        if ev.get("Result") != "Success":
            return
        call = self._calls.get(ev.get("TransfereeLinkedid", "")) or self._calls.get(
            ev.get("OrigTransfererLinkedid", ""))
        if call is None:
            return
        target = (ev.get("TransferTargetChannel") or ev.get("SecondTransfererConnectedLineNum")
                  or ev.get("DestApp") or None)
        if target and "/" in target:
            target = interface_of(target)
        transferer = ev.get("OrigTransfererChannel")
        self._transfer_to(call, target, "attended", interface_of(transferer) if transferer else None, out)

    def _on_originate_response(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        linkedid = self._chan_call.get(ev.get("Uniqueid", ""))
        call = self._calls.get(linkedid) if linkedid else None
        if call is None:
            return
        if ev.get("Response") == "Success" and call.kind is not Kind.INBOUND:
            call.staff_up = True  # an Originate's response comes when its first leg answers
        if ev.get("Context", "") in self._callback:
            self._make_callback(call, out)
        if call.kind is Kind.CALLBACK and call.staff_up:
            self._staff_answered(call, out, self._now())

    def _on_rename(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        linkedid = self._chan_call.get(ev.get("Uniqueid", ""))
        call = self._calls.get(linkedid) if linkedid else None
        if call is not None and (new_name := ev.get("Newname")):
            chan = call.channels.get(ev.get("Uniqueid", ""))
            if chan is not None:
                chan.name = new_name

    def _note_hangup_side(self, call: _Call, chan_base: str) -> None:
        if call.hung_up_by is not None:
            return
        role = call.role(chan_base)
        if role == "citizen":
            call.hung_up_by = "system" if chan_base in call.system_hangup_bases else "citizen"
        elif role == "operator" and (call.kind is not Kind.INBOUND or chan_base == call.connected_base):
            call.hung_up_by = "operator"

    def _on_hangup_request(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        call = self._calls.get(ev.get("Linkedid", ""))
        channel = ev.get("Channel")
        if call is not None and channel:
            self._note_hangup_side(call, channel_base(channel))

    def _on_hangup(self, ev: Mapping[str, str], out: list[DomainEvent]) -> None:
        uid = ev.get("Uniqueid")
        if not uid:
            return
        self._dead_uids.add(uid)
        linkedid = ev.get("Linkedid") or self._chan_call.get(uid)
        self._chan_call.pop(uid, None)
        call = self._calls.get(linkedid) if linkedid else None
        if call is None:
            return
        chan = call.channels.pop(uid, None)
        base = chan.base if chan is not None else channel_base(ev.get("Channel", ""))
        self._note_hangup_side(call, base)
        role = call.role(base)
        cause = _int(ev.get("Cause"))
        call.last_cause = cause
        if role == "citizen":
            if not call.citizen_gone:
                call.cause = cause
                call.cause_text = ev.get("Cause-txt") or None
            call.citizen_gone = True
        if base in call.ringing and not any(c.base == base for c in call.channels.values()):
            reason = "caller_hung_up" if call.citizen_gone else "no_answer"
            self._miss(call, base, reason, None, out)
        if not call.channels:
            self._end(call, out, disconnected=False)

    # ---- ending ------------------------------------------------------------------------------

    def _end(self, call: _Call, out: list[DomainEvent], disconnected: bool) -> None:
        now = self._now()
        if call.route_pending:
            self._emit_route(call, out, now)
        for base in list(call.ringing):
            self._miss(call, base, "ended_while_disconnected" if disconnected else "caller_hung_up", None, out,
                       now)
        last_state = call.state
        self._fire(call, Trigger.END, now)
        duration = round((now - call.created_at).total_seconds(), 3)
        if call.kind is Kind.INBOUND:
            if disconnected:
                reason = "ended_while_disconnected"
            elif call.abandoned:
                reason = "abandoned"
            elif call.connected_at is not None:
                reason = "answered"
            elif call.route == "closed":
                reason = "closed"
            else:
                reason = "not_answered"
            self._arrive(call, out, now)
            talk = round((now - call.connected_at).total_seconds(), 3) if call.connected_at else None
            out.append(CallEnded(call_id=call.call_id, at=now, reason=reason,
                                 hung_up_by=None if disconnected else call.hung_up_by,
                                 cause=call.cause if call.cause is not None else call.last_cause,
                                 cause_text=call.cause_text, last_state=last_state.value, duration_s=duration,
                                 talk_s=talk, interface=call.interface))
        elif call.kind is Kind.CALLBACK:
            status = call.citizen_dial_status
            if disconnected:
                outcome = "ended_while_disconnected"
            elif call.citizen_answered_at is not None:
                outcome = "completed"
            elif not call.staff_up:
                outcome = "staff_no_answer"
            elif status == "NOANSWER":
                outcome = "citizen_no_answer"
            elif status == "BUSY":
                outcome = "citizen_busy"
            elif status in ("CONGESTION", "CHANUNAVAIL"):
                outcome = "citizen_unreachable"
            elif status == "CANCEL" or last_state is State.CB_DIALING_CITIZEN:
                outcome = "cancelled"
            else:
                outcome = "failed"
            talk = (round((now - call.citizen_answered_at).total_seconds(), 3)
                    if call.citizen_answered_at else None)
            out.append(CallbackEnded(call_id=call.call_id, at=now, callback_id=call.callback_id, outcome=outcome,
                                     hung_up_by=None if disconnected else call.hung_up_by,
                                     cause=call.cause if call.cause is not None else call.last_cause,
                                     duration_s=duration, talk_s=talk, interface=call.interface))
        for uid in call.channels:
            self._chan_call.pop(uid, None)
            self._dead_uids.add(uid)
        call.channels.clear()
        del self._calls[call.call_id]
        self._ended_ids.add(call.call_id)
        self.stats["calls_ended"] += 1
        ended_event = out[-1] if out and out[-1].call_id == call.call_id else None
        log_event(logger, "tracker_call_ended", call_id=call.call_id, kind=call.kind.value,
                  last_state=last_state.value, duration_s=duration,
                  result=getattr(ended_event, "reason", None) or getattr(ended_event, "outcome", None))
        if self.config.recent_limit:
            self._recent.append(self._snapshot(call))

    # ---- resync ------------------------------------------------------------------------------

    def _resync_new(self, linkedid: str, chans: list[Mapping[str, str]], entries: Mapping[str, Mapping[str, str]],
                    out: list[DomainEvent]) -> None:
        # The origin leg (Uniqueid == Linkedid) first: it decides the kind of the call.
        chans = sorted(chans, key=lambda c: (c.get("Uniqueid") != linkedid, c.get("Uniqueid", "")))
        for c in chans:
            self._dead_uids.discard(c["Uniqueid"])
        contexts = {c.get("Context", "") for c in chans}
        call: _Call | None = None
        for c in chans:
            touched = self._touch_ids(linkedid, c["Uniqueid"], c["Channel"], c.get("Context", ""),
                                      c.get("ChannelState", ""), c.get("Exten", ""), out)
            if touched is not None:
                call = touched[0]
        if call is None:
            return
        now = self._now()
        if call.kind is Kind.UNKNOWN and contexts & self._callback:
            self._make_callback(call, out)
        if call.kind is Kind.INBOUND:
            citizen = [c for c in chans if channel_base(c["Channel"]) in call.citizen_bases]
            for c in citizen:
                self._update_caller(call, c)
                if call.dialled_number is None:
                    call.dialled_number = _clean(c.get("Exten"))
            self._arrive(call, out, now, resynced=True)
            self._resync_inbound_state(call, chans, entries, out, now)
        elif call.kind is Kind.CALLBACK:
            origin = next((c for c in chans if channel_base(c["Channel"]) == call.origin_base), None)
            if origin is not None and origin.get("ChannelState") == UP:
                call.staff_up = True
                self._staff_answered(call, out, now)
            others = [c for c in chans if channel_base(c["Channel"]) not in call.operator_bases]
            if others:
                call.citizen_bases.update(channel_base(c["Channel"]) for c in others)
                if self._fire(call, Trigger.DIAL_CITIZEN, now):
                    # The citizen's number: the Exten of the leg in the callback context, else of the
                    # citizen's legs (a Local ;1 leg shows an empty Exten once bridged).
                    number = next((_clean(c.get("Exten")) for c in (*chans, *others)
                                   if _clean(c.get("Exten")) and (c in others or c.get("Context") in self._callback)),
                                  None)
                    call.dialled_number = call.dialled_number or number
                    out.append(CallbackDialingCitizen(call_id=call.call_id, at=now, callback_id=call.callback_id,
                                                      number=number))
                if any(c.get("ChannelState") == UP and c.get("BridgeId") for c in others):
                    if self._fire(call, Trigger.CITIZEN_ANSWER, now):
                        call.citizen_answered_at = now
                        out.append(CallbackCitizenAnswered(call_id=call.call_id, at=now,
                                                           callback_id=call.callback_id))

    def _resync_inbound_state(self, call: _Call, chans: list[Mapping[str, str]],
                              entries: Mapping[str, Mapping[str, str]], out: list[DomainEvent],
                              now: datetime) -> None:
        citizen = [c for c in chans if channel_base(c["Channel"]) in call.citizen_bases]
        entry = next((entries[k] for c in citizen for k in (c.get("Uniqueid", ""), c.get("Channel", ""))
                      if k in entries), None)
        if entry is not None:
            call.queue = entry.get("Queue") or call.queue
            call.position = _int(entry.get("Position"))
            if self._fire(call, Trigger.QUEUE, now):
                out.append(CallQueued(call_id=call.call_id, at=now, queue=call.queue or "", position=call.position,
                                      category=call.category))
        bridges = {c.get("BridgeId") for c in citizen if c.get("BridgeId")}
        for c in chans:
            base = channel_base(c["Channel"])
            if base in call.citizen_bases or c.get("Application") != "AppQueue":
                continue
            interface = interface_of(c["Channel"])
            if c.get("BridgeId") and c.get("BridgeId") in bridges:
                if call.interface is None or call.state is not State.CONNECTED:
                    self._connect(call, base, interface, None, call.queue, None, out, now, resynced=True)
            elif base not in call.ringing and call.interface is None:
                if self._fire(call, Trigger.RING, now):
                    call.operator_bases.add(base)
                    call.ringing[base] = _Ring(interface, None, call.queue, now)
                    out.append(OperatorRinging(call_id=call.call_id, at=now, interface=interface, member_name=None,
                                               queue=call.queue, caller_number=call.caller_number,
                                               caller_name=call.caller_name))

    def _resync_known(self, call: _Call, chans: list[Mapping[str, str]], entries: Mapping[str, Mapping[str, str]],
                      out: list[DomainEvent]) -> None:
        now = self._now()
        live = {c["Uniqueid"] for c in chans}
        for uid in [u for u in call.channels if u not in live]:
            del call.channels[uid]
            self._chan_call.pop(uid, None)
            self._dead_uids.add(uid)
        for c in chans:
            self._dead_uids.discard(c["Uniqueid"])
            self._touch_ids(call.call_id, c["Uniqueid"], c["Channel"], c.get("Context", ""),
                            c.get("ChannelState", ""), c.get("Exten", ""), out)
        present_bases = {chan.base for chan in call.channels.values()}
        for base in [b for b in call.ringing if b not in present_bases]:
            self._miss(call, base, "ended_while_disconnected", None, out, now)
        if call.kind is Kind.INBOUND:
            self._resync_inbound_state(call, chans, entries, out, now)

    # ---- snapshots ---------------------------------------------------------------------------

    def _snapshot(self, call: _Call) -> CallSnapshot:
        return CallSnapshot(
            call_id=call.call_id,
            kind=call.kind.value,
            state=call.state.value,
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            dialled_number=call.dialled_number,
            citizen_channel=call.citizen_channel(),
            category=call.category,
            route=call.route,
            closed_reason=call.closed_reason,
            queue=call.queue,
            position=call.position,
            hold_time=call.hold_time,
            ringing=tuple(r.interface for r in call.ringing.values()),
            interface=call.interface,
            transferred_to=call.transferred_to,
            callback_id=call.callback_id,
            steps=tuple(sorted(call.steps.items(), key=lambda item: item[1])),
            channels=len(call.channels),
        )
