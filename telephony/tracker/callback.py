"""Click-to-call (callback) legs: the staff phone rings and answers, then the citizen is dialled.

An Originate of the staff phone into the callback context (``CTI_CALLBACK_ID`` as its variable)
becomes a callback as soon as any event shows that context; until then it is of kind
``unknown`` (state ``other``).
"""

from __future__ import annotations

from collections.abc import Mapping

from telephony.events import CallbackCitizenAnswered, CallbackDialingCitizen
from telephony.tracker.book import CallBook, Out
from telephony.tracker.model import UP, Call, channel_base, clean
from telephony.tracker.table import Kind, Trigger


def staff_up(book: CallBook, call: Call, out: Out) -> None:
    """The staff phone (the Originate's first leg) answered."""
    if call.kind is Kind.INBOUND:
        return
    call.callback.staff_up = True
    if call.kind is Kind.CALLBACK:
        book.staff_answered(call, out, book.now())


def on_newstate(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    touched = book.touch(ev, out)
    if touched is not None and ev.get("ChannelState") == UP and touched[1].base == touched[0].legs.origin_base:
        staff_up(book, touched[0], out)


def on_callback_newexten(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    touched = book.touch(ev, out)
    if touched is not None:
        book.make_callback(touched[0], out)


def on_callback_id(book: CallBook, call: Call, base: str, value: str, out: Out) -> None:
    if value:
        call.callback.callback_id = value
        book.make_callback(call, out)


def on_originate_response(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    call = book.of_uid(ev.get("Uniqueid", ""))
    if call is None:
        return
    if ev.get("Response") == "Success" and call.kind is not Kind.INBOUND:
        call.callback.staff_up = True  # an Originate's response comes when its first leg answers
    if ev.get("Context", "") in book.callback:
        book.make_callback(call, out)
    if call.kind is Kind.CALLBACK and call.callback.staff_up:
        book.staff_answered(call, out, book.now())


def dialing_citizen(book: CallBook, call: Call, number: str | None, out: Out) -> None:
    now = book.now()
    if call.caller.dialled_number is None:
        call.caller.dialled_number = number
    if book.fire(call, Trigger.DIAL_CITIZEN, now):
        out.append(CallbackDialingCitizen(call_id=call.call_id, at=now, callback_id=call.callback.callback_id,
                                          number=number))


def citizen_answered(book: CallBook, call: Call, out: Out) -> None:
    now = book.now()
    if book.fire(call, Trigger.CITIZEN_ANSWER, now):
        call.callback.citizen_answered_at = now
        out.append(CallbackCitizenAnswered(call_id=call.call_id, at=now, callback_id=call.callback.callback_id))


def on_callback_dial_begin(book: CallBook, call: Call, base: str, ev: Mapping[str, str], out: Out) -> None:
    """The staff leg dials the citizen (DialBegin with the staff leg as Channel)."""
    if call.kind is Kind.UNKNOWN and ev.get("Context", "") in book.callback:
        book.make_callback(call, out)
    if call.kind is not Kind.CALLBACK or call.legs.role(base) != "operator":
        return
    dest_base = channel_base(ev.get("DestChannel", ""))
    if dest_base in call.legs.operator:
        return
    call.legs.citizen.add(dest_base)
    # In the callback context the dialplan's extension is the citizen's number; a trunk leg's
    # own DestExten may be "s" or empty.
    if ev.get("Context", "") in book.callback:
        number = clean(ev.get("Exten")) or clean(ev.get("DestExten"))
    else:
        number = clean(ev.get("DestExten")) or clean(ev.get("Exten"))
    dialing_citizen(book, call, number, out)


def on_originate_dial_end(book: CallBook, call: Call, base: str, status: str, out: Out) -> None:
    """The Originate's dial of its first leg (DialEnd without a Channel): ANSWER = the staff answered."""
    if status == "ANSWER" and base == call.legs.origin_base:
        staff_up(book, call, out)


def on_callback_dial_end(book: CallBook, call: Call, base: str, status: str, out: Out) -> None:
    if base not in call.legs.citizen:
        return
    if status == "ANSWER":
        citizen_answered(book, call, out)
    elif call.callback.citizen_dial_status is None:
        call.callback.citizen_dial_status = status
