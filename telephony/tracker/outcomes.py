"""How calls end and who ended them, as tables (no if-chains over flags).

Each classification turns the call's facts into a set of names (``facts_*``) and takes the first
row of its table whose fact is present; the last row of every table has the fact ``"always"``.
Row order is the precedence, written once, readable as data and testable on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from telephony.tracker.model import Call
from telephony.tracker.table import Kind, State

Rows = Sequence[tuple[str, str]]

ALWAYS = "always"

# call_ended.reason of an inbound call.
INBOUND_END: Rows = (
    ("disconnected", "ended_while_disconnected"),  # the AMI link was down when it ended
    ("abandoned", "abandoned"),  # QueueCallerAbandon
    ("answered", "answered"),  # an operator was connected at some point
    ("closed", "closed"),  # routed to the closed announcement
    (ALWAYS, "not_answered"),
)

# callback_ended.outcome of a click-to-call.
CALLBACK_END: Rows = (
    ("disconnected", "ended_while_disconnected"),
    ("citizen_answered", "completed"),
    ("staff_never_answered", "staff_no_answer"),
    ("dial:NOANSWER", "citizen_no_answer"),
    ("dial:BUSY", "citizen_busy"),
    ("dial:CONGESTION", "citizen_unreachable"),
    ("dial:CHANUNAVAIL", "citizen_unreachable"),
    ("dial:CANCEL", "cancelled"),
    ("ended_while_dialing", "cancelled"),  # the staff hung up while the citizen's phone rang
    (ALWAYS, "failed"),
)

# operator_missed.reason when a ringing member's DialEnd is not ANSWER.
DIAL_MISS: Rows = (
    ("dial:NOANSWER", "no_answer"),
    ("connected", "answered_elsewhere"),
    ("caller_gone", "caller_hung_up"),
    ("dial:BUSY", "unavailable"),
    ("dial:CONGESTION", "unavailable"),
    ("dial:CHANUNAVAIL", "unavailable"),
    (ALWAYS, "no_answer"),
)

# call_ended/callback_ended.hung_up_by from the first leg that asked to hang up.
# Facts: the leg's role, and where the call stood. Once a call is transferred, the operator who
# transferred it is no longer a party: their leg leaving says nothing about who ended the call.
HUNG_UP_BY: Rows = (
    ("citizen+system", "system"),  # the dialplan's Hangup() on the citizen's leg (closed, timeout)
    ("citizen", "citizen"),
    ("target", "department"),  # the transfer target's phone
    ("operator+transferred", ""),  # not a hangup of the call
    ("operator+callback", "operator"),
    ("operator+connected_leg", "operator"),  # the member now talking (not one that only rang)
    (ALWAYS, ""),  # unknown leg: undecided
)

# AgentComplete.Reason -> hung_up_by, for the member the call is connected to now.
AGENT_COMPLETE_HUNG_UP_BY: dict[str, str] = {"agent": "operator", "caller": "citizen"}


def first(rows: Rows, facts: set[str]) -> str:
    """The outcome of the first row whose fact holds."""
    for fact, outcome in rows:
        if fact == ALWAYS or fact in facts:
            return outcome
    raise ValueError("an outcome table must end with an 'always' row")


def facts_inbound_end(call: Call, disconnected: bool) -> set[str]:
    return {name for name, holds in (
        ("disconnected", disconnected),
        ("abandoned", call.hangup.abandoned),
        ("answered", call.seat.connected_at is not None),
        ("closed", call.routing.route == "closed"),
    ) if holds}


def facts_callback_end(call: Call, disconnected: bool, last_state: State) -> set[str]:
    facts = {name for name, holds in (
        ("disconnected", disconnected),
        ("citizen_answered", call.callback.citizen_answered_at is not None),
        ("staff_never_answered", not call.callback.staff_up),
        ("ended_while_dialing", last_state is State.CB_DIALING_CITIZEN),
    ) if holds}
    if call.callback.citizen_dial_status:
        facts.add(f"dial:{call.callback.citizen_dial_status}")
    return facts


def facts_dial_miss(call: Call, status: str) -> set[str]:
    facts = {f"dial:{status}"}
    if call.seat.interface is not None:
        facts.add("connected")
    if call.hangup.citizen_gone or call.hangup.abandoned:
        facts.add("caller_gone")
    return facts


def facts_hangup_leg(call: Call, base: str) -> set[str]:
    role = call.legs.role(base)
    if role is None:
        return {"target"} if base in call.transfer.bases else set()
    facts = {role}
    if role == "citizen" and base in call.legs.system_hangup:
        facts.add("citizen+system")
    if role == "operator":
        if call.state is State.TRANSFERRED:
            facts.add("operator+transferred")
        if call.kind is not Kind.INBOUND:
            facts.add("operator+callback")
        if base == call.seat.connected_base:
            facts.add("operator+connected_leg")
    return facts


def hung_up_by(call: Call, base: str) -> str | None:
    """Who a hang-up of the leg `base` names, or None if that leg decides nothing."""
    return first(HUNG_UP_BY, facts_hangup_leg(call, base)) or None
