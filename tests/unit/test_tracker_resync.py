"""Resync after an AMI (re)connect: given the tracker's view and Asterisk's CoreShowChannels.

Asterisk's view at an instant is rebuilt from the capture itself (channels created and not yet hung
up, with their latest context, state, application and bridge), as CoreShowChannels would list them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cti.core.clock import TOKYO
from telephony.events import DomainEvent
from telephony.frames import CapturedFrame, read_capture
from telephony.tracker import CallTracker

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
_COPIED = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
           "ConnectedLineName", "Context", "Exten", "Priority", "Uniqueid", "Linkedid")


def at(rx: float) -> datetime:
    return datetime.fromtimestamp(rx, TOKYO)


def core_show_channels(frames: list[CapturedFrame], until_rx: float) -> list[dict[str, str]]:
    """The CoreShowChannel events Asterisk would send at `until_rx`."""
    alive: dict[str, dict[str, str]] = {}
    for item in frames:
        if item.rx is not None and item.rx > until_rx:
            break
        ev = item.frame
        name, uid = ev.get("Event"), ev.get("Uniqueid", "")
        if name == "Newchannel":
            alive[uid] = {"Event": "CoreShowChannel", "Application": "", "ApplicationData": "", "BridgeId": "",
                          "Duration": "00:00:01"}
        if uid not in alive:
            continue
        if name == "Hangup":
            del alive[uid]
            continue
        chan = alive[uid]
        for key in _COPIED:
            if key in ev:
                chan[key] = ev[key]
        if name == "Newexten":
            chan["Application"], chan["ApplicationData"] = ev.get("Application", ""), ev.get("AppData", "")
        elif name == "BridgeEnter":
            chan["BridgeId"] = ev["BridgeUniqueid"]
        elif name == "BridgeLeave":
            chan["BridgeId"] = ""
    return list(alive.values())


class Session:
    def __init__(self, name: str) -> None:
        self.frames = read_capture(FIXTURES / name)
        self.now = at(self.frames[0].rx or 0.0)
        self.tracker = CallTracker(lambda: self.now)
        self.position = 0

    def feed_until(self, rx: float | None = None) -> list[DomainEvent]:
        out: list[DomainEvent] = []
        while self.position < len(self.frames):
            item = self.frames[self.position]
            if rx is not None and item.rx is not None and item.rx > rx:
                break
            self.position += 1
            self.now = at(item.rx or 0.0)
            out += self.tracker.feed(item.frame)
        return out

    def skip_until(self, rx: float) -> None:
        """Frames lost while disconnected."""
        while self.position < len(self.frames) and (self.frames[self.position].rx or 0.0) <= rx:
            self.position += 1
        self.now = at(rx)

    def asterisk_view(self, rx: float) -> list[dict[str, str]]:
        return core_show_channels(self.frames, rx)


CONNECTED_01 = 1795822176.0  # 101 talking with the caller


def test_known_call_gone_ends_while_disconnected_and_stays_ended() -> None:
    session = Session("01-inbound-queue-answered.txt")
    session.feed_until(CONNECTED_01)
    session.skip_until(1795822190.0)  # the link was down until after the call ended
    events = session.tracker.resync([])
    assert [(e.type, e.call_id) for e in events] == [("call_ended", "1795822172.0")]
    ended = events[0].as_dict()
    assert (ended["reason"], ended["hung_up_by"], ended["last_state"]) == (
        "ended_while_disconnected", None, "connected")
    assert ended["interface"] == "Local/101@operator-phones"
    assert session.tracker.live_calls() == []
    assert session.tracker.call_for_interface("Local/101@operator-phones") is None


def test_late_events_of_a_call_ended_by_resync_do_not_resurrect_it() -> None:
    session = Session("01-inbound-queue-answered.txt")
    session.feed_until(CONNECTED_01)
    session.tracker.resync([])
    assert session.feed_until() == []  # the rest of the call arrives after all (replayed buffer)
    assert session.tracker.live_calls() == []


def test_known_call_still_there_gets_no_duplicate_events() -> None:
    session = Session("01-inbound-queue-answered.txt")
    session.feed_until(CONNECTED_01)
    before = session.tracker.get("1795822172.0")
    assert session.tracker.resync(session.asterisk_view(CONNECTED_01)) == []
    assert session.tracker.get("1795822172.0") == before
    rest = session.feed_until()
    assert [e.type for e in rest] == ["call_ended"]
    assert rest[0].as_dict()["reason"] == "answered"


def test_unknown_connected_call_is_created_from_core_show_channels() -> None:
    session = Session("01-inbound-queue-answered.txt")
    session.skip_until(CONNECTED_01)  # our server started while the call was already up
    view = session.asterisk_view(CONNECTED_01)
    assert len(view) == 4  # the oracle: citizen ;1 ;2 and the 101 pair
    events = session.tracker.resync(view)
    assert [(e.type, e.as_dict().get("resynced")) for e in events] == [
        ("call_arrived", True), ("operator_connected", True)]
    arrived, connected = (e.as_dict() for e in events)
    assert (arrived["caller_number"], arrived["caller_name"], arrived["dialled_number"]) == (
        "0312345678", "Citizen One", "0301110000")
    assert connected["interface"] == "Local/101@operator-phones"
    snap = session.tracker.call_for_interface("Local/101@operator-phones")
    assert snap is not None and snap.state == "connected"
    # A second resync with the same view changes nothing.
    assert session.tracker.resync(view) == []
    rest = session.feed_until()
    assert [e.type for e in rest] == ["call_ended"]  # no second call_arrived
    assert rest[0].as_dict()["hung_up_by"] == "operator"


def test_unknown_queued_call_with_queue_entry() -> None:
    session = Session("02-inbound-queue-abandon.txt")
    between_rings = 1795822191.0  # 101 gave up, 102 not yet called
    session.skip_until(between_rings)
    view = session.asterisk_view(between_rings)
    citizen = next(c for c in view if c["Channel"].endswith(";2") and "from-pstn" in c["Channel"])
    entry = {"Event": "QueueEntry", "Queue": "operators", "Position": "1", "Channel": citizen["Channel"],
             "Uniqueid": citizen["Uniqueid"], "CallerIDNum": "0312345678", "Wait": "7"}
    events = session.tracker.resync(view, [entry])
    assert [e.type for e in events] == ["call_arrived", "call_queued"]
    assert (events[1].as_dict()["queue"], events[1].as_dict()["position"]) == ("operators", 1)
    rest = session.feed_until()
    assert [e.type for e in rest] == [
        "operator_ringing", "operator_missed", "call_abandoned", "call_ended"]


def test_ringing_member_vanished_during_the_gap() -> None:
    session = Session("02-inbound-queue-abandon.txt")
    ringing_102 = 1795822192.0
    session.feed_until(ringing_102)
    assert session.tracker.call_for_interface("Local/102@operator-phones") is not None
    view = [c for c in session.asterisk_view(ringing_102) if "operator-phones" not in c["Channel"]]
    events = session.tracker.resync(view)
    assert [(e.type, e.as_dict().get("reason")) for e in events] == [
        ("operator_missed", "ended_while_disconnected")]
    snap = session.tracker.get("1795822184.4")
    assert snap is not None and (snap.state, snap.ringing) == ("queued", ())


def test_known_ringing_call_answered_during_the_gap() -> None:
    session = Session("02-inbound-queue-abandon.txt")
    ringing_102 = 1795822192.0
    session.feed_until(ringing_102)
    view = session.asterisk_view(ringing_102)
    for chan in view:  # as if 102 had answered while the link was down
        if chan["Channel"].endswith("from-pstn-00000002;2") or chan["Channel"].endswith("-00000004;1"):
            chan["BridgeId"] = "bridge-1"
            chan["ChannelState"] = "6"
    events = session.tracker.resync(view)
    assert [(e.type, e.as_dict().get("interface")) for e in events] == [
        ("operator_connected", "Local/102@operator-phones")]
    snap = session.tracker.get("1795822184.4")
    assert snap is not None and snap.state == "connected"


def test_unknown_callback_in_progress() -> None:
    session = Session("04-outbound-callback.txt")
    talking = 1795822209.0
    session.skip_until(talking)
    events = session.tracker.resync(session.asterisk_view(talking))
    assert [e.type for e in events] == [
        "callback_ringing_staff", "callback_staff_answered", "callback_dialing_citizen",
        "callback_citizen_answered"]
    assert events[2].as_dict()["number"] == "0312345678"
    rest = session.feed_until()
    assert [e.type for e in rest] == ["callback_ended"]
    assert rest[0].as_dict()["outcome"] == "completed"


def test_two_calls_one_gone_one_kept() -> None:
    session = Session("05-two-concurrent-calls.txt")
    session.feed_until(1795822220.0)
    view = [c for c in session.asterisk_view(1795822220.0) if c["Linkedid"] == "1795822216.18"]
    events = session.tracker.resync(view)
    assert [(e.type, e.call_id) for e in events] == [("call_ended", "1795822216.16")]
    assert [c.call_id for c in session.tracker.live_calls()] == ["1795822216.18"]
    assert session.tracker.call_for_interface("Local/101@operator-phones") is None


def test_resync_ignores_channels_without_ids() -> None:
    tracker = CallTracker(lambda: at(1.0))
    assert tracker.resync([{"Event": "CoreShowChannel"}, {"Channel": "PJSIP/x-1", "Linkedid": ""}]) == []
    assert tracker.live_calls() == []


HOLD_18 = 1796187312.800335  # capture 18: cti's hold starts on 101's leg (Hold)
OPERATOR_18 = "Local/101@operator-phones-00000012;1"


def test_a_call_cti_holds_is_found_connected_and_on_hold_after_a_restart() -> None:
    # While cti holds a call, Asterisk 22 reports the operator's leg running cti-hold's Read()
    # instead of AppQueue (seen on the lab PBX: CoreShowChannels Application/ApplicationData).
    session = Session("18-consult-cancel-hold-resume.txt")
    session.skip_until(HOLD_18 + 0.5)  # cti (re)started while the citizen was on hold
    view = session.asterisk_view(HOLD_18)
    operator = next(c for c in view if c["Channel"] == OPERATOR_18)
    operator.update(Application="Read", ApplicationData="CTI_HOLD_KEY,,1,,1,3600")
    events = session.tracker.resync(view)
    assert [e.type for e in events] == ["call_arrived", "operator_connected", "call_hold_changed"]
    assert events[2].as_dict()["on_hold"] is True
    snap = session.tracker.call_for_interface("Local/101@operator-phones")
    assert snap is not None and snap.state == "connected" and snap.on_hold
    assert session.tracker.resync(view) == []  # nothing twice
    resumed = session.feed_until(1796187316.9)  # 保留解除: Asterisk's Unhold
    assert [(e.type, e.as_dict().get("on_hold")) for e in resumed] == [("call_hold_changed", False)]


def test_a_member_leg_in_its_queue_application_is_connected_not_on_hold() -> None:
    session = Session("18-consult-cancel-hold-resume.txt")
    session.skip_until(HOLD_18 - 1.0)
    view = session.asterisk_view(HOLD_18 - 1.0)
    next(c for c in view if c["Channel"] == OPERATOR_18).update(Application="AppQueue", ApplicationData="")
    assert [e.type for e in session.tracker.resync(view)] == ["call_arrived", "operator_connected"]
    snap = session.tracker.call_for_interface("Local/101@operator-phones")
    assert snap is not None and not snap.on_hold


CONSULT_18 = 1796187315.0  # capture 18: the operator talks with 保険年金課 (202), the citizen on hold


def test_a_restarted_cti_finds_a_consult_in_progress() -> None:
    session = Session("18-consult-cancel-hold-resume.txt")
    session.skip_until(CONSULT_18)
    view = session.asterisk_view(CONSULT_18)
    next(c for c in view if c["Channel"] == OPERATOR_18).update(Application="AppQueue")
    events = [(e.type, e.as_dict()) for e in session.tracker.resync(view)]
    assert [t for t, _ in events] == ["call_arrived", "operator_connected", "call_hold_changed", "consult_changed"]
    assert events[2][1]["on_hold"] is True
    assert (events[3][1]["state"], events[3][1]["extension"]) == ("started", "202")
    snap = session.tracker.call_for_interface("Local/101@operator-phones")
    assert snap is not None and snap.state == "connected" and snap.consult_extension == "202"
    # not ringing: the operator's leg is bridged with the consult leg, not with the citizen
    assert all(t != "operator_ringing" for t, _ in events)


COMPLETED_17 = 1796187290.0  # capture 17: the consult was completed, the citizen talks with 201


def test_a_call_handed_to_a_department_is_not_shown_at_an_operators_seat() -> None:
    session = Session("17-consult-transfer-complete.txt")
    session.skip_until(COMPLETED_17)
    view = session.asterisk_view(COMPLETED_17)
    for c in view:  # a trunk leg moved on from from-pstn to the queue (the shipped dialplan)
        if c["Context"] == "from-pstn":
            c["Context"] = "cti-queue"
    assert session.tracker.resync(view) == []  # no call_arrived: it would end as not answered
    assert [c.kind for c in session.tracker.live_calls()] == ["unknown"]  # kept as "other", as before
    assert session.tracker.call_for_interface("Local/101@operator-phones") is None
