"""Pop router fed by the real tracker with real Asterisk 22 captures (tests/fixtures/ami)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from screenpop.messages import CallUpdate, Ringing
from screenpop.router import Action, CallFinished, ComposePop, Notify, PopRouter, RingNotAnswered
from screenpop.seats import SeatMap
from telephony.frames import read_capture
from telephony.tracker import CallTracker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ami"
OP1 = "Local/101@operator-phones"
OP2 = "Local/102@operator-phones"


def replay(name: str, seats: SeatMap) -> list[Action]:
    now = {"t": datetime(2026, 11, 27, 1, 0, tzinfo=UTC)}
    tracker = CallTracker(lambda: now["t"])
    router = PopRouter(seats)
    actions: list[Action] = []
    for captured in read_capture(FIXTURES / name):
        if "Event" not in captured.frame:
            continue
        if captured.t is not None:
            now["t"] = datetime.fromtimestamp(captured.t, UTC)
        for event in tracker.feed(captured.frame):
            actions.extend(router.feed(event))
    assert router.active_calls == 0  # every call ended: nothing kept
    return actions


def two_seats() -> SeatMap:
    seats = SeatMap()
    seats.take("tanaka", OP1)
    seats.take("suzuki", OP2)
    return seats


def for_user(actions: list[Action], user: str) -> list[Action]:
    return [a for a in actions if a.user_id == user]


def kinds(actions: list[Action]) -> list[str]:
    out = []
    for a in actions:
        if isinstance(a, Notify):
            ringing = isinstance(a.message, CallUpdate) and a.message.detail.get("ringing")
            out.append(a.message.type + ("(ringing)" if ringing else ""))
        else:
            out.append({ComposePop: "pop", CallFinished: "finished", RingNotAnswered: "not_answered"}[type(a)])
    return out


def test_capture_05_two_concurrent_calls_each_operator_gets_only_its_own() -> None:
    actions = replay("05-two-concurrent-calls.txt", two_seats())
    tanaka, suzuki = for_user(actions, "tanaka"), for_user(actions, "suzuki")
    assert len(tanaka) + len(suzuki) == len(actions)
    assert kinds(tanaka) == ["ringing", "pop", "call_update", "finished"]
    assert kinds(suzuki) == ["ringing", "pop", "call_update", "finished"]
    pop1 = next(a for a in tanaka if isinstance(a, ComposePop))
    pop2 = next(a for a in suzuki if isinstance(a, ComposePop))
    assert (pop1.call.call_id, pop1.call.caller_number, pop1.interface) == ("1795822216.16", "0312345678", OP1)
    assert (pop2.call.call_id, pop2.call.caller_number, pop2.interface) == ("1795822216.18", "0398765432", OP2)
    assert pop1.call.waited_seconds == 2.0  # the queue's HoldTime
    # nothing of one call reaches the other operator
    assert all(getattr(a, "call", None) is None or a.call.call_id == "1795822216.16" for a in tanaka)
    for a in tanaka:
        if isinstance(a, Notify):
            assert a.message.call_id == "1795822216.16"
            assert "0398765432" not in a.message.model_dump_json()
    ringing = [a.message for a in actions if isinstance(a, Notify) and isinstance(a.message, Ringing)]
    assert len(ringing) == 2
    for m in ringing:  # the ringing notice carries ids only, never the caller number
        assert "0312345678" not in m.model_dump_json() and "0398765432" not in m.model_dump_json()


def test_capture_02_abandon_after_two_missed_rings_clears_both_and_pops_nobody() -> None:
    actions = replay("02-inbound-queue-abandon.txt", two_seats())
    assert not any(isinstance(a, ComposePop) for a in actions)
    # one phone rang out (away: 不在着信); the other stopped ringing because the caller hung up
    assert sorted([kinds(for_user(actions, "tanaka")), kinds(for_user(actions, "suzuki"))]) == [
        ["ringing", "call_update(ringing)"], ["ringing", "call_update(ringing)", "not_answered"]]
    updates = [a.message for a in actions if isinstance(a, Notify) and isinstance(a.message, CallUpdate)]
    reasons = [m.detail["reason"] for m in updates]
    assert reasons == ["missed:no_answer", "missed:caller_hung_up"]


def test_capture_01_answered_with_only_one_seat_taken() -> None:
    seats = SeatMap()
    seats.take("suzuki", OP2)  # nobody sits at 101, which answers
    assert replay("01-inbound-queue-answered.txt", seats) == []
