"""Whose calls this node handles when several cti nodes share one store.

Every node follows every call over AMI and holds the seats it has read from the store (all of them
after a restart). A call answered at a seat is handled (ringing notice, pop, 受付番号, 後処理 and
不在着信, the contact's operator) by the node the operator's browser is on, not by every node that
knows the seat: two nodes would each number the call and each change the desk. ``ServedSeats`` is
the seat lookup for that: the seat map, as far as the operator has had a websocket on this node
since it started (the hub's channel; kept through a short drop, so a pop during a reconnect is
still replayed). An operator whose browser comes here from a node that died is served from their
first socket on; the call they are on is adopted (screenpop/router.py ``adopt``).

On one node (SQLite) the seat map itself is the lookup: nothing changes there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class SeatLookup(Protocol):
    def user_at(self, interface: str) -> str | None: ...


class ServedSeats:
    """`seats`, as far as `serves(user_id)` says the user's browser is on this node."""

    def __init__(self, seats: SeatLookup, serves: Callable[[str], bool]) -> None:
        self._seats = seats
        self._serves = serves

    def user_at(self, interface: str) -> str | None:
        user = self._seats.user_at(interface)
        return user if user is not None and self._serves(user) else None
