"""Issue 16 with real SIP phones (sip_lab.py, CTI_PBX_SIP=1): the operator's leg is the PJSIP channel
of a baresip phone (PJSIP/101-…), the department is the SIP phone 201 (answers by itself), the
citizen comes in over the SIP trunk. From the screen: 保留 / 保留解除, 相談転送 → 取消, 相談転送 →
転送完了, each checked on Asterisk's events and on the phones (the operator's phone is hung up by
Asterisk at the end, the department's stays connected to the citizen)."""

from __future__ import annotations

import asyncio
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
from playwright.async_api import Browser
from sip_lab import Phones, SipLab, is_event, trunk_call
from test_sip_operator_screen import wait_ready

from cti.core.clock import TOKYO

if TYPE_CHECKING:
    from conftest import AmiClient, Event

pytestmark = [pytest.mark.asterisk, pytest.mark.browser]

TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)  # call center and ward office open


SIP_LAB_NAME = "sipconsult"  # the lab PBX instance (the sip_lab fixture, tests/e2e/conftest.py)


async def test_hold_and_consult_transfer_with_sip_phones(
    tmp_path: Path, sip_lab: SipLab, phones: Phones, admin: AmiClient, browser: Browser
) -> None:
    port = free_port()
    pbx = sip_lab.pbx
    settings = operator_settings(tmp_path, port, **pbx.cti_sections())
    app = build_operator_app(settings, MovableClock(TUESDAY), [StaffUser("tanaka")])
    async with serve(app, port) as run:
        await wait_ready(app, "ami")
        page = await new_operator_page(browser, run)
        await login_and_take_seat(page, "tanaka", "席101")
        await page.locator("#btn-ready").click()
        await page.locator("#presence-label", has_text="受付可").wait_for()
        status = page.locator("#call-control-state")
        await admin.action("QueuePause", Interface="PJSIP/102", Queue="operators", Paused="true")
        try:
            trunk_leg = await trunk_call(admin, phones, dtmf="1")
            await phones.op101.wait_event("CALL_INCOMING", wait_s=30)
            await phones.op101.accept()
            connect = await admin.wait_event(is_event("AgentConnect", Channel=trunk_leg), 20)
            operator_leg = connect["DestChannel"]
            assert operator_leg.startswith("PJSIP/101-")
            await page.locator("#pop-number", has_text="03-1234-5678").wait_for(timeout=20_000)

            mark = len(admin.events)
            await page.locator("#hold-btn").click()
            await admin.wait_event(is_event("Hold", Channel=operator_leg), 10, start=mark)
            await status.filter(has_text="保留中").wait_for()
            mark = len(admin.events)
            await page.locator("#resume-btn").click()
            await admin.wait_event(is_event("Unhold", Channel=operator_leg), 10, start=mark)
            await status.filter(has_text="保留を解除しました").wait_for()

            mark = len(admin.events)
            await page.locator("#transfer-dept").select_option("koseki")
            await page.locator("#consult-btn").click()
            await phones.dept201.wait_event("CALL_ESTABLISHED", wait_s=20)
            await status.filter(has_text="相談中: 戸籍住民課").wait_for()
            await screenshot(page, "sip-consult-01-consulting")
            await page.locator("#consult-cancel-btn").click()
            await phones.dept201.wait_event("CALL_CLOSED", wait_s=15)
            await admin.wait_event(is_event("Unhold", Channel=operator_leg), 10, start=mark)
            await status.filter(has_text="戸籍住民課との相談を終えました").wait_for()

            await asyncio.sleep(0.5)
            mark = len(admin.events)
            established = len(phones.dept201.seen("CALL_ESTABLISHED"))
            await page.locator("#consult-btn").click()
            await status.filter(has_text="相談中: 戸籍住民課").wait_for(timeout=20_000)
            for _ in range(100):  # the department's phone answers the second consult
                if len(phones.dept201.seen("CALL_ESTABLISHED")) > established:
                    break
                await asyncio.sleep(0.2)
            await page.locator("#consult-complete-btn").click()
            done: Event = await admin.wait_event(
                lambda e: e.get("Event") == "AttendedTransfer" and e.get("TransfereeChannel") == trunk_leg, 10,
                start=mark)
            assert done["Result"] == "Success" and done["OrigTransfererChannel"] == operator_leg
            await phones.op101.wait_event("CALL_CLOSED", wait_s=15)  # Asterisk hung the operator up
            await page.locator("#pop-state", has_text="転送済み（戸籍住民課）").wait_for(timeout=15_000)
            await status.filter(has_text="戸籍住民課へ転送しました").wait_for()
            assert not admin.matching(is_event("Hangup", Channel=trunk_leg))  # the citizen talks to 201
            assert not [e for e in phones.dept201.seen("CALL_CLOSED")][1:]  # 201's second call is up
            await screenshot(page, "sip-consult-02-transferred")
            await phones.trunk.hangup()
            await admin.wait_event(is_event("Hangup", Channel=trunk_leg))
        finally:
            await admin.action("QueuePause", Interface="PJSIP/102", Queue="operators", Paused="false")
