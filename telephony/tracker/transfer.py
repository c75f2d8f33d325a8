"""Transfers: one ``call_transferred`` per transfer, whichever events report it.

One transfer shows up several ways, in any order: the citizen's leg entering the transfer context
(``Newexten``, what a Redirect by call control looks like), ``BlindTransfer`` (AMI or a phone's
transfer key) and ``AttendedTransfer``. They name
the target differently (``201@departments``, ``201``, ``Local/201@department-phones``), so reports
are compared by the target's *extension*: while the call is transferred, a report of the same
extension (or of no target) only completes what is known; a different extension is a new
transfer (e.g. the department passed the citizen on).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from telephony.events import CallTransferred
from telephony.tracker.book import CallBook, Out
from telephony.tracker.model import Call, channel_base, interface_of
from telephony.tracker.table import State, Trigger

_TECH = re.compile(r"^[A-Za-z0-9_-]+/")


def extension_of(target: str) -> str:
    """``201@departments``, ``201``, ``Local/201@department-phones``, ``PJSIP/201`` -> ``201``."""
    return _TECH.sub("", target).partition("@")[0]


def same_transfer(announced: str | None, target: str | None) -> bool:
    return target is None or announced is None or extension_of(announced) == extension_of(target)


def transfer_to(book: CallBook, call: Call, target: str | None, method: str, interface: str | None,
                out: Out) -> None:
    if call.state is State.TRANSFERRED and same_transfer(call.transfer.target, target):
        # The same transfer reported again: no second event. Where the citizen's leg actually went
        # (the transfer context) is the better target than the context a phone asked for.
        if target and (call.transfer.target is None or method == "redirect"):
            call.transfer.target = target
        return
    now = book.now()
    if call.state is State.TRANSFERRED or book.fire(call, Trigger.TRANSFER, now):
        call.transfer.target = target or call.transfer.target
        call.hangup.hung_up_by = None  # whatever a member's leg said, a transfer is not a hangup
        call.hold.legs.clear()  # the operator's leg of a completed consult hangs up "on hold"
        call.hold.consult_base = call.hold.consult_extension = None
        out.append(CallTransferred(call_id=call.call_id, at=now, target=target,
                                   interface=interface or call.seat.interface, method=method))


def on_transfer_newexten(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    """The citizen's leg runs the transfer context: a Redirect (or a blind transfer) took it there."""
    touched = book.touch(ev, out)
    if touched is not None and touched[0].legs.role(touched[1].base) == "citizen":
        transfer_to(book, touched[0], f"{ev.get('Exten', '')}@{ev.get('Context', '')}", "redirect", None, out)


def on_target_dialled(book: CallBook, call: Call, base: str, dest: str) -> None:
    """The transferred citizen's leg dials the target: that leg is the department's."""
    if call.state is State.TRANSFERRED and call.legs.role(base) == "citizen":
        call.transfer.bases.add(channel_base(dest))


def on_blind_transfer(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    if ev.get("Result") != "Success":
        return
    call = book.calls.get(ev.get("TransfereeLinkedid", "")) or book.calls.get(ev.get("TransfererLinkedid", ""))
    if call is None:
        return
    exten, context = ev.get("Extension", ""), ev.get("Context", "")
    target = f"{exten}@{context}" if context else exten or None
    transferer = ev.get("TransfererChannel")
    transfer_to(book, call, target, "blind", interface_of(transferer) if transferer else None, out)


def on_attended_transfer(book: CallBook, ev: Mapping[str, str], out: Out) -> None:
    if ev.get("Result") != "Success":
        return
    call = book.calls.get(ev.get("TransfereeLinkedid", "")) or book.calls.get(ev.get("OrigTransfererLinkedid", ""))
    if call is None:
        return
    target = (ev.get("TransferTargetChannel") or ev.get("SecondTransfererConnectedLineNum")
              or ev.get("DestApp") or None)
    if target and "/" in target:
        target = interface_of(target)
    transferer = ev.get("OrigTransfererChannel")
    transfer_to(book, call, target, "attended", interface_of(transferer) if transferer else None, out)
