"""The wall as the supervisors see it: the pure wall (keyed by queue seat, the interface Asterisk
rings) with the operator seated there, Japanese category labels and no queue dial strings.

The wall keys operators by seat, so a seat that an operator sits down at later is the same row (not
a second one under the dial string); a seat nobody sits at is counted, not listed as an operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from supervision.wall import STATE_TEXT, OperatorState

UNCATEGORISED_LABEL = "未分類"


class SeatLookup(Protocol):
    def user_at(self, interface: str) -> str | None: ...


class ReferenceLookup(Protocol):
    """受付番号 by call id (screenpop.references): given at a call's first ringing, so a call still
    waiting for its first ring has none yet."""

    def known(self, call_id: str) -> str | None: ...


def category_label(code: str | None, labels: Mapping[str, str]) -> str:
    if not code:
        return UNCATEGORISED_LABEL
    return labels.get(code, code)


def present(snapshot: dict[str, Any], seats: SeatLookup | None, labels: Mapping[str, str],
            references: ReferenceLookup | None = None) -> dict[str, Any]:
    """A copy of `snapshot` for the screen: seated operators only (by user id, with their seat),
    counts over them, unseated seats counted, calls' operators by user id, category labels, and
    each call's 受付番号 where it has one (people never read Asterisk's call ids)."""

    def reference(call_id: str | None) -> str | None:
        if not call_id or references is None:
            return None
        return references.known(call_id)

    def user(seat: str | None) -> str | None:
        if seat is None:
            return None
        return seats.user_at(seat) if seats is not None else None

    operators = []
    counts = {s.value: 0 for s in OperatorState}
    unseated = 0
    for op in snapshot["operators"]:
        who = user(op["operator_id"])
        if who is None:
            unseated += 1
            continue
        counts[op["state"]] += 1
        operators.append({**op, "operator_id": who, "seat": op["operator_id"], "reference": reference(op["call_id"])})
    operators.sort(key=lambda o: str(o["operator_id"]))
    waiting = [{**w, "category_label": category_label(w["category"], labels), "reference": reference(w["call_id"])}
               for w in snapshot["waiting_calls"]]
    calls = [{**c, "operator_id": user(c["operator_id"]), "reference": reference(c["call_id"])}
             for c in snapshot["calls"]]
    return {**snapshot, "operators": operators, "operator_counts": counts, "unseated_seats": unseated,
            "waiting_calls": waiting, "calls": calls, "state_texts": {s.value: t for s, t in STATE_TEXT.items()}}
