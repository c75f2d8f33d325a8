"""The hold and consult-transfer controls of the operator screen in Debian's Chromium against a
real in-process cti app, driven by the tracker's domain events (no PBX; the real Asterisk run is
tests/e2e/test_consult_hold_pbx.py): the buttons exist with Japanese labels, are enabled only while
they apply, the state line (role=status, aria-live) says each change Asterisk reported, a refusal
is shown as an alert, and axe-core finds nothing in the hold and consult states."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from accessibility import axe_violations
from browser import (
    VIEWPORT,
    MovableClock,
    RunningApp,
    StaffUser,
    build_operator_app,
    free_port,
    login_and_take_seat,
    operator_settings,
    serve,
)
from playwright.async_api import Browser, Page

from cti.core.clock import TOKYO
from telephony.events import (
    CallArrived,
    CallHoldChanged,
    CallQueued,
    CallRouted,
    CallTransferred,
    ConsultChanged,
    OperatorConnected,
    OperatorRinging,
)

pytestmark = pytest.mark.browser

TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)  # ward office open
SATURDAY = datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)  # ward office closed
SEAT = "PJSIP/101"
LABELS = {"hold-btn": "保留", "resume-btn": "保留解除", "consult-btn": "相談転送",
          "consult-complete-btn": "転送完了", "consult-cancel-btn": "取消"}


def answered_call(call_id: str, at: datetime) -> list[object]:
    return [
        CallArrived(call_id=call_id, at=at - timedelta(seconds=20), caller_number="0312345678", caller_name=None,
                    dialled_number="0355550000"),
        CallRouted(call_id=call_id, at=at - timedelta(seconds=18), route="open", reason=None, category="hoken"),
        CallQueued(call_id=call_id, at=at - timedelta(seconds=15), queue="operators", position=1),
        OperatorRinging(call_id=call_id, at=at, interface=SEAT, member_name=None, queue="operators",
                        caller_number="0312345678", caller_name=None),
        OperatorConnected(call_id=call_id, at=at, interface=SEAT, member_name=None, queue="operators", hold_time=15),
    ]


def hold(call_id: str, at: datetime, on: bool) -> CallHoldChanged:
    return CallHoldChanged(call_id=call_id, at=at, on_hold=on, interface=SEAT)


def consult(call_id: str, at: datetime, state: str) -> ConsultChanged:
    return ConsultChanged(call_id=call_id, at=at, state=state, extension="203", interface=SEAT)


async def operator_page(browser: Browser, run: RunningApp) -> Page:
    # bypass_csp: only so axe-core can be injected; the app's CSP is unchanged
    context = await browser.new_context(viewport=VIEWPORT, locale="ja-JP", timezone_id="Asia/Tokyo", bypass_csp=True)
    page = await context.new_page()
    page.set_default_timeout(10_000)
    run.pages.append(page)
    await page.goto(run.base_url + "/")
    return page


async def enabled(page: Page) -> set[str]:
    return {b for b in LABELS if await page.locator(f"#{b}").is_enabled()}


async def test_hold_and_consult_controls_follow_asterisk_and_announce_each_change(
    tmp_path: Path, browser: Browser
) -> None:
    port = free_port()
    clock = MovableClock(TUESDAY)
    app = build_operator_app(operator_settings(tmp_path, port), clock, [StaffUser("tanaka")])
    async with serve(app, port) as run:
        page = await operator_page(browser, run)
        await login_and_take_seat(page, "tanaka", SEAT)
        line = page.locator("#call-control-state")
        assert (await line.get_attribute("role"), await line.get_attribute("aria-live")) == ("status", "polite")
        group = page.get_by_role("group", name="保留・相談転送")
        for button, label in LABELS.items():
            assert await group.get_by_role("button", name=label, exact=True).count() == 1 or button == "consult-btn"
            assert (await page.locator(f"#{button}").inner_text()).strip() == label
        assert await page.get_by_role("button", name="相談転送", exact=True).count() == 1
        assert await enabled(page) == set()  # no call: nothing applies

        await run.feed(answered_call("c1", clock()))
        await page.locator("#call-card[data-call-id='c1']").wait_for()
        assert await enabled(page) == {"hold-btn", "consult-btn"}
        assert await line.inner_text() == ""

        await run.feed([hold("c1", clock(), True)])
        await line.filter(has_text="保留中（市民は保留音を聞いています）").wait_for()
        assert await enabled(page) == {"resume-btn"}
        assert await page.locator("#transfer-btn").is_disabled()
        assert (await page.locator("#pop-state").inner_text()) == "通話中（保留中）"
        assert await axe_violations(page) == []

        await run.feed([hold("c1", clock(), False)])
        await line.filter(has_text="保留を解除しました").wait_for()
        assert await enabled(page) == {"hold-btn", "consult-btn"}
        assert await page.locator("#transfer-btn").is_enabled()

        # the consult as Asterisk reports it: the citizen's hold, then the consult leg
        await run.feed([hold("c1", clock(), True), consult("c1", clock(), "started")])
        await line.filter(has_text="相談中: 保険年金課").wait_for()
        assert await enabled(page) == {"consult-complete-btn", "consult-cancel-btn"}
        assert (await page.locator("#pop-state").inner_text()) == "通話中（相談中・保留中）"
        assert await axe_violations(page) == []
        await run.feed([hold("c1", clock(), False), consult("c1", clock(), "ended")])
        await line.filter(has_text="保険年金課との相談を終えました").wait_for()
        assert await enabled(page) == {"hold-btn", "consult-btn"}

        # a press the server refuses (here: no telephony at all) is an alert, and the line is unchanged
        await page.locator("#hold-btn").click()
        error = page.locator("#call-control-error")
        await error.wait_for(state="visible")
        assert await error.get_attribute("role") == "alert"
        assert "通話中ではありません" in await error.inner_text()
        assert "保険年金課との相談を終えました" in await line.inner_text()
        assert await enabled(page) == {"hold-btn", "consult-btn"}

        # completed: the transfer; nothing to hold or consult any more
        await run.feed([hold("c1", clock(), True), consult("c1", clock(), "started"),
                        CallTransferred(call_id="c1", at=clock(), target="Local/203@consult", interface=SEAT,
                                        method="attended")])
        await line.filter(has_text="保険年金課へ転送しました").wait_for()
        assert await enabled(page) == set()
        assert (await page.locator("#pop-state").inner_text()) == "転送済み（保険年金課）"

        # a reload during a hold shows it again (the server asks the tracker; none here: not on hold)
        await page.reload()
        await page.locator("#call-card[data-call-id='c1']").wait_for()
        assert await enabled(page) == set()


async def test_closed_office_offers_hold_but_no_consult(tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    clock = MovableClock(SATURDAY)
    app = build_operator_app(operator_settings(tmp_path, port), clock, [StaffUser("tanaka")])
    async with serve(app, port) as run:
        page = await operator_page(browser, run)
        await login_and_take_seat(page, "tanaka", SEAT)
        await run.feed(answered_call("c2", clock()))
        await page.locator("#call-card[data-call-id='c2']").wait_for()
        assert await enabled(page) == {"hold-btn"}
        assert await page.locator("#consult-btn").is_disabled()
