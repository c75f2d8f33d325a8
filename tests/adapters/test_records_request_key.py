"""A callback save repeated with the page's Idempotency-Key (its answer was lost: the cti node died
between its commit and its reply, and the operator saved again through the other node) answers the
row saved the first time and records nothing twice; the key is bound to its call and its operator.
Both engines; over HTTP the header is checked for its form."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from test_records_store import FRIDAY_EVENING, OPERATOR, OPERATOR2, Clock, callback_in, fetch, new_call, table_counts

from cti.calendar.rules import Calendars
from cti.config import CalendarSettings
from cti.store_backend import open_store
from records.rules import RecordsError
from records.schema import migrations
from records.service import RecordsService
from records.settings import RecordsSettings

KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


@pytest.fixture
async def service(store_target: str) -> AsyncIterator[RecordsService]:
    db = await open_store(store_target, migrations())
    try:
        yield RecordsService(db, RecordsSettings(), Calendars.from_settings(CalendarSettings()), Clock(FRIDAY_EVENING))
    finally:
        await db.close()


async def test_the_same_save_twice_is_one_callback_with_one_audit_row(service: RecordsService) -> None:
    call = await new_call(service)
    first = await service.create_callback(OPERATOR, call, callback_in(), request_key=KEY)
    before = await table_counts(service.db)
    again = await service.create_callback(OPERATOR, call, callback_in(question="別の内容"), request_key=KEY)
    assert again["id"] == first["id"] and again["question"] == first["question"]
    assert await table_counts(service.db) == before  # no row, no audit
    assert "request_key" not in again
    other = await service.create_callback(OPERATOR, call, callback_in(), request_key=KEY.replace("0", "1"))
    assert other["id"] != first["id"]  # another save (another key) is another request
    without = await service.create_callback(OPERATOR, call, callback_in())
    assert without["id"] not in (first["id"], other["id"])
    assert await fetch(service, "SELECT count(*) FROM callbacks WHERE request_key IS NULL") == [(1,)]


async def test_a_key_of_another_call_or_operator_is_refused(service: RecordsService) -> None:
    call = await new_call(service)
    await service.create_callback(OPERATOR, call, callback_in(), request_key=KEY)
    second = await new_call(service, "1733300000.2")
    with pytest.raises(RecordsError) as refused:
        await service.create_callback(OPERATOR, second, callback_in(), request_key=KEY)
    assert (refused.value.status, refused.value.code) == (409, "request_key_reused")
    theirs = await new_call(service, "1733300000.3", who=OPERATOR2)
    with pytest.raises(RecordsError):
        await service.create_callback(OPERATOR2, theirs, callback_in(), request_key=KEY)
    assert await fetch(service, "SELECT count(*) FROM callbacks") == [(1,)]
