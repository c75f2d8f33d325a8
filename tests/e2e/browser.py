"""Playwright helpers for the operator-screen tests: Debian's Chromium, a real cti app on a real
port (every package wired as create_app wires it), test users, screenshots in artifacts/.

Playwright's own browser download does not work here: always Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from argon2 import PasswordHasher
from playwright.async_api import Browser, Page, Playwright

from cti import keys
from cti.app import create_app
from cti.config import Settings
from cti.db import migrate
from records import schema as records_schema
from records.wiring import records_ctx
from records.wiring import setup_routes as setup_records_routes
from screenpop.wiring_auth import AUTH, PASSWORD_HASHER, auth_ctx, auth_middleware, setup_auth_routes
from screenpop.wiring_faq import faq_ctx, setup_faq_routes
from screenpop.wiring_hub import hub_ctx, setup_ws_routes
from screenpop.wiring_web import DISPATCHER, PopDispatcher, pop_ctx, setup_web_routes

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


def _has_route(app: web.Application, path: str) -> bool:
    return any(r.resource is not None and r.resource.canonical == path for r in app.router.routes())


def operator_settings(tmp_path: Path, port: int, **sections: dict[str, Any]) -> Settings:
    base: dict[str, Any] = {
        "store": {"path": str(tmp_path / "cti.sqlite3")},
        "security": {
            "allowed_origins": [f"http://127.0.0.1:{port}"],
            "operator_networks": ["127.0.0.0/8", "::1/128"],
        },
        "ami": {"enabled": False},
        "agi": {"enabled": False},
        "faq": {"import_on_start": str(FAQ_FILE)},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return Settings(**base)


def build_operator_app(
    settings: Settings,
    clock: Callable[[], datetime],
    users: Iterable[StaffUser],
    extra_ctx: Iterable[Callable[[web.Application], AsyncIterator[None]]] = (),
) -> web.Application:
    """The real create_app plus whatever it does not wire yet (auth, hub, FAQ, records, the
    operator screen), in create_app's order; then the test users."""
    app = create_app(settings, clock=clock)
    app[PASSWORD_HASHER] = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    wired = _has_route(app, "/api/login")
    if not wired:
        app.middlewares.append(auth_middleware)

        async def records_migrations(app: web.Application) -> AsyncIterator[None]:
            await migrate(app[keys.DB], records_schema.migrations())
            yield

        for ctx in (records_migrations, auth_ctx, hub_ctx, faq_ctx, records_ctx):
            app.cleanup_ctx.append(ctx)
        setup_auth_routes(app)
        setup_ws_routes(app)
        setup_faq_routes(app)
        setup_records_routes(app)
    for ctx in extra_ctx:  # e.g. the AMI link, which must start before the pop dispatcher
        app.cleanup_ctx.append(ctx)
    if pop_ctx not in app.cleanup_ctx:
        app.cleanup_ctx.append(pop_ctx)
    if not _has_route(app, "/static/"):
        setup_web_routes(app)
    wanted = list(users)

    async def users_ctx(app: web.Application) -> AsyncIterator[None]:
        ctx = app[AUTH]
        for u in wanted:
            await ctx.accounts.add(
                u.user_id,
                u.role,
                PASSWORD,
                department=u.department,
                display_name=u.display_name,
                known_departments=ctx.known_departments,
            )
        yield

    # right after auth_ctx: before background writers (records' periodic task) share the connection
    ctxs = list(app.cleanup_ctx)
    app.cleanup_ctx.insert(ctxs.index(auth_ctx) + 1 if auth_ctx in ctxs else len(ctxs), users_ctx)
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


@contextlib.asynccontextmanager
async def serve(app: web.Application, port: int) -> AsyncIterator[RunningApp]:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield RunningApp(app, f"http://127.0.0.1:{port}", runner)
    finally:
        await runner.cleanup()


async def launch_chromium(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


async def new_operator_page(browser: Browser, base_url: str) -> Page:
    context = await browser.new_context(viewport=VIEWPORT, locale="ja-JP", timezone_id="Asia/Tokyo")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    page.set_default_timeout(10_000)
    await page.goto(base_url + "/")
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


async def login_and_take_seat(page: Page, user_id: str, seat: str) -> None:
    """Keyboard only: type the id, Tab, the password, Enter; then the seat and Enter."""
    await page.locator("#login-user").wait_for(state="visible")
    await page.wait_for_function("document.activeElement && document.activeElement.id === 'login-user'")
    await page.keyboard.type(user_id)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.locator("#screen-seat").wait_for(state="visible")
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
