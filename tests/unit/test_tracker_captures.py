"""Given a real Asterisk 22 capture, when it is fed to the tracker, then exactly these domain events.

Expected sequences were derived by reading the captures (tests/fixtures/ami/*.txt): the time of
each domain event is the ``# rx=`` time of the AMI frame that causes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cti.core.clock import TOKYO
from telephony.ami.filters import adapter_keeps as ami_adapter_keeps
from telephony.events import DomainEvent
from telephony.frames import read_capture
from telephony.tracker import CallSnapshot, CallTracker, TrackerConfig, interface_of

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"



def adapter_keeps(frame: Mapping[str, str]) -> bool:
    """What the AMI adapter subscribes to (its per-session filters): the tracker must give the same
    answers on that filtered stream (no Newexten except Hangup and the callback/transfer contexts,
    VarSet only for CTI_* variables, no TestEvent...)."""
    config = TrackerConfig()
    return ami_adapter_keeps(frame, newexten_contexts=config.callback_contexts | config.transfer_contexts)


def at(rx: float) -> datetime:
    return datetime.fromtimestamp(rx, TOKYO)


class Replay:
    """Feeds a capture frame by frame; the clock is the frame's rx time."""

    def __init__(self, name: str, keep: Callable[[Mapping[str, str]], bool] | None = None,
                 edit: Callable[[dict[str, str]], dict[str, str] | None] | None = None) -> None:
        self.frames = read_capture(FIXTURES / name)
        self.now = at(self.frames[0].rx or 0.0)
        self.tracker = CallTracker(lambda: self.now)
        self.keep = keep
        self.edit = edit
        self.events: list[DomainEvent] = []
        self.position = 0

    def run(self, until_rx: float | None = None) -> list[DomainEvent]:
        while self.position < len(self.frames):
            item = self.frames[self.position]
            if until_rx is not None and item.rx is not None and item.rx > until_rx:
                break
            self.position += 1
            if item.rx is not None:
                self.now = at(item.rx)
            frame: dict[str, str] | None = dict(item.frame)
            if self.edit is not None and frame is not None:
                frame = self.edit(frame)
            if frame is None or (self.keep is not None and not self.keep(frame)):
                continue
            self.events.extend(self.tracker.feed(frame))
        return self.events


def summary(events: list[DomainEvent], *fields: str) -> list[tuple[Any, ...]]:
    return [(e.type, e.at, *(e.as_dict().get(f) for f in fields)) for e in events]


KEEPS = {"full stream": None, "adapter-filtered stream": adapter_keeps}


# ---- 01: answered by 101 ---------------------------------------------------------------------


@pytest.mark.parametrize("keep", KEEPS.values(), ids=KEEPS.keys())
def test_01_inbound_answered(keep: Callable[[Mapping[str, str]], bool] | None) -> None:
    events = Replay("01-inbound-queue-answered.txt", keep).run()
    cid = "1795822172.0"
    assert {e.call_id for e in events} == {cid}
    assert [(e.type, e.at) for e in events] == [
        ("call_arrived", at(1795822172.631651)),  # NewCallerid on the citizen's leg
        ("call_routed", at(1795822173.133511)),  # VarSet CTI_ROUTE=open
        ("call_queued", at(1795822173.134302)),  # QueueCallerJoin
        ("operator_ringing", at(1795822173.134767)),  # AgentCalled
        ("operator_connected", at(1795822175.137691)),  # AgentConnect
        ("call_ended", at(1795822180.644304)),  # Hangup of the last channel
    ]
    arrived, routed, queued, ringing, connected, ended = (e.as_dict() for e in events)
    assert (arrived["caller_number"], arrived["caller_name"], arrived["dialled_number"]) == (
        "0312345678", "Citizen One", "0301110000")
    assert arrived["resynced"] is False
    assert (routed["route"], routed["reason"]) == ("open", None)
    assert (queued["queue"], queued["position"]) == ("operators", 1)
    assert ringing["interface"] == "Local/101@operator-phones"
    assert ringing["member_name"] == "Operator 101"
    assert ringing["caller_number"] == "0312345678"
    assert (connected["interface"], connected["hold_time"]) == ("Local/101@operator-phones", 2)
    assert ended["reason"] == "answered"
    assert ended["hung_up_by"] == "operator"  # AgentComplete Reason: agent
    assert (ended["cause"], ended["cause_text"]) == (16, "Normal Clearing")
    assert ended["talk_s"] == pytest.approx(1795822180.644304 - 1795822175.137691, abs=0.002)
    assert ended["interface"] == "Local/101@operator-phones"


def test_01_query_api_during_the_call() -> None:
    replay = Replay("01-inbound-queue-answered.txt")
    replay.run(until_rx=1795822173.134302)  # queued, nobody ringing yet
    (call,) = replay.tracker.live_calls()
    assert isinstance(call, CallSnapshot)
    assert (call.state, call.queue, call.position, call.route) == ("queued", "operators", 1, "open")
    assert call.citizen_channel is not None and call.citizen_channel.startswith("Local/0301110000@from-pstn-")
    assert replay.tracker.call_for_interface("Local/101@operator-phones") is None

    replay.run(until_rx=1795822173.134767)  # 101 rings
    ringing = replay.tracker.call_for_interface("Local/101@operator-phones")
    assert ringing is not None and ringing.state == "offered" and ringing.ringing == ("Local/101@operator-phones",)

    replay.run(until_rx=1795822175.137691)  # connected
    snap = replay.tracker.get("1795822172.0")
    assert snap is not None
    assert (snap.state, snap.interface, snap.hold_time, snap.ringing) == (
        "connected", "Local/101@operator-phones", 2, ())
    assert [name for name, _ in snap.steps] == ["arriving", "routed", "queued", "offered", "connected"]
    assert snap.step("connected") == at(1795822175.137691)
    assert replay.tracker.call_for_interface("Local/101@operator-phones") == snap
    assert replay.tracker.call_for_interface("Local/102@operator-phones") is None
    with pytest.raises(AttributeError):
        snap.state = "ended"  # type: ignore[misc]

    replay.run()
    assert replay.tracker.live_calls() == []
    assert replay.tracker.get("1795822172.0") is None
    (recent,) = replay.tracker.recent_calls()
    assert recent.state == "ended" and recent.channels == 0


# ---- 02: nobody answers, the caller abandons ------------------------------------------------------


@pytest.mark.parametrize("keep", KEEPS.values(), ids=KEEPS.keys())
def test_02_abandoned_after_two_members_rang(keep: Callable[[Mapping[str, str]], bool] | None) -> None:
    events = Replay("02-inbound-queue-abandon.txt", keep).run()
    assert summary(events, "interface", "reason") == [
        ("call_arrived", at(1795822184.370532), None, None),
        ("call_routed", at(1795822184.871600), None, None),
        ("call_queued", at(1795822184.872405), None, None),
        ("operator_ringing", at(1795822184.873555), "Local/101@operator-phones", None),
        # AgentRingNoAnswer after the 6 s member timeout; the NOANSWER and CANCEL DialEnds add nothing
        ("operator_missed", at(1795822190.873897), "Local/101@operator-phones", "no_answer"),
        ("operator_ringing", at(1795822191.875724), "Local/102@operator-phones", None),
        # the caller hung up (Hangup of the citizen's leg), then DialEnd CANCEL (twice) for 102
        ("operator_missed", at(1795822193.370994), "Local/102@operator-phones", "caller_hung_up"),
        ("call_abandoned", at(1795822193.371442), None, None),
        ("call_ended", at(1795822193.371442), None, "abandoned"),
    ]
    assert events[4].as_dict()["ring_ms"] == 6000
    abandoned, ended = events[-2].as_dict(), events[-1].as_dict()
    assert (abandoned["queue"], abandoned["position"], abandoned["hold_time"]) == ("operators", 1, 9)
    assert ended["hung_up_by"] == "citizen"
    assert ended["talk_s"] is None and ended["interface"] is None
    assert ended["cause"] == 0


# ---- 03: closed hours -----------------------------------------------------------------------------


# A "closed" call_routed waits for CTI_CLOSED_REASON (the route AGI sets it right after CTI_ROUTE).
# The lab AGI of capture 03 sets no reason, so it goes out with the call's next event: VarSet
# AGISTATUS on the full stream; on the adapter's stream, the Newexten Hangup of the closed branch.
ROUTED_03 = {"full stream": 1795822197.614790, "adapter-filtered stream": 1795822199.796184}


@pytest.mark.parametrize(("keep", "routed_rx"), list(zip(KEEPS.values(), ROUTED_03.values(), strict=True)),
                         ids=KEEPS.keys())
def test_03_closed_route_ends_without_queue(keep: Callable[[Mapping[str, str]], bool] | None,
                                            routed_rx: float) -> None:
    events = Replay("03-inbound-closed-hours.txt", keep).run()
    assert summary(events, "route") == [
        ("call_arrived", at(1795822197.112808), None),
        ("call_routed", at(routed_rx), "closed"),
        ("call_ended", at(1795822199.796184), None),
    ]
    ended = events[-1].as_dict()
    assert ended["reason"] == "closed"
    # Newexten Hangup in [from-pstn] (our dialplan) before the hangups: the system hung up.
    assert ended["hung_up_by"] == "system"
    assert ended["cause"] == 16
    assert ended["duration_s"] == pytest.approx(1795822199.796184 - 1795822197.112233, abs=0.002)


def test_03_without_the_dialplan_hangup_the_citizen_is_blamed() -> None:
    def drop_hangup_app(frame: dict[str, str]) -> dict[str, str] | None:
        return None if frame.get("Event") == "Newexten" and frame.get("Application") == "Hangup" else frame

    events = Replay("03-inbound-closed-hours.txt", edit=drop_hangup_app).run()
    assert [e.type for e in events] == ["call_arrived", "call_routed", "call_ended"]
    assert events[-1].as_dict()["reason"] == "closed"
    assert events[-1].as_dict()["hung_up_by"] == "citizen"  # the first hangup seen is the citizen's leg


def test_03_closed_reason_set_before_cti_route_travels_in_call_routed() -> None:
    def add_reason(frame: dict[str, str]) -> dict[str, str] | None:
        if frame.get("Variable") == "AGISTATUS":  # reuse the frame's channel ids for a second variable
            return {**frame, "Variable": "CTI_CATEGORY", "Value": "kosodate"}
        return frame

    replay = Replay("03-inbound-closed-hours.txt", edit=add_reason)
    tracker = replay.tracker
    replay.run(until_rx=1795822197.112808)
    tracker.feed({"Event": "VarSet", "Channel": "Local/0301110000@from-pstn-00000005;2",
                  "Uniqueid": "1795822197.11", "Linkedid": "1795822197.10", "Context": "from-pstn",
                  "Variable": "CTI_CLOSED_REASON", "Value": "night"})
    events = replay.run()
    routed = next(e for e in events if e.type == "call_routed").as_dict()
    assert (routed["route"], routed["reason"]) == ("closed", "night")
    assert tracker.recent_calls()[-1].category == "kosodate"  # set after CTI_ROUTE: kept in the call


# ---- 04: outbound callback ------------------------------------------------------------------------


def test_04_callback_without_callback_id_is_recognised_by_its_context() -> None:
    events = Replay("04-outbound-callback.txt").run()
    assert summary(events, "callback_id") == [
        # OriginateResponse (Context outbound-callback) arrives when the staff phone answered
        ("callback_ringing_staff", at(1795822205.538572), None),
        ("callback_staff_answered", at(1795822205.538572), None),
        ("callback_dialing_citizen", at(1795822205.539858), None),  # DialBegin to Local/0312345678@pstn-sim
        ("callback_citizen_answered", at(1795822207.539982), None),  # DialEnd ANSWER
        ("callback_ended", at(1795822213.046799), None),
    ]
    assert events[0].as_dict()["interface"] == "Local/101@operator-phones"
    assert events[2].as_dict()["number"] == "0312345678"
    ended = events[-1].as_dict()
    assert (ended["outcome"], ended["hung_up_by"], ended["cause"]) == ("completed", "citizen", 16)
    assert ended["talk_s"] == pytest.approx(1795822213.046799 - 1795822207.539982, abs=0.002)


def _with_callback_id(frame: dict[str, str]) -> dict[str, str]:
    # The capture's Originate set OP_TALK_TIME=20; production sets CTI_CALLBACK_ID the same way.
    if frame.get("Variable") == "OP_TALK_TIME":
        return {**frame, "Variable": "CTI_CALLBACK_ID", "Value": "cb-42"}
    return frame


@pytest.mark.parametrize("keep", KEEPS.values(), ids=KEEPS.keys())
def test_04_callback_linked_by_cti_callback_id(keep: Callable[[Mapping[str, str]], bool] | None) -> None:
    replay = Replay("04-outbound-callback.txt", keep, edit=_with_callback_id)
    events = replay.run(until_rx=1795822203.535770)
    assert summary(events, "callback_id", "interface") == [
        ("callback_ringing_staff", at(1795822203.535770), "cb-42", "Local/101@operator-phones"),
    ]
    snap = replay.tracker.call_for_interface("Local/101@operator-phones")
    assert snap is not None and (snap.kind, snap.callback_id) == ("callback", "cb-42")
    events = replay.run()
    assert summary(events, "callback_id") == [
        ("callback_ringing_staff", at(1795822203.535770), "cb-42"),
        ("callback_staff_answered", at(1795822205.538037), "cb-42"),  # Newstate Up on the staff leg
        ("callback_dialing_citizen", at(1795822205.539858), "cb-42"),
        ("callback_citizen_answered", at(1795822207.539982), "cb-42"),
        ("callback_ended", at(1795822213.046799), "cb-42"),
    ]
    assert events[-1].as_dict()["outcome"] == "completed"


def test_04_staff_never_answers() -> None:
    replay = Replay("04-outbound-callback.txt", edit=_with_callback_id)
    replay.run(until_rx=1795822203.536059)  # staff phone ringing
    tracker = replay.tracker
    ended = []
    for uid, name in (("1795822203.13", "Local/101@operator-phones-00000006;2"),
                      ("1795822203.12", "Local/101@operator-phones-00000006;1")):
        ended += tracker.feed({"Event": "Hangup", "Channel": name, "Uniqueid": uid, "Linkedid": "1795822203.12",
                               "Cause": "19", "Cause-txt": "No answer"})
    assert [e.type for e in ended] == ["callback_ended"]
    assert ended[0].as_dict()["outcome"] == "staff_no_answer"
    assert ended[0].as_dict()["callback_id"] == "cb-42"
    assert tracker.live_calls() == []


# ---- 05: two interleaved calls --------------------------------------------------------------------


@pytest.mark.parametrize("keep", KEEPS.values(), ids=KEEPS.keys())
def test_05_two_interleaved_calls(keep: Callable[[Mapping[str, str]], bool] | None) -> None:
    events = Replay("05-two-concurrent-calls.txt", keep).run()
    a, b = "1795822216.16", "1795822216.18"
    assert [(e.type, e.call_id, e.at) for e in events] == [
        ("call_arrived", a, at(1795822216.779530)),
        ("call_arrived", b, at(1795822216.779677)),
        ("call_routed", a, at(1795822217.281662)),
        ("call_routed", b, at(1795822217.281662)),
        ("call_queued", a, at(1795822217.283643)),
        ("call_queued", b, at(1795822217.283643)),
        ("operator_ringing", a, at(1795822217.284119)),
        ("operator_ringing", b, at(1795822217.284585)),
        ("operator_connected", a, at(1795822219.286830)),
        ("operator_connected", b, at(1795822219.287359)),
        ("call_ended", a, at(1795822224.791626)),
        ("call_ended", b, at(1795822224.793095)),
    ]
    by_type = {(e.type, e.call_id): e.as_dict() for e in events}
    assert by_type[("call_arrived", a)]["caller_number"] == "0312345678"
    assert by_type[("call_arrived", b)]["caller_number"] == "0398765432"
    assert by_type[("call_queued", a)]["position"] == 1
    assert by_type[("call_queued", b)]["position"] == 2
    assert by_type[("operator_connected", a)]["interface"] == "Local/101@operator-phones"
    assert by_type[("operator_connected", b)]["interface"] == "Local/102@operator-phones"
    assert by_type[("call_ended", a)]["hung_up_by"] == "operator"
    assert by_type[("call_ended", b)]["hung_up_by"] == "operator"


def test_05_each_operator_maps_to_its_own_call() -> None:
    replay = Replay("05-two-concurrent-calls.txt")
    replay.run(until_rx=1795822220.0)
    one = replay.tracker.call_for_interface("Local/101@operator-phones")
    two = replay.tracker.call_for_interface("Local/102@operator-phones")
    assert one is not None and two is not None
    assert (one.call_id, one.caller_number) == ("1795822216.16", "0312345678")
    assert (two.call_id, two.caller_number) == ("1795822216.18", "0398765432")
    assert len(replay.tracker) == 2


# ---- 08 and noise -----------------------------------------------------------------------------


def test_08_restart_without_calls_gives_nothing() -> None:
    replay = Replay("08-ami-restart-reconnect.txt")
    assert replay.run() == []
    assert replay.tracker.live_calls() == []


def test_unknown_and_malformed_events_are_ignored() -> None:
    tracker = CallTracker(lambda: at(1.0))
    for event in ({}, {"Event": "TestEvent", "State": "X"}, {"Event": "Hangup"}, {"Event": "Newchannel"},
                  {"Event": "AgentConnect", "Linkedid": "x"}, {"Event": "DialEnd", "DestChannel": "A"},
                  {"Event": "VarSet", "Variable": "CTI_ROUTE"}, {"Event": "QueueCallerJoin", "Position": "x",
                   "Uniqueid": "1", "Linkedid": "1", "Channel": "PJSIP/t-1", "Context": "from-pstn"}):
        tracker.feed(event)
    (call,) = tracker.live_calls()
    assert call.position is None and call.state == "queued"


def test_naive_clock_is_rejected() -> None:
    tracker = CallTracker(lambda: datetime(2026, 11, 28, 9, 0))
    with pytest.raises(ValueError, match="UTC offset"):
        tracker.feed({"Event": "Newchannel", "Channel": "PJSIP/trunk-1", "Uniqueid": "1", "Linkedid": "1",
                      "Context": "from-pstn", "Exten": "0301110000", "CallerIDNum": "0312345678"})


def test_interface_of_channel_names() -> None:
    assert interface_of("Local/101@operator-phones-00000001;1") == "Local/101@operator-phones"
    assert interface_of("PJSIP/op101-0000000a") == "PJSIP/op101"
    assert interface_of("PJSIP/op101") == "PJSIP/op101"


def test_configured_contexts() -> None:
    config = TrackerConfig(inbound_contexts=frozenset({"trunk-in"}))
    tracker = CallTracker(lambda: at(1.0), config)
    out = tracker.feed({"Event": "Newchannel", "Channel": "PJSIP/trunk-00000001", "Uniqueid": "9.1",
                        "Linkedid": "9.1", "Context": "trunk-in", "Exten": "0301110000",
                        "CallerIDNum": "0312345678", "CallerIDName": "山田"})
    assert [(e.type, e.as_dict()["caller_name"]) for e in out] == [("call_arrived", "山田")]


def test_no_personal_data_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    replay = Replay("01-inbound-queue-answered.txt")
    replay.run(until_rx=1795822175.2)
    replay.tracker.resync([])
    replay.run()
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert "tracker_resync" in text  # the tracker does log
    ended = [r for r in caplog.records if r.getMessage() == "tracker_call_ended"]
    assert [r.__dict__["cti_fields"]["result"] for r in ended] == ["ended_while_disconnected"]
    assert "0312345678" not in text and "Citizen" not in text


def test_config_from_call_control_settings() -> None:
    from telephony.settings import CallControlSettings

    config = TrackerConfig.from_call_control(CallControlSettings(callback_context="cb", transfer_context="dept"))
    assert (config.callback_contexts, config.transfer_contexts, config.inbound_contexts) == (
        frozenset({"cb"}), frozenset({"dept"}), frozenset({"from-pstn"}))
    with pytest.raises(ValueError, match="inbound_contexts"):
        TrackerConfig(inbound_contexts=frozenset())
