"""Hold and consult (attended transfer in progress) of a connected inbound call.

What Asterisk 22 reports (tests/fixtures/ami/17-…, 18-…, recorded with the lab dialplan):

* cti's hold (features.conf ``cti-hold``, run on the operator's leg) and a consult both give
  ``Hold`` on the operator's leg and ``MusicOnHoldStart`` on the citizen's; resuming (or cancelling
  the consult) gives ``Unhold`` and ``MusicOnHoldStop``. An operator's SIP phone putting the call
  on hold gives ``Hold``/``Unhold`` on its channel too. Without hold music installed there is no
  MusicOnHold* event, only Hold/Unhold: either is enough.
* A consult leg is a new channel of the *same* call (same Linkedid) in the consult context
  (``Local/201@consult-…``): it is neither a new call nor, when it hangs up, the end of this one.
  Completed, the consult is an ``AttendedTransfer`` (see ``transfer``), and the operator's leg,
  still "on hold", hangs up: the hold ends with the transfer, silently.

Only while the call is CONNECTED: the citizen hears queue music (MusicOnHoldStart) while waiting
in a queue without the ``r`` option, which is not a hold.

While cti's hold runs, Asterisk reports the operator's leg running ``Read`` with cti-hold's arguments
(CoreShowChannels ``Application``/``ApplicationData``, Status ``Application``/``Data``): that is how
a cti that restarts (or another node) knows the hold is cti's, not the phone's (``runs_cti_hold``).
"""

from __future__ import annotations

from collections.abc import Mapping

from telephony.events import CallHoldChanged, ConsultChanged
from telephony.tracker.book import CallBook, Out
from telephony.tracker.model import Call, channel_base
from telephony.tracker.table import State
from telephony.tracker.transfer import extension_of


def _set_hold(book: CallBook, call: Call, key: str, held: bool, out: Out) -> None:
    before = call.hold.on_hold
    if held:
        if call.state is not State.CONNECTED:
            return
        call.hold.legs.add(key)
    else:
        call.hold.legs.discard(key)
    if call.hold.on_hold != before:
        out.append(CallHoldChanged(call_id=call.call_id, at=book.now(), on_hold=call.hold.on_hold,
                                   interface=call.seat.interface))


# features.conf: cti-hold => *7,self/callee,Read(CTI_HOLD_KEY,,1,,1,3600),default
CTI_HOLD_APPLICATION = "Read"
CTI_HOLD_DATA_PREFIX = "CTI_HOLD_KEY,"


def runs_cti_hold(application: str | None, data: str | None) -> bool:
    """Whether a channel Asterisk reports is running cti's hold (the cti-hold feature's Read())."""
    return application == CTI_HOLD_APPLICATION and (data or "").startswith(CTI_HOLD_DATA_PREFIX)


def resynced_hold(book: CallBook, call: Call, operator_base: str, out: Out) -> None:
    """A resync found the operator's leg running cti's hold: the call is on hold."""
    _set_hold(book, call, f"hold:{operator_base}", True, out)


def on_hold_event(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    """Hold/Unhold of any leg of the call; MusicOnHoldStart/Stop of the citizen's leg only."""
    name = ev.get("Event", "")
    call = book.calls.get(ev.get("Linkedid", ""))
    channel = ev.get("Channel")
    if call is None or not channel:
        return
    base = channel_base(channel)
    if name in ("Hold", "Unhold"):
        _set_hold(book, call, f"hold:{base}", name == "Hold", out)
    elif call.legs.role(base) == "citizen":
        _set_hold(book, call, f"moh:{base}", name == "MusicOnHoldStart", out)


def on_consult_channel(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    """Newchannel in the consult context: the operator is calling a department about this call."""
    if ev.get("Context", "") not in book.consult:
        return
    call = book.calls.get(ev.get("Linkedid", ""))
    if call is None or call.state is not State.CONNECTED:
        return
    base = channel_base(ev.get("Channel", ""))
    if call.hold.consult_base == base:
        return  # the ;2 half of the same Local channel
    call.hold.consult_base, call.hold.consult_extension = base, extension_of(ev.get("Exten", "")) or None
    out.append(ConsultChanged(call_id=call.call_id, at=book.now(), state="started",
                              extension=call.hold.consult_extension, interface=call.seat.interface))


def leg_gone(book: CallBook, call: Call, base: str, out: Out) -> None:
    """A leg of the call hung up: its hold ends; the consult leg gone is the end of the consult."""
    for key in (f"hold:{base}", f"moh:{base}"):
        if key in call.hold.legs:
            _set_hold(book, call, key, False, out)
    if base != call.hold.consult_base or call.legs.live(base):
        return
    extension = call.hold.consult_extension
    call.hold.consult_base = call.hold.consult_extension = None
    if call.state is State.CONNECTED:
        out.append(ConsultChanged(call_id=call.call_id, at=book.now(), state="ended", extension=extension,
                                  interface=call.seat.interface))

