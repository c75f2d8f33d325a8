"""Two cti nodes' desk books on one store (screenpop/desks.py ``refresh_user``): a seat taken through
one node is found by the other when the operator's browser comes to it (the first node died), and a
seat freed or moved there is followed too. Both engines (the shared store is PostgreSQL's case)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from cti.core.clock import TOKYO
from cti.gateway import Database
from cti.store_backend import open_store
from screenpop.desks import DeskBook
from screenpop.schema import COMPONENT, MIGRATIONS
from screenpop.seats import SeatMap

AT = datetime(2026, 12, 2, 14, 0, tzinfo=TOKYO)
OP101, OP102 = "Local/101@operator-phones", "Local/102@operator-phones"


@pytest.fixture
async def two_stores(store_target: str) -> AsyncIterator[tuple[Database, Database]]:
    a = await open_store(store_target, {COMPONENT: MIGRATIONS})
    b = await open_store(store_target, {COMPONENT: MIGRATIONS})
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_a_seat_taken_on_one_node_is_found_by_the_other_when_the_browser_comes(
    two_stores: tuple[Database, Database],
) -> None:
    db_a, db_b = two_stores
    node_a, node_b = DeskBook(db_a, SeatMap(), lambda: AT), DeskBook(db_b, SeatMap(), lambda: AT)
    await node_a.load()
    await node_b.load()  # both nodes started before anyone sat down
    await node_a.take_seat("tanaka", OP101)
    await node_a.set_presence("tanaka", "ready", None)
    assert node_b.seats.seat_of("tanaka") is None and node_b.desk("tanaka") is None

    desk = await node_b.refresh_user("tanaka")
    assert desk is not None and (desk.interface, desk.presence, desk.reason) == (OP101, "ready", None)
    assert node_b.seats.user_at(OP101) == "tanaka" and node_b.desk("tanaka") == desk

    # tanaka moves to 102 on node A, then suzuki takes 101 there: node B follows both when asked
    await node_a.take_seat("tanaka", OP102)
    await node_a.take_seat("suzuki", OP101)
    await node_b.refresh_user("suzuki")
    assert node_b.seats.user_at(OP101) == "suzuki" and node_b.seats.seat_of("tanaka") is None
    await node_b.refresh_user("tanaka")
    assert node_b.seats.snapshot() == {OP101: "suzuki", OP102: "tanaka"}

    # a seat freed on node A is gone on node B once asked
    await node_a.release_seat("tanaka")
    assert await node_b.refresh_user("tanaka") is None
    assert node_b.seats.seat_of("tanaka") is None and node_b.desk("tanaka") is None
    assert node_b.seats.snapshot() == {OP101: "suzuki"}
