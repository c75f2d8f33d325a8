"""Issue 16 end to end: hold / resume and the consult (attended) transfer from the operator's
screen, against the real Asterisk 22 of the ``pbx`` fixture (Local-channel lab: the operator's
leg is ``Local/101@operator-phones-…;1``, the departments are Local phones that answer).

One real call: 保留 → Asterisk's Hold + MusicOnHoldStart, 保留解除 → Unhold; 相談転送 to 保険年金課
(203) → a ``Local/203@consult`` leg of the same call, 取消 → the consult legs hang up and the
operator's leg is back in the citizen's bridge; 相談転送 to 子育て支援課 (205), 転送完了 →
``AttendedTransfer`` Success and the citizen bridged with 205's leg; the screen follows each step
from Asterisk's events (aria-live state line, 保留中 / 相談中, buttons enabled only when they apply).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from browser import (
    MovableClock,
    StaffUser,
    build_operator_app,
    free_port,
    login_and_take_seat,
    new_operator_page,
    operator_settings,
    screenshot,
    serve,
)
from playwright.async_api import Page
from test_operator_screen_pbx import wait_ready

from cti import keys
from cti.core.clock import TOKYO

if TYPE_CHECKING:  # the fixtures' types (tests/e2e/conftest.py)
    from conftest import AmiClient, Event, Pbx
    from playwright.async_api import Browser

pytestmark = [pytest.mark.asterisk, pytest.mark.browser]

TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)  # call center and ward office open
WARD_NUMBER, CALLER = "0301110000", "0312345678"
OP101 = "Local/101@operator-phones"
BUTTONS = {"hold-btn": "保留", "resume-btn": "保留解除", "consult-btn": "相談転送",
           "consult-complete-btn": "転送完了", "consult-cancel-btn": "取消"}


async def enabled(page: Page) -> set[str]:
    return {b for b in BUTTONS if await page.locator(f"#{b}").is_enabled()}


async def test_hold_resume_and_consult_transfer_cancelled_then_completed_on_the_real_pbx(
    tmp_path: Path, pbx: Pbx, ami: AmiClient, browser: Browser
) -> None:
    port = free_port()
    settings = operator_settings(tmp_path, port, **pbx.cti_sections())
    clock = MovableClock(TUESDAY)
    app = build_operator_app(settings, clock, [StaffUser("tanaka")])
    async with serve(app, port) as run:
        await wait_ready(app, "ami")
        page = await new_operator_page(browser, run)
        await login_and_take_seat(page, "tanaka", OP101)
        await page.locator("#btn-ready").click()
        await page.locator("#presence-label", has_text="受付可").wait_for()
        for button, label in BUTTONS.items():  # labelled in Japanese, nothing applies before a call
            assert (await page.locator(f"#{button}").inner_text()).strip() == label
        assert await enabled(page) == set()
        status = page.locator("#call-control-state")
        assert (await status.get_attribute("role"), await status.get_attribute("aria-live")) == ("status", "polite")

        # a citizen calls; only 101 answers and everyone stays on the line (the variables are inherited
        # by the operator's leg and by the department legs the consult dials)
        caller_leg = f"test-{uuid.uuid4().hex[:12]}"
        response = await ami.action(
            "Originate", Channel=f"Local/{WARD_NUMBER}@from-pstn", Context="citizen-sim", Exten="dtmf",
            Priority="1", CallerID=f'"Citizen" <{CALLER}>', ChannelId=caller_leg,
            OtherChannelId=f"test-{uuid.uuid4().hex[:12]}", Async="true", Timeout="10000",
            Variable="SIM_DTMF=3\nSIM_CALLER_WAIT=150\n__SIM_OP102=noanswer\n__SIM_OP_TALK_TIME=150")
        assert response["Response"] == "Success", response
        call_id = caller_leg

        def of_call(name: str, **fields: str):  # type: ignore[no-untyped-def]
            return lambda e: (e.get("Event") == name and e.get("Linkedid") == call_id
                              and all(e.get(k) == v for k, v in fields.items()))

        def transfer_of_call(e: Event) -> bool:  # AttendedTransfer has no Linkedid of its own
            return e.get("Event") == "AttendedTransfer" and e.get("TransfereeLinkedid") == call_id

        def bridge_of(channel: str) -> str | None:
            """The bridge Asterisk last reported `channel` entering (None once it left it)."""
            where = None
            for e in ami.events:
                if e.get("Channel") == channel and e.get("Event") in ("BridgeEnter", "BridgeLeave"):
                    where = e["BridgeUniqueid"] if e["Event"] == "BridgeEnter" else None
            return where

        connect = await ami.wait_event(of_call("AgentConnect"), 45)
        operator_leg, citizen_leg = connect["DestChannel"], connect["Channel"]
        assert operator_leg.startswith(f"{OP101}-") and operator_leg.endswith(";1")
        await page.locator(f"#call-card[data-call-id='{call_id}']").wait_for(timeout=20_000)
        assert await enabled(page) == {"hold-btn", "consult-btn"}

        # 保留: Asterisk holds the citizen (hold music), the screen says so
        mark = len(ami.events)
        await page.locator("#hold-btn").click()
        held = await ami.wait_event(of_call("Hold", Channel=operator_leg), 10, start=mark)
        moh = await ami.wait_event(of_call("MusicOnHoldStart", Channel=citizen_leg), 10, start=mark)
        assert held["Uniqueid"] != moh["Uniqueid"]
        await status.filter(has_text="保留中").wait_for()
        assert "保留中" in await page.locator("#pop-state").inner_text()
        assert await enabled(page) == {"resume-btn"}
        assert await page.locator("#transfer-btn").is_disabled()  # no blind transfer of a held call
        await screenshot(page, "consult-01-on-hold")

        # 保留解除
        mark = len(ami.events)
        await page.locator("#resume-btn").click()
        await ami.wait_event(of_call("Unhold", Channel=operator_leg), 10, start=mark)
        await ami.wait_event(of_call("MusicOnHoldStop", Channel=citizen_leg), 10, start=mark)
        await status.filter(has_text="保留を解除しました").wait_for()
        assert await enabled(page) == {"hold-btn", "consult-btn"}
        assert "保留中" not in await page.locator("#pop-state").inner_text()

        # 相談転送 to 保険年金課 (203), then 取消
        mark = len(ami.events)
        await page.locator("#transfer-dept").select_option("hoken")
        await page.locator("#consult-btn").click()
        consult_leg = await ami.wait_event(of_call("Newchannel", Context="consult", Exten="203"), 10, start=mark)
        await ami.wait_event(of_call("Hold", Channel=operator_leg), 10, start=mark)
        await ami.wait_event(lambda e: e.get("Event") == "BridgeEnter" and e.get("Linkedid") == call_id
                             and e.get("Channel", "").startswith("Local/203@department-phones-"), 15, start=mark)
        await status.filter(has_text="相談中: 保険年金課").wait_for()
        assert await enabled(page) == {"consult-complete-btn", "consult-cancel-btn"}
        await screenshot(page, "consult-02-consulting")
        mark = len(ami.events)
        await page.locator("#consult-cancel-btn").click()
        await ami.wait_event(of_call("Unhold", Channel=operator_leg), 10, start=mark)
        await ami.wait_event(of_call("Hangup", Uniqueid=consult_leg["Uniqueid"]), 10, start=mark)
        await ami.wait_event(of_call("BridgeEnter", Channel=operator_leg), 10, start=mark)
        assert bridge_of(operator_leg) == bridge_of(citizen_leg) is not None  # with the citizen again
        await status.filter(has_text="保険年金課との相談を終えました").wait_for()
        assert await enabled(page) == {"hold-btn", "consult-btn"}
        assert not ami.matching(transfer_of_call)
        snapshot = app[keys.AMI].tracker.get(call_id)
        assert snapshot is not None and snapshot.state == "connected" and not snapshot.on_hold

        # 相談転送 to 子育て支援課 (205), then 転送完了
        mark = len(ami.events)
        await page.locator("#transfer-dept").select_option("kosodate")
        await page.locator("#consult-btn").click()
        # right after the cancel: Asterisk plays no sound then (features.conf xferfailsound), which
        # would swallow the keys of this consult
        await ami.wait_event(lambda e: e.get("Event") == "BridgeEnter" and e.get("Linkedid") == call_id
                             and e.get("Channel", "").startswith("Local/205@department-phones-"), 15, start=mark)
        await status.filter(has_text="相談中: 子育て支援課").wait_for()
        mark = len(ami.events)
        await page.locator("#consult-complete-btn").click()
        done: Event = await ami.wait_event(transfer_of_call, 10, start=mark)
        assert done["Result"] == "Success" and done["TransfereeChannel"] == citizen_leg
        assert done["TransferTargetChannel"].startswith("Local/205@consult-")
        # citizen <-> department: both now in the bridge that survived the transfer
        bridge = done["DestBridgeUniqueid"]
        assert (done["DestType"], bridge_of(citizen_leg), bridge_of(done["TransferTargetChannel"])) == (
            "Bridge", bridge, bridge), [e for e in ami.events[mark:] if e.get("Event", "").startswith("Bridge")]
        await ami.wait_event(of_call("Hangup", Channel=operator_leg), 10, start=mark)  # the operator left
        await page.locator("#pop-state", has_text="転送済み（子育て支援課）").wait_for()
        await status.filter(has_text="子育て支援課へ転送しました").wait_for()
        assert await enabled(page) == set()
        assert await page.locator("input[name=outcome][value=transferred]").is_checked()
        assert not ami.matching(of_call("Hangup", Channel=citizen_leg))  # the citizen is still on the line
        await screenshot(page, "consult-03-transferred")
        # (the page's first /api/me before the login answers 401: expected)
        assert [e for e in page.js_errors if "status of 401" not in e] == []  # type: ignore[attr-defined]
        await ami.action("Hangup", Channel=citizen_leg)
