"""The operator's states on the screen, in Debian's Chromium against a real cti app (real port,
SQLite, hub and pop router; calls fed as the tracker's domain events): the ringing notice with the
IVR choice, the wait and the 受付番号; 不在着信 after a ring not answered; 通話中; 後処理 after the
call, ended by its time limit or by 結果を記録; and a pop that never takes the focus nor clears a
form being filled in (announced in the aria-live notice instead). Screenshots in artifacts/."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from browser import (
    MovableClock,
    StaffUser,
    build_operator_app,
    focused_id,
    free_port,
    login_and_take_seat,
    new_operator_page,
    operator_settings,
    screenshot,
    serve,
)
from playwright.async_api import Browser, Page

from cti.core.clock import TOKYO
from telephony.events import (
    CallArrived,
    CallEnded,
    CallQueued,
    CallRouted,
    OperatorConnected,
    OperatorMissed,
    OperatorRinging,
)

pytestmark = pytest.mark.browser

SATURDAY = datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)  # ward office closed: callbacks are offered
SEAT = "PJSIP/101"



def rings(call_id: str, at: datetime, category: str) -> list[Any]:
    return [
        CallArrived(call_id=call_id, at=at - timedelta(seconds=20), caller_number="0312345678", caller_name=None,
                    dialled_number="0355550000"),
        CallRouted(call_id=call_id, at=at - timedelta(seconds=18), route="open", reason=None, category=category),
        CallQueued(call_id=call_id, at=at - timedelta(seconds=15), queue="operators", position=1),
        OperatorRinging(call_id=call_id, at=at, interface=SEAT, member_name=None, queue="operators",
                        caller_number="0312345678", caller_name=None),
    ]


def answered(call_id: str, at: datetime) -> OperatorConnected:
    return OperatorConnected(call_id=call_id, at=at, interface=SEAT, member_name=None, queue="operators", hold_time=15)


def hung_up(call_id: str, at: datetime) -> CallEnded:
    return CallEnded(call_id=call_id, at=at, reason="answered", hung_up_by="citizen", cause=16,
                     cause_text="Normal Clearing", last_state="Up", duration_s=60.0, talk_s=40.0, interface=SEAT)


async def status(page: Page, text: str) -> None:
    await page.locator("#presence-label", has_text=text).wait_for()


async def test_states_through_missed_ring_call_wrapup_and_a_pop_during_typing(tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    clock = MovableClock(SATURDAY)
    settings = operator_settings(tmp_path, port, desk={"wrapup_seconds": 30})
    async with serve(build_operator_app(settings, clock, [StaffUser("tanaka", display_name="田中")]), port) as run:
        page = await new_operator_page(browser, run)
        await login_and_take_seat(page, "tanaka", SEAT)
        await page.locator("#btn-ready").click()
        await status(page, "受付可")

        # ringing: the IVR choice in Japanese, the wait, the 受付番号; then nobody answers
        await run.feed(rings("call-a", clock(), "zei"))
        await page.locator("#ringing", has_text="受付番号 20261128-0001").wait_for()
        assert await page.locator("#ringing").inner_text() == "着信中: 税（待ち 15秒） ／ 受付番号 20261128-0001"
        await screenshot(page, "states-01-ringing")
        await run.feed(OperatorMissed(call_id="call-a", at=clock(), interface=SEAT,
                                                      reason="no_answer"))
        await status(page, "離席中（不在着信）")
        notice = page.locator("#presence-notice")
        assert "応答がなかった" in await notice.inner_text() and await notice.get_attribute("role") == "alert"
        assert await page.locator("#ringing").is_hidden()
        await screenshot(page, "states-02-missed-ring")

        # back to 受付可; a call pops while the operator types in the FAQ box: focus and text stay
        await page.locator("#btn-ready").click()
        await status(page, "受付可")
        assert await notice.is_hidden()
        await page.locator("#faq-q").focus()
        await page.keyboard.type("保育")
        await run.feed([*rings("call-b", clock(), "kosodate"), answered("call-b", clock())])
        await page.locator("#pop-reference", has_text="20261128-0002").wait_for()
        assert await focused_id(page) == "faq-q" and await page.locator("#faq-q").input_value() == "保育"
        assert "新しい通話: 受付番号 20261128-0002、子育て" in await page.locator("#call-notice").inner_text()
        assert await page.locator("#call-notice").get_attribute("aria-live") == "polite"
        await status(page, "通話中")

        # consent, then the callback form half filled in; the citizen hangs up: 後処理 (30 s limit)
        await page.locator("#consent-yes").click()
        await page.locator("#callback-form").wait_for(state="visible")
        await page.locator("#cb-name").fill("区民 花子")
        await run.feed(hung_up("call-b", clock()))
        await status(page, "後処理（10:00まで）")
        await screenshot(page, "states-03-wrapup")
        clock.advance(31)  # the limit passes: cti ends 後処理 by itself
        await status(page, "受付可")

        # the next call arrives while the form is being filled in: nothing is cleared, focus stays
        await page.locator("#cb-question").focus()
        await page.keyboard.type("児童手当")
        await run.feed([*rings("call-c", clock(), "gomi"), answered("call-c", clock())])
        await page.locator("#call-notice", has_text="20261128-0003").wait_for()
        assert "入力中の内容はそのまま" in await page.locator("#call-notice").inner_text()
        assert await focused_id(page) == "cb-question"
        assert await page.locator("#cb-name").input_value() == "区民 花子"
        assert await page.locator("#cb-question").input_value() == "児童手当"
        assert await page.locator("#pop-reference").inner_text() == "20261128-0002"  # still the call in hand
        assert await page.locator("#show-pending").is_visible()
        await status(page, "通話中")  # on the phone with the waiting call already
        await screenshot(page, "states-04-pop-while-typing")

        # 結果を記録 for the call in hand; then the waiting call is shown with every panel reset
        await page.locator("input[name=outcome][value=unanswered]").check()
        await page.locator("#outcome-save").click()
        await page.locator("#pop-reference", has_text="20261128-0003").wait_for()
        assert await page.locator("#pop-category").inner_text() == "ごみ・リサイクル"
        assert await page.locator("#cb-name").input_value() == "" and await page.locator("#callback-form").is_hidden()
        assert await page.locator("input[name=outcome]:checked").count() == 0
        assert await page.locator("#faq-q").input_value() == ""
        await status(page, "通話中")

        # this call ends too: 後処理, ended at once by 結果を記録
        await run.feed(hung_up("call-c", clock()))
        await status(page, "後処理")
        await page.locator("input[name=outcome][value=resolved]").check()
        await page.locator("#outcome-save").click()
        await page.locator("#outcome-done", has_text="解決").wait_for()
        await status(page, "受付可")
        rows = await page.locator("#today-rows tr").all_inner_texts()
        assert [r.split("\t")[1] for r in rows] == ["20261128-0003", "20261128-0002"]
        await screenshot(page, "states-05-ready-after-outcome")
