"""Consult (attended) transfer and hold of a connected call, over AMI.

Asterisk 22 has no AMI action "hold this call", and its attended transfer is a *bridge feature*
(a DTMF hook of the operator's leg), not a channel operation. What works (recorded in
tests/fixtures/ami/17-consult-transfer-complete.txt and 18-consult-cancel-hold-resume.txt) is to
drive those features as if the operator's phone had keyed them, on the operator's leg that is
in the bridge with the citizen (``PJSIP/101-…``, or ``Local/101@operator-phones-…;1`` in the lab):

* consult: ``Atxfer`` (Channel, Exten, Context) queues features.conf's ``atxfer`` code and the
  extension: the citizen hears hold music, the operator's leg moves to a new bridge with a
  ``Local/<ext>@consult`` leg that rings the department;
* complete: ``PlayDTMF`` with ``Receive: true`` of the ``atxfercomplete`` code (``*3``): the
  citizen and the department are bridged (``AttendedTransfer``), the operator's leg hangs up;
  there is no "CompleteAtxfer" action;
* cancel: ``CancelAtxfer`` (the ``atxferabort`` code): the consult leg hangs up, the operator is
  back with the citizen;
* hold: ``PlayDTMF`` Receive of the ``cti-hold`` feature (``*7``, features.conf applicationmap):
  the operator's leg runs ``Read()`` for one digit while the citizen hears hold music
  (``Hold``/``MusicOnHoldStart``); resume: one more digit (``9``) ends ``Read()`` (``Unhold``).
  Whether a hold is cti's is asked of Asterisk (``held_by_cti``: the leg runs that ``Read()``), not
  remembered here: it stays true across a restart of cti and from the other node.

Conditions (dialplan/features.conf): the queue member may transfer (``Queue()`` option ``t``) and
its leg carries ``DYNAMIC_FEATURES=cti-hold`` (cti-queue sets it). What is NOT possible over AMI:
putting the *operator's phone itself* on hold (its hold key is the phone's own; Asterisk then
reports Hold/Unhold of its channel, which the screen shows too), and holding the citizen of a
call the operator is not bridged with. A second digit sent while on hold would end the hold, so
the caller of this module must know the current state (the tracker's ``on_hold``) first.
"""

from __future__ import annotations

import asyncio
import logging
import re

from cti.core.logs import log_event
from telephony.ami.actions import AmiActionError, AmiConnectionLost, AmiNotConnected, AmiTimeout
from telephony.ami.link import AmiClient
from telephony.tracker.hold import runs_cti_hold

logger = logging.getLogger(__name__)

# Must match dialplan/features.conf
COMPLETE_CODE = "*3"  # atxfercomplete
HOLD_CODE = "*7"  # applicationmap cti-hold
RESUME_DIGIT = "9"  # any digit ends the cti-hold Read()
DIGIT_MS = 100
# Asterisk matches feature codes digit by digit; a short gap keeps the digits in order on a
# channel whose frames are read by another thread.
DIGIT_GAP_S = 0.15

_CHANNEL = re.compile(r"^[^\s]{1,200}$")
_EXTENSION = re.compile(r"^[0-9*#]{1,20}$")


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{what}: not a valid value")
    return value


class ConsultControl:
    """Consult transfer and hold of the operator's leg. Every method raises ValueError for bad
    input (nothing sent) and the AMI client's errors when Asterisk refuses or the link is down."""

    def __init__(self, ami: AmiClient, consult_context: str) -> None:
        self._ami = ami
        self._context = consult_context

    async def held_by_cti(self, operator_channel: str) -> bool:
        """Whether Asterisk reports the operator's leg running cti's hold (cti-hold's Read()): only
        such a hold resumes with a digit; a hold from the phone's own hold key is the phone's to end
        (a digit would reach the citizen). False when the channel is gone; the link's errors (down,
        timeout, dropped) propagate."""
        _check(_CHANNEL, operator_channel, "channel")
        try:
            answer = await self._ami.send_action(
                {"Action": "Status", "Channel": operator_channel}, list_complete="StatusComplete"
            )
        except (AmiNotConnected, AmiTimeout, AmiConnectionLost):
            raise  # cti cannot tell: not the phone's hold either (the caller answers 502)
        except AmiActionError:  # Asterisk's Error reply: "No such channel"
            return False
        return any(
            e.get("Event") == "Status" and runs_cti_hold(e.get("Application"), e.get("Data")) for e in answer.events
        )

    async def start(self, operator_channel: str, extension: str) -> None:
        _check(_CHANNEL, operator_channel, "channel")
        _check(_EXTENSION, extension, "extension")
        await self._ami.send_action(
            {"Action": "Atxfer", "Channel": operator_channel, "Exten": extension, "Context": self._context}
        )
        log_event(logger, "consult_started", extension=extension)

    async def complete(self, operator_channel: str) -> None:
        await self._keys(operator_channel, COMPLETE_CODE)
        log_event(logger, "consult_completed")

    async def cancel(self, operator_channel: str) -> None:
        _check(_CHANNEL, operator_channel, "channel")
        await self._ami.send_action({"Action": "CancelAtxfer", "Channel": operator_channel})
        log_event(logger, "consult_cancelled")

    async def hold(self, operator_channel: str) -> None:
        await self._keys(operator_channel, HOLD_CODE)
        log_event(logger, "hold_requested")

    async def resume(self, operator_channel: str) -> None:
        await self._keys(operator_channel, RESUME_DIGIT)
        log_event(logger, "resume_requested")

    async def _keys(self, channel: str, digits: str) -> None:
        """The digits as if received from the operator's phone (PlayDTMF Receive, Asterisk 21+/22)."""
        _check(_CHANNEL, channel, "channel")
        for index, digit in enumerate(digits):
            if index:
                await asyncio.sleep(DIGIT_GAP_S)
            await self._ami.send_action(
                {"Action": "PlayDTMF", "Channel": channel, "Digit": digit, "Duration": str(DIGIT_MS),
                 "Receive": "true"}
            )
