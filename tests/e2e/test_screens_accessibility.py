"""Every screen and its main states in Debian's Chromium against a real cti app, checked with axe-core
for WCAG 2.1 A/AA (zero violations), for reflow at 320 px (no horizontal scrolling) and for the one
header navigation (role in Japanese, the screens the role reaches). Also the callback form's errors
(all at once), its department preselected from the IVR choice and its consent script for a night
call. Screenshots (1366x768) in artifacts/ (docs/screens/ keeps a handful); axe results in
artifacts/axe-results.json."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from accessibility import AccessibilityLog
from browser import (
    ARTIFACTS,
    PASSWORD,
    VIEWPORT,
    MovableClock,
    RunningApp,
    StaffUser,
    build_operator_app,
    free_port,
    operator_settings,
    screenshot,
    serve,
)
from playwright.async_api import Browser, Page
from supervisor_e2e import create_handed_over_callback, wire_supervisor
from test_operator_screen_states import answered, rings

pytestmark = pytest.mark.browser

MONDAY_10 = datetime.fromisoformat("2026-12-07T10:00:00+09:00")
USERS = [StaffUser("tanaka", "operator", "田中"), StaffUser("kanri", "supervisor", "監督 太郎"),
         StaffUser("zei1", "department", "税務 一郎", "zeimu"),
         StaffUser("kusei", "department", "区政 花子", "kuseijoho"),
         StaffUser("admin1", "admin", "管理 次郎")]



async def new_page(browser: Browser, run: RunningApp) -> Page:
    # bypass_csp: only so axe-core can be injected; the app's CSP is unchanged
    context = await browser.new_context(viewport=VIEWPORT, locale="ja-JP", timezone_id="Asia/Tokyo", bypass_csp=True)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    run.pages.append(page)
    return page


async def staff_page(browser: Browser, run: RunningApp, user: str, path: str) -> Page:
    page = await new_page(browser, run)
    resp = await page.request.post(run.base_url + "/api/login", data={"user_id": user, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    await page.goto(run.base_url + path)
    await page.locator("#site-nav").wait_for()
    return page


async def nav_links(page: Page) -> list[str]:
    return await page.locator("#site-nav a").all_inner_texts()


async def test_every_screen_passes_axe_reflows_at_320px_and_has_one_navigation(
    tmp_path: Path, browser: Browser
) -> None:
    port = free_port()
    clock = MovableClock(MONDAY_10)
    app = build_operator_app(operator_settings(tmp_path, port), clock, USERS)
    wire_supervisor(app)
    log = AccessibilityLog(ARTIFACTS / "axe-results.json")
    async with serve(app, port) as run:
        callback_id = await create_handed_over_callback(app, clock, "zeimu", "09012345678", MONDAY_10)
        clock.at = MONDAY_10 + timedelta(hours=9)  # 19:00: the office is closed (night); callbacks offered

        # operator: login, seat, desk idle, ringing, pop, callback form with every error at once
        op = await new_page(browser, run)
        await op.goto(run.base_url + "/")
        await op.wait_for_url(re.compile(r"/login\?m=login$"))
        await log.check(op, "login")
        await screenshot(op, "screens-operator-01-login")
        await op.locator("#user_id").fill("tanaka")
        await op.locator("#password").fill(PASSWORD)
        await op.keyboard.press("Enter")
        await op.locator("#screen-seat").wait_for(state="visible")
        await log.check(op, "operator seat")
        await op.locator("#seat-other").fill("PJSIP/101")
        await op.keyboard.press("Enter")
        await op.locator("#conn-status", has_text="接続中").wait_for()
        assert await op.locator("#role-label").inner_text() == "役割: オペレーター"
        assert await nav_links(op) == []  # one screen only: no links
        await op.locator("#btn-ready").click()
        await op.locator("#presence-label", has_text="受付可").wait_for()
        await log.check(op, "operator desk idle")
        await screenshot(op, "screens-operator-02-idle")
        await run.feed(rings("call-n", clock(), "zei"))
        await op.locator("#ringing", has_text="着信中").wait_for()
        await log.check(op, "operator ringing")
        await run.feed([answered("call-n", clock())])
        await op.locator("#pop-reference", has_text="-0001").wait_for()
        await log.check(op, "operator pop")
        await screenshot(op, "screens-operator-03-pop")
        script = await op.locator("#consent-script").inner_text()
        assert script.startswith("ただいま区役所の開庁時間外（夜間）のため"), script
        await op.locator("#consent-yes").click()
        await op.locator("#callback-form").wait_for(state="visible")
        assert await op.locator("#cb-department").input_value() == "zeimu"  # from the IVR choice 税
        await op.locator("#cb-phone").fill("12")
        await op.locator("#callback-save").click()
        summary = op.locator("#callback-error")
        await summary.wait_for(state="visible")
        assert "3件" in await summary.inner_text() and await summary.get_attribute("role") == "alert"
        invalid = await op.locator("#callback-form [aria-invalid=true]").evaluate_all("els => els.map(e => e.name)")
        assert invalid == ["name", "phone", "question"], invalid
        assert await op.evaluate("document.activeElement.id") == "cb-name"
        assert "電話番号" in await op.locator("#err-phone").inner_text()
        await log.check(op, "operator callback form with errors")
        await screenshot(op, "screens-operator-04-callback-errors")

        # department: inbox, Enter on a row: the detail gets the focus and is announced
        dep = await staff_page(browser, run, "zei1", "/department/")
        row = dep.locator(f"#inbox tbody tr[data-id='{callback_id}']")
        await row.wait_for()
        assert await dep.locator("#role-label").inner_text() == "役割: 担当課職員"
        await log.check(dep, "department inbox")
        await row.focus()
        await dep.keyboard.press("Enter")
        await dep.locator("#d-phone", has_text="090-1234-5678").wait_for()
        assert await dep.evaluate("document.activeElement.id") == "detail-h"
        await log.check(dep, "department detail")
        await screenshot(dep, "screens-department-01-detail")
        # live: a request handed over now appears without a reload, announced; the focus stays put
        evening = clock()
        newer = await create_handed_over_callback(app, clock, "zeimu", "0355556666", MONDAY_10)
        clock.at = evening
        try:
            await dep.locator(f"#inbox tbody tr[data-id='{newer}']").wait_for(timeout=25_000)
        except Exception:
            inbox = await (await dep.request.get(run.base_url + "/api/department/inbox")).text()
            raise AssertionError(f"no live row {newer}: {inbox[:600]} {dep.js_errors}") from None  # type: ignore[attr-defined]
        assert await dep.locator("#inbox-notice").inner_text() == "新しい依頼が1件あります"
        assert await dep.evaluate("document.activeElement.id") == "detail-h"

        # supervisor: the wall and a report; nav to the operator desk
        sv = await staff_page(browser, run, "kanri", "/supervisor/")
        assert await nav_links(sv) == ["監督者画面", "オペレーター画面"]
        assert await sv.locator("#site-nav a[aria-current=page]").inner_text() == "監督者画面"
        await sv.keyboard.press("Tab")  # keyboard: the navigation comes first
        assert await sv.evaluate("document.activeElement.textContent") == "監督者画面"
        await log.check(sv, "supervisor wall")
        await screenshot(sv, "screens-supervisor-01-wall")
        await sv.locator("#rep-period").fill("2026-12-07")
        await sv.locator("#rep-form button[type=submit]").click()
        await sv.locator("#rep-hour tbody tr").first.wait_for()
        await log.check(sv, "supervisor reports")
        await screenshot(sv, "screens-supervisor-02-reports")
        # an alarm tile says so in words, not by colour alone (the overdue count is refreshed every 30 s)
        await sv.locator("[data-k='overdue']", has_text=re.compile(r"^[12]$")).wait_for(timeout=40_000)
        assert await sv.locator("#t-overdue .flag").inner_text() == "⚠ 期限を過ぎた依頼があります"
        await log.check(sv, "supervisor wall with an alarm")

        # admin: department + supervisor + FAQ editor; 区政情報課: department + FAQ editor
        adm = await staff_page(browser, run, "admin1", "/department/")
        assert await nav_links(adm) == ["折り返し依頼（担当課）", "監督者画面", "FAQ編集"]
        assert await adm.locator("#role-label").inner_text() == "役割: 管理者"
        ed = await staff_page(browser, run, "kusei", "/faq/editor/")
        assert await nav_links(ed) == ["折り返し依頼（担当課）", "FAQ編集"]
        await ed.locator("body[data-ready=true]").wait_for()
        await log.check(ed, "faq editor")
        await screenshot(ed, "screens-faq-01-editor")

        for page in (op, dep, sv, adm, ed):
            assert page.js_errors == []  # type: ignore[attr-defined]
    assert log.failures() == {}
