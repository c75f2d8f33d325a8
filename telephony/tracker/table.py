"""The call state machine as data: ``TRANSITIONS[(state, trigger)] -> state``.

A trigger that is not in the table for the current state is ignored (and counted): that is what
keeps duplicated or out-of-order AMI events harmless (a second ``DialEnd``, an
``AgentRingNoAnswer`` after the caller left...).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


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
    # a call that is neither inbound nor a callback (a consult leg, an internal call): tracked to
    # keep its channels, never shown or counted as a live inbound call
    OTHER = "other"
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
    UNKNOWN = "unknown"  # not classified (yet): e.g. an Originate before it reaches its context


S, T = State, Trigger
_PRE_QUEUE = (S.ARRIVING, S.ROUTED, S.IN_IVR)
_TABLE: list[tuple[Iterable[State], Trigger, State]] = [
    ((S.ARRIVING,), T.ROUTE, S.ROUTED),
    ((S.ARRIVING, S.ROUTED), T.IVR, S.IN_IVR),
    # CONNECTED/TRANSFERRED -> QUEUED: the call was sent back into the queue
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
# A member that stops ringing after another took the call, or after the caller left, does not
# change the state.
_MISS_KEEPS = (S.CONNECTED, S.TRANSFERRED, S.ABANDONED, S.QUEUED)


def _build() -> dict[tuple[State, Trigger], State]:
    transitions: dict[tuple[State, Trigger], State] = {}
    for sources, trigger, target in _TABLE:
        for source in sources:
            transitions[(source, trigger)] = target
    for source in _MISS_KEEPS:
        transitions[(source, T.MISS)] = source
        transitions[(source, T.MISS_LAST)] = source
    return transitions


TRANSITIONS: dict[tuple[State, Trigger], State] = _build()
