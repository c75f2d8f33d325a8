"""The operator screen with real SIP phones (sip_lab.py): the seat screen lists the queue's real
members as people say them (席101（内線101）), refuses an interface that is no member, takes "101"; the
pop reaches the seat whose SIP phone answered and no other; the phone's own transfer key (REFER) shows
on the screen as a transfer. cti runs as create_app wires it (AMI link, FastAGI, pops), in Chromium."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from browser import (
    PASSWORD,
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
from sip_lab import CALLER, Phones, SipLab, is_event, trunk_call

from cti import keys
from cti.core.clock import TOKYO

if TYPE_CHECKING:
    from conftest import AmiClient

pytestmark = [pytest.mark.asterisk, pytest.mark.browser]

TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)  # call center and ward office open


SIP_LAB_NAME = "sipscreen"  # the lab PBX instance (the sip_lab fixture, tests/e2e/conftest.py)



async def wait_ready(app: Any, component: str, within: float = 20.0) -> None:
    for _ in range(int(within / 0.1)):
        _, components = app[keys.READINESS].report()
        if components.get(component, {}).get("ready"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{component} not ready within {within} s: {app[keys.READINESS].report()}")


async def test_seat_by_number_pop_on_the_answering_sip_phone_and_its_transfer_key(
    tmp_path: Path, sip_lab: SipLab, phones: Phones, admin: AmiClient, browser: Browser
) -> None:
    port = free_port()
    pbx = sip_lab.pbx
    settings = operator_settings(tmp_path, port, **pbx.cti_sections())
    users = [StaffUser("tanaka", display_name="田中"), StaffUser("suzuki", display_name="鈴木")]
    app = build_operator_app(settings, MovableClock(TUESDAY), users)
    async with serve(app, port) as run:
        await wait_ready(app, "ami")
        await wait_ready(app, "fastagi")
        op1 = await new_operator_page(browser, run)
        await op1.wait_for_url(re.compile(r"/login\?m=login$"))  # the server's one login page
        await op1.locator("#user_id").fill("tanaka")
        await op1.locator("#password").fill(PASSWORD)
        await op1.keyboard.press("Enter")
        # the seat screen: the queue's members as the PBX reports them, as people say them
        await op1.locator("#seat-options label", has_text="席101（内線101）").wait_for()
        assert await op1.locator("#seat-options label", has_text="席102（内線102）").count() == 1
        # the old documentation's example is no member: refused, naming the seats that exist
        await op1.locator("#seat-other").fill("PJSIP/op101")
        await op1.keyboard.press("Enter")
        await op1.locator("#seat-error").wait_for(state="visible")
        refused = await op1.locator("#seat-error").inner_text()
        assert "席101（内線101）" in refused and "PJSIP/101" in refused and "PJSIP/op101" in refused
        await screenshot(op1, "sip-00-unknown-seat-refused")
        await op1.locator("#seat-other").fill("101")
        await op1.keyboard.press("Enter")
        await op1.locator("#screen-desk").wait_for(state="visible")
        assert await op1.locator("#seat-label").inner_text() == "席101（内線101）"
        await op1.locator("#btn-ready").click()  # a new seat starts away (受付開始前): ready for calls
        await op1.locator("#presence-label", has_text="受付可").wait_for()
        op2 = await new_operator_page(browser, run)
        await login_and_take_seat(op2, "suzuki", "席102")
        assert await op2.locator("#seat-label").inner_text() == "席102（内線102）"

        await admin.action("QueuePause", Interface="PJSIP/102", Queue="operators", Paused="true")  # on a break
        try:
            channel = await trunk_call(admin, phones, dtmf="5")
            await phones.op101.wait_event("CALL_INCOMING", wait_s=30)
            await asyncio.sleep(1.0)  # it rings
            await phones.op101.accept()
            await op1.locator("#pop-number", has_text="03-1234-5678").wait_for(timeout=30_000)  # CALLER, formatted
            assert await op1.locator("#pop-category").inner_text() == "子育て"
            assert await op2.locator("#call-empty").is_visible()
            assert CALLER not in await op2.content() and "03-1234-5678" not in await op2.content()
            await screenshot(op1, "sip-01-pop-on-seat-101")
            # the operator presses the phone's own transfer key (REFER) to 戸籍住民課
            await phones.op101.transfer("201")
            await phones.dept201.wait_event("CALL_ESTABLISHED", wait_s=20)
            await op1.locator("#pop-state", has_text="転送済み").wait_for(timeout=15_000)
            assert await op1.locator("#pop-state").inner_text() == "転送済み（戸籍住民課）"  # 201, by name
            await screenshot(op1, "sip-02-transferred-by-the-phone-key")
            await phones.trunk.hangup()
            await admin.wait_event(is_event("Hangup", Channel=channel))
        finally:
            await admin.action("QueuePause", Interface="PJSIP/102", Queue="operators", Paused="false")
