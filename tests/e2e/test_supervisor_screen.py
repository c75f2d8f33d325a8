"""The supervisor screen in Debian's Chromium: the live wall changes as real calls arrive at Asterisk 22
and leave; the emergency switch closes routing at once (the next real call hears the closed message);
a report matches a known set of contacts, and its CSV download carries the same figures."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
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
from supervisor_e2e import OPERATOR, ensure_ctx, wire_supervisor

from cti import keys
from records.models import ConsentIn, ContactUpdate
from screenpop.desk_service import change_presence, seat_taken
from screenpop.keys import DESKS
from supervision.keys import ALERT_SETTINGS
from supervision.settings import AlertSettings
from telephony.agi.plugin import agi_ctx
from telephony.plugin import ami_ctx

if TYPE_CHECKING:
    from conftest import AmiClient, Pbx

pytestmark = pytest.mark.browser

MONDAY_10 = datetime.fromisoformat("2026-12-07T10:00:00+09:00")
WARD_NUMBER = "0301110000"
USERS = [StaffUser("tanaka", "operator"), StaffUser("kanri", "supervisor", "監督 太郎")]



async def supervisor_page(browser: Browser, base_url: str) -> Page:
    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="ja-JP",
                                        timezone_id="Asia/Tokyo", accept_downloads=True)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The login API (the form posts the same): the session cookie lands in this browser context.
    # (Not via the form's redirect: it lands on "/", the operator screen, not this one.)
    resp = await page.request.post(base_url + "/api/login", data={"user_id": "kanri", "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    await page.goto(base_url + "/supervisor/")
    await page.locator("#who", has_text="監督 太郎").wait_for()
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


async def inbound_call(ami: AmiClient) -> str:
    caller_leg = f"test-{uuid.uuid4().hex[:12]}"
    response = await ami.action(
        "Originate", Channel=f"Local/{WARD_NUMBER}@from-pstn", Context="citizen-sim", Exten="dtmf", Priority="1",
        CallerID='"Citizen" <0312345678>', ChannelId=caller_leg, OtherChannelId=f"test-{uuid.uuid4().hex[:12]}",
        Async="true", Timeout="10000", Variable="SIM_DTMF=1")
    assert response["Response"] == "Success", response
    return caller_leg


async def tile(page: Page, key: str) -> str:
    return await page.locator(f"[data-k='{key}']").inner_text()


@pytest.mark.asterisk
async def test_wall_follows_real_calls_and_the_emergency_switch_closes_routing(
    tmp_path: Path, browser: Browser, pbx: Pbx, ami: AmiClient
) -> None:
    port = free_port()
    clock = MovableClock(MONDAY_10)
    sections = pbx.cti_sections()
    sections["agi"]["host"] = "127.0.0.1"
    settings = operator_settings(tmp_path, port, **sections)
    app = build_operator_app(settings, clock, USERS)
    wire_supervisor(app)
    ensure_ctx(app, ami_ctx)
    ensure_ctx(app, agi_ctx)
    pbx.set_global("SIM_OPERATORS", "noanswer")  # callers stay in the queue
    try:
        async with serve(app, port) as run:
            await app[keys.AMI].client.wait_connected(15)
            # tanaka sits at 101 and says 受付可, as on the desk (a new seat starts away); 102 stays unseated
            await seat_taken(app, await app[DESKS].take_seat("tanaka", "Local/101@operator-phones"))
            await change_presence(app, "tanaka", "ready", None)
            page = await supervisor_page(browser, run.base_url)
            assert await tile(page, "waiting") == "0"
            first = await inbound_call(ami)
            second = await inbound_call(ami)
            # a locator, not wait_for_function: the page's CSP (script-src 'self') forbids evaluating strings
            await page.locator("[data-k='waiting']", has_text=re.compile(r"^2$")).wait_for(timeout=30_000)
            # people read 受付番号 (given at the first ring) or 呼出前, never Asterisk's call ids
            reference = re.compile(r"^\d{8}-\d{4}$")
            await page.locator("#waiting tbody tr td:first-child", has_text=reference).first.wait_for()
            waiting_refs = await page.locator("#waiting tbody tr td:first-child").all_inner_texts()
            assert len(waiting_refs) == 2 and all(re.fullmatch(r"\d{8}-\d{4}|呼出前", r) for r in waiting_refs)
            assert first not in await page.content() and second not in await page.content()
            assert "0312345678" not in await page.content()  # no caller numbers on the wall
            ringing = page.locator("#operators tbody tr[data-state='ringing']")
            await ringing.first.wait_for()  # the queue rings the (never answering) simulated operators
            assert await page.locator("#operators tbody tr td:first-child").all_inner_texts() == ["tanaka"]
            assert "operator-phones" not in await page.locator("main").inner_text()  # no dial strings
            await page.locator("#unseated", has_text="未着席の席が1席").wait_for()
            labels = set(await page.locator("#waiting tbody tr td:nth-child(2)").all_inner_texts())
            assert labels <= {"戸籍・住民票", "税", "保険・年金", "ごみ・リサイクル", "子育て", "その他", "未分類"}
            await screenshot(page, "supervisor-01-two-waiting")
            pbx.cli("channel request hangup all")
            # a locator, not wait_for_function: the page's CSP (script-src 'self') forbids evaluating strings
            await page.locator("[data-k='waiting']", has_text=re.compile(r"^0$")).wait_for(timeout=30_000)

            # emergency close from the screen: routing follows at once
            await page.fill("#em-reason", "訓練")
            await page.click("#em-on")
            await page.locator("#cc-status", has_text="停止中").wait_for()
            assert not app[keys.CALENDARS].call_center(clock()).open
            third = await inbound_call(ami)
            routed = await ami.wait_event(
                lambda e: e.get("Event") == "VarSet" and e.get("Variable", "").lstrip("_") == "CTI_ROUTE"
                and e.get("Linkedid") == third, wait_s=20)
            assert routed["Value"] == "closed"
            await page.click("#em-off")
            await page.locator("#cc-status", has_text="受付中").wait_for()
            await screenshot(page, "supervisor-02-after-emergency")
            pbx.cli("channel request hangup all")

            # the day's report counts these calls (the call log is written from the domain events)
            await page.fill("#rep-period", "2026-12-07")
            await page.click("#rep-form button[type=submit]")
            await page.locator("#rep-totals", has_text="着信 3").wait_for(timeout=20_000)
            assert "時間外 1" in await page.locator("#rep-totals").inner_text()
            assert page.js_errors == []  # type: ignore[attr-defined]
    finally:
        pbx.reset_globals()
        pbx.cli("channel request hangup all")


async def test_report_matches_known_contacts_and_csv(tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    clock = MovableClock(MONDAY_10)
    app = build_operator_app(operator_settings(tmp_path, port), clock, USERS)
    wire_supervisor(app)
    async with serve(app, port) as run:
        service = app[keys.RECORDS]
        known = [("k1", 9, "kosodate", "resolved"), ("k2", 9, "kosodate", "resolved"), ("k3", 10, "zei", "unanswered"),
                 ("k4", 13, "zei", "transferred"), ("k5", 13, None, "resolved")]
        for call_id, hour, category, outcome in known:
            clock.at = MONDAY_10.replace(hour=hour) + timedelta(minutes=5)
            await service.call_taken(call_id, OPERATOR.user_id, ivr_category=category, caller_number="0312345678")
            update = ContactUpdate(outcome=outcome, transfer_department="zeimu" if outcome == "transferred" else None)
            await service.update_contact(OPERATOR, call_id, update)
        clock.at = MONDAY_10.replace(hour=18)
        page = await supervisor_page(browser, run.base_url)
        await page.fill("#rep-period", "2026-12-07")
        await page.click("#rep-form button[type=submit]")
        await page.locator("#rep-totals", has_text="着信 5 / 応答 5 / 放棄 0").wait_for()
        rows = {r.split("\t")[0]: r.split("\t")[1:3] for r in await page.locator("#rep-cat tbody tr").evaluate_all(
            "rows => rows.map(r => [...r.cells].map(c => c.textContent).join('\\t'))")}
        assert rows == {"未分類": ["1", "1"], "子育て": ["2", "2"], "税": ["2", "2"]}
        bars = await page.locator("#rep-chart rect").count()
        assert bars == 48 + 2  # offered and answered for each hour, and the legend's two keys
        assert await page.locator("#rep-chart text", has_text="着信").count() >= 1  # legend
        assert await page.locator("#rep-chart text", has_text="時台").count() == 1  # x axis title
        hours = {r.split("\t")[0]: r.split("\t")[1:] for r in await page.locator("#rep-hour tbody tr").evaluate_all(
            "rows => rows.map(r => [...r.cells].map(c => c.textContent).join('\\t'))")}
        assert {h: v[:2] for h, v in hours.items()} == {"9時台": ["2", "2"], "10時台": ["1", "1"], "13時台": ["2", "2"]}
        text = await page.locator("main").inner_text()
        assert "kosodate" not in text and "zei" not in text
        assert "スーパーバイザー" in await page.locator("#who").inner_text()
        await screenshot(page, "supervisor-03-report")
        async with page.expect_download() as info:
            await page.click("#rep-csv")
        download = await info.value
        text = (await asyncio.to_thread(Path(await download.path()).read_bytes)).decode("utf-8-sig")
        table = list(csv.reader(io.StringIO(text)))
        assert table[2][:4] == ["合計", "全体", "5", "5"]
        by_hour = {r[1]: r[2] for r in table if r[0] == "時間帯別"}
        assert (by_hour["09時"], by_hour["10時"], by_hour["13時"]) == ("2", "1", "2")
        assert "0312345678" not in text and "k1" not in text
        sql = "SELECT count(*) FROM audit WHERE action = 'export' AND actor = 'kanri'"
        assert await app[keys.DATABASE].read(lambda conn: conn.execute(sql).fetchone()[0]) == 1
        assert page.js_errors == []  # type: ignore[attr-defined]


async def failed_login_burst(base_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for user in ("kanri", "nobody", "tanaka"):
            async with session.post(base_url + "/api/login", json={"user_id": user, "password": "wrong!"},
                                    headers={"Origin": base_url}) as resp:
                assert resp.status in (401, 403), resp.status


async def test_alerts_once_acknowledged_and_restored_after_a_restart(tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    clock = MovableClock(MONDAY_10)
    settings = operator_settings(tmp_path, port)
    app = build_operator_app(settings, clock, USERS)
    app[ALERT_SETTINGS] = AlertSettings(failed_logins=3, failed_login_window_seconds=60, poll_seconds=0.2)
    alerts = "#alerts li"
    async with serve(app, port) as run:
        await failed_login_burst(run.base_url)
        page = await supervisor_page(browser, run.base_url)
        await page.locator("#ws-status", has_text="リアルタイム接続中").wait_for()
        await page.locator(alerts, has_text="ログインの失敗が3回").wait_for()
        await page.reload()  # the list from the API and the hub's replay: still one entry
        await page.locator("#ws-status", has_text="リアルタイム接続中").wait_for()
        await page.wait_for_timeout(500)
        assert await page.locator(alerts).count() == 1
        clock.at = MONDAY_10 + timedelta(minutes=10)  # a second burst, within the old one-hour cooldown
        await failed_login_burst(run.base_url)
        await page.locator(alerts).nth(1).wait_for()  # pushed live
        assert await page.locator(alerts).count() == 2
        await screenshot(page, "supervisor-04-alerts")
        first = page.locator(alerts).nth(1)  # newest first: the older alert is second
        first_id = await first.get_attribute("data-alert-id")
        await first.get_by_role("button", name=f"警告 {first_id} を確認済みにする").click()
        await page.locator("#alerts-message", has_text="確認済みにしました").wait_for()
        assert await page.locator(alerts).count() == 1
        assert await page.locator(f'#alerts li[data-alert-id="{first_id}"]').count() == 0
        await screenshot(page, "supervisor-05-alert-acknowledged")
        assert page.js_errors == []  # type: ignore[attr-defined]
        await page.context.close()
    restarted = build_operator_app(settings, clock, [])  # cti restarted on the same database
    async with serve(restarted, port) as run:
        page = await supervisor_page(browser, run.base_url)
        await page.locator(alerts).first.wait_for()
        assert await page.locator(alerts).count() == 1  # the unacknowledged one is back, once
        assert await page.locator(f'#alerts li[data-alert-id="{first_id}"]').count() == 0
        sql = "SELECT count(*) FROM audit WHERE action = 'acknowledge' AND actor = 'kanri'"
        assert await restarted[keys.DATABASE].read(lambda conn: conn.execute(sql).fetchone()[0]) == 1
        assert page.js_errors == []  # type: ignore[attr-defined]
        await page.context.close()


async def test_a_supervisor_takes_a_callback_while_the_office_is_open_with_a_reason(
        tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    clock = MovableClock(MONDAY_10)  # Monday 10:00: the office is open
    app = build_operator_app(operator_settings(tmp_path, port), clock, USERS)
    async with serve(app, port) as run:
        service = app[keys.RECORDS]
        await service.call_taken("ov-1", OPERATOR.user_id, ivr_category="zei", caller_number="0312345678")
        await service.record_consent(OPERATOR, "ov-1", ConsentIn(answer="yes"))
        page = await supervisor_page(browser, run.base_url)
        await page.locator("#office-status", has_text="開庁中").wait_for()
        await page.locator("#ovcb-dept option", has_text="税務課").wait_for(state="attached")
        await page.fill("#ovcb-call", "ov-1")
        await page.select_option("#ovcb-dept", "zeimu")
        await page.fill("#ovcb-name", "山田 花子")
        await page.fill("#ovcb-phone", "090-1234-5678")
        await page.fill("#ovcb-question", "固定資産税の減免について")
        await page.click("#ovcb-form button[type=submit]")  # no reason: the server's message
        await page.locator("#ovcb-message", has_text="理由を入力してください").wait_for()
        await page.fill("#ovcb-reason", "税務課が全員会議中で転送できないため")
        await page.click("#ovcb-form button[type=submit]")
        await page.locator("#ovcb-message", has_text="を受け付けました").wait_for()
        assert "税務課が全員会議中" in await page.locator("#ovcb-message").inner_text()
        await screenshot(page, "supervisor-06-callback-while-open")
        row = await app[keys.DATABASE].read(lambda conn: conn.execute(
            "SELECT collected_by, override_reason, department FROM callbacks WHERE call_id = 'ov-1'").fetchone())
        assert tuple(row) == ("kanri", "税務課が全員会議中で転送できないため", "zeimu")
        assert page.js_errors == []  # type: ignore[attr-defined]
        await page.context.close()
