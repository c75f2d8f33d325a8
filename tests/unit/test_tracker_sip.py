"""A production-shaped call (PJSIP trunk, PJSIP operator phones, an IVR, ringall) built with the
fields Asterisk 22 sends for each event. The lab captures only use Local channels."""

from __future__ import annotations

from datetime import datetime, timedelta

from cti.core.clock import TOKYO
from telephony.events import DomainEvent
from telephony.tracker import CallTracker

CALL = "1800000000.1"
TRUNK = {"Channel": "PJSIP/trunk-00000001", "Uniqueid": CALL, "Linkedid": CALL, "Context": "from-pstn",
         "Exten": "0301110000"}


def member(n: int) -> dict[str, str]:
    return {"Channel": f"PJSIP/op10{n}-0000000{n + 1}", "Uniqueid": f"1800000000.{n + 1}", "Linkedid": CALL,
            "Context": "operators", "Exten": "s"}


class Steps:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 10, 0, tzinfo=TOKYO)
        self.tracker = CallTracker(lambda: self.now)

    def __call__(self, event: str, seconds: float = 0.1, **fields: str) -> list[DomainEvent]:
        self.now += timedelta(seconds=seconds)
        return self.tracker.feed({"Event": event, **fields})


def test_sip_call_with_ivr_ringall_and_caller_hangup() -> None:
    step = Steps()
    out = step("Newchannel", **TRUNK, ChannelState="4", CallerIDNum="0312345678", CallerIDName="ヤマダ タロウ")
    assert [(e.type, e.as_dict()["caller_name"]) for e in out] == [("call_arrived", "ヤマダ タロウ")]
    assert step("VarSet", **TRUNK, Variable="CTI_ROUTE", Value="open")[0].type == "call_routed"
    assert step("Newexten", **TRUNK, Application="Background", AppData="ivr-menu") == []
    snap = step.tracker.get(CALL)
    assert snap is not None and snap.state == "in_ivr"
    assert step("VarSet", 3.0, **TRUNK, Variable="CTI_CATEGORY", Value="kosodate") == []
    queued = step("QueueCallerJoin", **TRUNK, Queue="operators", Position="1", Count="1")
    assert [(e.type, e.as_dict()["category"]) for e in queued] == [("call_queued", "kosodate")]
    for n in (1, 2):  # ringall: both phones ring
        step("Newchannel", **member(n), ChannelState="0", CallerIDNum="<unknown>")
        rang = step("AgentCalled", **TRUNK, DestChannel=member(n)["Channel"], DestUniqueid=member(n)["Uniqueid"],
                    DestLinkedid=CALL, Queue="operators", Interface=f"PJSIP/op10{n}", MemberName=f"Operator 10{n}")
        assert [(e.type, e.as_dict()["interface"]) for e in rang] == [("operator_ringing", f"PJSIP/op10{n}")]
    snap = step.tracker.call_for_interface("PJSIP/op102")
    assert snap is not None and snap.ringing == ("PJSIP/op101", "PJSIP/op102")
    out = step("AgentConnect", 4.0, **TRUNK, DestChannel=member(2)["Channel"], Queue="operators",
               Interface="PJSIP/op102", MemberName="Operator 102", HoldTime="4", RingTime="4")
    assert [(e.type, e.as_dict()["interface"], e.as_dict().get("reason")) for e in out] == [
        ("operator_connected", "PJSIP/op102", None),
        ("operator_missed", "PJSIP/op101", "answered_elsewhere"),
    ]
    # The DialEnd CANCEL for 101 that follows adds nothing.
    assert step("DialEnd", **TRUNK, DestChannel=member(1)["Channel"], DialStatus="CANCEL") == []
    assert step("Hangup", **member(1), Cause="26", **{"Cause-txt": "Answered elsewhere"}) == []
    assert step.tracker.call_for_interface("PJSIP/op101") is None
    assert step.tracker.call_for_interface("PJSIP/op102") is not None
    assert step("Hangup", 30.0, **TRUNK, Cause="16", **{"Cause-txt": "Normal Clearing"}) == []
    assert step("AgentComplete", **TRUNK, DestChannel=member(2)["Channel"], Reason="caller",
                Interface="PJSIP/op102", HoldTime="4", TalkTime="30") == []
    (ended,) = step("Hangup", **member(2), Cause="16")
    d = ended.as_dict()
    assert (d["type"], d["reason"], d["hung_up_by"], d["cause"], d["interface"]) == (
        "call_ended", "answered", "citizen", 16, "PJSIP/op102")
    assert d["talk_s"] == 30.4  # from AgentConnect to the last Hangup (0.1 + 0.1 + 30 + 0.1 + 0.1 s)
    (recent,) = step.tracker.recent_calls()
    assert [name for name, _ in recent.steps] == ["arriving", "routed", "in_ivr", "queued", "offered",
                                                   "connected", "ended"]
    assert step.tracker.live_calls() == []


def test_anonymous_caller_arrives_when_the_route_agi_starts() -> None:
    step = Steps()
    assert step("Newchannel", **TRUNK, ChannelState="4", CallerIDNum="<unknown>", CallerIDName="<unknown>") == []
    out = step("AGIExecStart", **TRUNK, Command='SET VARIABLE CTI_ROUTE "open"')
    assert [(e.type, e.as_dict()["caller_number"], e.as_dict()["dialled_number"]) for e in out] == [
        ("call_arrived", None, "0301110000")]
    assert [e.type for e in step("VarSet", **TRUNK, Variable="CTI_ROUTE", Value="open")] == ["call_routed"]


def test_closed_reason_and_category_set_before_the_route() -> None:
    step = Steps()
    step("Newchannel", **TRUNK, ChannelState="4", CallerIDNum="0312345678")
    step("VarSet", **TRUNK, Variable="CTI_CLOSED_REASON", Value="new_year")
    (routed,) = step("VarSet", **TRUNK, Variable="CTI_ROUTE", Value="closed")
    assert (routed.as_dict()["route"], routed.as_dict()["reason"]) == ("closed", "new_year")
    # A closed call plays its announcement: no IVR state.
    assert step("Newexten", **TRUNK, Application="Playback", AppData="closed-new-year") == []
    snap = step.tracker.get(CALL)
    assert snap is not None and (snap.state, snap.closed_reason) == ("routed", "new_year")
    (ended,) = step("Hangup", **TRUNK, Cause="16")
    assert (ended.as_dict()["reason"], ended.as_dict()["talk_s"]) == ("closed", None)


def test_production_agi_order_reason_after_route() -> None:
    """telephony/agi/route.py sets CTI_ROUTE, CTI_OFFICE, CTI_CLOSED_REASON, CTI_NEXT_OPEN... in
    that order: call_routed waits for the reason, and goes out with it."""
    step = Steps()
    step("Newchannel", **TRUNK, ChannelState="4", CallerIDNum="0312345678")
    assert step("VarSet", **TRUNK, Variable="CTI_ROUTE", Value="closed") == []
    assert step("AGIExecEnd", **TRUNK, Command='SET VARIABLE CTI_ROUTE "closed"') == []
    assert step("VarSet", **TRUNK, Variable="CTI_OFFICE", Value="closed") == []
    (routed,) = step("VarSet", 0.0003, **TRUNK, Variable="CTI_CLOSED_REASON", Value="year_end")
    assert (routed.type, routed.as_dict()["route"], routed.as_dict()["reason"]) == (
        "call_routed", "closed", "year_end")
    assert step("VarSet", **TRUNK, Variable="CTI_NEXT_OPEN", Value="2027-01-04T08:30:00+09:00") == []
    (ended,) = step("Hangup", 5.0, **TRUNK, Cause="16")
    assert ended.as_dict()["reason"] == "closed"


def test_static_fallback_sets_inherited_variables() -> None:
    """[cti-fallback] uses Set(__CTI_ROUTE=...) and the IVR Set(__CTI_CATEGORY=...): VarSet shows the
    leading underscores; the IVR's Set(CTI_IVR_TRY=...) marks the IVR."""
    step = Steps()
    step("Newchannel", **TRUNK, ChannelState="4", CallerIDNum="0312345678")
    (routed,) = step("VarSet", **TRUNK, Variable="__CTI_ROUTE", Value="open")
    assert (routed.type, routed.as_dict()["route"]) == ("call_routed", "open")
    assert step("VarSet", **TRUNK, Variable="CTI_IVR_TRY", Value="0") == []
    snap = step.tracker.get(CALL)
    assert snap is not None and snap.state == "in_ivr"
    step("VarSet", **TRUNK, Variable="__CTI_CATEGORY", Value="gomi")
    (queued,) = step("QueueCallerJoin", **TRUNK, Queue="operators", Position="1")
    assert queued.as_dict()["category"] == "gomi"
    # The member's new leg inherits __CTI_ROUTE / __CTI_CATEGORY: it stays an operator leg.
    step("Newchannel", **member(1), ChannelState="0")
    assert step("VarSet", **member(1), Variable="__CTI_ROUTE", Value="open") == []
    assert step("VarSet", **member(1), Variable="__CTI_CATEGORY", Value="gomi") == []
    (ringing,) = step("AgentCalled", **TRUNK, DestChannel=member(1)["Channel"], Queue="operators",
                      Interface="PJSIP/op101", MemberName="Operator 101")
    assert ringing.as_dict()["interface"] == "PJSIP/op101"


def test_sip_callback_staff_phone_then_trunk() -> None:
    """Originate PJSIP/op101 -> [outbound-callback] 0312345678 -> Dial(PJSIP/0312345678@pstn-trunk)."""
    step = Steps()
    staff = {"Channel": "PJSIP/op101-00000010", "Uniqueid": "1800000100.1", "Linkedid": "1800000100.1",
             "Context": "internal-phones", "Exten": "s"}
    trunk = {"Channel": "PJSIP/pstn-trunk-00000011", "Uniqueid": "1800000100.2", "Linkedid": "1800000100.1",
             "Context": "from-pstn", "Exten": "s"}
    assert step("Newchannel", **staff, ChannelState="0") == []
    (ringing,) = step("VarSet", **staff, Variable="CTI_CALLBACK_ID", Value="cb-7")
    assert (ringing.type, ringing.as_dict()["interface"]) == ("callback_ringing_staff", "PJSIP/op101")
    (answered,) = step("Newstate", 3.0, **staff, ChannelState="6")
    assert answered.type == "callback_staff_answered"
    in_context = {**staff, "Context": "outbound-callback", "Exten": "0312345678"}
    assert step("VarSet", **in_context, Variable="__CTI_CALLBACK_ID", Value="cb-7") == []
    # The trunk leg's Newchannel shows the endpoint's context (from-pstn): still the callback.
    assert step("Newchannel", **trunk, ChannelState="0") == []
    (dialing,) = step("DialBegin", **in_context, DestChannel=trunk["Channel"], DestExten="s",
                      DestContext="from-pstn")
    assert dialing.as_dict()["number"] == "0312345678"
    (citizen,) = step("DialEnd", 6.0, **in_context, DestChannel=trunk["Channel"], DialStatus="ANSWER")
    assert citizen.type == "callback_citizen_answered"
    assert step("Hangup", 60.0, **trunk, Cause="16") == []
    (ended,) = step("Hangup", **in_context, Cause="16")
    d = ended.as_dict()
    assert (d["type"], d["outcome"], d["hung_up_by"], d["callback_id"], d["talk_s"]) == (
        "callback_ended", "completed", "citizen", "cb-7", 60.1)
    assert step.tracker.live_calls() == []


def test_sip_callback_citizen_busy() -> None:
    step = Steps()
    staff = {"Channel": "PJSIP/op102-00000020", "Uniqueid": "1800000200.1", "Linkedid": "1800000200.1",
             "Context": "outbound-callback", "Exten": "0398765432"}
    step("Newchannel", **staff, ChannelState="0")
    step("VarSet", **staff, Variable="CTI_CALLBACK_ID", Value="cb-8")
    step("Newstate", **staff, ChannelState="6")
    step("DialBegin", **staff, DestChannel="PJSIP/pstn-trunk-00000021", DestExten="0398765432")
    assert step("DialEnd", **staff, DestChannel="PJSIP/pstn-trunk-00000021", DialStatus="BUSY") == []
    (ended,) = step("Hangup", **staff, Cause="17")
    assert (ended.as_dict()["outcome"], ended.as_dict()["talk_s"]) == ("citizen_busy", None)
