"""Normalisation and tokenisation used by both the FAQ index and the queries."""

from __future__ import annotations

from faq.textnorm import grams, normalize, normalize_with_map, runs, unigrams


def test_full_width_ascii_and_case_fold() -> None:
    assert normalize("ＢＣＧ　Ｗａｋｕ１２３") == "bcg waku123"


def test_katakana_folds_to_hiragana() -> None:
    assert normalize("ゴミ") == normalize("ごみ") == "ごみ"
    assert normalize("マイナンバー") == "まいなんばー"


def test_half_width_katakana_with_dakuten_composes() -> None:
    # ｺﾞﾐ is three code points; the dakuten must join the ｺ as whole-string NFKC would.
    assert normalize("ｺﾞﾐ") == "ごみ"
    assert normalize("ﾊﾟｽﾎﾟｰﾄ") == normalize("パスポート") == "ぱすぽーと"


def test_offset_map_points_back_to_source_characters() -> None:
    text = "ｺﾞﾐの日、ＡＢ"
    norm, origin = normalize_with_map(text)
    assert norm == "ごみの日、ab"
    assert origin is not None and len(origin) == len(norm)
    assert text[origin[1]] == "ﾐ"  # み came from ﾐ (index 2), after the composed ｺﾞ
    assert origin[:3] == [0, 2, 3]


def test_text_that_folds_one_to_one_has_an_identity_map() -> None:
    assert normalize_with_map("（ゴミの日）") == ("(ごみの日)", None)


def test_punctuation_and_placeholders_split_runs() -> None:
    assert [r for _s, r in runs(normalize("○○市の粗大ごみ（料金）"))] == ["市の粗大ごみ", "料金"]


def test_bigrams_do_not_cross_runs_and_single_characters_are_unigrams() -> None:
    assert grams(normalize("粗大ゴミ・税")) == ["粗大", "大ご", "ごみ", "税"]
    assert grams("ごみ") == ["ごみ"]
    assert list(unigrams("税、金")) == ["税", "金"]


def test_the_counters_small_ka_is_one_spelling() -> None:
    # 6ヶ月, 6ヵ月, 6カ月 and 6か月 are the same month count; 何ヶ所 is the FAQ's 何か所
    assert {normalize(t) for t in ("6ヶ月", "6ヵ月", "6カ月", "6か月", "６ヶ月")} == {"6か月"}
    assert normalize("何ヶ所") == "何か所"
    assert normalize_with_map("6ヶ月")[1] is None  # one character for one: highlights map back as they are
