"""A callback request whose save was committed but whose answer never reached the browser (the cti
node died between its commit and its reply; here the answer is dropped by Playwright): the page
says the save failed, the operator saves again, and the request is recorded once (the page sends
the same Idempotency-Key; records answers the row saved the first time)."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import (
    MovableClock,
    StaffUser,
    build_operator_app,
    free_port,
    login_and_take_seat,
    new_operator_page,
    operator_settings,
    serve,
)
from playwright.async_api import Browser, Route
from test_operator_screen import SATURDAY, SEAT1, call_events

from cti import keys

pytestmark = pytest.mark.browser


async def test_a_save_repeated_after_its_answer_was_lost_records_one_callback(tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    clock = MovableClock(SATURDAY)
    app = build_operator_app(operator_settings(tmp_path, port), clock, [StaffUser("tanaka")])
    async with serve(app, port) as run:
        op = await new_operator_page(browser, run)
        await login_and_take_seat(op, "tanaka", SEAT1)
        ring, answer = call_events(clock(), SEAT1)
        await run.feed(ring + answer)
        await op.locator("#pop-number", has_text="03-1234-5678").wait_for()
        await op.locator("#consent-yes").click()
        await op.locator("#callback-form").wait_for(state="visible")
        await op.locator("#cb-name").fill("区民 太郎")
        await op.locator("#cb-phone").fill("090-1234-5678")
        await op.locator("#cb-department").select_option("kosodate")
        await op.locator("#cb-question").fill("児童手当の申請について")

        lost: list[int] = []

        async def commit_then_drop(route: Route) -> None:
            response = await route.fetch()  # the server commits and answers ...
            lost.append(response.status)
            await route.abort("connectionreset")  # ... and the answer never arrives

        await op.route("**/callbacks", commit_then_drop)
        await op.locator("#callback-save").click()
        await op.locator("#callback-error").wait_for(state="visible")
        assert lost == [201]
        await op.unroute("**/callbacks")
        await op.locator("#callback-save").click()  # the operator saves again
        await op.locator("#callback-done", has_text="折り返し依頼 #").wait_for()

        rows = await app[keys.DATABASE].read(lambda c: c.execute("SELECT id FROM callbacks").fetchall())
        assert len(rows) == 1
        assert f"#{rows[0][0]} " in await op.locator("#callback-done").inner_text()
