"""The FAQ editor in Debian's Chromium against a real in-process cti app: an operator's search finds
nothing close, the screen says so and the operator logs the question as a gap; an editor of
区政情報課 opens the gap, drafts an entry, publishes it; the operator's next search finds the new
entry (live, no restart). Screenshots go to artifacts/."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from browser import (
    PASSWORD,
    VIEWPORT,
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

from cti.core.clock import TOKYO
from faq.folder import read_folder

pytestmark = pytest.mark.browser

TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
USERS = [StaffUser("tanaka", display_name="田中"), StaffUser("kusei", "department", "区政 花子", "kuseijoho")]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "faq"
QUESTION = "家庭用プリンターの回収"
ANSWER = "家庭用プリンターは小型家電です。区役所1階の小型家電回収ボックスに出してください。"



async def test_gap_draft_publish_then_operator_finds_it(tmp_path: Path, browser: Browser) -> None:
    port = free_port()
    app = build_operator_app(operator_settings(tmp_path, port), MovableClock(TUESDAY), USERS)
    async with serve(app, port) as run:
        from cti import keys

        service = app[keys.FAQ]
        for info, sections in read_folder(FIXTURES / "ward-docs"):  # the ward's other sources
            await service.import_documents(info, sections)

        # 1. the operator: nothing close -> the screen says so -> logs the question
        op = await new_operator_page(browser, run)
        await login_and_take_seat(op, "tanaka", "PJSIP/101")
        await op.locator("#faq-q").fill(QUESTION)
        await op.locator("#faq-status", has_text="近い回答が見つかりません").wait_for()
        await op.locator("#faq-gap").wait_for(state="visible")
        await screenshot(op, "faq-01-operator-nothing-close")
        await op.locator("#faq-gap").click()
        await op.locator("#faq-gap", has_text="記録しました").wait_for()

        # a document of the ward answers what the FAQ does not: labelled with its source, with a link
        await op.locator("#faq-q").fill("期日前投票")
        doc = op.locator("#faq-results li.document", has_text="期日前投票").first
        await doc.wait_for()
        assert "［さくら区 暮らしのガイド 2026］" in await doc.inner_text()
        await doc.locator("a").click()
        await op.locator("#faq-answer-link").wait_for(state="visible")
        assert (await op.locator("#faq-answer-link").get_attribute("href") or "").startswith("https://www.city.sakura")
        await op.locator("#faq-back").click()

        # 2. the editor (区政情報課): the gap -> a draft -> published
        context = await browser.new_context(viewport=VIEWPORT, locale="ja-JP", timezone_id="Asia/Tokyo")
        editor = await context.new_page()
        run.pages.append(editor)
        errors: list[str] = []
        editor.on("pageerror", lambda exc: errors.append(str(exc)))
        await editor.goto(run.base_url + "/login")
        await editor.locator("input[name=user_id]").fill("kusei")
        await editor.locator("input[name=password]").fill(PASSWORD)
        await editor.locator("button[type=submit]").click()
        await editor.wait_for_load_state()
        await editor.goto(run.base_url + "/faq/editor/")
        await editor.locator("body[data-ready=true]").wait_for()
        gap = editor.locator("#gaps li", has_text=QUESTION)
        await gap.wait_for()
        await gap.get_by_role("button", name="このFAQ不足から下書きを作る").click()
        assert await editor.locator("#f-question").input_value() == QUESTION
        assert QUESTION in await editor.locator("#form-gap").inner_text()
        await editor.locator("#f-question").fill("家庭用プリンターは何ごみですか？")
        await editor.locator("#f-answer").fill(ANSWER)
        await editor.locator("#f-category").fill("ごみ・リサイクル")
        # keywords one per line: a caller's phrasing keeps its 、
        await editor.locator("#f-keywords").fill("小型家電\nプリンター\nプリンター 捨てたい、どうする")
        await editor.locator("#save-draft").click()
        await editor.locator("#message", has_text="下書きを保存しました").wait_for()
        await editor.locator("#drafts li", has_text="家庭用プリンター").wait_for()
        await screenshot(editor, "faq-02-editor-draft")
        await editor.locator("#publish-now").click()
        await editor.locator("#message", has_text="公開しました").wait_for()
        await editor.locator("#history li", has_text="公開").first.wait_for()
        await editor.locator("#gaps li", has_text=QUESTION).wait_for(state="detached")  # answered: off the list
        await screenshot(editor, "faq-03-editor-published")
        published = [e for e in service.entries() if e.question == "家庭用プリンターは何ごみですか？"]
        assert [e.keywords for e in published] == [("小型家電", "プリンター", "プリンター 捨てたい、どうする")]
        # a synonym the editors add in the browser is live at once
        await editor.locator("#syn-rule").fill("インクジェット → プリンター")
        await editor.locator("#syn-form button[type=submit]").click()
        await editor.locator("#synonyms li", has_text="インクジェット → プリンター").wait_for()
        assert not errors

        # 3. the operator finds the new entry at once
        await op.locator("#faq-q").fill("プリンター 捨てたい")
        first = op.locator("#faq-results li").first
        await first.filter(has_text="家庭用プリンター").wait_for()
        assert await op.locator("#faq-gap").is_hidden()
        await op.locator("#faq-q").fill("インクジェット 処分")
        await op.locator("#faq-results li").first.filter(has_text="家庭用プリンター").wait_for()
        await op.locator("#faq-results li a").first.click()
        await op.locator("#faq-answer-body", has_text="小型家電回収ボックス").wait_for()
        assert await op.locator("#faq-credit").inner_text() == "出典：区政情報課（FAQ編集）"
        await screenshot(op, "faq-04-operator-finds-new-entry")
