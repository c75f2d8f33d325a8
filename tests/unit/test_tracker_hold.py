"""Issue 16: consult (attended) transfer and hold, over real Asterisk 22 captures recorded with the
lab PBX as the production ``cti`` user (tests/fixtures/ami/17-*, 18-*; see their README entries).

The consult leg (``Local/20x@consult``, same Linkedid) is neither a new call nor the end of the
call; Hold/Unhold and MusicOnHoldStart/Stop become ``call_hold_changed`` only while connected.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from cti.core.clock import TOKYO
from telephony.ami.filters import adapter_keeps
from telephony.events import (
    CallArrived,
    CallEnded,
    CallHoldChanged,
    CallTransferred,
    ConsultChanged,
    DomainEvent,
    OperatorConnected,
)
from telephony.frames import read_capture
from telephony.tracker import CallTracker, TrackerConfig

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
COMPLETE, CANCEL = "17-consult-transfer-complete.txt", "18-consult-cancel-hold-resume.txt"
NOT_ANSWERED = "19-consult-not-answered.txt"
CALL_17, CALL_18, CALL_19 = "1800000000.100", "1800000100.100", "1800000200.100"


class Replay:
    def __init__(self, name: str, config: TrackerConfig | None = None) -> None:
        self.frames = [f for f in read_capture(FIXTURES / name) if "Event" in f.frame]
        self.now = datetime.fromtimestamp(self.frames[0].rx or 0.0, TOKYO)
        self.tracker = CallTracker(lambda: self.now, config)
        self.position = 0
        self.events: list[DomainEvent] = []

    def step(self) -> Mapping[str, str]:
        item = self.frames[self.position]
        self.position += 1
        self.now = datetime.fromtimestamp(item.rx or 0.0, TOKYO)
        self.events += self.tracker.feed(item.frame)
        return item.frame

    def until(self, event: str, **fields: str) -> Mapping[str, str]:
        while True:
            frame = self.step()
            if frame.get("Event") == event and all(frame.get(k) == v for k, v in fields.items()):
                return frame

    def rest(self) -> None:
        while self.position < len(self.frames):
            self.step()

    def of(self, kind: type[DomainEvent]) -> list[DomainEvent]:
        return [e for e in self.events if isinstance(e, kind)]


def test_the_captures_hold_the_events_the_tracker_reads() -> None:
    """Recorded with the production filters (dialplan/manager.conf), which the adapter mirrors."""
    for name in (COMPLETE, CANCEL):
        names = {f.frame["Event"] for f in Replay(name).frames}
        assert {"Hold", "MusicOnHoldStart", "MusicOnHoldStop", "Newchannel"} <= names
        assert all(adapter_keeps(f.frame) for f in Replay(name).frames if f.frame["Event"] in
                   ("Hold", "Unhold", "MusicOnHoldStart", "MusicOnHoldStop"))


def test_consult_then_complete_is_one_call_one_transfer_one_end() -> None:
    r = Replay(COMPLETE)
    r.until("AgentConnect")
    snap = r.tracker.get(CALL_17)
    assert snap is not None and snap.state == "connected" and not snap.on_hold
    assert snap.operator_channel is not None and snap.operator_channel.endswith(";1")
    assert snap.operator_channel.startswith("Local/102@operator-phones-")

    r.until("Hold")
    snap = r.tracker.get(CALL_17)
    assert snap is not None and snap.on_hold and snap.state == "connected"
    r.until("Newchannel", Context="consult")
    snap = r.tracker.get(CALL_17)
    assert snap is not None and snap.consult_extension == "201"
    assert r.of(ConsultChanged) == [ConsultChanged(call_id=CALL_17, at=r.of(ConsultChanged)[0].at, state="started",
                                                   extension="201", interface="Local/102@operator-phones")]
    r.until("AttendedTransfer")
    snap = r.tracker.get(CALL_17)
    assert snap is not None and snap.state == "transferred" and not snap.on_hold and snap.consult_extension is None
    r.rest()

    assert [e.call_id for e in r.of(CallArrived)] == [CALL_17]  # the consult leg is no new call
    assert len(r.of(OperatorConnected)) == 1
    transfers = r.of(CallTransferred)
    assert len(transfers) == 1 and isinstance(transfers[0], CallTransferred)
    assert transfers[0].method == "attended" and transfers[0].target == "Local/201@consult"
    ended = r.of(CallEnded)
    assert len(ended) == 1 and isinstance(ended[0], CallEnded)
    assert ended[0].last_state == "transferred" and ended[0].hung_up_by == "citizen"
    # the hold began with the consult and ends with the transfer (the operator's leg never unholds)
    assert [e.on_hold for e in r.of(CallHoldChanged) if isinstance(e, CallHoldChanged)] == [True]
    assert [e.state for e in r.of(ConsultChanged) if isinstance(e, ConsultChanged)] == ["started"]


def test_consult_hold_ends_before_the_transfer_event_only_via_the_transfer() -> None:
    """The end of the consult when completed is the transfer, never a consult 'ended' while connected."""
    r = Replay(COMPLETE)
    r.until("AttendedTransfer")
    assert not [e for e in r.of(ConsultChanged) if isinstance(e, ConsultChanged) and e.state == "ended"]


def test_cancelled_consult_then_hold_and_resume() -> None:
    r = Replay(CANCEL)
    r.until("Newchannel", Context="consult")
    snap = r.tracker.get(CALL_18)
    assert snap is not None and snap.on_hold and snap.consult_extension == "202"

    r.until("Unhold")  # CancelAtxfer: the operator is back with the citizen
    snap = r.tracker.get(CALL_18)
    assert snap is not None and not snap.on_hold and snap.state == "connected"
    r.until("Hangup", Context="consult")
    r.until("Hangup", Context="consult")
    snap = r.tracker.get(CALL_18)
    assert snap is not None and snap.consult_extension is None and snap.state == "connected"

    r.until("Hold")  # cti-hold
    snap = r.tracker.get(CALL_18)
    assert snap is not None and snap.on_hold
    r.until("Unhold")
    r.until("MusicOnHoldStop")
    snap = r.tracker.get(CALL_18)
    assert snap is not None and not snap.on_hold and snap.state == "connected"
    r.rest()

    assert [e.call_id for e in r.of(CallArrived)] == [CALL_18]
    assert not r.of(CallTransferred)
    holds = [e.on_hold for e in r.of(CallHoldChanged) if isinstance(e, CallHoldChanged)]
    assert holds == [True, False, True, False]
    consults = [(e.state, e.extension) for e in r.of(ConsultChanged) if isinstance(e, ConsultChanged)]
    assert consults == [("started", "202"), ("ended", "202")]
    ended = r.of(CallEnded)
    assert len(ended) == 1 and isinstance(ended[0], CallEnded)
    assert ended[0].last_state == "connected" and ended[0].hung_up_by == "citizen" and ended[0].reason == "answered"


def test_queue_music_is_not_a_hold() -> None:
    """MusicOnHoldStart of a citizen waiting in the queue (no ``r`` option) is not shown as hold."""
    r = Replay(CANCEL)
    r.until("QueueCallerJoin")
    start = next(f.frame for f in r.frames if f.frame.get("Event") == "MusicOnHoldStart")
    out = r.tracker.feed({**start})
    assert out == [] and not r.tracker.get(CALL_18).on_hold  # type: ignore[union-attr]


def test_hold_of_a_leg_that_hangs_up_ends_the_hold() -> None:
    """An operator whose phone hangs up while holding: the call (if it lives on) is not on hold."""
    r = Replay(CANCEL)
    hold = None
    while hold is None or r.tracker.get(CALL_18).consult_extension is not None:  # type: ignore[union-attr]
        frame = r.step()
        if frame.get("Event") == "Unhold":
            hold = frame
    out = r.tracker.feed({**hold, "Event": "Hold"})
    assert [type(e) for e in out] == [CallHoldChanged]
    out = r.tracker.feed({"Event": "Hangup", "Channel": hold["Channel"], "Uniqueid": hold["Uniqueid"],
                          "Linkedid": hold["Linkedid"], "Cause": "16"})
    assert [(type(e), getattr(e, "on_hold", None)) for e in out][:1] == [(CallHoldChanged, False)]


def test_consult_context_comes_from_call_control_settings() -> None:
    from telephony.settings import CallControlSettings

    config = TrackerConfig.from_call_control(CallControlSettings(consult_context="soudan"))
    assert config.consult_contexts == frozenset({"soudan"})
    r = Replay(CANCEL, config)
    r.rest()
    assert not r.of(ConsultChanged)  # "consult" is not this site's consult context
    assert [e.call_id for e in r.of(CallArrived)] == [CALL_18]


def test_a_department_that_does_not_answer_gives_the_call_back_to_the_operator() -> None:
    r = Replay(NOT_ANSWERED)
    r.until("Newchannel", Context="consult")
    snap = r.tracker.get(CALL_19)
    assert snap is not None and snap.consult_extension == "204" and snap.on_hold
    r.until("Unhold")
    r.until("Hangup", Context="consult")
    r.until("Hangup", Context="consult")
    snap = r.tracker.get(CALL_19)
    assert snap is not None and snap.state == "connected" and not snap.on_hold and snap.consult_extension is None
    r.rest()
    consults = [(e.state, e.extension) for e in r.of(ConsultChanged) if isinstance(e, ConsultChanged)]
    assert consults == [("started", "204"), ("ended", "204")]
    assert [e.on_hold for e in r.of(CallHoldChanged) if isinstance(e, CallHoldChanged)] == [True, False]
    assert not r.of(CallTransferred)
    [ended] = r.of(CallEnded)
    assert isinstance(ended, CallEnded) and ended.last_state == "connected" and ended.hung_up_by == "citizen"
    assert ended.talk_s is not None and ended.talk_s > 35  # one call from answer to the end, consult included
