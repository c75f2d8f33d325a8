"""The ward's documents split at headings (HTML, Markdown, PDF) and the gap report (pure)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from cti.core.clock import TOKYO
from faq.documents import DocumentError, SourceInfo, parse_document, source_info
from faq.gaps import merge_gaps, report, week_of

FIXTURES = Path(__file__).parent.parent / "fixtures" / "faq" / "ward-docs"
SITE = SourceInfo("website", "区ホームページ", "https://www.city.example.lg.jp/")

PAGE = """<!DOCTYPE html>
<!-- saved from url=(0045)https://www.city.example.lg.jp/real/page.html -->
<html><head><title>ページ名</title><script>var secret = "script text";</script></head>
<body><nav>メニュー 採用情報</nav>
<h1 id="top">粗大ごみ</h1><p>申込制です。</p>
<h2 id="fee">料金</h2><p>品目により<b>200円</b>から。</p><p>シール&amp;券</p>
<footer>© 区</footer></body></html>"""


def test_html_is_split_at_headings_without_navigation_or_scripts() -> None:
    sections = parse_document(PAGE.encode(), "gomi/sodai.html", SITE)
    assert [(s.title, s.body) for s in sections] == [
        ("粗大ごみ", "申込制です。"),
        ("粗大ごみ › 料金", "品目により200円から。\nシール&券"),
    ]
    assert sections[0].url == "https://www.city.example.lg.jp/real/page.html#top"  # the page's own address
    assert sections[1].url.endswith("#fee")
    assert all("script" not in s.body and "メニュー" not in s.body for s in sections)
    # the same bytes give the same ids (re-import is idempotent); ids fit in a URL path
    assert [s.id for s in sections] == [s.id for s in parse_document(PAGE.encode(), "gomi/sodai.html", SITE)]
    assert all("/" not in s.id and "#" not in s.id for s in sections)


def test_shift_jis_page_and_canonical_link() -> None:
    page = '<html><head><link rel="canonical" href="https://x.example/a.html"></head><body><h1>窓口</h1><p>平日</p>'
    sections = parse_document(page.encode("cp932"), "a.html", SourceInfo("s", "S", ""))
    assert sections[0].title == "窓口" and sections[0].url == "https://x.example/a.html"


def test_markdown_headings_fences_and_links() -> None:
    text = "# ガイド\n\n前書き\n\n## 窓口時間\n\n- 平日 [詳しく](https://x)\n```\n# not a heading\n```\n"
    sections = parse_document(text.encode(), "guide.md", SourceInfo("guide", "暮らしのガイド", "https://g.example"))
    assert [s.title for s in sections] == ["ガイド", "ガイド › 窓口時間"]
    assert "平日 詳しく" in sections[1].body and "# not a heading" in sections[1].body
    assert sections[1].url.startswith("https://g.example/guide.md#")


def test_pdf_newsletter_is_split_at_its_marked_headings() -> None:
    pdf = FIXTURES / "kouhou" / "2026-12-01.pdf"
    sections = parse_document(pdf.read_bytes(), "2026-12-01.pdf", SourceInfo("kouhou", "広報", "https://k.example"))
    titles = [s.title for s in sections]
    assert "インフルエンザ予防接種の費用助成" in titles and "道路の陥没や穴を見つけたら" in titles
    road = next(s for s in sections if s.title.startswith("道路"))
    assert "土木管理課" in road.body and road.url == "https://k.example/2026-12-01.pdf#page=1"
    assert "\n" not in road.body.strip()  # wrapped lines joined without spaces


def test_bad_files_are_refused_with_their_name() -> None:
    with pytest.raises(DocumentError, match=r"website/x\.docx"):
        parse_document(b"x", "x.docx", SITE)
    with pytest.raises(DocumentError, match="not a readable PDF"):
        parse_document(b"%PDF-1.4 broken", "b.pdf", SITE)
    with pytest.raises(DocumentError, match=r"_source\.json"):
        source_info("website", b"{not json")
    assert source_info("kouhou", None).label == "kouhou"
    assert source_info("k", '{"label": "広報", "base_url": "https://k"}'.encode()) == SourceInfo("k", "広報", "https://k")


def test_gaps_merge_and_report_by_week_and_category() -> None:
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=TOKYO)
    calls = [{"id": 1, "category": "gomi", "note": "ソファの回収", "created_at": monday}]
    callbacks = [
        {"id": 7, "department": "zeimu", "question": "納付", "answer_summary": "コンビニで払えると案内",
         "closed_at": datetime(2026, 12, 6, 23, 0, tzinfo=TOKYO), "collected_at": monday},
        {"id": 8, "department": "zeimu", "answer_summary": None, "collected_at": monday},  # no answer: not a gap
    ]
    searches = [{"id": 3, "text": "プリンター", "category": "gomi", "created_at": "2026-12-07T10:00:00+09:00"}]
    gaps = merge_gaps(calls, callbacks, searches, {("call", 1): {"entry": "ed-0001"}})
    assert [(g.kind, g.id) for g in gaps] == [("search", 3), ("callback", 7), ("call", 1)]
    assert gaps[1].text == "質問: 納付\n回答: コンビニで払えると案内"
    assert (gaps[1].question_hint, gaps[1].answer_hint) == ("納付", "コンビニで払えると案内")
    assert gaps[0].as_dict()["question_hint"] == "プリンター" and gaps[2].answered_by_entry == "ed-0001"
    assert week_of(datetime(2026, 12, 6, 23, 0, tzinfo=TOKYO)) == "2026-11-30"  # Sunday belongs to Monday's week
    assert report(gaps) == [
        {"week": "2026-12-07", "category": "ごみ・リサイクル", "total": 1, "answered": 0},
        {"week": "2026-11-30", "category": "zeimu", "total": 1, "answered": 0},  # ties: by name
        {"week": "2026-11-30", "category": "ごみ・リサイクル", "total": 1, "answered": 1},
    ]
