"""The tracker on a real PJSIP call (tests/fixtures/ami/06-sip-trunk-ivr-queue-refer-transfer.txt,
recorded by tests/e2e/test_sip_phones.py with baresip phones against the shipped pjsip.conf):
trunk caller -> IVR 2 -> queue -> PJSIP/101 answers -> the phone's own transfer key (REFER) to 201 ->
201 answers -> the citizen hangs up. Times are the ``# rx=`` times of the frames that cause them."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from test_tracker_captures import KEEPS, Replay, at

CAPTURE = "06-sip-trunk-ivr-queue-refer-transfer.txt"
CALL = "1796177312.0"


@pytest.mark.parametrize("keep", KEEPS.values(), ids=KEEPS.keys())
def test_sip_call_with_a_refer_transfer(keep: Callable[[Mapping[str, str]], bool] | None) -> None:
    events = Replay(CAPTURE, keep).run()
    assert {e.call_id for e in events} == {CALL}
    assert [(e.type, e.at) for e in events] == [
        ("call_arrived", at(1796177312.51561)),  # NewCallerid of PJSIP/pstn-trunk (From: 0312345678)
        ("call_routed", at(1796177312.536201)),  # VarSet CTI_ROUTE=open from cti's FastAGI
        ("call_queued", at(1796177318.232764)),  # QueueCallerJoin after the RFC 4733 "2"
        ("operator_ringing", at(1796177318.238675)),  # AgentCalled PJSIP/101
        ("operator_connected", at(1796177319.752328)),  # AgentConnect (the phone answered)
        ("call_transferred", at(1796177321.866393)),  # BlindTransfer: the phone's REFER
        ("call_ended", at(1796177327.425051)),  # Hangup of the trunk channel, the last one
    ]
    arrived, _routed, queued, ringing, connected, transferred, ended = (e.as_dict() for e in events)
    assert (arrived["caller_number"], arrived["dialled_number"]) == ("0312345678", "0301110000")
    assert (queued["queue"], queued["category"]) == ("operators", "zei")
    assert (ringing["interface"], ringing["member_name"]) == ("PJSIP/101", "Operator 101")
    assert (connected["interface"], connected["hold_time"]) == ("PJSIP/101", 1)
    # One REFER, one transfer: the interface is the seat that pressed the key.
    assert (transferred["target"], transferred["interface"], transferred["method"]) == (
        "201@departments", "PJSIP/101", "blind")
    assert (ended["reason"], ended["last_state"], ended["interface"]) == ("answered", "transferred", "PJSIP/101")
    assert ended["talk_s"] == pytest.approx(1796177327.425051 - 1796177319.752328, abs=0.002)


def test_no_call_is_left_live_and_the_seat_is_free_afterwards() -> None:
    replay = Replay(CAPTURE)
    replay.run(until_rx=1796177320.0)  # talking with 101
    snap = replay.tracker.call_for_interface("PJSIP/101")
    assert snap is not None and snap.call_id == CALL
    replay.run()
    assert replay.tracker.live_calls() == []
    assert replay.tracker.call_for_interface("PJSIP/101") is None
