"""Which handler each AMI event goes to: ``HANDLERS[event name]``, plus the tables for the events
several concerns share (``VarSet`` by variable, ``Newexten`` by context, ``Dial*`` by kind)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from telephony.tracker import callback, hangups, hold, inbound, transfer
from telephony.tracker.book import CallBook, Out
from telephony.tracker.model import Call, channel_base
from telephony.tracker.table import Kind

Handler = Callable[[CallBook, Mapping[str, str], Out], None]
VariableHandler = Callable[[CallBook, Call, str, str, Out], None]

# The CTI_* channel variables the dialplan, the route AGI and call control set (see the package
# docstring), each with what it means for the call.
VARIABLES: dict[str, VariableHandler] = {
    "CTI_ROUTE": inbound.on_route,
    "CTI_CLOSED_REASON": inbound.on_closed_reason,
    "CTI_CATEGORY": inbound.on_category,
    "CTI_IVR_TRY": inbound.on_ivr_try,
    "CTI_CALLBACK_ID": callback.on_callback_id,
}
WANTED_VARIABLES = frozenset(VARIABLES)


def on_varset(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    variable = ev.get("Variable", "")
    if variable[:1] == "_":
        variable = variable.lstrip("_")  # Set(__CTI_CATEGORY=...): inherited by the call's new legs
    handler = VARIABLES.get(variable)
    if handler is None:
        return
    touched = book.touch(ev, out)
    if touched is not None:
        handler(book, touched[0], touched[1].base, ev.get("Value", ""), out)


def on_newexten(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    """A dialplan step. First match wins: callback context, the Hangup application (in the
    inbound and transfer contexts), the transfer context, the inbound context."""
    context = ev.get("Context", "")
    if context in book.callback:
        callback.on_callback_newexten(book, ev, out)
    elif ev.get("Application", "") == "Hangup":
        if context in book.inbound or context in book.transfer:
            hangups.on_hangup_app(book, ev, out)
    elif context in book.transfer:
        transfer.on_transfer_newexten(book, ev, out)
    elif context in book.inbound:
        inbound.on_inbound_newexten(book, ev, out)


def on_dial_begin(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    dest = ev.get("DestChannel")
    if not dest or "Channel" not in ev:
        return  # an Originate's own dial (no caller channel): nothing to learn
    touched = book.touch(ev, out)
    if touched is None:
        return
    call, chan = touched
    if call.kind is Kind.INBOUND:
        transfer.on_target_dialled(book, call, chan.base, dest)
    else:
        callback.on_callback_dial_begin(book, call, chan.base, ev, out)


def on_dial_end(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    dest = ev.get("DestChannel")
    linkedid = ev.get("Linkedid") or ev.get("DestLinkedid")
    call = book.calls.get(linkedid) if dest and linkedid else None
    if call is None or dest is None:
        return
    status, base = ev.get("DialStatus", ""), channel_base(dest)
    if "Channel" not in ev:
        callback.on_originate_dial_end(book, call, base, status, out)
    elif call.kind is Kind.INBOUND:
        inbound.on_inbound_dial_end(book, call, base, status, out)
    elif call.kind is Kind.CALLBACK:
        callback.on_callback_dial_end(book, call, base, status, out)


def on_newchannel(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    inbound.on_caller_info(book, ev, out)
    hold.on_consult_channel(book, ev, out)


HANDLERS: dict[str, Handler] = {
    "Newchannel": on_newchannel,
    "NewCallerid": inbound.on_caller_info,
    "Newstate": callback.on_newstate,
    "Newexten": on_newexten,
    "VarSet": on_varset,
    "AGIExecStart": inbound.on_agi,
    "QueueCallerJoin": inbound.on_queue_join,
    "QueueCallerAbandon": inbound.on_queue_abandon,
    "AgentCalled": inbound.on_agent_called,
    "AgentRingNoAnswer": inbound.on_agent_ring_no_answer,
    "AgentConnect": inbound.on_agent_connect,
    "AgentComplete": inbound.on_agent_complete,
    "DialBegin": on_dial_begin,
    "DialEnd": on_dial_end,
    "BridgeEnter": inbound.on_bridge_enter,
    "BlindTransfer": transfer.on_blind_transfer,
    "AttendedTransfer": transfer.on_attended_transfer,
    "Hold": hold.on_hold_event,
    "Unhold": hold.on_hold_event,
    "MusicOnHoldStart": hold.on_hold_event,
    "MusicOnHoldStop": hold.on_hold_event,
    "OriginateResponse": callback.on_originate_response,
    "Rename": hangups.on_rename,
    "HangupRequest": hangups.on_hangup_request,
    "Hangup": hangups.on_hangup,
}
