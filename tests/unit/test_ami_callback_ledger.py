"""Callback originate rules (pure): one live attempt per record, never re-sent, resync decides."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from cti.core.clock import TOKYO, fixed_clock
from telephony.ami.actions import encode_action
from telephony.ami.filters import adapter_keeps, event_filters, manager_conf_eventfilters
from telephony.ami.link import backoff_delay
from telephony.control import CallbackAlreadyActive, CallbackLedger, CallbackState
from telephony.frames import parse_frame, read_capture

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
CLOCK = fixed_clock(datetime(2026, 11, 27, 10, 0, tzinfo=TOKYO))


def test_capture_04_runs_queued_answered_ended() -> None:
    ledger = CallbackLedger(CLOCK)
    ledger.begin("cb-1", "sc4-callback")
    states = [ledger.accepted("cb-1").state]
    for captured in read_capture(FIXTURES / "04-outbound-callback.txt"):
        changed = ledger.feed(captured.frame)
        if changed is not None and changed.state != states[-1]:
            states.append(changed.state)
    assert states == [CallbackState.QUEUED, CallbackState.ANSWERED, CallbackState.ENDED]


def test_one_active_attempt_per_record() -> None:
    ledger = CallbackLedger(CLOCK)
    ledger.begin("cb-1", "a1")
    with pytest.raises(CallbackAlreadyActive):
        ledger.begin("cb-1", "a2")
    ledger.refused("cb-1", "Extension does not exist.")
    assert ledger.begin("cb-1", "a3").state is CallbackState.SENDING


def test_uncertain_is_decided_by_reconcile() -> None:
    ledger = CallbackLedger(CLOCK)
    ledger.begin("up", "a1")
    ledger.begin("gone", "a2")
    ledger.begin("answered", "a3")
    ledger.outcome_unknown("up", "AmiConnectionLost")
    ledger.outcome_unknown("gone", "AmiTimeout")
    ledger.accepted("answered")
    ledger.feed({"Event": "OriginateResponse", "ActionID": "a3", "Response": "Success", "Uniqueid": "9.1"})
    assert ledger.get("up").state is CallbackState.UNCERTAIN  # type: ignore[union-attr]
    ledger.reconcile({"up": frozenset({"1.1"})})
    assert ledger.get("up").state is CallbackState.QUEUED  # type: ignore[union-attr]
    assert ledger.get("gone").state is CallbackState.LOST  # type: ignore[union-attr]
    assert ledger.get("answered").state is CallbackState.ENDED  # type: ignore[union-attr]


def test_reconcile_only_judges_attempts_older_than_the_snapshot() -> None:
    ledger = CallbackLedger(CLOCK)
    ledger.begin("old", "a1")
    ledger.begin("new", "a2")
    ledger.reconcile({}, only=frozenset({"old"}))
    assert ledger.get("old").state is CallbackState.LOST  # type: ignore[union-attr]
    assert ledger.get("new").state is CallbackState.SENDING  # type: ignore[union-attr]


def test_varset_of_the_callback_id_reveals_the_channel() -> None:
    ledger = CallbackLedger(CLOCK)
    ledger.begin("cb-5", "a1")
    ledger.outcome_unknown("cb-5", "AmiTimeout")
    changed = ledger.feed({"Event": "VarSet", "Variable": "CTI_CALLBACK_ID", "Value": "cb-5", "Uniqueid": "7.1"})
    assert changed is not None and changed.state is CallbackState.QUEUED and changed.channels == {"7.1"}
    ended = ledger.feed({"Event": "Hangup", "Uniqueid": "7.1"})
    assert ended is not None and ended.state is CallbackState.ENDED


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    assert [backoff_delay(n, 0.5, 30, lambda: 1.0) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert [backoff_delay(n, 0.5, 30, lambda: 0.0) for n in range(3)] == [0.25, 0.5, 1]
    assert backoff_delay(10_000, 0.5, 30, lambda: 0.5) == 22.5
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, 0.5, 30, lambda: 0.5)


def test_encode_action_refuses_header_injection() -> None:
    assert encode_action({"Action": "Ping", "ActionID": "x"}) == b"Action: Ping\r\nActionID: x\r\n\r\n"
    assert encode_action({"Action": "Originate", "Variable": ["A=1", "B=2"]}).count(b"Variable: ") == 2
    with pytest.raises(ValueError, match="line breaks"):
        encode_action({"Action": "Hangup", "Channel": "x\nAction: Originate"})


def test_frame_parsing_keeps_channel_variables() -> None:
    """The live link parses with telephony.frames (as replays do): every ChanVariable is kept."""
    frame = parse_frame("Event: CoreShowChannel\nChanVariable: CTI_CALLBACK_ID=cb-1\nChanVariable: CTI_ROUTE=open\n"
                        "State: A\nState: B")
    assert frame == {
        "Event": "CoreShowChannel",
        "ChanVariable(CTI_CALLBACK_ID)": "cb-1",
        "ChanVariable(CTI_ROUTE)": "open",
        "State": "A",
    }


def test_filters_keep_cti_varsets_and_only_the_newexten_the_tracker_reads() -> None:
    filters = event_filters(["Hangup"], ["outbound-callback", "departments"])
    assert filters[0]["MatchCriteria"] == "action(include),name(Hangup)"
    by_criteria = {f["MatchCriteria"]: f.get("Filter") for f in filters[1:]}
    assert by_criteria == {
        "action(include),name(VarSet),header(Variable),method(regex)": "^_{0,2}CTI_",
        "action(include),name(Newexten),header(Application),method(regex)": "^Hangup$",
        "action(include),name(Newexten),header(Context),method(regex)": "^(departments|outbound-callback)$",
    }
    with pytest.raises(ValueError, match="context"):
        event_filters([], ["bad|context"])


def test_adapter_keeps_mirrors_the_filters_on_a_real_capture() -> None:
    frames = [c.frame for c in read_capture(FIXTURES / "01-inbound-queue-answered.txt") if "Event" in c.frame]
    kept = [f for f in frames if adapter_keeps(f)]
    names = {f["Event"] for f in kept}
    assert "TestEvent" not in names and "DeviceStateChange" not in names and "SuccessfulAuth" not in names
    assert {"Newchannel", "QueueCallerJoin", "AgentConnect", "Hangup", "OriginateResponse"} <= names
    assert all(f["Variable"].startswith("CTI_") for f in kept if f["Event"] == "VarSet")
    assert all(f["Application"] == "Hangup" for f in kept if f["Event"] == "Newexten")
    assert len(kept) < len(frames) * 0.6  # most of the traffic stays in Asterisk


def test_manager_conf_lines_carry_the_same_filters() -> None:
    lines = manager_conf_eventfilters(["Hangup"], ["departments"])
    assert lines == [
        "eventfilter(action(include),name(Hangup)) =",
        "eventfilter(action(include),name(VarSet),header(Variable),method(regex)) = ^_{0,2}CTI_",
        "eventfilter(action(include),name(Newexten),header(Application),method(regex)) = ^Hangup$",
        "eventfilter(action(include),name(Newexten),header(Context),method(regex)) = ^(departments)$",
    ]


def test_finished_attempts_are_bounded_and_active_ones_never_dropped() -> None:
    ledger = CallbackLedger(CLOCK, keep_finished=3)
    ledger.begin("live", "a-live")
    for n in range(10):
        ledger.begin(f"cb-{n}", f"a-{n}")
        ledger.refused(f"cb-{n}", "busy")
    ledger.begin("next", "a-next")
    assert ledger.get("live") is not None and ledger.get("live").active  # type: ignore[union-attr]
    kept = [f"cb-{n}" for n in range(10) if ledger.get(f"cb-{n}") is not None]
    assert kept == ["cb-7", "cb-8", "cb-9"]
    # an old attempt's late OriginateResponse changes nothing
    assert ledger.feed({"Event": "OriginateResponse", "ActionID": "a-0", "Response": "Success"}) is None
