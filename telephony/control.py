"""Call control over the AMI link: callback originate (idempotent), blind transfer, hangup, and
queue member pause/unpause.

The callback rule: at most one live Originate per callback record, and an Originate is never
re-sent by this module. If the link drops (or the action times out) while an Originate is
pending, the attempt becomes UNCERTAIN and blocks new attempts; the next resync decides: a
channel carrying ``CTI_CALLBACK_ID`` means the call is up (QUEUED), none means LOST (a staff member
may then decide to call again). `CallbackLedger` holds these rules and is driven by tests directly;
`CallControl` adds the AMI actions and is an `AmiSink` (register it with the client).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from cti.core.clock import Clock, system_clock
from cti.core.logs import log_event
from telephony.ami.actions import AmiActionError, AmiConnectionLost, AmiTimeout
from telephony.ami.link import AmiClient
from telephony.ami.sinks import Snapshot
from telephony.settings import CallControlSettings

logger = logging.getLogger(__name__)

CALLBACK_VARIABLE = "CTI_CALLBACK_ID"
_CALLBACK_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_INTERFACE = re.compile(r"^[A-Za-z0-9_]+/[^\s,;|&]{1,120}$")
_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")
_EXTENSION = re.compile(r"^[0-9A-Za-z*#+_-]{1,40}$")
_CHANNEL = re.compile(r"^[^\s]{1,200}$")
_REASON = re.compile(r"^[^\r\n]{0,80}$")
# OriginateResponse Reason codes (Asterisk's AST_CONTROL_* of the originated leg)
ORIGINATE_REASONS = {"0": "failed", "1": "hangup", "3": "no_answer", "4": "answered", "5": "busy", "8": "congestion"}


class CallbackState(StrEnum):
    SENDING = "sending"  # Originate written, no answer yet
    QUEUED = "queued"  # accepted by Asterisk (or its channel seen): the staff phone rings
    ANSWERED = "answered"  # the staff member answered; the citizen is being dialled
    UNCERTAIN = "uncertain"  # link lost or timeout while pending: the next resync decides
    FAILED = "failed"  # refused by Asterisk, or the staff phone did not answer
    ENDED = "ended"  # its channel hung up
    LOST = "lost"  # no channel with its id after a resync: outcome unknown, NOT re-sent


ACTIVE_STATES = frozenset(
    {CallbackState.SENDING, CallbackState.QUEUED, CallbackState.ANSWERED, CallbackState.UNCERTAIN}
)


class CallbackAlreadyActive(Exception):
    def __init__(self, callback_id: str, state: CallbackState) -> None:
        super().__init__(
            f"この折り返しは発信処理中です（状態: {state.value}）。"
            f" / callback {callback_id} already has an originate in progress ({state.value})"
        )
        self.callback_id = callback_id
        self.state = state


@dataclass(frozen=True)
class CallbackAttempt:
    callback_id: str
    action_id: str
    state: CallbackState
    channels: frozenset[str]  # Uniqueids of channels carrying CTI_CALLBACK_ID
    reason: str | None
    started_at: datetime
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


class CallbackLedger:
    """Pure state of callback originates: one attempt per callback id, driven by AMI dicts."""

    def __init__(self, clock: Clock, keep_finished: int = 2000) -> None:
        if keep_finished < 0:
            raise ValueError(f"keep_finished must be >= 0, got {keep_finished}")
        self._clock = clock
        self._keep_finished = keep_finished  # finished attempts remembered (status queries)
        self._by_id: dict[str, CallbackAttempt] = {}  # insertion order = age of the last begin()
        self._by_action: dict[str, str] = {}

    def get(self, callback_id: str) -> CallbackAttempt | None:
        return self._by_id.get(callback_id)

    def active(self) -> list[CallbackAttempt]:
        return [a for a in self._by_id.values() if a.active]

    def begin(self, callback_id: str, action_id: str) -> CallbackAttempt:
        current = self._by_id.get(callback_id)
        if current is not None and current.active:
            raise CallbackAlreadyActive(callback_id, current.state)
        now = self._clock()
        attempt = CallbackAttempt(callback_id, action_id, CallbackState.SENDING, frozenset(), None, now, now)
        if current is not None:
            self._by_action.pop(current.action_id, None)
            del self._by_id[callback_id]
        self._by_id[callback_id] = attempt
        self._by_action[action_id] = callback_id
        self._prune()
        return attempt

    def _prune(self) -> None:
        finished = [a for a in self._by_id.values() if not a.active]
        for old in finished[: max(0, len(finished) - self._keep_finished)]:
            del self._by_id[old.callback_id]
            self._by_action.pop(old.action_id, None)

    def _set(self, attempt: CallbackAttempt, **changes: object) -> CallbackAttempt:
        updated = replace(attempt, updated_at=self._clock(), **changes)  # type: ignore[arg-type]
        self._by_id[attempt.callback_id] = updated
        if updated.state != attempt.state:
            log_event(
                logger,
                "callback_state",
                callback_id=attempt.callback_id,
                state=updated.state.value,
                reason=updated.reason,
            )
        return updated

    def accepted(self, callback_id: str) -> CallbackAttempt:
        attempt = self._by_id[callback_id]
        if attempt.state in (CallbackState.SENDING, CallbackState.UNCERTAIN):
            return self._set(attempt, state=CallbackState.QUEUED)
        return attempt

    def refused(self, callback_id: str, reason: str) -> CallbackAttempt:
        return self._set(self._by_id[callback_id], state=CallbackState.FAILED, reason=reason)

    def outcome_unknown(self, callback_id: str, reason: str) -> CallbackAttempt:
        attempt = self._by_id[callback_id]
        if attempt.state is CallbackState.SENDING:
            return self._set(attempt, state=CallbackState.UNCERTAIN, reason=reason)
        return attempt

    def feed(self, event: Mapping[str, str]) -> CallbackAttempt | None:
        """Apply one AMI event; return the attempt it changed, if any."""
        name = event.get("Event")
        if name == "OriginateResponse":
            callback_id = self._by_action.get(event.get("ActionID", ""))
            if callback_id is None:
                return None
            attempt = self._by_id[callback_id]
            channels = attempt.channels | ({event["Uniqueid"]} if event.get("Uniqueid") else set())
            if event.get("Response") == "Success":
                if attempt.state in ACTIVE_STATES:
                    return self._set(attempt, state=CallbackState.ANSWERED, channels=channels)
                return None
            reason = ORIGINATE_REASONS.get(event.get("Reason", ""), f"reason_{event.get('Reason', '')}")
            return self._set(attempt, state=CallbackState.FAILED, reason=reason, channels=frozenset())
        if name == "VarSet" and event.get("Variable") == CALLBACK_VARIABLE:
            attempt_or_none = self._by_id.get(event.get("Value", ""))
            uniqueid = event.get("Uniqueid", "")
            if attempt_or_none is None or not attempt_or_none.active or not uniqueid:
                return None
            state = attempt_or_none.state
            if state in (CallbackState.SENDING, CallbackState.UNCERTAIN):
                state = CallbackState.QUEUED
            return self._set(attempt_or_none, state=state, channels=attempt_or_none.channels | {uniqueid})
        if name == "Hangup":
            uniqueid = event.get("Uniqueid", "")
            for attempt in list(self._by_id.values()):
                if uniqueid in attempt.channels:
                    left = attempt.channels - {uniqueid}
                    if left or not attempt.active:
                        return self._set(attempt, channels=left)
                    return self._set(attempt, state=CallbackState.ENDED, channels=left)
        return None

    def reconcile(
        self, holders: Mapping[str, frozenset[str]], only: frozenset[str] | None = None
    ) -> list[CallbackAttempt]:
        """After a resync: `holders` maps callback id -> Uniqueids of live channels carrying it.

        An active attempt (among `only`, if given) with channels is up; one without is LOST
        (never re-sent)."""
        changed = []
        for attempt in list(self._by_id.values()):
            if not attempt.active or (only is not None and attempt.callback_id not in only):
                continue
            live = holders.get(attempt.callback_id, frozenset())
            if live:
                state = attempt.state
                if state in (CallbackState.SENDING, CallbackState.UNCERTAIN):
                    state = CallbackState.QUEUED
                changed.append(self._set(attempt, state=state, channels=live))
            elif attempt.state is CallbackState.ANSWERED:  # it happened, and is over now
                changed.append(self._set(attempt, state=CallbackState.ENDED, channels=frozenset()))
            else:
                changed.append(
                    self._set(attempt, state=CallbackState.LOST, channels=frozenset(), reason="no channel after resync")
                )
        return changed


def _check(pattern: re.Pattern[str], value: str, what: str, rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        # the value itself is never echoed: it may be a phone number
        raise ValueError(f"{what}: {rule}")
    return value


class CallControl:
    """Originate/transfer/hangup/pause over an AmiClient. Register it as a sink of that client."""

    def __init__(
        self,
        ami: AmiClient,
        settings: CallControlSettings,
        *,
        queue: str,
        clock: Clock = system_clock,
    ) -> None:
        self._ami = ami
        self._settings = settings
        self._queue = queue
        self.ledger = CallbackLedger(clock)

    # ---- sink -----------------------------------------------------------------------------------

    def on_event(self, event: Mapping[str, str]) -> None:
        self.ledger.feed(event)

    def on_resync(self, snapshot: Snapshot) -> Awaitable[None] | None:
        # The attempts to decide are fixed now, at the resync: an Originate sent after it must
        # not be judged against a snapshot taken before it existed.
        candidates = frozenset(a.callback_id for a in self.ledger.active())
        if not candidates:
            return None
        return self._reconcile(snapshot, candidates)

    async def _reconcile(self, snapshot: Snapshot, candidates: frozenset[str]) -> None:
        holders: dict[str, set[str]] = {}
        key = f"ChanVariable({CALLBACK_VARIABLE})"
        for channel in snapshot.channels:
            if key in channel:
                value = channel[key]
            else:
                # manager.conf has no `channelvars = CTI_CALLBACK_ID`: ask for each channel
                try:
                    answer = await self._ami.send_action(
                        {"Action": "Getvar", "Channel": channel.get("Channel", ""), "Variable": CALLBACK_VARIABLE}
                    )
                except AmiActionError:
                    continue  # the channel is gone (or the link dropped: the next resync decides)
                value = answer.headers.get("Value", "")
            if value:
                holders.setdefault(value, set()).add(channel.get("Uniqueid", ""))
        self.ledger.reconcile({k: frozenset(v) for k, v in holders.items()}, only=candidates)

    # ---- actions --------------------------------------------------------------------------------

    async def originate_callback(self, callback_id: str, staff_interface: str, citizen_number: str) -> CallbackAttempt:
        """Ring the staff phone, then (once answered) the citizen, carrying CTI_CALLBACK_ID.

        Raises CallbackAlreadyActive if an attempt for this record is live or undecided, ValueError
        for bad input (nothing sent), AmiActionError if Asterisk refuses. A timeout or a dropped
        link returns the attempt as UNCERTAIN: it is never re-sent; the next resync decides.
        """
        _check(_CALLBACK_ID, callback_id, "callback_id", "1-64 letters, digits, '_' or '-'")
        _check(_INTERFACE, staff_interface, "staff_interface", "a dial string like PJSIP/101")
        _check(_NUMBER, citizen_number, "citizen_number", "2-20 digits, optionally after '+'")
        action_id = f"cti-cb-{callback_id}-{uuid.uuid4().hex[:12]}"
        self.ledger.begin(callback_id, action_id)  # raises CallbackAlreadyActive; synchronous
        action = {
            "Action": "Originate",
            "ActionID": action_id,
            "Channel": staff_interface,
            "Context": self._settings.callback_context,
            "Exten": citizen_number,
            "Priority": "1",
            "CallerID": f"<{self._settings.ward_caller_id}>",
            "Timeout": str(self._settings.originate_timeout_ms),
            "Async": "true",
            "Variable": f"{CALLBACK_VARIABLE}={callback_id}",
        }
        log_event(logger, "callback_originate", callback_id=callback_id, action_id=action_id)
        try:
            await self._ami.send_action(action)
        except (AmiTimeout, AmiConnectionLost) as exc:
            return self.ledger.outcome_unknown(callback_id, type(exc).__name__)
        except AmiActionError as exc:
            # includes AmiNotConnected: nothing was sent
            self.ledger.refused(callback_id, exc.message or type(exc).__name__)
            raise
        return self.ledger.accepted(callback_id)

    def callback_status(self, callback_id: str) -> CallbackAttempt | None:
        return self.ledger.get(callback_id)

    async def transfer(self, channel: str, extension: str) -> None:
        """Blind transfer: Redirect the caller's channel to a department extension."""
        _check(_CHANNEL, channel, "channel", "a channel name without spaces")
        _check(_EXTENSION, extension, "extension", "1-40 of 0-9 A-Z a-z * # + _ -")
        await self._ami.send_action(
            {
                "Action": "Redirect",
                "Channel": channel,
                "Context": self._settings.transfer_context,
                "Exten": extension,
                "Priority": "1",
            }
        )
        log_event(logger, "call_transferred", extension=extension)

    async def hangup(self, channel: str) -> None:
        _check(_CHANNEL, channel, "channel", "a channel name without spaces")
        await self._ami.send_action({"Action": "Hangup", "Channel": channel, "Cause": "16"})
        log_event(logger, "call_hung_up")

    async def pause_member(self, interface: str, reason: str, queue: str | None = None) -> None:
        await self._queue_pause(interface, True, reason, queue)

    async def unpause_member(self, interface: str, queue: str | None = None) -> None:
        await self._queue_pause(interface, False, "", queue)

    async def _queue_pause(self, interface: str, paused: bool, reason: str, queue: str | None) -> None:
        _check(_INTERFACE, interface, "interface", "a queue member interface like PJSIP/101")
        _check(_REASON, reason, "reason", "at most 80 characters on one line")
        action = {
            "Action": "QueuePause",
            "Interface": interface,
            "Paused": "true" if paused else "false",
            "Queue": queue or self._queue,
        }
        if reason:
            action["Reason"] = reason
        await self._ami.send_action(action)
        log_event(logger, "member_paused" if paused else "member_unpaused", queue=queue or self._queue)
