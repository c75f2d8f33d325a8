"""The pop router with several cti nodes: a call answered at a seat this node did not know (or whose
operator's browser was on the other node) is adopted by its operator when their browser comes here
(screenpop/router.py ``adopt``, screenpop/served_seats.py)."""

from __future__ import annotations

from test_router_pop import CALL_A, CALL_B, OP1, OP2, arrive, at, connect, ended, feed_all, ring, seats

from screenpop.router import CallFinished, ComposePop, Notify, PopRouter
from screenpop.seats import SeatMap
from screenpop.served_seats import ServedSeats
from telephony.events import CallTransferred


def test_a_call_answered_at_an_empty_seat_is_adopted_by_its_operator_once_and_then_followed() -> None:
    # Another cti node seated tanaka (his browser was there); this node did not know the seat when
    # the call was answered, then that node died and his browser came here.
    nobody = SeatMap()
    router = PopRouter(nobody)
    assert feed_all(router, [*arrive(CALL_A, "0312345678", 0), ring(CALL_A, OP1, 1)]) == []
    assert router.feed(connect(CALL_A, OP1, 3, hold=2)) == []
    assert router.adopt("tanaka", OP2) is None  # not his seat's call
    nobody.take("tanaka", OP1)
    adopted = router.adopt("tanaka", OP1)
    assert isinstance(adopted, ComposePop) and adopted.user_id == "tanaka"
    assert (adopted.call.call_id, adopted.call.caller_number, adopted.call.category) == (
        CALL_A, "0312345678", "kosodate")
    assert adopted.answered_at == at(3) and adopted.call.waited_seconds == 2 and adopted.interface == OP1
    assert router.adopt("tanaka", OP1) is None  # once
    assert router.answered_by(CALL_A) == "tanaka"
    out = router.feed(ended(CALL_A, OP1, 20))
    assert [type(a) for a in out] == [Notify, CallFinished] and all(a.user_id == "tanaka" for a in out)  # type: ignore[attr-defined]
    assert router.adopt("tanaka", OP1) is None  # ended calls are forgotten


def test_a_call_transferred_away_or_ended_before_the_operator_came_is_not_adopted() -> None:
    nobody = SeatMap()
    router = PopRouter(nobody)
    feed_all(router, [*arrive(CALL_A, "0312345678", 0), connect(CALL_A, OP1, 3, hold=2),
                      CallTransferred(call_id=CALL_A, at=at(9), target="205@departments", interface=OP1,
                                      method="blind")])
    feed_all(router, [*arrive(CALL_B, "0398765432", 10), connect(CALL_B, OP2, 12, hold=1), ended(CALL_B, OP2, 15)])
    nobody.take("tanaka", OP1)
    nobody.take("suzuki", OP2)
    assert router.adopt("tanaka", OP1) is None and router.adopt("suzuki", OP2) is None


def test_with_several_nodes_the_router_sees_only_the_operators_whose_browser_is_on_this_node() -> None:
    here = {"tanaka"}  # suzuki's browser is on the other node (this one read the seat from the store)
    router = PopRouter(ServedSeats(seats(), here.__contains__))
    out = feed_all(router, [*arrive(CALL_A, "0312345678", 0), ring(CALL_A, OP2, 1), connect(CALL_A, OP2, 3, hold=2)])
    assert out == [] and router.answered_by(CALL_A) is None  # suzuki's node pops and numbers it
    here.add("suzuki")  # that node died: suzuki's browser came here
    adopted = router.adopt("suzuki", OP2)
    assert adopted is not None and adopted.call.call_id == CALL_A
