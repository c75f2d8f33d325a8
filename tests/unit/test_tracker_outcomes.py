"""The outcome tables (telephony.tracker.outcomes) are data: check their shape and precedence."""

from __future__ import annotations

import pytest

from telephony.tracker import outcomes

TABLES = {
    "INBOUND_END": outcomes.INBOUND_END,
    "CALLBACK_END": outcomes.CALLBACK_END,
    "DIAL_MISS": outcomes.DIAL_MISS,
    "HUNG_UP_BY": outcomes.HUNG_UP_BY,
}


@pytest.mark.parametrize("rows", TABLES.values(), ids=TABLES.keys())
def test_every_table_ends_with_always_and_names_each_fact_once(rows: outcomes.Rows) -> None:
    facts = [fact for fact, _ in rows]
    assert facts[-1] == outcomes.ALWAYS and outcomes.ALWAYS not in facts[:-1]
    assert len(set(facts)) == len(facts)


def test_first_row_whose_fact_holds_wins() -> None:
    end = outcomes.INBOUND_END
    assert outcomes.first(end, set()) == "not_answered"
    assert outcomes.first(end, {"closed", "answered"}) == "answered"
    assert outcomes.first(end, {"answered", "abandoned", "disconnected"}) == "ended_while_disconnected"
    with pytest.raises(ValueError):
        outcomes.first([("x", "y")], set())


@pytest.mark.parametrize(("facts", "side"), [
    ({"citizen"}, "citizen"),
    ({"citizen", "citizen+system"}, "system"),
    ({"target"}, "department"),
    # a member's leg after the transfer is no side, even the one that was talking
    ({"operator", "operator+transferred", "operator+connected_leg"}, ""),
    ({"operator", "operator+connected_leg"}, "operator"),
    ({"operator"}, ""),  # a member that only rang
    ({"operator", "operator+callback"}, "operator"),
    (set(), ""),
])
def test_who_hung_up(facts: set[str], side: str) -> None:
    assert outcomes.first(outcomes.HUNG_UP_BY, facts) == side


def test_callback_dial_status_precedence() -> None:
    facts = {"dial:BUSY", "ended_while_dialing"}
    assert outcomes.first(outcomes.CALLBACK_END, facts) == "citizen_busy"
    assert outcomes.first(outcomes.CALLBACK_END, {"ended_while_dialing"}) == "cancelled"
    assert outcomes.first(outcomes.CALLBACK_END, {"staff_never_answered", "dial:NOANSWER"}) == "staff_no_answer"
