"""The call tracker: AMI event dicts in, domain events out. Pure and sans-I/O (h11 style).

``CallTracker(clock).feed(event)`` takes one AMI event (a ``Mapping[str, str]`` as parsed by
``telephony.frames``) and returns the domain events it causes (``telephony.events``). Calls are
keyed by Asterisk's ``Linkedid``. The package, by concern:

* ``table``: the state machine as data, ``TRANSITIONS[(state, trigger)] -> state``; a trigger not
  allowed in the current state is ignored (counted in ``stats``), which keeps duplicated or
  out-of-order AMI events harmless;
* ``model``: the call made of small pieces (legs, caller, routing, seat, transfer, hang-up,
  callback) and ``CallSnapshot``, its immutable view;
* ``outcomes``: how a call ended and who hung up, as tables;
* ``book``: live calls, tombstones, shared helpers; ``dispatch``: which handler an event goes to;
* ``inbound``, ``callback``, ``transfer``, ``hangups``, ``hold`` (Hold/Unhold, hold music and the
  operator's consult leg of a connected call): the handlers; ``resync``: reconciling with
  ``CoreShowChannels`` after every (re)connect (which says nothing of holds: a call held across a
  reconnect shows as not held until its next Hold/Unhold).

Works on the full event stream (``cti replay`` of a capture) and on the filtered stream the AMI
adapter subscribes to (no ``Newexten``, only ``CTI_*`` ``VarSet``): ``Newexten`` only refines
things (who hung up, redirect transfers, IVR state, callback detection without CTI_CALLBACK_ID).

Contract with the dialplan / FastAGI server (channel variables, VarSet):
``CTI_ROUTE`` (open|closed, set LAST by the route AGI; ``CTI_CLOSED_REASON`` and ``CTI_CATEGORY``
set before it travel in ``call_routed``), ``CTI_CATEGORY`` (IVR choice), ``CTI_CALLBACK_ID``
(Originate ``Variable:`` of a click-to-call). A transfer is seen as the citizen's channel entering a
transfer context (call control's Redirect, or the dialplan's own).

Nothing here logs personal data: caller numbers and names are event *data*, never log fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cti.core.clock import Clock
from telephony.events import DomainEvent
from telephony.tracker.book import BoundedSet, CallBook, TrackerConfig
from telephony.tracker.dispatch import HANDLERS, WANTED_VARIABLES
from telephony.tracker.inbound import IVR_APPLICATIONS, ROUTE_DETAIL_VARIABLES, flush_route_unless_detail
from telephony.tracker.model import UP, CallSnapshot, channel_base, interface_of
from telephony.tracker.resync import resync
from telephony.tracker.table import TRANSITIONS, Kind, State, Trigger

__all__ = [
    "IVR_APPLICATIONS",
    "ROUTE_DETAIL_VARIABLES",
    "TRANSITIONS",
    "UP",
    "WANTED_VARIABLES",
    "CallSnapshot",
    "CallTracker",
    "Kind",
    "State",
    "TrackerConfig",
    "Trigger",
    "channel_base",
    "interface_of",
]


class CallTracker:
    """Tracks live calls from AMI events; see the package docstring."""

    def __init__(self, clock: Clock, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._book = CallBook(clock, self.config)
        self.stats = self._book.stats

    def feed(self, event: Mapping[str, str]) -> list[DomainEvent]:
        """Apply one AMI event; return the domain events it causes (often none). Never raises on
        unknown, duplicated or out-of-order events."""
        handler = HANDLERS.get(event.get("Event", ""))
        if handler is None:
            return []
        self.stats["events"] += 1
        out: list[DomainEvent] = []
        if self._book.route_pending:
            flush_route_unless_detail(self._book, event, out)
        handler(self._book, event, out)
        return out

    def resync(self, channels: Sequence[Mapping[str, str]],
               queue_entries: Sequence[Mapping[str, str]] = ()) -> list[DomainEvent]:
        """Reconcile with Asterisk after a (re)connect: `channels` are the ``CoreShowChannel``
        events of ``CoreShowChannels``, `queue_entries` the ``QueueEntry`` events of
        ``QueueStatus`` (see ``telephony.tracker.resync``)."""
        return resync(self._book, channels, queue_entries)

    def live_calls(self) -> list[CallSnapshot]:
        return [CallSnapshot.of(call) for call in self._book.calls.values()]

    def get(self, call_id: str) -> CallSnapshot | None:
        call = self._book.calls.get(call_id)
        return CallSnapshot.of(call) if call is not None else None

    def recent_calls(self) -> list[CallSnapshot]:
        """Snapshots of the most recently ended calls, oldest first (bounded)."""
        return list(self._book.recent)

    def call_for_interface(self, interface: str) -> CallSnapshot | None:
        """The live call an operator interface is on: connected first, else ringing for it."""
        ringing = None
        for call in self._book.calls.values():
            if call.seat.interface == interface and call.state is not State.TRANSFERRED:
                return CallSnapshot.of(call)
            if ringing is None and any(r.interface == interface for r in call.seat.ringing.values()):
                ringing = call
        return CallSnapshot.of(ringing) if ringing is not None else None

    def __len__(self) -> int:
        return len(self._book.calls)

    # Tombstones, for the fuzz suite's bound checks.
    @property
    def _dead_uids(self) -> BoundedSet:
        return self._book.dead_uids

    @property
    def _ended_ids(self) -> BoundedSet:
        return self._book.ended_ids
