"""The editors' keywords file added to a FAQ before an import (faq/parsing.py add_keywords, FORMAT.md 3)."""

from __future__ import annotations

import json

import pytest

from faq.entries import FaqEntry
from faq.parsing import FaqFormatError, ParsedFaq, add_keywords

FAQ = ParsedFaq(
    [
        FaqEntry("1", "粗大ごみの出し方は？", "申し込んでください。", "ごみ", keywords=("粗大ごみ",)),
        FaqEntry("2", "q", "a", "c"),
    ],
    "json",
    "test",
    "",
)


def _lines(*items: object) -> bytes:
    return "\n".join(json.dumps(i, ensure_ascii=False) for i in items).encode()


def test_keywords_are_added_after_the_entrys_own_without_duplicates() -> None:
    out = add_keywords(FAQ, _lines({"id": 1, "keywords": ["ソファ 捨てたい", "粗大ごみ", " 大きいごみ "]}), "k.jsonl")
    assert out.entries[0].keywords == ("粗大ごみ", "ソファ 捨てたい", "大きいごみ")
    assert out.entries[1] == FAQ.entries[1]  # not in the file: unchanged
    assert (out.source, out.credit, out.format) == (FAQ.source, FAQ.credit, FAQ.format)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_lines({"id": "9", "keywords": ["x"]}), "k.jsonl: line 1: no FAQ entry has id '9'"),
        (_lines({"id": "1", "keywords": ["x"]}, {"id": "1", "keywords": ["y"]}), "line 2: id '1' is given twice"),
        (b'{"id": "1", "keywords": ["x"]}\n{oops', "line 2: not JSON"),
        (_lines({"id": "1", "keywords": "x"}), "line 1: field 'keywords' must be a list of non-empty texts"),
        (_lines({"id": "1", "keywords": [""]}), "must be a list of non-empty texts"),
        (_lines({"id": "1", "words": ["x"]}), "exactly the keys id and keywords"),
        (_lines({"id": True, "keywords": ["x"]}), "field 'id' must be a number or text"),
        (_lines({"id": "1", "keywords": ["あ" * 101]}), "longer than 100 characters"),
        (_lines({"id": "1", "keywords": [f"語{i}" for i in range(30)]}), "line 1: entry '1' would have 31 keywords"),
        (_lines({"id": "1", "keywords": ["a\nb"]}), "line 1: a keyword holds a line break"),
        (_lines({"id": "1", "keywords": ["a；b"]}), "a semicolon"),
        (_lines({"id": "1", "keywords": ["a\u0007b"]}), "a control character"),
        (b'{"id": 1' + b"1" * 5000 + b', "keywords": ["x"]}', "line 1: not JSON"),  # over-long number
        (b"[" * 100_000 + b"]" * 100_000, "line 1: not JSON"),  # nesting past the recursion limit
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_a_bad_file_is_refused_naming_the_line(data: bytes, message: str) -> None:
    with pytest.raises(FaqFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        add_keywords(FAQ, data, "k.jsonl")


def test_blank_lines_are_skipped() -> None:
    out = add_keywords(FAQ, b'\n{"id": "2", "keywords": ["x"]}\n\n', "k.jsonl")
    assert out.entries[1].keywords == ("x",)


def test_a_line_separator_inside_a_keyword_is_one_line() -> None:
    # JSON allows U+2028 raw in a string (json.dumps(ensure_ascii=False) writes it so)
    out = add_keywords(FAQ, _lines({"id": "2", "keywords": ["x\u2028y"]}), "k.jsonl")
    assert out.entries[1].keywords == ("x\u2028y",)


def test_only_the_entries_in_the_file_are_held_to_the_limit() -> None:
    crowded = ParsedFaq([FaqEntry("1", "q", "a", "c", keywords=tuple(f"k{i}" for i in range(31)))], "json", "t", "")
    assert add_keywords(crowded, b"", "k.jsonl").entries == crowded.entries
