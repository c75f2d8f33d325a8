"""Inbound calls: arrival, routing (CTI_ROUTE), IVR, queue, members ringing, connection.

Handlers take the book, one AMI event and the list of domain events to append to. A call sent
back into the queue after it was answered (a transfer to the queue) releases its first operator
and connects again to whoever answers next: one ``operator_connected`` per connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from telephony.events import CallAbandoned, CallQueued, OperatorConnected, OperatorRinging
from telephony.tracker import outcomes
from telephony.tracker.book import CallBook, Out
from telephony.tracker.model import Call, Ring, channel_base, clean, interface_of, to_int
from telephony.tracker.table import Kind, State, Trigger

IVR_APPLICATIONS = frozenset({"Background", "BackGround", "Read", "WaitExten", "Playback", "ControlPlayback"})
# Variables the route AGI (or the dialplan's static fallback) sets together with CTI_ROUTE: while
# they arrive, a "closed" call_routed waits for its CTI_CLOSED_REASON.
ROUTE_DETAIL_VARIABLES = frozenset(
    {"CTI_ROUTE", "CTI_OFFICE", "CTI_CLOSED_REASON", "CTI_NEXT_OPEN", "CTI_NEXT_OPEN_EPOCH", "CTI_ROUTE_SOURCE"}
)


def flush_route_unless_detail(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    """A deferred call_routed goes out with the first event of its call that is not part of the
    routing itself (the AGI's other SET VARIABLEs)."""
    call = book.calls.get(ev.get("Linkedid", ""))
    if call is None or not call.routing.pending:
        return
    name = ev.get("Event")
    if name in ("AGIExecStart", "AGIExecEnd"):
        return
    if name == "VarSet" and ev.get("Variable", "").lstrip("_") in ROUTE_DETAIL_VARIABLES:
        return
    book.emit_route(call, out, book.now())


def is_citizen_of_inbound(call: Call, base: str) -> bool:
    return call.kind is Kind.INBOUND and base in call.legs.citizen


def update_caller(call: Call, ev: Mapping[str, str]) -> None:
    number = clean(ev.get("CallerIDNum"))
    if number is not None:
        call.caller.number = number
        name = clean(ev.get("CallerIDName"))
        if name is not None:
            call.caller.name = name


def on_caller_info(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    """Newchannel and NewCallerid: the citizen's number (and name) may arrive with either."""
    touched = book.touch(ev, out)
    if touched is not None and is_citizen_of_inbound(touched[0], touched[1].base):
        call = touched[0]
        update_caller(call, ev)
        if call.caller.number is not None:
            book.arrive(call, out)


def on_inbound_newexten(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    """A dialplan step of the citizen's leg in an inbound context: arrival, IVR menus."""
    app = ev.get("Application", "")
    if app.startswith("App"):
        return  # AppQueue, AppDial... of the member legs
    touched = book.touch(ev, out)
    if touched is None or not is_citizen_of_inbound(touched[0], touched[1].base):
        return
    call = touched[0]
    book.arrive(call, out)
    if app in IVR_APPLICATIONS and call.routing.route != "closed":
        book.fire(call, Trigger.IVR, book.now())


def on_route(book: CallBook, call: Call, base: str, value: str, out: Out) -> None:
    """CTI_ROUTE (set last by the route AGI): call_routed, deferred for "closed" until its reason."""
    if not value or call.routing.route is not None:
        return  # empty, or the inherited copy on another leg
    if call.kind is Kind.UNKNOWN:
        chan = next((c for c in call.legs.channels.values() if c.base == base), None)
        if chan is not None:
            book.make_inbound(call, chan)
    if call.kind is not Kind.INBOUND:
        return
    call.routing.route = value
    now = book.now()
    book.arrive(call, out, now)
    if value == "closed" and call.routing.closed_reason is None:
        call.routing.pending = True
        book.route_pending.add(call.call_id)
    else:
        book.emit_route(call, out, now)


def on_closed_reason(book: CallBook, call: Call, base: str, value: str, out: Out) -> None:
    call.routing.closed_reason = value or None
    if call.routing.pending:
        book.emit_route(call, out, book.now())


def on_category(book: CallBook, call: Call, base: str, value: str, out: Out) -> None:
    call.routing.category = value or None


def on_ivr_try(book: CallBook, call: Call, base: str, value: str, out: Out) -> None:
    if call.kind is Kind.INBOUND and call.routing.route != "closed":
        book.fire(call, Trigger.IVR, book.now())


def on_agi(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    touched = book.touch(ev, out)
    if touched is not None and is_citizen_of_inbound(touched[0], touched[1].base):
        book.arrive(touched[0], out)


def queued(book: CallBook, call: Call, queue: str | None, position: int | None, out: Out, now: datetime) -> None:
    """Into the queue (again): a call that was connected goes back and its operator is released."""
    call.seat.queue = queue or call.seat.queue
    call.seat.position = position
    back = call.state in (State.CONNECTED, State.TRANSFERRED)
    if book.fire(call, Trigger.QUEUE, now):
        call.seat.release()
        if back:
            call.hangup.hung_up_by = None  # the first member's legs leaving was no hangup of the call
        out.append(CallQueued(call_id=call.call_id, at=now, queue=call.seat.queue or "",
                              position=call.seat.position, category=call.routing.category))


def on_queue_join(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    touched = book.touch(ev, out)
    if touched is None:
        return
    call, chan = touched
    book.make_inbound(call, chan)
    if call.kind is not Kind.INBOUND:
        return
    now = book.now()
    book.arrive(call, out, now)
    queued(book, call, ev.get("Queue"), to_int(ev.get("Position")), out, now)


def on_queue_abandon(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    touched = book.touch(ev, out)
    if touched is None:
        return
    call = touched[0]
    now = book.now()
    for base in list(call.seat.ringing):
        book.miss(call, base, "caller_hung_up", None, out, now)
    if book.fire(call, Trigger.ABANDON, now):
        call.hangup.abandoned = True
        call.hangup.hung_up_by = "citizen"
        hold = to_int(ev.get("HoldTime"))
        call.seat.hold_time = hold
        out.append(CallAbandoned(call_id=call.call_id, at=now, queue=ev.get("Queue") or call.seat.queue,
                                 position=to_int(ev.get("Position")), hold_time=hold))


def ring(book: CallBook, call: Call, base: str, ringing: Ring, out: Out, now: datetime) -> None:
    if book.fire(call, Trigger.RING, now):
        call.legs.operator.add(base)
        call.seat.ringing[base] = ringing
        out.append(OperatorRinging(call_id=call.call_id, at=now, interface=ringing.interface,
                                   member_name=ringing.member_name, queue=ringing.queue,
                                   caller_number=call.caller.number, caller_name=call.caller.name))


def _member_event(book: CallBook, ev: Mapping[str, str], out: Out) -> tuple[Call, str] | None:
    """The call of an AgentCalled/AgentConnect event (taken as inbound) and the member leg it names."""
    touched = book.touch(ev, out)
    dest = ev.get("DestChannel")
    if touched is None or not dest:
        return None
    call, chan = touched
    book.make_inbound(call, chan)
    return call, dest


def on_agent_called(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    member = _member_event(book, ev, out)
    if member is None:
        return
    call, dest = member
    base = channel_base(dest)
    if call.kind is not Kind.INBOUND or base in call.seat.ringing or base in call.legs.citizen:
        return
    if base in call.legs.operator and not call.legs.live(base):
        return  # a late event for a member leg that already hung up
    now = book.now()
    book.arrive(call, out, now)
    call.legs.operator.add(base)
    queue = ev.get("Queue") or call.seat.queue
    ring(book, call, base, Ring(ev.get("Interface") or interface_of(dest), clean(ev.get("MemberName")), queue, now),
         out, now)


def on_agent_ring_no_answer(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    call = book.calls.get(ev.get("Linkedid", ""))
    dest = ev.get("DestChannel")
    if call is not None and dest:
        book.miss(call, channel_base(dest), "no_answer", to_int(ev.get("RingTime")), out)


def connect(book: CallBook, call: Call, base: str | None, interface: str, member_name: str | None,
            queue: str | None, hold_time: int | None, out: Out, now: datetime, resynced: bool = False) -> None:
    if base is not None:
        call.seat.ringing.pop(base, None)
        call.legs.operator.add(base)
    if not book.fire(call, Trigger.CONNECT, now):
        return
    seat = call.seat
    seat.interface, seat.member_name, seat.connected_base = interface, member_name, base
    seat.connected_at = seat.connected_at or now  # talk time counts from the first answer
    if hold_time is None and (queued_at := call.steps.get(State.QUEUED.value)) is not None:
        hold_time = int((now - queued_at).total_seconds())
    seat.hold_time = hold_time
    out.append(OperatorConnected(call_id=call.call_id, at=now, interface=interface, member_name=member_name,
                                 queue=queue or seat.queue, hold_time=hold_time, resynced=resynced))


def on_agent_connect(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    member = _member_event(book, ev, out)
    if member is None:
        return
    call, dest = member
    base = channel_base(dest)
    if call.kind is not Kind.INBOUND or base == call.seat.connected_base:
        return  # not ours, or a repeat for the member already connected
    now = book.now()
    book.arrive(call, out, now)
    ringing = call.seat.ringing.get(base)
    interface = ev.get("Interface") or (ringing.interface if ringing else interface_of(dest))
    connect(book, call, base, interface, clean(ev.get("MemberName")), ev.get("Queue"),
            to_int(ev.get("HoldTime")), out, now)
    # Members still ringing for this call were answered elsewhere (ringall / autofill).
    for other in list(call.seat.ringing):
        book.miss(call, other, "answered_elsewhere", None, out, now)


def on_agent_complete(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    """Only the member the call is connected to now speaks for who hung up (the first operator of
    a re-queued call completes late, with Reason: caller); after a transfer nobody here does."""
    call = book.calls.get(ev.get("Linkedid", ""))
    if call is None or call.state is not State.CONNECTED:
        return
    interface = ev.get("Interface")
    if interface and call.seat.interface and interface != call.seat.interface:
        return
    side = outcomes.AGENT_COMPLETE_HUNG_UP_BY.get(ev.get("Reason", ""))
    if side is not None:
        call.hangup.hung_up_by = side


def on_inbound_dial_end(book: CallBook, call: Call, base: str, status: str, out: Out) -> None:
    if base in call.seat.ringing and status != "ANSWER":
        book.miss(call, base, outcomes.first(outcomes.DIAL_MISS, outcomes.facts_dial_miss(call, status)), None, out)


def on_bridge_enter(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    """Fallback when AgentConnect is not seen: a ringing member's leg entered the bridge."""
    touched = book.touch(ev, out)
    if touched is None:
        return
    call, chan = touched
    ringing = call.seat.ringing.get(chan.base)
    if call.kind is Kind.INBOUND and ringing is not None and call.seat.connected_base is None:
        connect(book, call, chan.base, ringing.interface, ringing.member_name, ringing.queue, None, out, book.now())
