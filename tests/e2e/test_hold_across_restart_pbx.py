"""A call on hold across a restart of cti, against the real Asterisk 22 of the ``pbx`` fixture.

The operator holds a call from the screen (cti-hold: the citizen hears hold music), then cti stops
and a new cti process starts on the same database and port. Nothing of the hold was kept in cti:
the new process learns from Asterisk (CoreShowChannels: the operator's leg runs cti-hold's Read())
that the call is connected at the operator's seat and on hold; the open page reconnects and shows
保留中, and 保留解除 resumes it (Asterisk's Unhold). Before, the restarted cti did not recognise
the call at all (its legs had left from-pstn for cti-queue), and 保留解除 was refused as a hold of
the phone's own (the list of cti's holds was in the old process's memory).
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
from test_operator_screen_pbx import wait_ready

from cti.core.clock import TOKYO

if TYPE_CHECKING:  # the fixtures' types (tests/e2e/conftest.py)
    from conftest import AmiClient, Pbx
    from playwright.async_api import Browser

pytestmark = [pytest.mark.asterisk, pytest.mark.browser]

TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
WARD_NUMBER, CALLER = "0301110000", "0312345678"
OP101 = "Local/101@operator-phones"


async def test_a_held_call_is_still_held_and_resumable_after_cti_restarts(
    tmp_path: Path, pbx: Pbx, ami: AmiClient, browser: Browser
) -> None:
    port = free_port()
    settings = operator_settings(tmp_path, port, **pbx.cti_sections())
    clock = MovableClock(TUESDAY)
    caller_leg = f"test-{uuid.uuid4().hex[:12]}"
    app = build_operator_app(settings, clock, [StaffUser("tanaka")])
    try:
        async with serve(app, port) as run:
            await wait_ready(app, "ami")
            page = await new_operator_page(browser, run)
            run.pages.remove(page)  # this page outlives the first cti
            await login_and_take_seat(page, "tanaka", OP101)
            await page.locator("#btn-ready").click()
            await page.locator("#presence-label", has_text="受付可").wait_for()
            response = await ami.action(
                "Originate", Channel=f"Local/{WARD_NUMBER}@from-pstn", Context="citizen-sim", Exten="dtmf",
                Priority="1", CallerID=f'"Citizen" <{CALLER}>', ChannelId=caller_leg,
                OtherChannelId=f"test-{uuid.uuid4().hex[:12]}", Async="true", Timeout="10000",
                Variable="SIM_DTMF=3\nSIM_CALLER_WAIT=150\n__SIM_OP102=noanswer\n__SIM_OP_TALK_TIME=150")
            assert response["Response"] == "Success", response
            connect = await ami.wait_event(
                lambda e: e.get("Event") == "AgentConnect" and e.get("Linkedid") == caller_leg, 45)
            operator_leg = connect["DestChannel"]
            await page.locator(f"#call-card[data-call-id='{caller_leg}']").wait_for(timeout=20_000)
            mark = len(ami.events)
            await page.locator("#hold-btn").click()
            await ami.wait_event(lambda e: e.get("Event") == "Hold" and e.get("Channel") == operator_leg, 10,
                                 start=mark)
            await page.locator("#call-control-state").filter(has_text="保留中").wait_for()
        await page.locator("#conn-status", has_text="再接続").wait_for()

        app = build_operator_app(settings, clock, [])  # a new cti process: same database, same port
        async with serve(app, port) as run:
            run.pages.append(page)
            await wait_ready(app, "ami")
            await page.locator("#conn-status", has_text="接続中").wait_for(timeout=20_000)
            await page.locator(f"#call-card[data-call-id='{caller_leg}']").wait_for(timeout=20_000)
            await page.locator("#pop-state", has_text="保留中").wait_for(timeout=10_000)
            assert await page.locator("#resume-btn").is_enabled()
            await screenshot(page, "hold-after-restart")
            mark = len(ami.events)
            await page.locator("#resume-btn").click()
            await ami.wait_event(lambda e: e.get("Event") == "Unhold" and e.get("Channel") == operator_leg, 10,
                                 start=mark)
            await page.locator("#call-control-state").filter(has_text="保留を解除しました").wait_for()
            assert "保留中" not in await page.locator("#pop-state").inner_text()
    finally:  # no leg of the call may stay up in the shared PBX (the lab's queue side would ring 101 again)
        pbx.cli("channel request hangup all")
