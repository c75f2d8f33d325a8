"""axe-core (installed by scripts/setup into tests/e2e/node_modules, never fetched at test time) run in
the page by Playwright, and the 320 px reflow check. The browser context must be made with
bypass_csp=True (test contexts only): the pages' CSP forbids injected scripts, rightly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.async_api import Page

AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
NARROW = {"width": 320, "height": 640}


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """The WCAG 2.1 A/AA violations on the page as it is now: [{id, impact, help, targets}]."""
    if not AXE.is_file():
        raise AssertionError(f"{AXE} missing: run scripts/setup (npm ci in tests/e2e)")
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "async (tags) => { const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})); }",
        WCAG_TAGS,
    )
    return list(result)


async def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than a 320 px window (400 % zoom); 0 = no horizontal scrolling."""
    size = page.viewport_size
    await page.set_viewport_size(NARROW)
    try:
        await page.wait_for_timeout(100)
        over = await page.evaluate(
            "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth")
    finally:
        if size is not None:
            await page.set_viewport_size(size)
    return int(over)


class AccessibilityLog:
    """Every page/state checked: its violations and overflow, written to artifacts/ for the report."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: dict[str, dict[str, Any]] = {}

    async def check(self, page: Page, name: str) -> None:
        violations = await axe_violations(page)
        overflow = await horizontal_overflow(page)
        self.results[name] = {"violations": violations, "overflow_px": overflow}
        self.path.parent.mkdir(exist_ok=True)
        self.path.write_text(json.dumps(self.results, ensure_ascii=False, indent=1))

    def failures(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.results.items() if v["violations"] or v["overflow_px"] > 0}
