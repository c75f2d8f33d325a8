"""Pop router: given tracker domain events and a seat map, when events arrive, then each operator
gets only what is theirs (the sequences mirror capture 05: two concurrent calls, two operators)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from cti.core.clock import TOKYO
from screenpop.messages import CallUpdate, Ringing
from screenpop.router import CallFinished, ComposePop, Notify, PopRouter, RingNotAnswered
from screenpop.seats import SeatMap
from telephony.events import (
    CallAbandoned,
    CallArrived,
    CallEnded,
    CallQueued,
    CallRouted,
    CallTransferred,
    OperatorConnected,
    OperatorMissed,
    OperatorRinging,
)

T0 = datetime(2026, 11, 27, 10, 0, 0, tzinfo=TOKYO)
OP1 = "Local/101@operator-phones"
OP2 = "Local/102@operator-phones"
CALL_A = "1795822216.16"
CALL_B = "1795822216.18"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def seats() -> SeatMap:
    m = SeatMap()
    m.take("tanaka", OP1)
    m.take("suzuki", OP2)
    return m


def arrive(call_id: str, number: str | None, t: float, category: str | None = "kosodate") -> list[object]:
    return [
        CallArrived(call_id=call_id, at=at(t), caller_number=number, caller_name=None, dialled_number="0355550000"),
        CallRouted(call_id=call_id, at=at(t + 0.1), route="open", reason=None, category=category),
        CallQueued(call_id=call_id, at=at(t + 0.2), queue="soudan", position=1),
    ]


def ring(call_id: str, iface: str, t: float, number: str | None = None) -> OperatorRinging:
    return OperatorRinging(call_id=call_id, at=at(t), interface=iface, member_name=None, queue="soudan",
                           caller_number=number, caller_name=None)


def connect(call_id: str, iface: str, t: float, hold: int | None) -> OperatorConnected:
    return OperatorConnected(call_id=call_id, at=at(t), interface=iface, member_name=None, queue="soudan",
                             hold_time=hold)


def ended(call_id: str, iface: str | None, t: float, reason: str = "answered") -> CallEnded:
    return CallEnded(call_id=call_id, at=at(t), reason=reason, hung_up_by="citizen", cause=16,
                     cause_text="Normal Clearing", last_state="Up", duration_s=t, talk_s=5.0, interface=iface)


def feed_all(router: PopRouter, events: list[object]) -> list[object]:
    out: list[object] = []
    for e in events:
        out.extend(router.feed(e))  # type: ignore[arg-type]
    return out


def test_two_concurrent_calls_each_operator_gets_only_its_own_pop() -> None:
    router = PopRouter(seats())
    actions = feed_all(router, [
        *arrive(CALL_A, "0312345678", 0),
        *arrive(CALL_B, "0398765432", 1, category="zei"),
        ring(CALL_A, OP1, 2),
        ring(CALL_B, OP2, 3),
        connect(CALL_A, OP1, 4, hold=4),
        connect(CALL_B, OP2, 6, hold=5),
    ])
    rings = [a for a in actions if isinstance(a, Notify) and isinstance(a.message, Ringing)]
    assert [(a.user_id, a.message.call_id, a.message.interface) for a in rings] == [
        ("tanaka", CALL_A, OP1), ("suzuki", CALL_B, OP2)]
    pops = [a for a in actions if isinstance(a, ComposePop)]
    assert [(p.user_id, p.call.call_id, p.call.caller_number, p.call.category) for p in pops] == [
        ("tanaka", CALL_A, "0312345678", "kosodate"), ("suzuki", CALL_B, "0398765432", "zei")]
    assert [p.call.waited_seconds for p in pops] == [4.0, 5.0]
    assert router.answered_by(CALL_A) == "tanaka" and router.answered_by(CALL_B) == "suzuki"


def test_ringing_notice_carries_no_personal_data() -> None:
    router = PopRouter(seats())
    feed_all(router, arrive(CALL_A, "0312345678", 0))
    [action] = router.feed(ring(CALL_A, OP1, 1, number="0312345678"))
    assert isinstance(action, Notify)
    wire = action.message.model_dump_json()
    assert "0312345678" not in wire
    assert set(action.message.model_dump()) == {
        "type", "seq", "call_id", "reference", "interface", "category", "category_label", "waited_seconds"}


def test_ringing_notice_says_what_the_caller_chose_and_how_long_they_waited() -> None:
    router = PopRouter(seats())
    feed_all(router, arrive(CALL_A, "0312345678", 0, category="zei"))
    [action] = router.feed(ring(CALL_A, OP1, 12.2))
    assert isinstance(action, Notify) and isinstance(action.message, Ringing)
    notice = action.message
    assert (notice.category, notice.category_label, notice.waited_seconds) == ("zei", "税", 12)  # queued at t=0.2
    feed_all(router, arrive(CALL_B, "0312345678", 20, category=None))
    [action] = router.feed(ring(CALL_B, OP2, 21))
    assert isinstance(action.message, Ringing) and action.message.category_label == "未選択"


def test_unseated_interface_gets_nothing_and_no_pop() -> None:
    router = PopRouter(seats())
    feed_all(router, arrive(CALL_A, "0312345678", 0))
    assert router.feed(ring(CALL_A, "PJSIP/op109", 1)) == []
    assert router.feed(connect(CALL_A, "PJSIP/op109", 2, hold=2)) == []
    assert router.answered_by(CALL_A) is None


def test_ringall_answer_elsewhere_clears_the_other_ringing_notice() -> None:
    router = PopRouter(seats())
    feed_all(router, arrive(CALL_A, "0312345678", 0))
    router.feed(ring(CALL_A, OP1, 1))
    router.feed(ring(CALL_A, OP2, 1))
    actions = router.feed(connect(CALL_A, OP2, 3, hold=None))
    assert len(actions) == 2
    first, second = actions
    assert isinstance(first, Notify) and first.user_id == "tanaka"
    assert isinstance(first.message, CallUpdate) and first.message.event == "hangup"
    assert first.message.detail["ringing"] is True
    assert isinstance(second, ComposePop) and second.user_id == "suzuki"
    # no hold_time: the wait is measured from the queue entry (0.2 s) to the answer (3 s)
    assert second.call.waited_seconds == pytest.approx(2.8)


def test_missed_then_answered_by_other_seat() -> None:
    router = PopRouter(seats())
    feed_all(router, arrive(CALL_A, "0312345678", 0))
    router.feed(ring(CALL_A, OP1, 1))
    [miss, away] = router.feed(
        OperatorMissed(call_id=CALL_A, at=at(16), interface=OP1, reason="no_answer", ring_ms=15000))
    assert isinstance(miss, Notify) and miss.user_id == "tanaka"
    assert away == RingNotAnswered("tanaka", CALL_A, OP1)  # the desk sets them away: 不在着信
    assert isinstance(miss.message, CallUpdate) and miss.message.detail["reason"] == "missed:no_answer"
    router.feed(ring(CALL_A, OP2, 17))
    [pop] = router.feed(connect(CALL_A, OP2, 18, hold=18))
    assert isinstance(pop, ComposePop) and pop.user_id == "suzuki"
    # a second missed for the same interface is not repeated
    assert router.feed(OperatorMissed(call_id=CALL_A, at=at(19), interface=OP1, reason="no_answer")) == []


def test_transfer_and_hangup_go_to_the_answering_operator_even_after_leaving_the_seat() -> None:
    m = seats()
    router = PopRouter(m)
    feed_all(router, [*arrive(CALL_A, "0312345678", 0), ring(CALL_A, OP1, 1), connect(CALL_A, OP1, 2, hold=2)])
    m.release_user("tanaka")
    [xfer, done] = router.feed(CallTransferred(call_id=CALL_A, at=at(30), target="205@departments", interface=OP1,
                                               method="blind"))
    assert done == CallFinished("tanaka", CALL_A)  # free for 後処理 once the call went to the department
    assert isinstance(xfer, Notify) and xfer.user_id == "tanaka"
    assert isinstance(xfer.message, CallUpdate) and xfer.message.event == "transferred"
    assert xfer.message.detail["target"] == "205@departments"
    [hang] = router.feed(ended(CALL_A, OP1, 60))  # no second CallFinished after the transfer
    assert isinstance(hang, Notify) and hang.user_id == "tanaka"
    assert isinstance(hang.message, CallUpdate) and hang.message.event == "hangup"
    assert hang.message.detail["reason"] == "answered" and hang.message.detail["hung_up_by"] == "citizen"
    assert router.active_calls == 0
    assert router.feed(ended(CALL_A, OP1, 61)) == []  # forgotten: a duplicate end sends nothing


def test_abandoned_while_ringing_clears_the_notice_and_sends_no_pop() -> None:
    router = PopRouter(seats())
    feed_all(router, arrive(CALL_A, "0312345678", 0))
    router.feed(ring(CALL_A, OP1, 1))
    [clear] = router.feed(CallAbandoned(call_id=CALL_A, at=at(5), queue="soudan", position=1, hold_time=5))
    assert isinstance(clear, Notify) and clear.user_id == "tanaka"
    assert isinstance(clear.message, CallUpdate) and clear.message.detail["reason"] == "abandoned"
    assert router.feed(ended(CALL_A, None, 5, reason="abandoned")) == []


def test_withheld_number_and_resynced_connect_without_arrival() -> None:
    router = PopRouter(seats())
    # after a reconnect the tracker may report a connected call it never saw arrive
    [pop] = router.feed(OperatorConnected(call_id=CALL_B, at=at(100), interface=OP2, member_name=None, queue=None,
                                          hold_time=None, resynced=True))
    assert isinstance(pop, ComposePop)
    assert pop.call.caller_number is None and pop.call.category is None and pop.call.waited_seconds == 0.0


def test_memory_is_bounded() -> None:
    router = PopRouter(seats(), max_calls=3)
    for i in range(10):
        router.feed(CallArrived(call_id=f"c{i}", at=at(i), caller_number="0312345678", caller_name=None,
                                dialled_number=None))
    assert router.active_calls == 3
    with pytest.raises(ValueError, match="max_calls"):
        PopRouter(seats(), max_calls=0)
