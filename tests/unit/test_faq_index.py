"""Given FAQ entries, when an operator searches, then the right entries come first with highlights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from faq.index import FaqEntry, FaqIndex, suggest
from faq.parsing import KOSODATE_CREDIT, FaqFormatError, parse_faq
from faq.snippets import render_highlights
from faq.textnorm import normalize

FIXTURES = Path(__file__).parent.parent / "fixtures" / "faq"
KOSODATE = FIXTURES / "kosodate_opendata_faq_corpus.json"


@pytest.fixture(scope="module")
def real_index() -> FaqIndex:
    return FaqIndex(parse_faq(KOSODATE.read_bytes(), KOSODATE.name).entries)


def entry(id: str, question: str, answer: str = "回答です。", category: str = "その他") -> FaqEntry:
    return FaqEntry(id=id, question=question, answer=answer, category=category)


# --- parsing -----------------------------------------------------------------------------------


def test_kosodate_json_is_detected_with_its_credit_and_placeholders_mapped() -> None:
    parsed = parse_faq(KOSODATE.read_bytes(), KOSODATE.name)
    assert parsed.format == "kosodate-json"
    assert parsed.credit == KOSODATE_CREDIT == "出典：子育てオープンデータ協議会「汎用FAQ」（CC BY 4.0）"
    assert len(parsed.entries) == 661
    by_id = {e.id: e for e in parsed.entries}
    assert by_id["1"].category == "妊娠・出産" and by_id["1"].subcategory == "妊娠"
    assert by_id["1"].keywords == ("妊娠の届出・母子健康手帳の交付",)
    raw = {str(item["faq_id"]): item for item in json.loads(KOSODATE.read_text(encoding="utf-8"))}
    no_sub = next(i for i, item in raw.items() if item["category2"] == "64")
    no_service = next(i for i, item in raw.items() if item["service_name"] == "null")
    assert by_id[no_sub].subcategory is None
    assert by_id[no_service].keywords == ()


def test_generic_csv_with_optional_columns() -> None:
    data = (
        "id,question,answer,category,subcategory,keywords\n"
        'g1,ごみの日は？,"地域で異なります。\n詳しくは…",ごみ・リサイクル,,収集;分別\n'
        "g2,住民票の取り方,窓口で,住民票・戸籍・印鑑証明,住民票,\n"
    ).encode()
    parsed = parse_faq(data, "faq.csv", credit="出典：テスト市")
    assert parsed.format == "csv" and parsed.credit == "出典：テスト市" and parsed.source == "faq.csv"
    assert parsed.entries[0] == FaqEntry(
        "g1", "ごみの日は？", "地域で異なります。\n詳しくは…", "ごみ・リサイクル", None, ("収集", "分別")
    )
    assert parsed.entries[1].subcategory == "住民票"


def test_generic_json_object_carries_source_and_credit() -> None:
    doc = {
        "source": "テスト市FAQ",
        "credit": "出典：テスト市",
        "entries": [{"id": 7, "question": "税金の納付", "answer": "こちら", "category": "税金", "keywords": ["納税"]}],
    }
    parsed = parse_faq(json.dumps(doc, ensure_ascii=False).encode(), "x.json")
    assert (parsed.source, parsed.credit, parsed.format) == ("テスト市FAQ", "出典：テスト市", "json")
    assert parsed.entries[0].id == "7" and parsed.entries[0].keywords == ("納税",)


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"id,question,answer\n1,q,a\n", "f.csv", "CSV header lacks category"),
        (b"id,question,answer,category\n1,q,,c\n", "f.csv", "line 2: field 'answer' is empty"),
        (b"id,question,answer,category\n1,q,a,c\n1,q2,a,c\n", "f.csv", "duplicate id '1'"),
        (b'[{"id": 1, "question": "q", "answer": "a"}]', "f.json", "entry 1: missing field 'category'"),
        (b'[{"id": 1, "question": "q", "answer": "a", "category": "c", "x": 1}]', "f.json", "unknown"),
        (b"{not json", "f.json", "not valid JSON"),
        (b"[]", "f.json", "no FAQ entries"),
        (b"\xff\xfe", "f.csv", "not UTF-8"),
        (b"a", "f.txt", "unknown FAQ file type"),
    ],
)
def test_bad_files_are_rejected_naming_the_problem(data: bytes, name: str, message: str) -> None:
    with pytest.raises(FaqFormatError, match=message):
        parse_faq(data, name)


# --- search ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected_category"),
    [
        ("ごみ", "ごみ・リサイクル"),
        ("印鑑", "住民票・戸籍・印鑑証明"),
        ("税金", "税金"),
        ("戸籍", "住民票・戸籍・印鑑証明"),
    ],
)
def test_two_character_queries_find_their_topic(real_index: FaqIndex, query: str, expected_category: str) -> None:
    hits = real_index.search(query, 5)
    assert len(hits) == 5
    assert all(hit.entry.category == expected_category for hit in hits[:2])


def test_one_character_query_uses_unigrams(real_index: FaqIndex) -> None:
    hits = real_index.search("税", 5)
    assert hits and all("税" in hit.entry.question for hit in hits)


def test_width_and_kana_variants_give_the_same_ranking(real_index: FaqIndex) -> None:
    ids = [h.entry.id for h in real_index.search("マイナンバー", 5)]
    assert ids == [h.entry.id for h in real_index.search("ﾏｲﾅﾝﾊﾞｰ", 5)]
    assert ids == [h.entry.id for h in real_index.search("まいなんばー", 5)]
    assert [h.entry.id for h in real_index.search("ゴミ", 5)] == [h.entry.id for h in real_index.search("ごみ", 5)]


def test_question_match_outranks_answer_only_match() -> None:
    index = FaqIndex(
        [
            entry("a", "窓口の場所", answer="粗大ごみは受付センターへ。粗大ごみの料金。"),
            entry("q", "粗大ごみの出し方", answer="こちらをご覧ください。"),
            entry("n", "住民票の取り方", answer="窓口で。"),
        ]
    )
    assert [h.entry.id for h in index.search("粗大ごみ", 10)] == ["q", "a"]


def test_phrase_in_question_beats_scattered_bigrams() -> None:
    index = FaqIndex([entry("scattered", "児童の手当て"), entry("phrase", "児童手当の申請")])
    assert index.search("児童手当", 2)[0].entry.id == "phrase"


def _made_of_query_bigrams(piece: str, query: str) -> bool:
    norm, q = normalize(piece), normalize(query)
    return len(norm) >= 2 and all(norm[i : i + 2] in q for i in range(len(norm) - 1))


def test_highlights_point_at_the_matched_text(real_index: FaqIndex) -> None:
    for query in ("粗大ごみ", "ｺﾞﾐ", "印鑑登録"):
        hits = real_index.search(query, 5)
        assert any(hit.question_highlights for hit in hits)
        for hit in hits:
            for start, end in hit.question_highlights:
                assert _made_of_query_bigrams(hit.entry.question[start:end], query)
            for start, end in hit.snippet_highlights:
                assert _made_of_query_bigrams(hit.snippet[start:end], query)
            assert "\n" not in hit.snippet


def test_snippet_highlight_offsets_are_exact_for_half_width_source() -> None:
    index = FaqIndex([entry("1", "ｺﾞﾐの日", answer="燃やすｺﾞﾐは月曜です。")])
    hit = index.search("ごみ", 1)[0]
    assert [hit.entry.question[s:e] for s, e in hit.question_highlights] == ["ｺﾞﾐ"]
    assert [hit.snippet[s:e] for s, e in hit.snippet_highlights] == ["ｺﾞﾐ"]
    assert render_highlights(hit.entry.question, hit.question_highlights) == "【ｺﾞﾐ】の日"


def test_long_answers_are_cut_around_the_match_with_ellipses() -> None:
    answer = "あ" * 200 + "粗大ごみ" + "い" * 200
    hit = FaqIndex([entry("1", "質問", answer=answer)]).search("粗大ごみ", 1)[0]
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert len(hit.snippet) <= 82
    assert [hit.snippet[s:e] for s, e in hit.snippet_highlights] == ["粗大ごみ"]


def test_no_match_returns_nothing_and_bad_queries_are_refused(real_index: FaqIndex) -> None:
    assert real_index.search("ｘｙｚｘｙｚ", 5) == []
    assert real_index.search("！？。", 5) == []
    with pytest.raises(ValueError, match="empty"):
        real_index.search("   ", 5)
    with pytest.raises(ValueError, match="too long"):
        real_index.search("あ" * 201, 5)
    with pytest.raises(ValueError, match="limit"):
        real_index.search("ごみ", 0)


def test_synonyms_expand_operator_shorthand(real_index: FaqIndex) -> None:
    assert {h.entry.id for h in real_index.search("国保", 3)} == {"890", "940", "1086"}


def test_results_are_deterministic_and_scores_descend(real_index: FaqIndex) -> None:
    first = real_index.search("保育園の申し込み", 10)
    assert [h.entry.id for h in first] == [h.entry.id for h in real_index.search("保育園の申し込み", 10)]
    scores = [h.score for h in first]
    assert scores == sorted(scores, reverse=True)


def test_hit_as_dict_has_the_cli_and_api_fields(real_index: FaqIndex) -> None:
    data = real_index.search("ごみ", 1)[0].as_dict()
    assert {"id", "question", "score", "category", "snippet", "snippet_highlights"} <= set(data)


# --- suggestions -------------------------------------------------------------------------------


def test_suggest_stays_in_the_mapped_categories(real_index: FaqIndex) -> None:
    gomi = suggest(real_index, "gomi", [], 5)
    assert len(gomi) == 5 and all(e.category in {"ごみ・リサイクル", "環境衛生"} for e in gomi)
    zei = suggest(real_index, "zei", [], 5)
    assert all(e.category == "税金" for e in zei)


def test_suggest_ranks_recent_topics_first(real_index: FaqIndex) -> None:
    assert suggest(real_index, "koseki", ["印鑑登録"], 3)[0].id in {"1100", "884"}
    assert suggest(real_index, "kosodate", ["児童手当 振込"], 1)[0].question.startswith("児童手当")


def test_suggest_with_unknown_code_and_custom_mapping(real_index: FaqIndex) -> None:
    custom = {"gomi": ["税金"], "other": ["区の紹介"]}
    assert all(e.category == "税金" for e in suggest(real_index, "gomi", [], 3, custom))
    assert all(e.category == "区の紹介" for e in suggest(real_index, "nonsense", [], 3, custom))
    assert suggest(real_index, "gomi", [], 0) == []


def test_configured_mapping_overrides_only_the_codes_it_names(real_index: FaqIndex) -> None:
    custom = {"gomi": ["税金"]}
    assert all(e.category == "税金" for e in suggest(real_index, "gomi", [], 3, custom))
    assert all(e.category == "住民票・戸籍・印鑑証明" for e in suggest(real_index, "koseki", ["住民票"], 2, custom))
