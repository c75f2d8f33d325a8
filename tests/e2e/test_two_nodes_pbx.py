"""Two cti nodes active together on one real Asterisk 22 and one PostgreSQL (issue 18, part 2).

Both nodes follow every call over AMI; each pops only the operators whose browsers are on it: a call
answered by an operator on node A pops on A, one answered by an operator on node B pops on B, and
neither page shows the other's call. Both write the same store: one contact per call with its
operator, one call-log row per call (written by both nodes), one audit chain.
"""

from __future__ import annotations

import asyncio
import re
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
from pg_support import PgCluster
from playwright.async_api import Browser
from test_operator_screen_pbx import OP101, OP102, SATURDAY, place_call, wait_ready

from cti import keys
from records.retention import verify_audit

if TYPE_CHECKING:  # the fixtures' types (tests/e2e/conftest.py)
    from conftest import AmiClient, Pbx

pytestmark = [pytest.mark.asterisk, pytest.mark.browser]



async def test_two_nodes_follow_every_call_and_pop_only_their_own_operators(
    tmp_path: Path, pbx: Pbx, ami: AmiClient, browser: Browser, pg_cluster: PgCluster,
) -> None:
    url = pg_cluster.new_url()
    ami_section = pbx.cti_sections()["ami"]
    port_a, port_b = free_port(), free_port()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # Node A answers the dialplan's FastAGI; both follow the calls over AMI.
    settings_a = operator_settings(tmp_path / "a", port_a, store={"url": url}, ami=ami_section,
                                   agi={"enabled": True, "port": pbx.agi_port})
    settings_b = operator_settings(tmp_path / "b", port_b, store={"url": url}, ami=ami_section)
    clock = MovableClock(SATURDAY)
    node_a = build_operator_app(settings_a, clock, [StaffUser("tanaka", display_name="田中")])
    node_b = build_operator_app(settings_b, clock, [StaffUser("suzuki", display_name="鈴木")])
    async with serve(node_a, port_a) as run_a, serve(node_b, port_b) as run_b:
        await wait_ready(node_a, "ami")
        await wait_ready(node_a, "fastagi")
        await wait_ready(node_b, "ami")
        on_a = await new_operator_page(browser, run_a)
        on_b = await new_operator_page(browser, run_b)
        await login_and_take_seat(on_a, "tanaka", OP101)
        await login_and_take_seat(on_b, "suzuki", OP102)
        for op in (on_a, on_b):  # a new seat starts away (受付開始前): calls come after 受付可
            await op.locator("#btn-ready").click()
            await op.locator("#presence-label", has_text="受付可").wait_for()

        first = await place_call(ami, "5", __SIM_OP102="noanswer")  # 101 (tanaka, on node A) answers
        # the page shows the call's 受付番号, not Asterisk's id
        await on_a.locator("#pop-number", has_text="03-1234-5678").wait_for(timeout=45_000)  # CALLER, formatted
        ref_first = await on_a.locator("#pop-reference").inner_text()
        assert re.fullmatch(r"\d{8}-\d{4,}", ref_first), ref_first
        # no pop on B (a ringing notice of the same call, if the queue rang 102 first, may carry its
        # 受付番号: one number per call on every node)
        assert await on_b.locator("#call-empty").is_visible()
        assert await on_b.locator("#pop-reference").inner_text() != ref_first
        await on_a.locator("#pop-state", has_text="通話終了").wait_for(timeout=30_000)

        # If the queue also rang 102 during the first call (slow machine), suzuki is now 離席（不在着信）:
        # as an operator would, suzuki says 受付可 again before the next call.
        await on_b.locator("#btn-ready").click()
        await on_b.locator("#presence-label", has_text="受付可").wait_for()
        second = await place_call(ami, "5", __SIM_OP101="noanswer")  # 102 (suzuki, on node B) answers
        await on_b.locator("#pop-number", has_text="03-1234-5678").wait_for(timeout=45_000)  # CALLER, formatted
        ref_second = await on_b.locator("#pop-reference").inner_text()
        assert re.fullmatch(r"\d{8}-\d{4,}", ref_second) and ref_second != ref_first
        assert await on_a.locator("#pop-reference").inner_text() == ref_first  # A still shows its own call
        await screenshot(on_b, "two-nodes-01-pop-on-node-b")
        await on_b.locator("#pop-state", has_text="通話終了").wait_for(timeout=30_000)

        db = node_a[keys.DATABASE]
        contacts = await db.read(lambda c: sorted(tuple(r) for r in c.execute(
            "SELECT call_id, operator FROM contacts WHERE call_id IN (?, ?)", (first, second))))
        assert contacts == sorted([(first, "tanaka"), (second, "suzuki")])
        for _ in range(50):  # the call log is written in the background by both nodes
            logged = await db.read(lambda c: [tuple(r) for r in c.execute(
                "SELECT call_id, count(*) FROM call_log WHERE call_id IN (?, ?) AND ended_at IS NOT NULL"
                " GROUP BY call_id ORDER BY call_id", (first, second))])
            if len(logged) == 2:
                break
            await asyncio.sleep(0.2)
        assert sorted(logged) == sorted([(first, 1), (second, 1)])
        count, problems = await verify_audit(node_b[keys.DATABASE])
        assert problems == [] and count >= 2
