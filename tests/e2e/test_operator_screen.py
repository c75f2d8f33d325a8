"""The operator screen in Debian's Chromium against a real in-process cti app (real HTTP port,
real SQLite, the real municipal FAQ, the real pop router and hub): two operators, a pop for the
answering one only, FAQ search, consent and a callback request with a validation error first,
keyboard-only use. Calls are fed to the pop dispatcher as the tracker's domain events (the test
against a real Asterisk is tests/e2e/test_operator_screen_pbx.py). Screenshots go to artifacts/."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from browser import (
    FAQ_CREDIT,
    PASSWORD,
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

from cti import keys
from cti.core.clock import TOKYO
from screenpop.websocket import hub_of, sweep_sessions
from telephony.events import CallArrived, CallEnded, CallQueued, CallRouted, OperatorConnected, OperatorRinging

pytestmark = pytest.mark.browser

SATURDAY = datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)  # call center open, ward office closed
TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)  # both open
SEAT1, SEAT2 = "PJSIP/101", "PJSIP/102"
CALL = "1795822216.16"
CALLER = "0312345678"
USERS = [StaffUser("tanaka", display_name="田中"), StaffUser("suzuki", display_name="鈴木")]



def call_events(at: datetime, interface: str) -> tuple[list[object], list[object]]:
    ring = [
        CallArrived(call_id=CALL, at=at, caller_number=CALLER, caller_name=None, dialled_number="0355550000"),
        CallRouted(call_id=CALL, at=at, route="open", reason=None, category="kosodate"),
        CallQueued(call_id=CALL, at=at, queue="operators", position=1),
        OperatorRinging(call_id=CALL, at=at, interface=interface, member_name=None, queue="operators",
                        caller_number=CALLER, caller_name=None),
    ]
    answer = [OperatorConnected(call_id=CALL, at=at, interface=interface, member_name=None, queue="operators",
                                hold_time=12)]
    return ring, answer


def no_unexpected_errors(page: Page, expected_statuses: tuple[int, ...] = (401,)) -> list[str]:
    """Script errors and failed loads, less the HTTP statuses this test provokes on purpose (the first
    GET /api/me before login answers 401 by design)."""
    expected = tuple(f"status of {code} " for code in expected_statuses)
    return [e for e in page.js_errors if not any(x in e for x in expected)]  # type: ignore[attr-defined]


async def test_two_operators_pop_faq_consent_and_callback_by_keyboard(tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    clock = MovableClock(SATURDAY)
    app = build_operator_app(operator_settings(tmp_path, port), clock, USERS)
    async with serve(app, port) as run:
        assert not app[keys.CALENDARS].office(clock()).open  # the premise: office closed
        op1 = await new_operator_page(browser, run)
        op2 = await new_operator_page(browser, run)
        await login_and_take_seat(op1, "tanaka", SEAT1)
        await login_and_take_seat(op2, "suzuki", SEAT2)
        await screenshot(op1, "01-desk-after-login")

        ring, answer = call_events(clock(), SEAT1)
        await run.feed(ring)
        await op1.locator("#ringing", has_text="受付番号 20261128-0001").wait_for()
        assert "子育て" in await op1.locator("#ringing").inner_text()  # the IVR choice, in Japanese
        assert CALL not in await op1.locator("#ringing").inner_text()  # people read the 受付番号, not the Linkedid
        assert CALLER not in await op1.locator("#ringing").inner_text()  # ringing carries no personal data
        clock.advance(12)
        await run.feed(answer)
        await op1.locator("#pop-number", has_text="03-1234-5678").wait_for()
        assert await op1.locator("#ringing").is_hidden()
        assert await op1.locator("#pop-reference").inner_text() == "20261128-0001"
        assert await op1.locator("#call-card").get_attribute("data-call-id") == CALL
        assert await op1.locator("#pop-category").inner_text() == "子育て"
        assert "閉庁中" in await op1.locator("#pop-office").inner_text()
        assert await op1.locator("#pop-faq li a").count() >= 1  # FAQ suggestions for 子育て
        assert FAQ_CREDIT in await op1.locator("#pop-credit").inner_text()
        await op1.locator("#today-rows tr", has_text="20261128-0001").wait_for()
        await screenshot(op1, "02-pop-operator1")
        # the other operator got nothing: no ringing, no pop
        assert await op2.locator("#call-empty").is_visible()
        assert await op2.locator("#ringing").is_hidden()
        assert CALLER not in await op2.content()

        # FAQ search by keyboard: "/" focuses the box, 2 characters, ArrowDown + Enter opens an answer;
        # the words go over the websocket, never into a URL
        urls: list[str] = []
        op1.on("request", lambda request: urls.append(request.url))
        await op1.locator("body").focus()
        await op1.keyboard.press("Escape")
        await op1.evaluate("document.activeElement.blur()")
        await op1.keyboard.press("/")
        assert await focused_id(op1) == "faq-q"
        await op1.keyboard.type("保育")
        await op1.locator("#faq-results li").first.wait_for()
        assert await op1.locator("#faq-results li").count() >= 3
        assert "保育" in await op1.locator("#faq-results li").first.inner_text()
        assert await op1.locator("#faq-results mark").count() > 0
        assert await op1.locator("#faq-credit").inner_text() == FAQ_CREDIT
        await screenshot(op1, "03-faq-results")
        assert not [u for u in urls if "/api/faq/search" in u or "%E4%BF%9D" in u.upper()]
        await op1.keyboard.press("ArrowDown")
        await op1.keyboard.press("Enter")
        await op1.locator("#faq-answer").wait_for(state="visible")
        assert len(await op1.locator("#faq-answer-body").inner_text()) > 10
        assert await focused_id(op1) == "faq-answer"
        await op1.keyboard.press("Tab")  # -> この回答を使用
        assert await focused_id(op1) == "faq-use"
        await op1.keyboard.press("Enter")
        assert await op1.locator("#faq-use").inner_text() == "使用済み"

        # consent: Alt+4 jumps to the panel, the script is shown, Tab to 同意あり, Enter
        await op1.keyboard.press("Alt+4")
        assert await focused_id(op1) == "callback-title"
        script = app[keys.SETTINGS].records.consent_script.text
        # the configured script, its lead saying why the office is closed (a Saturday)
        lead = "本日は土曜・日曜で区役所が閉庁しているため"
        shown = lead + script.removeprefix("ただいま区役所の開庁時間外のため")
        assert await op1.locator("#consent-script").inner_text() == shown
        await op1.keyboard.press("Tab")
        assert await focused_id(op1) == "consent-yes"
        await op1.keyboard.press("Enter")
        await op1.locator("#callback-form").wait_for(state="visible")
        assert await focused_id(op1) == "cb-name"

        # the form, typed; a bad phone number first: the server's error appears next to the phone field
        await op1.keyboard.type("区民 花子")
        await op1.keyboard.press("Tab")
        await op1.keyboard.type("くみん はなこ")
        await op1.keyboard.press("Tab")
        await op1.keyboard.type("123")
        await op1.keyboard.press("Tab")
        await op1.locator("#cb-department").select_option("kosodate")
        await op1.locator("#cb-question").focus()
        await op1.keyboard.type("保育園の入園申込みの締切について折り返し連絡がほしい")
        # an optional address reveals its required reason field
        await op1.locator("#cb-use-address").focus()
        await op1.keyboard.press("Space")
        assert await op1.locator("#cb-address_reason").is_visible()
        assert await focused_id(op1) == "cb-address"
        await op1.keyboard.type("東京都千代田区1-1")
        await op1.keyboard.press("Enter")  # submits the form
        # every bad field at once: the phone and the address's missing reason, one summary announced
        phone_error = op1.locator('.field-error[data-for="phone"]')
        await phone_error.wait_for(state="visible")
        assert "電話" in await phone_error.inner_text()
        assert await op1.locator("#cb-phone").get_attribute("aria-invalid") == "true"
        reason_error = op1.locator('.field-error[data-for="address_reason"]')
        assert "理由" in await reason_error.inner_text()
        assert await op1.locator("#cb-address_reason").get_attribute("aria-invalid") == "true"
        assert "2件" in await op1.locator("#callback-error").inner_text()
        assert await focused_id(op1) == "cb-phone"  # the first bad field
        await screenshot(op1, "04-callback-validation-error")
        await op1.keyboard.press("Control+A")
        await op1.keyboard.type("03-1234-5678")
        await op1.locator("#cb-address_reason").focus()
        await op1.keyboard.type("申込書類を郵送するため")
        await op1.keyboard.press("Enter")
        done = op1.locator("#callback-done")
        await done.wait_for(state="visible")
        assert "折り返し依頼 #" in await done.inner_text()
        assert await op1.locator("input[name=outcome][value=callback_requested]").is_checked()
        await screenshot(op1, "05-callback-registered")

        # stored: one callback with the normalised phone, the consent before it, the FAQ entry used
        db = app[keys.DATABASE]
        rows = await db.read(lambda c: c.execute("SELECT phone, department, address_reason FROM callbacks").fetchall())
        assert [tuple(r) for r in rows] == [("0312345678", "kosodate", "申込書類を郵送するため")]
        rows = await db.read(lambda c: c.execute("SELECT answer FROM consents WHERE call_id = ?", (CALL,)).fetchall())
        assert [r[0] for r in rows] == ["yes"]

        # outcome: Alt+3, the outcome is preselected; Enter on the save button records it
        await op1.keyboard.press("Alt+3")
        assert await focused_id(op1) == "outcome-title"
        await op1.locator("#outcome-save").focus()
        await op1.keyboard.press("Enter")
        await op1.locator("#outcome-done", has_text="折り返し依頼").wait_for()
        row = await db.read(lambda c: c.execute(
            "SELECT outcome, faq_entries FROM contacts WHERE call_id = ?", (CALL,)).fetchone())
        outcome, faq_entries = tuple(row)
        assert outcome == "callback_requested" and faq_entries != "[]"

        # hangup reaches the answering operator only
        clock.advance(90)
        await run.feed([CallEnded(
            call_id=CALL, at=clock(), reason="answered", hung_up_by="citizen", cause=16, cause_text="Normal Clearing",
            last_state="Up", duration_s=102.0, talk_s=90.0, interface=SEAT1)])
        await op1.locator("#pop-state", has_text="通話終了").wait_for()
        await op1.locator("#today-rows tr", has_text="終了").wait_for()
        assert await op2.locator("#today-rows tr").count() == 0
        await screenshot(op1, "06-after-hangup")
        assert no_unexpected_errors(op1, (401, 422)) == [] and no_unexpected_errors(op2) == []


async def test_keyboard_shortcuts_and_visible_focus(tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    app = build_operator_app(operator_settings(tmp_path, port), MovableClock(TUESDAY), USERS[:1])
    async with serve(app, port) as run:
        page = await new_operator_page(browser, run)
        await login_and_take_seat(page, "tanaka", SEAT1)
        for key, target in (("1", "call-title"), ("3", "outcome-title"), ("4", "callback-title"),
                            ("5", "today-title"), ("2", "faq-q")):
            await page.keyboard.press(f"Alt+{key}")
            assert await focused_id(page) == target
            outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("none", ""), f"no visible focus on {target}"
        # "/" inside a text field types a slash instead of jumping
        await page.keyboard.type("a/b")
        assert await page.locator("#faq-q").input_value() == "a/b"
        # the office is open on a Tuesday morning: the badge says so
        assert "開庁中" in await page.locator("#office-status").inner_text()
        assert no_unexpected_errors(page) == []


async def test_office_open_pop_offers_transfer_not_callback(tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    clock = MovableClock(TUESDAY)
    app = build_operator_app(operator_settings(tmp_path, port), clock, USERS[:1])
    async with serve(app, port) as run:
        page = await new_operator_page(browser, run)
        await login_and_take_seat(page, "tanaka", SEAT1)
        ring, answer = call_events(clock(), SEAT1)
        await run.feed(ring + answer)
        await page.locator("#pop-number", has_text="03-1234-5678").wait_for()
        assert "開庁中" in await page.locator("#pop-office").inner_text()
        assert await page.locator("#callback-area").is_hidden()
        assert await page.locator("#callback-unavailable").is_visible()
        assert await page.locator("#transfer-btn").is_enabled()
        assert await page.locator("#transfer-dept option").count() == 5  # departments with an extension
        await screenshot(page, "07-pop-office-open")
        # a reload during the call brings the pop back (composed again by the server), seat kept
        await page.reload()
        await page.locator("#pop-number", has_text="03-1234-5678").wait_for()
        assert await page.locator("#pop-state").inner_text() == "通話中"
        assert await page.locator("#pop-category").inner_text() == "子育て"
        assert await page.locator("#seat-label").inner_text() == "席101（内線101）"  # PJSIP/101 as people say it
        await page.locator("#conn-status", has_text="接続中").wait_for()
        assert no_unexpected_errors(page) == []


async def test_session_expiry_returns_to_login(tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    clock = MovableClock(TUESDAY)
    app = build_operator_app(operator_settings(tmp_path, port), clock, USERS[:1])
    async with serve(app, port) as run:
        page = await new_operator_page(browser, run)
        await login_and_take_seat(page, "tanaka", SEAT1)
        clock.advance(app[keys.SETTINGS].security.session_idle_minutes * 60)  # idle too long
        assert await sweep_sessions(app) >= 1  # what the hub's periodic sweep does
        await page.wait_for_url(re.compile(r"/login\?m=expired$"))  # the server's one login page
        assert "ログイン" in await page.locator("#login-notice").inner_text()
        assert await focused_id(page) == "user_id"


async def test_dropped_websocket_reconnects_and_resumes_without_losing_a_message(
    tmp_path: Path, browser: Browser
) -> None:
    port = free_port()
    clock = MovableClock(SATURDAY)
    app = build_operator_app(operator_settings(tmp_path, port), clock, USERS[:1])
    async with serve(app, port) as run:
        page = await new_operator_page(browser, run)
        sent: list[dict[str, object]] = []
        page.on("websocket", lambda ws: ws.on(
            "framesent", lambda payload: sent.append(json.loads(payload)) if isinstance(payload, str) else None))
        await login_and_take_seat(page, "tanaka", SEAT1)
        # something sequenced first (presence: ready), so the client has a last_seq to resume from
        await page.locator("#btn-ready").focus()
        await page.keyboard.press("Enter")
        await page.locator("#presence-label", has_text="受付可").wait_for()
        await page.locator("#pause-reason").select_option("研修")
        await page.locator("#btn-pause").click()
        await page.locator("#presence-label", has_text="離席中（研修）").wait_for()

        hub = hub_of(app)
        for conn in [c for c in hub.connections() if c.user_id == "tanaka"]:
            conn.request_close(1012, "test_drop", None)
        await page.locator("#conn-status", has_text="再接続").wait_for()
        ring, _ = call_events(clock(), SEAT1)
        await run.feed(ring)  # sent while the browser is away
        await page.locator("#ringing", has_text="20261128-0001").wait_for()  # replayed after the resume
        await page.locator("#conn-status", has_text="接続中").wait_for()
        assert sent[0] == {"type": "ping"}  # a fresh page asks for a snapshot, not a replay
        [resume] = [m for m in sent if m.get("type") == "resume"]
        assert isinstance(resume["last_seq"], int) and resume["last_seq"] >= 2  # after two presence messages
        assert isinstance(resume["epoch"], str) and resume["epoch"]  # the server's, from hello
        assert no_unexpected_errors(page) == []


async def test_department_staff_are_sent_to_their_own_page(tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    users = [StaffUser("kosodate01", role="department", department="kosodate")]
    app = build_operator_app(operator_settings(tmp_path, port), MovableClock(TUESDAY), users)
    async with serve(app, port) as run:
        page = await new_operator_page(browser, run)
        await page.wait_for_url(re.compile(r"/login\?m=login$"))
        await page.locator("#user_id").fill("kosodate01")
        await page.locator("#password").fill(PASSWORD)
        await page.keyboard.press("Enter")
        await page.wait_for_url(run.base_url + "/department/")
        assert (await page.context.request.get(run.base_url + "/api/me")).status == 200  # still logged in
