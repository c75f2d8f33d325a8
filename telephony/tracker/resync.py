"""Reconciling with Asterisk's ``CoreShowChannels`` (and ``QueueStatus``) after every (re)connect.

Known calls Asterisk no longer has end with reason ``ended_while_disconnected``; calls Asterisk has
that are unknown here are created (``call_arrived`` with ``resynced=True``, then what can be
inferred from the channels); known calls get no second ``call_arrived``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from cti.core.logs import log_event
from telephony.tracker import callback, hold, inbound
from telephony.tracker.book import CallBook, Out
from telephony.tracker.model import UP, Call, Ring, channel_base, clean, interface_of, to_int
from telephony.tracker.table import Kind, State

logger = logging.getLogger("telephony.tracker")

Row = Mapping[str, str]


def resync(book: CallBook, channels: Sequence[Row], queue_entries: Sequence[Row]) -> Out:
    out: Out = []
    present: dict[str, list[Row]] = {}
    for chan in channels:
        linkedid, uid = chan.get("Linkedid"), chan.get("Uniqueid")
        if linkedid and uid and chan.get("Channel"):
            present.setdefault(linkedid, []).append(chan)
    entries: dict[str, Row] = {}
    for entry in queue_entries:
        key = entry.get("Uniqueid") or entry.get("Channel")
        if key:
            entries[key] = entry
    ended = created = 0
    for gone in [c for c in book.calls.values() if c.call_id not in present]:
        book.end(gone, out, disconnected=True)
        ended += 1
    for linkedid, chans in present.items():
        call = book.calls.get(linkedid)
        if call is None:
            created += 1
            book.ended_ids.discard(linkedid)  # Asterisk says it is alive: trust Asterisk
            _new(book, linkedid, chans, entries, out)
        else:
            _known(book, call, chans, entries, out)
    log_event(logger, "tracker_resync", channels=len(channels), calls=len(book.calls), ended=ended,
              created=created)
    return out


def _new(book: CallBook, linkedid: str, chans: list[Row], entries: Mapping[str, Row], out: Out) -> None:
    # The origin leg (Uniqueid == Linkedid) first: it decides the kind of the call.
    chans = sorted(chans, key=lambda c: (c.get("Uniqueid") != linkedid, c.get("Uniqueid", "")))
    for c in chans:
        book.dead_uids.discard(c["Uniqueid"])
    call: Call | None = None
    for c in chans:
        touched = book.touch_ids(linkedid, c["Uniqueid"], c["Channel"], c.get("Context", ""),
                                 c.get("ChannelState", ""), c.get("Exten", ""), out)
        if touched is not None:
            call = touched[0]
    if call is None:
        return
    now = book.now()
    if call.kind is Kind.UNKNOWN and {c.get("Context", "") for c in chans} & book.callback:
        book.make_callback(call, out)
    if call.kind is Kind.UNKNOWN and not _handed_on(book, chans):
        # By now the citizen's legs have left from-pstn for the IVR or the queue: those contexts
        # say inbound too (live, the Newchannel in from-pstn said it).
        for c in chans:
            chan = call.legs.channels.get(c["Uniqueid"])
            if chan is not None and c.get("Context", "") in book.inbound_path:
                book.make_inbound(call, chan)
    if call.kind is Kind.INBOUND:
        for c in chans:
            if channel_base(c["Channel"]) in call.legs.citizen:
                inbound.update_caller(call, c)
                if call.caller.dialled_number is None:
                    call.caller.dialled_number = clean(c.get("Exten"))
        book.arrive(call, out, now, resynced=True)
        _inbound_state(book, call, chans, entries, out, now)
    elif call.kind is Kind.CALLBACK:
        _callback_state(book, call, chans, out, now)


def _callback_state(book: CallBook, call: Call, chans: list[Row], out: Out, now: datetime) -> None:
    origin = next((c for c in chans if channel_base(c["Channel"]) == call.legs.origin_base), None)
    if origin is not None and origin.get("ChannelState") == UP:
        call.callback.staff_up = True
        book.staff_answered(call, out, now)
    others = [c for c in chans if channel_base(c["Channel"]) not in call.legs.operator]
    if not others:
        return
    call.legs.citizen.update(channel_base(c["Channel"]) for c in others)
    # The citizen's number: the Exten of the leg in the callback context, else of the citizen's
    # legs (a Local ;1 leg shows an empty Exten once bridged).
    number = next((clean(c.get("Exten")) for c in (*chans, *others)
                   if clean(c.get("Exten")) and (c in others or c.get("Context") in book.callback)), None)
    callback.dialing_citizen(book, call, number, out)
    if any(c.get("ChannelState") == UP and c.get("BridgeId") for c in others):
        callback.citizen_answered(book, call, out)


def _inbound_state(book: CallBook, call: Call, chans: list[Row], entries: Mapping[str, Row], out: Out,
                   now: datetime) -> None:
    citizen = [c for c in chans if channel_base(c["Channel"]) in call.legs.citizen]
    entry = next((entries[k] for c in citizen for k in (c.get("Uniqueid", ""), c.get("Channel", ""))
                  if k in entries), None)
    if entry is not None:
        inbound.queued(book, call, entry.get("Queue"), to_int(entry.get("Position")), out, now)
    bridges = {c.get("BridgeId") for c in citizen if c.get("BridgeId")}
    for c in chans:
        base = channel_base(c["Channel"])
        if base in call.legs.citizen or not _operator_leg(c):
            continue
        on_hold = _on_cti_hold(c)
        interface = interface_of(c["Channel"])
        # During a consult the operator's leg is bridged with the consult leg, not the citizen
        consulting = next((o for o in chans if o is not c and o.get("Context", "") in book.consult
                           and o.get("BridgeId") and o.get("BridgeId") == c.get("BridgeId")), None)
        if c.get("BridgeId") and (c.get("BridgeId") in bridges or consulting is not None):
            if call.seat.interface is None or call.state is not State.CONNECTED:
                inbound.connect(book, call, base, interface, None, call.seat.queue, None, out, now, resynced=True)
            if on_hold or consulting is not None:
                hold.resynced_hold(book, call, base, out)
            if consulting is not None:
                hold.on_consult_channel(book, consulting, out)
        elif base not in call.seat.ringing and call.seat.interface is None:
            inbound.ring(book, call, base, Ring(interface, None, call.seat.queue, now), out, now)


def _on_cti_hold(chan: Row) -> bool:
    return hold.runs_cti_hold(chan.get("Application"), chan.get("ApplicationData"))


def _operator_leg(chan: Row) -> bool:
    """A queue member's leg: app_queue names the application of the channels it dials AppQueue;
    while cti holds the call the leg runs cti-hold's Read() instead."""
    return chan.get("Application") == "AppQueue" or _on_cti_hold(chan)


def _handed_on(book: CallBook, chans: Sequence[Row]) -> bool:
    """The call was handed to a department (a consult completed, a transfer) and its operator left:
    a consult or transfer leg and no operator leg. Not a call to show at an operator's seat."""
    contexts = {c.get("Context", "") for c in chans}
    return bool(contexts & (book.consult | book.transfer)) and not any(_operator_leg(c) for c in chans)


def _known(book: CallBook, call: Call, chans: list[Row], entries: Mapping[str, Row], out: Out) -> None:
    now = book.now()
    live = {c["Uniqueid"] for c in chans}
    for uid in [u for u in call.legs.channels if u not in live]:
        del call.legs.channels[uid]
        book.chan_call.pop(uid, None)
        book.dead_uids.add(uid)
    for c in chans:
        book.dead_uids.discard(c["Uniqueid"])
        book.touch_ids(call.call_id, c["Uniqueid"], c["Channel"], c.get("Context", ""),
                       c.get("ChannelState", ""), c.get("Exten", ""), out)
    present_bases = {chan.base for chan in call.legs.channels.values()}
    for base in [b for b in call.seat.ringing if b not in present_bases]:
        book.miss(call, base, "ended_while_disconnected", None, out, now)
    if call.kind is Kind.INBOUND:
        _inbound_state(book, call, chans, entries, out, now)

