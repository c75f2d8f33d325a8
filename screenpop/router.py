"""The pop router, pure: tracker domain events + the seat map -> what to send to which operator.

``PopRouter.feed(event)`` returns a list of actions; the async adapter (screenpop/dispatcher.py,
``PopDispatcher``) carries them out through the websocket hub:

* ``Notify(user_id, message)`` - send this wire message (screenpop/messages.py) to that user;
* ``ComposePop(user_id, call, interface)`` - the operator at ``interface`` answered: look up the
  caller's history, open callbacks, FAQ suggestions and the office status now, compose the pop
  with screenpop/pop.py and send it to that user only.

Rules:
* a member rung (``operator_ringing``): the operator seated at that interface gets ``ringing`` with
  the call id, the interface, the IVR category (code and Japanese label) and the wait so far - no
  caller number, no name;
* a member that stops ringing without answering (``operator_missed``), or a call that ends or is
  abandoned while ringing: that operator gets ``call_update`` ``hangup`` with ``detail.ringing``
  True (clears the ringing notice);
* the member answers (``operator_connected``): that operator, and only that one, gets the pop;
* transfer and hangup of an answered call: the operator who got the pop gets ``call_update``
  (``transferred`` with the target, ``hangup`` with the reason) - even if they left the seat since;
* an interface with nobody seated gets nothing (the call still shows on the supervisors' wall,
  which supervision/wall.py keeps from the same events); if its operator's browser comes to this
  node later while the call is up (another cti node died), ``adopt`` gives them that call's pop;
* a member that rang out without answering (``operator_missed`` ``no_answer``): also
  ``RingNotAnswered`` for that operator (the desk may set them away: 不在着信);
* the operator is done with an answered call (it was transferred away, or it ended):
  ``CallFinished`` once (the desk starts 後処理).

Personal data (the caller number) is kept in memory only while the call lasts, for the pop; it
leaves this module only inside a ``ComposePop`` for the answering operator. Memory is bounded:
a call is forgotten at ``call_ended``, and at most ``max_calls`` calls are tracked (oldest dropped).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from screenpop.messages import CallUpdate, Ringing
from screenpop.pop import CallSnapshot, category_of
from telephony.events import (
    CallAbandoned,
    CallArrived,
    CallEnded,
    CallHoldChanged,
    CallQueued,
    CallRouted,
    CallTransferred,
    ConsultChanged,
    DomainEvent,
    OperatorConnected,
    OperatorMissed,
    OperatorRinging,
)

DEFAULT_MAX_CALLS = 10_000


class SeatLookup(Protocol):
    """What the router needs from screenpop.seats.SeatMap."""

    def user_at(self, interface: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Notify:
    user_id: str
    message: Ringing | CallUpdate


@dataclass(frozen=True, slots=True)
class ComposePop:
    """Compose the pop for `user_id` (who answered at `interface`) from `call` and send it to them."""

    user_id: str
    call: CallSnapshot
    interface: str
    answered_at: datetime


@dataclass(frozen=True, slots=True)
class RingNotAnswered:
    """The operator's phone rang for `call_id` and nobody answered it."""

    user_id: str
    call_id: str
    interface: str


@dataclass(frozen=True, slots=True)
class CallFinished:
    """The operator's part in an answered call is over (transferred or ended)."""

    user_id: str
    call_id: str


Action = Notify | ComposePop | RingNotAnswered | CallFinished


@dataclass(slots=True)
class _Call:
    call_id: str
    arrived_at: datetime
    caller_number: str | None = None
    category: str | None = None
    queued_at: datetime | None = None
    ringing: dict[str, str] = field(default_factory=dict)  # interface -> user id notified
    answered_by: str | None = None
    answered_interface: str | None = None
    answered_at: datetime | None = None
    waited_seconds: float = 0.0
    finished: bool = False  # CallFinished was given


class PopRouter:
    def __init__(self, seats: SeatLookup, *, max_calls: int = DEFAULT_MAX_CALLS) -> None:
        if max_calls < 1:
            raise ValueError(f"max_calls must be at least 1; got {max_calls}")
        self._seats = seats
        self._max_calls = max_calls
        self._calls: OrderedDict[str, _Call] = OrderedDict()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def answered_by(self, call_id: str) -> str | None:
        """The user who got the pop of this call (while the call lasts)."""
        call = self._calls.get(call_id)
        return call.answered_by if call else None

    def feed(self, event: DomainEvent) -> list[Action]:
        """Apply one domain event; the actions to carry out, in order."""
        if isinstance(event, CallArrived):
            call = self._call(event)
            call.caller_number = event.caller_number
            return []
        if isinstance(event, CallRouted):
            call = self._call(event)
            if event.category:
                call.category = event.category
            return []
        if isinstance(event, CallQueued):
            call = self._call(event)
            if call.queued_at is None:
                call.queued_at = event.at
            if event.category:
                call.category = event.category
            return []
        if isinstance(event, OperatorRinging):
            return self._ringing(event)
        if isinstance(event, OperatorMissed):
            actions = self._stop_ringing(event.call_id, event.interface, f"missed:{event.reason}")
            if event.reason == "no_answer" and actions:
                actions.append(RingNotAnswered(actions[0].user_id, event.call_id, event.interface))
            return actions
        if isinstance(event, OperatorConnected):
            return self._connected(event)
        if isinstance(event, CallTransferred):
            return self._transferred(event)
        if isinstance(event, CallHoldChanged):
            return self._update(event, "hold", {"on_hold": event.on_hold})
        if isinstance(event, ConsultChanged):
            return self._update(event, "consult", {"state": event.state, "extension": event.extension})
        if isinstance(event, CallAbandoned):
            waiting = self._calls.get(event.call_id)
            if waiting is None:
                return []
            return [self._ring_end(user, event.call_id, iface, "abandoned") for iface, user in _drain(waiting)]
        if isinstance(event, CallEnded):
            return self._ended(event)
        return []  # callback legs and unknown events: nothing for the pop

    # ---- internals ---------------------------------------------------------------------------

    def _call(self, event: DomainEvent) -> _Call:
        call = self._calls.get(event.call_id)
        if call is None:
            call = _Call(call_id=event.call_id, arrived_at=event.at)
            self._calls[event.call_id] = call
            while len(self._calls) > self._max_calls:
                self._calls.popitem(last=False)
        return call

    def _ringing(self, event: OperatorRinging) -> list[Action]:
        call = self._call(event)
        if call.caller_number is None and event.caller_number:
            call.caller_number = event.caller_number
        user = self._seats.user_at(event.interface)
        if user is None:
            return []
        call.ringing[event.interface] = user
        code, label = category_of(call.category)
        waited = max(int((event.at - (call.queued_at or call.arrived_at)).total_seconds()), 0)
        notice = Ringing(seq=0, call_id=event.call_id, interface=event.interface, category=code,
                         category_label=label, waited_seconds=waited)
        return [Notify(user, notice)]

    def _stop_ringing(self, call_id: str, interface: str, reason: str) -> list[Action]:
        call = self._calls.get(call_id)
        if call is None:
            return []
        user = call.ringing.pop(interface, None)
        if user is None:
            return []
        return [self._ring_end(user, call_id, interface, reason)]

    @staticmethod
    def _ring_end(user: str, call_id: str, interface: str, reason: str) -> Notify:
        detail = {"ringing": True, "interface": interface, "reason": reason}
        return Notify(user, CallUpdate(seq=0, call_id=call_id, event="hangup", detail=detail))

    def _connected(self, event: OperatorConnected) -> list[Action]:
        call = self._call(event)
        actions: list[Action] = []
        call.ringing.pop(event.interface, None)
        # Anyone else still ringing for this call stops ringing (ringall strategy).
        for iface, other in _drain(call):
            actions.append(self._ring_end(other, event.call_id, iface, "missed:answered_elsewhere"))
        # Kept even when nobody here sits at the interface: the operator's browser may be on another
        # cti node, and come here if that node dies (`adopt`).
        call.answered_interface = event.interface
        call.answered_at = event.at
        if event.hold_time is not None:
            call.waited_seconds = float(max(event.hold_time, 0))
        else:
            since = call.queued_at or call.arrived_at
            call.waited_seconds = max((event.at - since).total_seconds(), 0.0)
        user = self._seats.user_at(event.interface)
        if user is None:
            return actions
        call.answered_by = user
        actions.append(self._pop(call, user))
        return actions

    def adopt(self, user_id: str, interface: str) -> ComposePop | None:
        """The live call answered at `interface` that nobody here got the pop of, now `user_id`'s:
        their browser was on another cti node when it was answered and came here (that node died).
        From now on its updates go to them, as if they had been seated here all along."""
        for call in reversed(self._calls.values()):
            if (call.answered_interface == interface and call.answered_by is None and not call.finished
                    and call.answered_at is not None):
                call.answered_by = user_id
                return self._pop(call, user_id)
        return None

    @staticmethod
    def _pop(call: _Call, user_id: str) -> ComposePop:
        assert call.answered_interface is not None and call.answered_at is not None
        snapshot = CallSnapshot(
            call_id=call.call_id,
            caller_number=call.caller_number,
            category=call.category,
            waited_seconds=call.waited_seconds,
        )
        return ComposePop(user_id, snapshot, call.answered_interface, call.answered_at)

    def _update(self, event: DomainEvent, kind: Literal["hold", "consult"], detail: dict[str, Any]) -> list[Action]:
        """Hold and consult changes of a call still with its operator (the screen shows them)."""
        call = self._calls.get(event.call_id)
        if call is None or call.answered_by is None or call.finished:
            return []
        detail = {**detail, "at": event.at.isoformat()}
        return [Notify(call.answered_by, CallUpdate(seq=0, call_id=event.call_id, event=kind, detail=detail))]

    def _transferred(self, event: CallTransferred) -> list[Action]:
        call = self._calls.get(event.call_id)
        if call is None:
            return []
        if call.answered_by is None:
            call.finished = True  # transferred away from the interface: nobody adopts it any more
            return []
        detail = {"target": event.target, "method": event.method, "at": event.at.isoformat()}
        actions: list[Action] = [
            Notify(call.answered_by, CallUpdate(seq=0, call_id=event.call_id, event="transferred", detail=detail))]
        if not call.finished:
            call.finished = True
            actions.append(CallFinished(call.answered_by, event.call_id))
        return actions

    def _ended(self, event: CallEnded) -> list[Action]:
        call = self._calls.pop(event.call_id, None)
        if call is None:
            return []
        actions: list[Action] = [
            self._ring_end(user, event.call_id, iface, "ended") for iface, user in _drain(call)
        ]
        if call.answered_by is not None:
            detail = {
                "reason": event.reason,
                "hung_up_by": event.hung_up_by,
                "talk_s": event.talk_s,
                "at": event.at.isoformat(),
            }
            update = CallUpdate(seq=0, call_id=event.call_id, event="hangup", detail=detail)
            actions.append(Notify(call.answered_by, update))
            if not call.finished:
                actions.append(CallFinished(call.answered_by, event.call_id))
        return actions


def _drain(call: _Call) -> list[tuple[str, str]]:
    items = list(call.ringing.items())
    call.ringing.clear()
    return items
