"""The operator screen across a cti restart, in Debian's Chromium against a real cti app on a real
port and SQLite file: the same seat and away reason come back (the open page reconnects and a
reloaded page shows them, never 受付可), and a page whose seat is gone says at once to choose again.
Screenshots go to artifacts/."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

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
from playwright.async_api import Browser, Page

from cti.core.clock import TOKYO
from screenpop.seats import seat_label

pytestmark = pytest.mark.browser

TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
SEAT = "PJSIP/101"
USER = StaffUser("tanaka", display_name="田中")



async def go_away(page: Page, reason: str) -> None:
    await page.locator("#pause-reason").select_option(reason)
    await page.locator("#btn-pause").click()
    await page.locator("#presence-label", has_text=f"離席中（{reason}）").wait_for()


async def test_seat_and_away_reason_come_back_after_a_restart(tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    clock = MovableClock(TUESDAY)
    settings = operator_settings(tmp_path, port)
    async with serve(build_operator_app(settings, clock, [USER]), port) as run:
        page = await new_operator_page(browser, run)
        run.pages.remove(page)  # this page outlives the first server
        await login_and_take_seat(page, "tanaka", SEAT)
        await page.locator("#presence-label", has_text="離席中（受付開始前）").wait_for()  # never 受付可 by default
        await go_away(page, "研修")
    await page.locator("#conn-status", has_text="再接続").wait_for()

    async with serve(build_operator_app(settings, clock, []), port) as run:  # a new process, same database
        run.pages.append(page)
        await page.locator("#conn-status", has_text="接続中").wait_for(timeout=20_000)
        assert await page.locator("#seat-label").inner_text() == seat_label(SEAT)
        assert await page.locator("#presence-label").inner_text() == "離席中（研修）"
        await page.reload()  # a fresh page learns all of it from the server alone
        await page.locator("#screen-desk").wait_for(state="visible")
        await page.locator("#conn-status", has_text="接続中").wait_for()
        await page.locator("#presence-label", has_text="離席中（研修）").wait_for()
        assert await page.locator("#seat-label").inner_text() == seat_label(SEAT)
        await screenshot(page, "operator-restart-restored")
        run.pages.remove(page)

    # the seat is gone when cti comes back (freed while it was down): the page says so at once
    with sqlite3.connect(tmp_path / "cti.sqlite3") as conn:
        conn.execute("DELETE FROM operator_desks")
    async with serve(build_operator_app(settings, clock, []), port) as run:
        run.pages.append(page)
        await page.locator("#screen-seat").wait_for(state="visible", timeout=20_000)
        assert "席をもう一度選んでください" in await page.locator("#seat-error").inner_text()
        assert await page.locator("#screen-desk").is_hidden()
        assert await page.locator("#presence-label").is_hidden() and await page.locator("#seat-label").is_hidden()
        await screenshot(page, "operator-restart-seat-lost")
