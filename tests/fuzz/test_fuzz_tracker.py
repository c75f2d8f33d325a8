"""Fuzzing the call tracker (telephony/tracker/) with mutated real events.

Templates are every event of the real Asterisk 22 captures (tests/fixtures/ami); each generated
event takes a template and rewrites its ids (Uniqueid, Linkedid, Channel and their Dest* twins)
from small pools, so unrelated calls interleave, collide and go out of order; some fields are
dropped or replaced by junk. Claims: ``feed`` never raises and every domain event is
JSON-serialisable and time-zone aware; after a Hangup for every channel ever seen, no call is
live; every internal table stays bounded (1M events in long mode, fresh ids throughout).
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta
from pathlib import Path

from fuzz_support import LONG, figures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.core.clock import TOKYO
from telephony.frames import read_capture
from telephony.tracker import CallTracker, TrackerConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
TEMPLATES = [c.frame for path in sorted(FIXTURES.glob("0*.txt")) for c in read_capture(path) if "Event" in c.frame]
UID_KEYS = ("Uniqueid", "DestUniqueid", "TransfereeUniqueid", "TransferTargetUniqueid", "OrigTransfererUniqueid",
            "SecondTransfererUniqueid")
LINKED_KEYS = ("Linkedid", "DestLinkedid", "TransfereeLinkedid", "TransferTargetLinkedid",
               "OrigTransfererLinkedid", "SecondTransfererLinkedid")
CHANNEL_KEYS = ("Channel", "DestChannel", "TransfereeChannel", "TransferTargetChannel", "OrigTransfererChannel",
                "SecondTransfererChannel", "Original", "Newname")
CHANNELS = ["PJSIP/trunk-0000000{}", "PJSIP/op101-0000000{}", "PJSIP/op102-0000000{}",
            "Local/101@operator-phones-0000000{};1", "Local/101@operator-phones-0000000{};2",
            "Local/201@department-phones-0000000{};1"]
JUNK = ["", " ", "\x00", "ｱ" * 3, "-1", "99999999999999999999", "None", "Up", "6", "operators", "from-pstn"]
EXAMPLES = 20_000 if LONG else 1_500
COUNTS = {"examples": 0, "events": 0, "domain_events": 0}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 9, 0, tzinfo=TOKYO)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=7)
        return self.now


def mutate(template: dict[str, str], rnd: random.Random, uids: list[str], linkedids: list[str]) -> dict[str, str]:
    """A template with its ids rewritten from the pools. As in Asterisk, a Uniqueid keeps one
    Linkedid and one channel name for its whole life; everything else may collide or reorder."""
    event = dict(template)
    picks = [rnd.choice(uids) for _ in UID_KEYS]
    for uid_key, linked_key, chan_key, uid in zip(UID_KEYS, LINKED_KEYS, CHANNEL_KEYS, picks, strict=False):
        if uid_key in event:
            event[uid_key] = uid
        if linked_key in event:
            event[linked_key] = linkedids[int(uid.rsplit('.', 1)[1]) % len(linkedids)]
        if chan_key in event:
            n = int(uid.rsplit(".", 1)[1])
            event[chan_key] = CHANNELS[n % len(CHANNELS)].format(n % 10)
    for key in ("Original", "Newname"):
        if key in event:
            event[key] = rnd.choice(CHANNELS).format(rnd.randint(0, 9))
    ids = set(UID_KEYS) | set(LINKED_KEYS) | set(CHANNEL_KEYS) | {"Event"}
    if rnd.random() < 0.15:  # drop a field
        droppable = [k for k in event if k != "Event"]
        if droppable:
            del event[rnd.choice(droppable)]
    if rnd.random() < 0.15:  # junk in a field that is not an id
        others = [k for k in event if k not in ids]
        if others:
            event[rnd.choice(others)] = rnd.choice(JUNK)
    return event


def run(tracker: CallTracker, events: list[dict[str, str]]) -> int:
    produced = 0
    for event in events:
        for domain in tracker.feed(event):
            json.dumps(domain.as_dict())
            assert domain.at.tzinfo is not None
            produced += 1
    return produced


def hang_up_everything(tracker: CallTracker, events: list[dict[str, str]]) -> None:
    seen: dict[str, str] = {}
    for event in events:
        for uid_key, chan_key in zip(UID_KEYS, CHANNEL_KEYS, strict=False):
            uid = event.get(uid_key)
            if uid:
                seen[uid] = event.get(chan_key, "") or seen.get(uid, "")
    for uid, channel in seen.items():
        tracker.feed({"Event": "Hangup", "Uniqueid": uid, "Channel": channel, "Cause": "16"})


def check_bounded(tracker: CallTracker) -> None:
    config = tracker.config
    assert len(tracker._dead_uids) <= config.tombstone_limit
    assert len(tracker._ended_ids) <= config.tombstone_limit
    assert len(tracker.recent_calls()) <= config.recent_limit


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**32), st.integers(1, 120))
def test_mutated_event_streams(seed: int, length: int) -> None:
    COUNTS["examples"] += 1
    rnd = random.Random(seed)
    uids = [f"1764300000.{n}" for n in range(rnd.randint(1, 8))]
    linkedids = uids[: rnd.randint(1, len(uids))]
    events = [mutate(rnd.choice(TEMPLATES), rnd, uids, linkedids) for _ in range(length)]
    tracker = CallTracker(Clock())
    COUNTS["events"] += len(events)
    COUNTS["domain_events"] += run(tracker, events)
    hang_up_everything(tracker, events)
    assert tracker.live_calls() == [], [c.call_id for c in tracker.live_calls()]
    check_bounded(tracker)
    tracker.resync([])
    assert len(tracker) == 0


def test_zz_figures_short_run() -> None:
    figures("fuzz_tracker", hypothesis=dict(COUNTS), long_mode=LONG)
    assert COUNTS["examples"] > 0 and COUNTS["domain_events"] > 0


def test_long_stream_keeps_memory_bounded() -> None:
    """1,000,000 events in long mode (20,000 in CI) through one tracker, ids always fresh:
    every table stays within its limit and nothing is live once everything hung up."""
    total = 1_000_000 if LONG else 20_000
    rnd = random.Random(7)
    tracker = CallTracker(Clock(), TrackerConfig(tombstone_limit=5_000, recent_limit=100))
    produced = peak_live = 0
    started = time.monotonic()
    batch_size = 200
    for base in range(0, total, batch_size):
        uids = [f"{1764300000 + base}.{n}" for n in range(4)]
        batch = [mutate(rnd.choice(TEMPLATES), rnd, uids, uids[:2]) for _ in range(batch_size)]
        produced += run(tracker, batch)
        peak_live = max(peak_live, len(tracker))
        hang_up_everything(tracker, batch)
        assert len(tracker) == 0
        check_bounded(tracker)
    elapsed = time.monotonic() - started
    figures("fuzz_tracker", stream_events=total, stream_domain_events=produced, stream_peak_live_calls=peak_live,
            stream_seconds=round(elapsed, 1), dead_uids_kept=len(tracker._dead_uids),
            ended_ids_kept=len(tracker._ended_ids))
    assert produced > 0
