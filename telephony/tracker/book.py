"""The tracker's book of calls: live calls by Linkedid, their channels, tombstones, and the
helpers every handler shares (find or create a call from an event, fire a transition, announce
the arrival, end a call).

No leaks: each call keeps the set of its live channels (by Uniqueid); when the last one hangs up
the call ends and is dropped (a bounded list of recent snapshots is kept). Hung-up Uniqueids and
ended Linkedids are remembered (bounded) so that a late event can never resurrect a call.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cti.core.clock import Clock, require_aware
from cti.core.logs import log_event
from telephony.events import (
    CallArrived,
    CallbackEnded,
    CallbackRingingStaff,
    CallbackStaffAnswered,
    CallEnded,
    CallRouted,
    DomainEvent,
    OperatorMissed,
)
from telephony.tracker import outcomes
from telephony.tracker.model import Call, CallSnapshot, Chan, Legs, channel_base, clean, interface_of
from telephony.tracker.table import TRANSITIONS, Kind, State, Trigger

logger = logging.getLogger("telephony.tracker")

Out = list[DomainEvent]


@dataclass(frozen=True)
class TrackerConfig:
    """Dialplan contexts the tracker must know (defaults: the lab dialplan in dialplan/)."""

    inbound_contexts: frozenset[str] = frozenset({"from-pstn"})
    # Where an inbound call's legs go after from-pstn (dialplan/extensions.conf): a cti that starts
    # while a call is up finds its legs there (CoreShowChannels gives the current context only).
    inbound_path_contexts: frozenset[str] = frozenset({"cti-fallback", "cti-ivr", "cti-queue", "cti-closed"})
    callback_contexts: frozenset[str] = frozenset({"outbound-callback"})
    transfer_contexts: frozenset[str] = frozenset({"departments"})
    consult_contexts: frozenset[str] = frozenset({"consult"})  # the operator's consult legs (Atxfer)
    recent_limit: int = 200  # ended-call snapshots kept for the console
    tombstone_limit: int = 20000  # hung-up Uniqueids / ended Linkedids remembered

    def __post_init__(self) -> None:
        if self.recent_limit < 0 or self.tombstone_limit < 1:
            raise ValueError("recent_limit must be >= 0 and tombstone_limit >= 1")
        if not self.inbound_contexts:
            raise ValueError("inbound_contexts must name at least one dialplan context")

    @classmethod
    def from_call_control(cls, call_control: CallControlLike,
                          inbound_contexts: Iterable[str] = ("from-pstn",)) -> TrackerConfig:
        """From ``settings.call_control`` (its callback and transfer contexts)."""
        return cls(inbound_contexts=frozenset(inbound_contexts),
                   callback_contexts=frozenset({call_control.callback_context}),
                   transfer_contexts=frozenset({call_control.transfer_context}),
                   consult_contexts=frozenset({call_control.consult_context}))


class CallControlLike(Protocol):
    callback_context: str
    transfer_context: str
    consult_context: str


class BoundedSet:
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


class CallBook:
    """Live calls and what every handler needs to act on them."""

    def __init__(self, clock: Clock, config: TrackerConfig) -> None:
        self.clock = clock
        self.config = config
        self.calls: dict[str, Call] = {}
        self.chan_call: dict[str, str] = {}  # live Uniqueid -> Linkedid
        self.dead_uids = BoundedSet(config.tombstone_limit)
        self.ended_ids = BoundedSet(config.tombstone_limit)
        self.recent: deque[CallSnapshot] = deque(maxlen=config.recent_limit)
        self.route_pending: set[str] = set()  # call ids with a deferred call_routed
        self.stats: dict[str, int] = {"events": 0, "ignored_transitions": 0, "calls_ended": 0}
        self.inbound = config.inbound_contexts
        self.inbound_path = config.inbound_contexts | config.inbound_path_contexts
        self.callback = config.callback_contexts
        self.transfer = config.transfer_contexts
        self.consult = config.consult_contexts

    def now(self) -> datetime:
        return require_aware(self.clock(), "tracker clock")

    def fire(self, call: Call, trigger: Trigger, now: datetime) -> bool:
        target = TRANSITIONS.get((call.state, trigger))
        if target is None:
            self.stats["ignored_transitions"] += 1
            return False
        call.state = target
        call.steps.setdefault(target.value, now)
        return True

    def of_uid(self, uid: str) -> Call | None:
        linkedid = self.chan_call.get(uid)
        return self.calls.get(linkedid) if linkedid else None

    # ---- finding and creating calls --------------------------------------------------------

    def touch(self, ev: Mapping[str, str], out: Out) -> tuple[Call, Chan] | None:
        """The call and channel of an event with Channel/Uniqueid/Linkedid, creating them if new."""
        uid = ev.get("Uniqueid")
        linkedid = ev.get("Linkedid")
        if not uid or not linkedid:
            return None
        call = self.calls.get(linkedid)
        if call is not None:  # fast path: a known channel of a live call
            chan = call.legs.channels.get(uid)
            if chan is not None:
                return call, chan
        return self.touch_ids(linkedid, uid, ev.get("Channel", ""), ev.get("Context", ""),
                              ev.get("ChannelState", ""), ev.get("Exten", ""), out)

    def touch_ids(self, linkedid: str, uid: str, name: str, context: str, state: str, exten: str,
                  out: Out) -> tuple[Call, Chan] | None:
        if uid in self.dead_uids or linkedid in self.ended_ids or not name:
            return None
        call = self.calls.get(linkedid)
        if call is None:
            call = self._new_call(linkedid, name, context, out)
        chan = call.legs.channels.get(uid)
        if chan is None:
            chan = Chan(uid, name, context, state)
            call.legs.channels[uid] = chan
            self.chan_call[uid] = linkedid
            if uid == linkedid and chan.base != call.legs.origin_base and call.kind is Kind.UNKNOWN:
                call.legs.origin_base = chan.base  # events arrived out of order: the oldest leg is the origin
            if context in self.inbound and call.kind is not Kind.CALLBACK:
                self.make_inbound(call, chan)
                if call.caller.dialled_number is None:
                    call.caller.dialled_number = clean(exten)
        return call, chan

    def _new_call(self, linkedid: str, name: str, context: str, out: Out) -> Call:
        now = self.now()
        inbound = context in self.inbound
        call = Call(linkedid, Kind.INBOUND if inbound else Kind.UNKNOWN, now, Legs(channel_base(name)))
        # Not known to be inbound: "other" until its context says inbound or callback, so a
        # consult leg is never counted as an arriving inbound call.
        call.enter(State.ARRIVING if inbound else State.OTHER, now)
        if inbound:
            call.legs.citizen.add(call.legs.origin_base)
        self.calls[linkedid] = call
        if context in self.callback:
            self.make_callback(call, out)
        return call

    # ---- classification -----------------------------------------------------------------------

    def make_inbound(self, call: Call, chan: Chan) -> None:
        if call.kind is Kind.UNKNOWN:
            call.kind = Kind.INBOUND
            call.steps.pop(State.OTHER.value, None)
            call.enter(State.ARRIVING, call.created_at)
        if call.kind is Kind.INBOUND and chan.base not in call.legs.operator:
            call.legs.citizen.add(chan.base)

    def make_callback(self, call: Call, out: Out) -> None:
        if call.kind is not Kind.UNKNOWN:
            return
        now = self.now()
        call.kind = Kind.CALLBACK
        call.steps.pop(State.OTHER.value, None)
        call.enter(State.CB_RINGING_STAFF, now)
        call.legs.operator.add(call.legs.origin_base)
        call.seat.interface = interface_of(call.legs.origin_base)
        out.append(CallbackRingingStaff(call_id=call.call_id, at=now, callback_id=call.callback.callback_id,
                                        interface=call.seat.interface))
        if call.callback.staff_up:
            self.staff_answered(call, out, now)

    def staff_answered(self, call: Call, out: Out, now: datetime) -> None:
        if call.state is State.CB_RINGING_STAFF and self.fire(call, Trigger.STAFF_ANSWER, now):
            out.append(CallbackStaffAnswered(call_id=call.call_id, at=now, callback_id=call.callback.callback_id,
                                             interface=call.seat.interface))

    # ---- shared announcements -----------------------------------------------------------------

    def arrive(self, call: Call, out: Out, now: datetime | None = None, resynced: bool = False) -> None:
        if call.caller.arrived or call.kind is not Kind.INBOUND:
            return
        call.caller.arrived = True
        out.append(CallArrived(call_id=call.call_id, at=now or self.now(), caller_number=call.caller.number,
                               caller_name=call.caller.name, dialled_number=call.caller.dialled_number,
                               resynced=resynced))

    def emit_route(self, call: Call, out: Out, now: datetime) -> None:
        call.routing.pending = False
        self.route_pending.discard(call.call_id)
        if call.routing.route is not None and self.fire(call, Trigger.ROUTE, now):
            out.append(CallRouted(call_id=call.call_id, at=now, route=call.routing.route,
                                  reason=call.routing.closed_reason, category=call.routing.category))

    def miss(self, call: Call, base: str, reason: str, ring_ms: int | None, out: Out,
             now: datetime | None = None) -> None:
        ring = call.seat.ringing.pop(base, None)
        if ring is None:
            return
        now = now or self.now()
        if ring_ms is None:
            ring_ms = int((now - ring.since).total_seconds() * 1000)
        trigger = Trigger.MISS if call.seat.ringing else Trigger.MISS_LAST
        if self.fire(call, trigger, now):
            out.append(OperatorMissed(call_id=call.call_id, at=now, interface=ring.interface, reason=reason,
                                      ring_ms=ring_ms))

    def note_hangup_side(self, call: Call, base: str) -> None:
        """The first leg that asks to hang up and names a side decides ``hung_up_by``."""
        if call.hangup.hung_up_by is None:
            call.hangup.hung_up_by = outcomes.hung_up_by(call, base)

    # ---- ending -------------------------------------------------------------------------------

    def end(self, call: Call, out: Out, disconnected: bool) -> None:
        now = self.now()
        if call.routing.pending:
            self.emit_route(call, out, now)
        for base in list(call.seat.ringing):
            self.miss(call, base, "ended_while_disconnected" if disconnected else "caller_hung_up", None, out, now)
        last_state = call.state
        self.fire(call, Trigger.END, now)
        duration = round((now - call.created_at).total_seconds(), 3)
        hung_up_by = None if disconnected else call.hangup.hung_up_by
        cause = call.hangup.cause if call.hangup.cause is not None else call.hangup.last_cause
        result: str | None = None
        if call.kind is Kind.INBOUND:
            result = outcomes.first(outcomes.INBOUND_END, outcomes.facts_inbound_end(call, disconnected))
            self.arrive(call, out, now)
            since = call.seat.connected_at
            out.append(CallEnded(call_id=call.call_id, at=now, reason=result, hung_up_by=hung_up_by, cause=cause,
                                 cause_text=call.hangup.cause_text, last_state=last_state.value,
                                 duration_s=duration, talk_s=round((now - since).total_seconds(), 3) if since else None,
                                 interface=call.seat.interface))
        elif call.kind is Kind.CALLBACK:
            result = outcomes.first(outcomes.CALLBACK_END,
                                    outcomes.facts_callback_end(call, disconnected, last_state))
            since = call.callback.citizen_answered_at
            out.append(CallbackEnded(call_id=call.call_id, at=now, callback_id=call.callback.callback_id,
                                     outcome=result, hung_up_by=hung_up_by, cause=cause, duration_s=duration,
                                     talk_s=round((now - since).total_seconds(), 3) if since else None,
                                     interface=call.seat.interface))
        for uid in call.legs.channels:
            self.chan_call.pop(uid, None)
            self.dead_uids.add(uid)
        call.legs.channels.clear()
        del self.calls[call.call_id]
        self.ended_ids.add(call.call_id)
        self.stats["calls_ended"] += 1
        log_event(logger, "tracker_call_ended", call_id=call.call_id, kind=call.kind.value,
                  last_state=last_state.value, duration_s=duration, result=result)
        if self.config.recent_limit:
            self.recent.append(CallSnapshot.of(call))
