"""The transition table is data: check its shape, and that disallowed triggers are counted, not applied."""

from __future__ import annotations

from datetime import datetime

from cti.core.clock import TOKYO
from telephony.tracker import TRANSITIONS, CallTracker, State, Trigger


def test_every_live_state_can_end_and_ended_is_final() -> None:
    for state in State:
        if state is State.ENDED:
            assert not [key for key in TRANSITIONS if key[0] is State.ENDED]
        else:
            assert TRANSITIONS[(state, Trigger.END)] is State.ENDED


def test_inbound_and_callback_states_do_not_mix() -> None:
    callback_states = {s for s in State if s.value.startswith("callback_")}
    inbound_triggers = {Trigger.ROUTE, Trigger.IVR, Trigger.QUEUE, Trigger.RING, Trigger.CONNECT, Trigger.ABANDON}
    for (source, trigger), target in TRANSITIONS.items():
        if source in callback_states and trigger in inbound_triggers:
            raise AssertionError(f"{source} --{trigger}--> {target}")
        if trigger in (Trigger.STAFF_ANSWER, Trigger.DIAL_CITIZEN, Trigger.CITIZEN_ANSWER):
            assert source in callback_states and target in callback_states


def test_a_member_ringing_no_more_never_moves_a_call_forward() -> None:
    for (source, trigger), target in TRANSITIONS.items():
        if trigger is Trigger.MISS:
            assert target is source
        if trigger is Trigger.MISS_LAST:
            assert target in (source, State.QUEUED)


def test_disallowed_trigger_is_ignored_and_counted() -> None:
    tracker = CallTracker(lambda: datetime(2026, 11, 30, 10, 0, tzinfo=TOKYO))
    trunk = {"Channel": "PJSIP/trunk-00000001", "Uniqueid": "1.1", "Linkedid": "1.1", "Context": "from-pstn",
             "Exten": "0301110000", "CallerIDNum": "0312345678"}
    tracker.feed({"Event": "Newchannel", **trunk})
    # An abandon before the call ever queued is out of order: no call_abandoned, state unchanged.
    assert tracker.feed({"Event": "QueueCallerAbandon", **trunk, "Queue": "operators", "HoldTime": "3"}) == []
    snap = tracker.get("1.1")
    assert snap is not None and snap.state == "arriving"
    assert tracker.stats["ignored_transitions"] == 1
    # The same route twice (e.g. the inherited __CTI_ROUTE on a new leg): one call_routed.
    first = tracker.feed({"Event": "VarSet", **trunk, "Variable": "CTI_ROUTE", "Value": "open"})
    second = tracker.feed({"Event": "VarSet", **trunk, "Variable": "__CTI_ROUTE", "Value": "open"})
    assert [e.type for e in first] == ["call_routed"] and second == []
    # A second QueueCallerJoin while queued is not a transition either.
    join = {"Event": "QueueCallerJoin", **trunk, "Queue": "operators", "Position": "1"}
    assert [e.type for e in tracker.feed(join)] == ["call_queued"]
    assert tracker.feed(join) == []
    assert tracker.stats["ignored_transitions"] == 2
