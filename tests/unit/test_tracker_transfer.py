"""Transfers: given call 01 connected to 101, when the call is transferred, then call_transferred once.

The lab captures hold no transfer; these frames are built from call 01's own channels with the
fields Asterisk 22 documents for each event (Newexten, VarSet, AgentComplete, BlindTransfer).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from cti.core.clock import TOKYO
from telephony.events import DomainEvent
from telephony.frames import read_capture
from telephony.tracker import CallTracker

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
CONNECTED = 1795822176.0
CALL = "1795822172.0"
CITIZEN = {"Channel": "Local/0301110000@from-pstn-00000000;2", "Uniqueid": "1795822172.1", "Linkedid": CALL,
           "ChannelState": "6", "CallerIDNum": "0312345678"}
OPERATOR_LEG = "Local/101@operator-phones-00000001;1"


class Call01:
    def __init__(self) -> None:
        self.frames = read_capture(FIXTURES / "01-inbound-queue-answered.txt")
        self.now = datetime.fromtimestamp(self.frames[0].rx or 0.0, TOKYO)
        self.tracker = CallTracker(lambda: self.now)
        self.position = 0

    def until(self, rx: float | None = None) -> list[DomainEvent]:
        out: list[DomainEvent] = []
        while self.position < len(self.frames):
            item = self.frames[self.position]
            if rx is not None and (item.rx or 0.0) > rx:
                break
            self.position += 1
            self.now = datetime.fromtimestamp(item.rx or 0.0, TOKYO)
            out += self.tracker.feed(item.frame)
        return out

    def feed(self, **frame: str) -> list[DomainEvent]:
        return self.tracker.feed(frame)


@pytest.fixture
def call() -> Call01:
    c = Call01()
    c.until(CONNECTED)
    snap = c.tracker.get(CALL)
    assert snap is not None and snap.state == "connected"
    return c


def test_redirect_seen_as_dialplan_entry_in_the_transfer_context(call: Call01) -> None:
    out = call.feed(Event="Newexten", Context="departments", Exten="200", Application="NoOp", AppData="x",
                    **CITIZEN)
    assert [(e.type, e.as_dict()["target"], e.as_dict()["method"]) for e in out] == [
        ("call_transferred", "200@departments", "redirect")]
    # The operator leg running in [departments] would not be the citizen: no second event.
    assert call.feed(Event="Newexten", Context="departments", Exten="200", Application="Dial",
                     Channel=OPERATOR_LEG, Uniqueid="1795822173.2", Linkedid=CALL) == []


def test_blind_transfer_event(call: Call01) -> None:
    out = call.feed(Event="BlindTransfer", Result="Success", TransfererChannel=OPERATOR_LEG,
                    TransfererLinkedid=CALL, TransfereeChannel=CITIZEN["Channel"], TransfereeLinkedid=CALL,
                    IsExternal="No", Context="departments", Extension="200")
    assert [(e.type, e.as_dict()["target"], e.as_dict()["method"], e.as_dict()["interface"]) for e in out] == [
        ("call_transferred", "200@departments", "blind", "Local/101@operator-phones")]


def test_failed_blind_transfer_changes_nothing(call: Call01) -> None:
    assert call.feed(Event="BlindTransfer", Result="Fail", TransfereeLinkedid=CALL, Context="departments",
                     Extension="200") == []
    snap = call.tracker.get(CALL)
    assert snap is not None and snap.state == "connected"


def test_agent_complete_transfer_is_not_announced_twice(call: Call01) -> None:
    # Asterisk sends AgentComplete(transfer) beside the BlindTransfer event, in either order.
    assert call.feed(Event="AgentComplete", Reason="transfer", Queue="operators", DestChannel=OPERATOR_LEG,
                     Interface="Local/101@operator-phones", **CITIZEN) == []
    out = call.feed(Event="BlindTransfer", Result="Success", TransfererChannel=OPERATOR_LEG,
                    TransfererLinkedid=CALL, TransfereeLinkedid=CALL, Context="departments", Extension="201")
    assert [(e.type, e.as_dict()["target"]) for e in out] == [("call_transferred", "201@departments")]


def test_after_a_transfer_agent_complete_does_not_decide_who_hung_up(call: Call01) -> None:
    call.feed(Event="Newexten", Context="departments", Exten="201", Application="NoOp", AppData="x", **CITIZEN)
    assert call.feed(Event="AgentComplete", Reason="caller", Queue="operators", DestChannel=OPERATOR_LEG,
                     Interface="Local/101@operator-phones", **CITIZEN) == []
    # The department's phone hangs up first, then the citizen's legs: nobody we know -> citizen last.
    ended = []
    for uid, name in (("1795822173.3", "Local/101@operator-phones-00000001;2"),
                      ("1795822173.2", OPERATOR_LEG),
                      ("1795822172.1", "Local/0301110000@from-pstn-00000000;2"),
                      ("1795822172.0", "Local/0301110000@from-pstn-00000000;1")):
        ended += call.feed(Event="Hangup", Channel=name, Uniqueid=uid, Linkedid=CALL, Cause="16")
    assert [e.type for e in ended] == ["call_ended"]
    # 101 transferred the call: its legs going away afterwards are no hangup of the call (issue 13,
    # see test_tracker_fixes.py over a real capture); the citizen's legs are the first party to leave.
    assert ended[0].as_dict()["hung_up_by"] == "citizen"
    assert ended[0].as_dict()["last_state"] == "transferred"


def test_no_transfer_before_the_call_exists() -> None:
    tracker = CallTracker(lambda: datetime(2026, 11, 28, 9, 0, tzinfo=TOKYO))
    assert tracker.feed({"Event": "BlindTransfer", "Result": "Success", "TransfereeLinkedid": "nope",
                         "Context": "departments", "Extension": "200"}) == []
    assert tracker.live_calls() == []
