"""Playwright helpers for the operator-screen tests: Debian's Chromium, a real cti app on a real
port (every package wired as create_app wires it), test users, screenshots in artifacts/.

Playwright's own browser download does not work here: always Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType, web
from argon2 import PasswordHasher
from playwright.async_api import Browser, Page, Playwright

from access.web import AUTH, PASSWORD_HASHER, auth_ctx
from cti import keys
from cti.app import create_app, database_ctx
from cti.config import Settings
from faq.parsing import parse_faq
from faq.service import FaqService
from records.keys import CALL_FEED
from screenpop.dispatcher import DISPATCHER, PopDispatcher, pop_ctx

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
FAQ_FILE = ROOT / "tests" / "fixtures" / "faq" / "kosodate_opendata_faq_corpus.json"
FAQ_CREDIT = "出典：子育てオープンデータ協議会「汎用FAQ」（CC BY 4.0）"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "operator-pass-123"
VIEWPORT = {"width": 1366, "height": 768}


class MovableClock:
    """The injected clock of the app under test."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("MovableClock needs an aware datetime")
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@dataclass(frozen=True)
class StaffUser:
    user_id: str
    role: str = "operator"
    display_name: str = ""
    department: str | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def operator_settings(tmp_path: Path, port: int, **sections: dict[str, Any]) -> Settings:
    base: dict[str, Any] = {
        "store": {"path": str(tmp_path / "cti.sqlite3")},
        "security": {
            "allowed_origins": [f"http://127.0.0.1:{port}"],
            "operator_networks": ["127.0.0.0/8", "::1/128"],
        },
        "ami": {"enabled": False},
        "agi": {"enabled": False},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return Settings(**base)


async def next_of(ws: ClientWebSocketResponse, kind: str, within: float = 5.0) -> dict[str, Any]:
    """The next message of type `kind` on a screen's websocket (others skipped), within `within` s."""
    deadline = time.monotonic() + within
    while True:
        msg = await ws.receive(timeout=max(deadline - time.monotonic(), 0.01))
        assert msg.type is WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        if data["type"] == kind:
            return data


def build_operator_app(
    settings: Settings,
    clock: Callable[[], datetime],
    users: Iterable[StaffUser],
) -> web.Application:
    """The real create_app (every package wired), a cheap password hasher, the municipal FAQ
    loaded and the test users added before any background task starts."""
    app = create_app(settings, clock=clock)
    app[PASSWORD_HASHER] = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    wanted = list(users)

    async def faq_preload_ctx(app: web.Application) -> AsyncIterator[None]:
        # Loaded here, before records_ctx starts its periodic task: faq_ctx's own import_on_start
        # runs concurrently with that task on the one connection and can fail with "cannot start a
        # transaction within a transaction" (reported to the lead).
        service = FaqService(app[keys.DATABASE], clock, settings.faq.category_map)
        await service.load()
        if service.size == 0:
            await service.import_parsed(parse_faq(FAQ_FILE.read_bytes(), FAQ_FILE.name))
        yield

    async def users_ctx(app: web.Application) -> AsyncIterator[None]:
        ctx = app[AUTH]
        for u in wanted:
            await ctx.accounts.add(u.user_id, u.role, PASSWORD, department=u.department,
                                   display_name=u.display_name, known_departments=ctx.known_departments)
        yield

    ctxs = list(app.cleanup_ctx)
    if database_ctx not in ctxs or auth_ctx not in ctxs or pop_ctx not in ctxs:
        raise RuntimeError("create_app does not wire the database, auth and pop contexts")
    app.cleanup_ctx.insert(ctxs.index(auth_ctx) + 1, users_ctx)
    app.cleanup_ctx.insert(ctxs.index(database_ctx) + 1, faq_preload_ctx)
    return app


@dataclass
class RunningApp:
    app: web.Application
    base_url: str
    runner: web.AppRunner
    pages: list[Page] = field(default_factory=list)

    @property
    def dispatcher(self) -> PopDispatcher:
        return self.app[DISPATCHER]

    async def feed(self, events: Any) -> None:
        """Tracker events as the AMI link delivers them: to records (the server creates the contact of
        an answered call) and to the pop dispatcher."""
        created = self.app[CALL_FEED].on_events(events)
        if created is not None:
            await created
        await self.dispatcher.on_events(events)


@contextlib.asynccontextmanager
async def serve(app: web.Application, port: int) -> AsyncIterator[RunningApp]:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    run = RunningApp(app, f"http://127.0.0.1:{port}", runner)
    try:
        yield run
    finally:
        for page in run.pages:  # the browsers leave first: open websockets would hold the shutdown
            with contextlib.suppress(Exception):
                await page.context.close()
        await runner.cleanup()


async def launch_chromium(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


async def new_operator_page(browser: Browser, run: RunningApp) -> Page:
    """A fresh browser context (own cookies) at the operator page; closed when `run` stops."""
    context = await browser.new_context(viewport=VIEWPORT, locale="ja-JP", timezone_id="Asia/Tokyo")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    page.set_default_timeout(10_000)
    run.pages.append(page)
    await page.goto(run.base_url + "/")
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


async def login_and_take_seat(page: Page, user_id: str, seat: str) -> None:
    """Keyboard only, on the server's login page (the operator page sends the browser there): type the
    id, Tab, the password, Enter; back on the operator page, the seat and Enter."""
    await page.wait_for_url(re.compile(r"/login\?m=login$"))
    await page.locator("#user_id").wait_for(state="visible")
    await page.locator("#user_id:focus").wait_for()  # (wait_for_function would need eval, which the CSP forbids)
    await page.keyboard.type(user_id)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.locator("#screen-seat").wait_for(state="visible")
    assert await page.locator("#screen-desk").is_hidden()
    await page.locator("#seat-other").focus()
    await page.keyboard.type(seat)
    await page.keyboard.press("Enter")
    await page.locator("#screen-desk").wait_for(state="visible")
    await page.locator("#conn-status", has_text="接続中").wait_for()


async def _focused_id(page: Page) -> str:
    return str(await page.evaluate("document.activeElement && document.activeElement.id"))


async def focused_id(page: Page) -> str:
    return await _focused_id(page)


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
