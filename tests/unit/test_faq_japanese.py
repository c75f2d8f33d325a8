"""Japanese-aware search: Sudachi variants, readings, editor synonym rules, weak-match coverage."""

from __future__ import annotations

from pathlib import Path

import pytest

from faq import morph
from faq.entries import WEAK_COVERAGE, FaqEntry
from faq.index import FaqIndex
from faq.parsing import parse_faq
from faq.synonyms import DEFAULT_RULES, SynonymError, parse_rule, parse_rules, synonym_table

FIXTURES = Path(__file__).parent.parent / "fixtures" / "faq"


@pytest.fixture(scope="module")
def real_index() -> FaqIndex:
    path = FIXTURES / "kosodate_opendata_faq_corpus.json"
    return FaqIndex(parse_faq(path.read_bytes(), path.name).entries)


def entry(faq_id: str, question: str, answer: str = "回答です。", category: str = "その他") -> FaqEntry:
    return FaqEntry(faq_id, question, answer, category)


def test_sudachi_folds_okurigana_and_spelling_variants() -> None:
    assert "申し込み" in morph.variants("申込方法")
    assert "申し込み" in morph.variants("申込み")
    assert morph.variants("申し込み") == ()
    assert "届け出" in morph.variants("届出")
    assert morph.reading("印鑑登録") == "いんかんとうろく"


@pytest.mark.parametrize(
    ("query", "question"),
    [
        ("保育園 申し込み", "保育園の申込方法"),
        ("保育園の申込", "保育園の申し込み"),
        ("出生届の届け出", "出生届の届出場所"),
    ],
)
def test_either_spelling_finds_the_other(query: str, question: str) -> None:
    index = FaqIndex([entry("x", "保育園の場所"), entry("hit", question), entry("y", "出生の証明")])
    assert index.search(query, 1)[0].entry.id == "hit"


def test_plain_bigrams_miss_what_morphology_finds() -> None:
    entries = [entry("hit", "粗大ごみの申込方法"), entry("other", "粗大ごみの料金のしくみ")]
    assert FaqIndex(entries).search("申し込み", 1)[0].entry.id == "hit"
    assert FaqIndex(entries, morphology=False).search("申し込み", 1) == []


@pytest.mark.parametrize(
    ("query", "decoy", "question"),
    [
        ("旦那の扶養", "妻の扶養に入るには", "夫の扶養に入るには"),
        ("保育所の見学", "児童館の見学", "保育園の見学"),
        ("育休の延長", "保育の延長", "育児休業の延長"),
        ("パパの就労証明", "母親の就労証明", "父親の就労証明"),
    ],
)
def test_the_dictionarys_synonym_groups_find_the_faqs_word(query: str, decoy: str, question: str) -> None:
    # No rule of the editors' table (an empty one): the groups come from the dictionary (faq/morph.py).
    # The decoy comes first, so a tie would put it on top.
    index = FaqIndex([entry("decoy", decoy), entry("hit", question)], {})
    assert index.search(query, 1)[0].entry.id == "hit"


def test_a_rule_does_not_fire_inside_an_ordinary_word(real_index: FaqIndex) -> None:
    assert real_index.search("家庭で保育", 1)[0].entry.id != "845"  # 園庭開放: 庭 is inside 家庭
    assert real_index.search("保育園の庭で遊べる日", 1)[0].entry.id == "845"


def test_synonym_groups_are_the_dictionarys() -> None:
    assert morph.analyse("旦那").concepts == morph.analyse("夫").concepts != []
    assert set(morph.analyse("育休").concepts) & set(morph.analyse("育児休業").concepts)
    assert morph.analyse("保育園について教えてください").concepts == morph.analyse("保育園").concepts


def test_a_word_typed_in_hiragana_finds_the_kanji(real_index: FaqIndex) -> None:
    assert {h.entry.id for h in real_index.search("いんかん", 2)} == {"1100", "884"}
    assert real_index.search("こんいんとどけ", 1)[0].entry.id in {"397", "398"}


def test_synonym_rules_parse_both_forms() -> None:
    same = parse_rule("学童 = 放課後クラブ")
    assert same.two_way and synonym_table([same]) == {"学童": ("放課後クラブ",), "放課後クラブ": ("学童",)}
    one_way = parse_rule("ソファ、ベッド -> 粗大ごみ")
    assert not one_way.two_way and synonym_table([one_way]) == {"ソファ": ("粗大ごみ",), "ベッド": ("粗大ごみ",)}
    assert parse_rule(one_way.text()) == one_way
    assert parse_rules("# comment\n\n大量 → 多量\n") == [parse_rule("大量 → 多量")]
    for bad in ("学童", "A → B → C", "→ 粗大ごみ", "a = a"):
        with pytest.raises(SynonymError):
            parse_rule(bad)
    with pytest.raises(SynonymError, match="line 2"):
        parse_rules("a = b\nnothing here\n")


def test_shipped_rules_cover_the_issue_examples(real_index: FaqIndex) -> None:
    assert any("学童" in r.sources for r in DEFAULT_RULES)
    assert {h.entry.id for h in real_index.search("学童", 3)} & {"360", "919", "1079"}
    assert real_index.search("ソファ", 3)[0].entry.id in {"332", "369", "1055"}
    assert real_index.search("大量のごみ", 1)[0].entry.id == "1101"
    assert "1024" in [h.entry.id for h in real_index.search("母子手帳 なくした", 5)]


def test_editor_rules_replace_the_table() -> None:
    entries = [entry("club", "放課後クラブの利用方法"), entry("x", "学校の場所")]
    assert FaqIndex(entries, synonyms={}).search("学童", 1) == []
    index = FaqIndex(entries, synonyms=synonym_table(parse_rules("学童 = 放課後クラブ")))
    assert index.search("学童", 1)[0].entry.id == "club"


def test_coverage_says_when_nothing_close_was_found(real_index: FaqIndex) -> None:
    good = real_index.search("粗大ごみの申し込み", 1)[0]
    assert good.coverage >= WEAK_COVERAGE
    # 車の修理, 卵子凍結: one word's synonym group is found (車, 凍結), the other word is not;
    # 家賃補助: a rule finds 補助 -> 助成, the typed rest (家賃) is not found; 家庭で保育: not 園庭
    # (ごみ屋敷 was here: the editors' rules now send it to 近隣の問題, rightly)
    for far in ("株の売買", "駐車違反", "犬の散歩", "車の修理", "卵子凍結", "家賃補助"):
        hits = real_index.search(far, 3)
        assert not hits or hits[0].coverage < WEAK_COVERAGE, far
    assert 0.0 <= good.as_dict()["coverage"] <= 1.0


def test_with_synonyms_swaps_the_table_without_touching_the_original() -> None:
    index = FaqIndex([entry("club", "放課後クラブの利用方法"), entry("x", "学校の場所")], synonyms={})
    swapped = index.with_synonyms(synonym_table(parse_rules("がくどう = 放課後クラブ")))
    assert swapped.search("がくどう", 1)[0].entry.id == "club"
    assert index.search("がくどう", 1) == []  # the original keeps its (empty) table
    assert swapped.entries() == index.entries()


def test_the_rules_found_in_a_word_are_the_rules_whose_key_it_contains() -> None:
    from faq.synonyms import DEFAULT_SYNONYMS, SynonymLookup

    lookup = SynonymLookup({**DEFAULT_SYNONYMS, "ゴミ袋": ("指定袋",), "ごみ袋": ("有料袋",)})
    for spelling in ("ほいくえんの申込", "ひとり親の手当", "ごみ袋", "子供手当いつ", "x", "旦那の扶養", "口座変更"):
        naive = [(k, v) for k, v in lookup.rules if k in spelling]
        assert lookup.inside(spelling) == naive, spelling
    assert len(lookup.inside("ごみ袋")) >= 2  # both spellings of the key
