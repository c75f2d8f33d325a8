"""The department screen in Debian's Chromium against a real Asterisk 22: a 税務課 staff member opens a
handed-over callback request, clicks to call (their own phone rings first, then the citizen, with the
ward's caller ID), sees the call's progress live, records the outcome and closes the request."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser import (
    PASSWORD,
    MovableClock,
    StaffUser,
    build_operator_app,
    free_port,
    operator_settings,
    screenshot,
    serve,
)
from playwright.async_api import Browser, Page
from supervisor_e2e import create_handed_over_callback, ensure_ctx, wire_supervisor

from cti import keys
from records.department_api import SCREEN_SETTINGS
from records.settings import DepartmentScreenSettings
from telephony.plugin import ami_ctx

if TYPE_CHECKING:
    from conftest import Pbx

pytestmark = [pytest.mark.asterisk, pytest.mark.browser]

MONDAY_10 = datetime.fromisoformat("2026-12-07T10:00:00+09:00")
USERS = [StaffUser("tanaka", "operator"), StaffUser("zei1", "department", "税務 一郎", "zeimu"),
         StaffUser("reg1", "department", "戸籍 花子", "koseki")]
CITIZEN = "09012345678"



async def login(browser: Browser, base_url: str, user: str) -> Page:
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="ja-JP",
                                        timezone_id="Asia/Tokyo")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The login API (the form posts the same): the session cookie lands in this browser context.
    # (Not via the form's redirect: it lands on "/", the operator screen, not this one.)
    resp = await page.request.post(base_url + "/api/login", data={"user_id": user, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


async def test_department_user_works_a_request_to_closed_with_a_real_call(
    tmp_path: Path, browser: Browser, pbx: Pbx
) -> None:
    port = free_port()
    clock = MovableClock(MONDAY_10)
    settings = operator_settings(tmp_path, port, ami=pbx.cti_sections()["ami"])  # no FastAGI here
    app = build_operator_app(settings, clock, USERS)
    wire_supervisor(app)
    ensure_ctx(app, ami_ctx)
    app[SCREEN_SETTINGS] = DepartmentScreenSettings(staff_phone="Local/{extension}@department-phones")
    async with serve(app, port) as run:
        telephony = app[keys.AMI]
        await telephony.client.wait_connected(15)
        callback_id = await create_handed_over_callback(app, clock, "zeimu", CITIZEN, MONDAY_10)
        other_id = await create_handed_over_callback(app, clock, "koseki", "0312345678", MONDAY_10)

        page = await login(browser, run.base_url, "zei1")
        await page.goto(run.base_url + "/department/")
        row = page.locator(f"#inbox tbody tr[data-id='{callback_id}']")
        try:
            await row.wait_for()
        except Exception:
            await screenshot(page, "department-00-inbox-missing")
            raise AssertionError(f"inbox row missing; page errors: {page.js_errors}; "  # type: ignore[attr-defined]
                                 f"message: {await page.locator('#message').inner_text()!r}") from None
        assert await page.locator(f"#inbox tbody tr[data-id='{other_id}']").count() == 0  # another department's
        await row.click()
        await page.locator("#d-phone", has_text="090-1234-5678").wait_for()  # formatted for people
        assert await page.locator("#d-question").inner_text() == "固定資産税の減免について"
        await page.fill("#extension", "202")
        await screenshot(page, "department-01-record")
        await page.click("#call")
        # live progress: the staff phone rings first, then the citizen; then the call ends by itself
        await page.locator("#call-progress", has_text="結果を記録").wait_for(timeout=30_000)
        await screenshot(page, "department-02-call-ended")
        trail = (await page.locator("#call-progress").get_attribute("data-events") or "").split(",")
        assert trail[0] == "ringing_staff" and "dialing_citizen" in trail and trail[-1] == "ended", trail
        assert trail.index("staff_answered") < trail.index("dialing_citizen")  # staff phone first
        await page.click("#reached")
        await page.locator("#message", has_text="つながった").wait_for()
        await page.fill("#summary-text", "減免の申請書を郵送すると案内した")
        await page.click("#close")
        await page.locator("#d-status", has_text="完了").wait_for()
        assert await page.locator("#d-answer").inner_text() == "減免の申請書を郵送すると案内した"  # the saved summary
        assert "結果を記録" in await page.locator("#call-progress").inner_text()  # never back to an older state
        await screenshot(page, "department-03-closed")
        assert page.js_errors == []  # type: ignore[attr-defined]

        db = app[keys.DATABASE]
        row = await db.read(lambda c: c.execute(
            "SELECT status, answer_summary FROM callbacks WHERE id = ?", (callback_id,)).fetchone())
        assert tuple(row) == ("closed", "減免の申請書を郵送すると案内した")
        rows = await db.read(lambda c: c.execute(
            "SELECT outcome, staff FROM attempts WHERE callback_id = ?", (callback_id,)).fetchall())
        assert [tuple(r) for r in rows] == [("reached", "zei1")]
        rows = await db.read(lambda c: c.execute(
            "SELECT action FROM audit WHERE actor = 'zei1' AND record_id = ? ORDER BY seq",
            (str(callback_id),)).fetchall())
        actions = [r[0] for r in rows]
        assert {"read", "start", "call", "attempt_reached", "close"} <= set(actions)
        attempt = telephony.control.callback_status(str(callback_id))
        assert attempt is not None and not attempt.active

        # another department's record by URL: the same 404 as a missing record, audited as denied
        resp = await page.request.get(f"{run.base_url}/api/records/callbacks/{other_id}")
        assert resp.status == 404
        row = await db.read(lambda c: c.execute(
            "SELECT count(*) FROM audit WHERE actor = 'zei1' AND outcome = 'denied'").fetchone())
        assert row[0] == 1
