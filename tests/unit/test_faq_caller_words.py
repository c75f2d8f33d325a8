"""How callers type what the FAQ writes otherwise (third tuning round): compounds spelled out in
hiragana inside a longer word, katakana words with a hiragana ending, and the ward's everyday words
and short forms for the template FAQ's terms (faq/synonyms.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import faq.index
from faq.index import FaqIndex
from faq.parsing import parse_faq
from faq.query_words import kana_runs, reading_pieces

FIXTURES = Path(__file__).parent.parent / "fixtures" / "faq"


@pytest.fixture(scope="module")
def real_index() -> FaqIndex:
    path = FIXTURES / "kosodate_opendata_faq_corpus.json"
    return FaqIndex(parse_faq(path.read_bytes(), path.name).entries)


def _top(index: FaqIndex, query: str, k: int) -> list[str]:
    return [h.entry.id for h in index.search(query, k)]


def test_kana_runs_are_the_hiragana_stretches() -> None:
    assert kana_runs("ほいくえんの申しこみ") == ["ほいくえんの", "しこみ"]
    assert kana_runs("保育園") == []


def test_reading_pieces_take_the_longest_compound_reading() -> None:
    by_reading = {"ほいく": "保育", "ほいくえん": "保育園", "もうしこみ": "申込", "ところ": "所", "ばあい": "場合"}
    assert reading_pieces("ほいくえんのもうしこみ", by_reading, 4) == ["保育園", "申込"]
    # a one-kanji noun's reading (ところ) and readings shorter than the minimum (ばあい) are plain words
    assert reading_pieces("あそべるところのばあい", by_reading, 4) == []
    assert reading_pieces("ばあい", by_reading, 3) == ["場合"]


def test_a_compound_spelled_in_hiragana_inside_a_sentence_is_found(
    real_index: FaqIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = {
        "じゅうみんひょうがほしい": "161",  # 住民票が取れる場所 (an editor's rule finds it too)
        "にんしょうほいくしょの軽減": "189",  # 認証保育所とは: only through the compound
        "じどうてあての所得制限はいくら": "90",  # 児童手当所得制限を超えたら
    }
    for query, wanted in cases.items():
        assert wanted in _top(real_index, query, 2), query
    monkeypatch.setattr(faq.index, "READING_PIECES", False)
    assert "189" not in _top(real_index, "にんしょうほいくしょの軽減", 2)


def test_a_katakana_word_with_a_hiragana_ending_is_a_sentence(real_index: FaqIndex) -> None:
    # テニスできるところ folds to hiragana; its ending (できるところ) must not outweigh テニス, nor be
    # read as a word typed in hiragana (ところ -> 所)
    assert _top(real_index, "テニスできるところ", 1) == ["886"]


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ("区民税の証明", "883"),  # 区民税 -> 住民税 (the template says 市)
        ("小慢の申請場所", "66"),  # 小児慢性特定疾病
        ("お迎えが遅くなる", "936"),  # 延長保育
        ("旅券", "934"),  # パスポート
        ("保育料のレシート", "235"),  # 領収書
        ("LDの相談はどこ", "946"),  # 学習障害
    ],
)
def test_ward_words_find_the_faq_wording(real_index: FaqIndex, query: str, wanted: str) -> None:
    assert wanted in _top(real_index, query, 3), f"{query}: {_top(real_index, query, 3)}"
