"""Queue member presence (pure): resync from QueueStatus items, then real capture events."""

from __future__ import annotations

from pathlib import Path

from telephony.frames import read_capture
from telephony.presence import Activity, DeviceStatus, PresenceBoard

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
OP101 = "Local/101@operator-phones"
OP102 = "Local/102@operator-phones"


def member(location: str, name: str, status: str = "1", paused: str = "0", reason: str = "") -> dict[str, str]:
    return {
        "Event": "QueueMember",
        "Queue": "operators",
        "Name": name,
        "Location": location,
        "StateInterface": location,
        "Membership": "static",
        "CallsTaken": "0",
        "Status": status,
        "Paused": paused,
        "PausedReason": reason,
    }


def board_with_two() -> PresenceBoard:
    board = PresenceBoard()
    board.resync([member(OP101, "Operator 101"), member(OP102, "Operator 102")])
    return board


def events(name: str) -> list[dict[str, str]]:
    return [f.frame for f in read_capture(FIXTURES / name) if "Event" in f.frame]


def test_resync_replaces_everything() -> None:
    board = board_with_two()
    assert [m.interface for m in board.members()] == [OP101, OP102]
    board.resync([member(OP102, "Operator 102", paused="1", reason="研修")])
    [only] = board.members()
    assert only.interface == OP102 and only.activity is Activity.PAUSED and only.activity_text == "離席中"


def test_ringing_then_no_answer_in_capture_02() -> None:
    board = board_with_two()
    seen: list[tuple[str, Activity]] = []
    for event in events("02-inbound-queue-abandon.txt"):
        changed = board.apply(event)
        if changed is not None:
            seen.append((changed.interface, changed.activity))
    assert (OP101, Activity.RINGING) in seen and (OP102, Activity.RINGING) in seen
    # both rang, neither answered: at the end nobody is ringing any more
    assert all(not m.ringing for m in board.members())
    assert seen.index((OP101, Activity.RINGING)) < seen.index((OP102, Activity.RINGING))


def test_in_use_then_available_in_capture_01() -> None:
    board = board_with_two()
    activities: list[Activity] = []
    for event in events("01-inbound-queue-answered.txt"):
        changed = board.apply(event)
        if changed is not None and changed.interface == OP101:
            activities.append(changed.activity)
    assert Activity.RINGING in activities and Activity.IN_USE in activities
    final = board.get("operators", OP101)
    assert final is not None and final.status is DeviceStatus.NOT_INUSE
    assert final.activity is Activity.AVAILABLE


def test_pause_with_reason_and_logout() -> None:
    board = board_with_two()
    changed = board.apply(
        {
            "Event": "QueueMemberPause",
            "Queue": "operators",
            "MemberName": "Operator 101",
            "Interface": OP101,
            "Status": "1",
            "Paused": "1",
            "PausedReason": "休憩",
        }
    )
    assert changed is not None and changed.paused and changed.pause_reason == "休憩"
    assert changed.activity is Activity.PAUSED
    # the same state again changes nothing
    assert (
        board.apply(
            {
                "Event": "QueueMemberPause",
                "Queue": "operators",
                "MemberName": "Operator 101",
                "Interface": OP101,
                "Status": "1",
                "Paused": "1",
                "PausedReason": "休憩",
            }
        )
        is None
    )
    gone = board.apply({"Event": "QueueMemberRemoved", "Queue": "operators", "Interface": OP101})
    assert gone is not None and gone.activity is Activity.LOGGED_OUT
    back = board.apply(
        {
            "Event": "QueueMemberAdded",
            "Queue": "operators",
            "MemberName": "Operator 101",
            "Interface": OP101,
            "Status": "1",
            "Paused": "0",
        }
    )
    assert back is not None and back.activity is Activity.AVAILABLE


def test_unknown_and_incomplete_events_change_nothing() -> None:
    board = board_with_two()
    assert board.apply({"Event": "Newexten", "Channel": "x"}) is None
    assert board.apply({"Event": "QueueMemberStatus", "Queue": "operators"}) is None
    assert board.apply({"Event": "QueueMemberRemoved", "Queue": "other", "Interface": OP101}) is None
    assert (
        board.apply({"Event": "QueueMemberStatus", "Queue": "operators", "Interface": OP101, "Status": "banana"})
        is not None
    )
    assert board.get("operators", OP101).status is DeviceStatus.UNKNOWN  # type: ignore[union-attr]
