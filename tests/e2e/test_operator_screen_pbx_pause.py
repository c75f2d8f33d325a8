"""The operator's away reaches the real Asterisk 22 and survives Asterisk's restart: the operator
goes 離席 (休憩) in Chromium, the queue member is paused in Asterisk; ``scripts/pbx restart``
(core restart now) makes Asterisk forget every pause; after the AMI reconnect cti pauses the member
again from its own record, and the page and the wall show what Asterisk has. Screenshot in artifacts/."""

from __future__ import annotations

import asyncio
import re
import time
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

from cti import keys
from cti.core.clock import TOKYO
from supervision.service import SUPERVISOR

if TYPE_CHECKING:  # the fixtures' types (tests/e2e/conftest.py)
    from conftest import Pbx

pytestmark = [pytest.mark.asterisk, pytest.mark.browser]

TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
OP101 = "Local/101@operator-phones"



def member_line(pbx: Pbx, interface: str) -> str:
    """The member's line of `queue show operators` (Asterisk's own view)."""
    for line in pbx.cli("queue show operators").splitlines():
        if interface in line:
            return line
    raise AssertionError(f"{interface} is not a member of the operators queue")


async def until(check: object, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while True:
        if callable(check) and await asyncio.to_thread(check):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.3)


async def test_away_is_paused_in_asterisk_and_reapplied_after_asterisk_restarts(
    tmp_path: Path, pbx: Pbx, browser: Browser
) -> None:
    port = free_port()
    sections = pbx.cti_sections()
    sections["ami"].update(reconnect_initial=0.2, reconnect_max=1.0)
    settings = operator_settings(tmp_path, port, **sections)
    # No call of an earlier test may still be up at 101: a starting cti rightly shows it (通話中)
    pbx.cli("channel request hangup all")
    await until(lambda: "0 active channels" in pbx.cli("core show channels count"), 10, "no call left")
    app = build_operator_app(settings, MovableClock(TUESDAY), [StaffUser("tanaka", display_name="田中")])
    async with serve(app, port) as run:
        for _ in range(200):
            if app[keys.READINESS].report()[1].get("ami", {}).get("ready"):
                break
            await asyncio.sleep(0.1)
        page = await new_operator_page(browser, run)
        await login_and_take_seat(page, "tanaka", OP101)
        # a new seat starts away in Asterisk (whatever an earlier test left there); 受付可 unpauses it
        await until(lambda: "paused:受付開始前" in member_line(pbx, OP101), 10, "the new seat paused")
        await page.locator("#presence-label", has_text="離席中（受付開始前）").wait_for()
        await page.locator("#btn-ready").click()
        await page.locator("#presence-label", has_text="受付可").wait_for()
        await until(lambda: not re.search(r"\(paused", member_line(pbx, OP101)), 10, "the member unpaused")
        await page.locator("#pause-reason").select_option("休憩")
        await page.locator("#btn-pause").click()
        await page.locator("#presence-label", has_text="離席中（休憩）").wait_for()
        await until(lambda: "paused:休憩" in member_line(pbx, OP101), 10, "the member paused with the reason")

        pbx.restart()  # core restart now: Asterisk comes back with every static member unpaused
        await until(lambda: "paused:休憩" in member_line(pbx, OP101), 30, "the pause re-applied after the restart")
        board = app[keys.AMI].presence
        await until(lambda: bool(getattr(board.get("operators", OP101), "paused", False)), 10, "the board paused")
        wall = app[SUPERVISOR].feed.view()["operators"]
        assert [(o["state"], o["pause_reason"]) for o in wall if o["operator_id"] == "tanaka"] == [("paused", "休憩")]
        await page.locator("#conn-status", has_text="接続中").wait_for()
        assert await page.locator("#presence-label").inner_text() == "離席中（休憩）"
        await screenshot(page, "pbx-06-away-after-asterisk-restart")
