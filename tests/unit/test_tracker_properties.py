"""Properties: random orders and random subsets of the real captured events never break the tracker.

* it never raises;
* it never leaks a call: a call still live at the end has a channel whose Hangup was not fed;
* a call ends at most once; after ``resync([])`` nothing is live;
* every domain event is JSON-serialisable, aware, and belongs to a Linkedid that was fed.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.core.clock import TOKYO
from telephony.events import DomainEvent
from telephony.frames import read_capture
from telephony.tracker import CallTracker

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
CAPTURES = sorted(FIXTURES.glob("0*.txt"))
EVENTS: dict[str, list[dict[str, str]]] = {
    path.name: [c.frame for c in read_capture(path) if "Event" in c.frame] for path in CAPTURES
}
ALL_EVENTS = [event for events in EVENTS.values() for event in events]
END_TYPES = {"call_ended", "callback_ended"}

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 9, 0, tzinfo=TOKYO)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def leak_allowed(fed: list[Mapping[str, str]]) -> set[str]:
    """Linkedids that may stay live: one of their channels was seen but its Hangup was not fed."""
    seen: dict[str, str] = {}
    hung: set[str] = set()
    for event in fed:
        uid, linkedid = event.get("Uniqueid"), event.get("Linkedid")
        if event.get("Event") == "Hangup" and uid:
            hung.add(uid)
        elif uid and linkedid and event.get("Channel"):
            seen.setdefault(uid, linkedid)
    return {linkedid for uid, linkedid in seen.items() if uid not in hung}


def check(fed: list[Mapping[str, str]], out: list[DomainEvent], tracker: CallTracker) -> None:
    linkedids = {e.get("Linkedid") for e in fed} | {e.get("DestLinkedid") for e in fed}
    for event in out:
        json.dumps(event.as_dict())
        assert event.at.tzinfo is not None
        assert event.call_id in linkedids
    ends = Counter(e.call_id for e in out if e.type in END_TYPES)
    assert all(n == 1 for n in ends.values()), ends
    live = {c.call_id for c in tracker.live_calls()}
    assert live <= leak_allowed(fed), live - leak_allowed(fed)
    assert not live & set(ends)  # an ended call is not live


def run(fed: list[Mapping[str, str]]) -> tuple[list[DomainEvent], CallTracker]:
    tracker = CallTracker(Clock())
    out: list[DomainEvent] = []
    for event in fed:
        out += tracker.feed(event)
    return out, tracker


@PROPERTY_SETTINGS
@given(st.sampled_from(sorted(EVENTS)), st.integers(0, 2**64))
def test_random_order_of_a_whole_capture_ends_every_call(name: str, seed: int) -> None:
    fed = list(EVENTS[name])
    random.Random(seed).shuffle(fed)
    out, tracker = run(fed)
    check(fed, out, tracker)
    assert tracker.live_calls() == []  # every Hangup was fed: nothing may stay live


@PROPERTY_SETTINGS
@given(st.lists(st.booleans(), min_size=len(ALL_EVENTS), max_size=len(ALL_EVENTS)))
def test_random_subset_in_wire_order(keep: list[bool]) -> None:
    fed = [event for event, k in zip(ALL_EVENTS, keep, strict=True) if k]
    out, tracker = run(fed)
    check(fed, out, tracker)


@PROPERTY_SETTINGS
@given(st.integers(0, 2**64), st.floats(min_value=0.0, max_value=1.0))
def test_random_subset_in_random_order_of_all_captures_interleaved(seed: int, ratio: float) -> None:
    rnd = random.Random(seed)
    fed = [event for event in ALL_EVENTS if rnd.random() < ratio]
    rnd.shuffle(fed)
    out, tracker = run(fed)
    check(fed, out, tracker)
    # After a reconnect where Asterisk has no channels, nothing is live and nothing ends twice.
    out += tracker.resync([])
    assert tracker.live_calls() == []
    ends = Counter(e.call_id for e in out if e.type in END_TYPES)
    assert all(n == 1 for n in ends.values()), ends


@PROPERTY_SETTINGS
@given(st.integers(0, 2**64))
def test_duplicated_events_change_nothing(seed: int) -> None:
    rnd = random.Random(seed)
    for name, events in EVENTS.items():
        once, _ = run(events)
        doubled: list[Mapping[str, str]] = []
        for event in events:
            doubled.append(event)
            if rnd.random() < 0.3:
                doubled.append(dict(event))  # the same frame twice (e.g. the repeated DialEnd CANCEL)
        twice, tracker = run(doubled)
        assert [(e.type, e.call_id) for e in twice] == [(e.type, e.call_id) for e in once], name
        assert tracker.live_calls() == []


KEYS = ["Event", "Channel", "Uniqueid", "Linkedid", "Context", "Exten", "DestChannel", "Variable", "Value",
        "DialStatus", "Queue", "Position", "HoldTime", "Interface", "Reason", "ChannelState", "Cause",
        "Response", "Result", "DestLinkedid", "BridgeUniqueid", "Application"]
VALUES = st.sampled_from([
    "", "1", "2", "x", "Hangup", "Newchannel", "VarSet", "DialEnd", "DialBegin", "AgentCalled", "AgentConnect",
    "AgentComplete", "QueueCallerJoin", "QueueCallerAbandon", "BridgeEnter", "Newexten", "OriginateResponse",
    "BlindTransfer", "CTI_ROUTE", "CTI_CALLBACK_ID", "open", "ANSWER", "CANCEL",
    "from-pstn", "outbound-callback", "departments", "Local/1@a-1;1", "Local/1@a-1;2", "PJSIP/op1-00000001",
    "6", "Success", "agent", "transfer", "<unknown>", "Hangup",
])


@PROPERTY_SETTINGS
@given(st.lists(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=10), max_size=60))
def test_arbitrary_frames_never_raise(frames: list[dict[str, str]]) -> None:
    out, tracker = run(frames)
    check(frames, out, tracker)
    tracker.resync([])
    assert tracker.live_calls() == []
