"""Hang-ups: who asked first (``hung_up_by``, see ``outcomes.HUNG_UP_BY``), the citizen's cause,
members that stop ringing because their leg is gone, and the end of the call with its last leg."""

from __future__ import annotations

from collections.abc import Mapping

from telephony.tracker import hold
from telephony.tracker.book import CallBook, Out
from telephony.tracker.model import channel_base, to_int


def on_hangup_request(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    call = book.calls.get(ev.get("Linkedid", ""))
    channel = ev.get("Channel")
    if call is not None and channel:
        book.note_hangup_side(call, channel_base(channel))


def on_hangup(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    uid = ev.get("Uniqueid")
    if not uid:
        return
    book.dead_uids.add(uid)
    linkedid = ev.get("Linkedid") or book.chan_call.get(uid)
    book.chan_call.pop(uid, None)
    call = book.calls.get(linkedid) if linkedid else None
    if call is None:
        return
    chan = call.legs.channels.pop(uid, None)
    base = chan.base if chan is not None else channel_base(ev.get("Channel", ""))
    book.note_hangup_side(call, base)
    cause = to_int(ev.get("Cause"))
    call.hangup.last_cause = cause
    if call.legs.role(base) == "citizen":
        if not call.hangup.citizen_gone:
            call.hangup.cause = cause
            call.hangup.cause_text = ev.get("Cause-txt") or None
        call.hangup.citizen_gone = True
    hold.leg_gone(book, call, base, out)
    if base in call.seat.ringing and not call.legs.live(base):
        book.miss(call, base, "caller_hung_up" if call.hangup.citizen_gone else "no_answer", None, out)
    if not call.legs.channels:
        book.end(call, out, disconnected=False)


def on_hangup_app(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    """Newexten Application=Hangup in our contexts: the dialplan itself ends that leg."""
    touched = book.touch(ev, out)
    if touched is not None:
        touched[0].legs.system_hangup.add(touched[1].base)


def on_rename(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    call = book.of_uid(ev.get("Uniqueid", ""))
    if call is not None and (new_name := ev.get("Newname")):
        chan = call.legs.channels.get(ev.get("Uniqueid", ""))
        if chan is not None:
            chan.name = new_name
