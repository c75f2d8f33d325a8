"""What a question asks about its topic (faq/aspects.py), in the entry's words and the caller's."""

from __future__ import annotations

import pytest

from faq.aspects import aspects_of


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("保育園の申し込みの締め切りはいつですか？", {"deadline"}),
        ("保育園 申込 いつまで", {"deadline"}),
        ("児童扶養手当が認定されるまでの期間は。", {"duration"}),
        ("申請してから決まるまで何ヶ月", {"duration"}),
        ("ひとり親家庭への手当・助成の種類を教えてください。", {"kinds"}),
        ("母子家庭がもらえるお金にはどんなのがある", {"kinds"}),  # the caller's どんなの
        ("どんなものがありますか", {"kinds"}),
        ("予防接種を受ける場所を教えてください。", {"where"}),
        ("ひとり親手当の所得制限を教えてください。", {"income"}),
        ("6・7か月健診の券を失くしてしまいました。", {"lost"}),
        ("母子手帳を紛失したので再発行したい", {"lost", "reissue"}),
        ("市内の保育園の数を教えてください。", {"count"}),
        ("利用日や利用時間について教えてください。", {"hours"}),
        ("出生届に必要なものは何ですか？", {"needed"}),
        ("ＢＣＧとは何ですか？", {"definition"}),  # full-width, folded by NFKC
        ("児童扶養手当は郵送でも申請できますか？", {"remote"}),
        ("児童手当について教えてください。", set()),  # a topic alone asks nothing in particular
    ],
)
def test_aspects_of_a_question(text: str, expected: set[str]) -> None:
    assert aspects_of(text) == expected


def test_an_aspect_is_not_read_inside_another_word() -> None:
    # 何人目 (which child) is not a count; 時間外 is not opening hours typed as 何時
    assert aspects_of("3人目の子どもの手当") == frozenset()
    assert "count" not in aspects_of("何人目から保育料が無料になりますか")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the FAQ's own questions where a pattern once fired inside a topic word
        ("保育園は働いていないと預けることはできませんか？", set()),  # ことは is not とは
        ("児童手当で必要な所得証明書について教えてください。", set()),  # a document, not the income limit
        ("病児・病後児利用料金助成は誰が対象になりますか？", set()),  # a programme, not a price
        ("入院助産（出産費用の助成）の制度について教えてください。", set()),
        ("（住民票・戸籍担当課）の窓口の混雑状況を教えてください", set()),
        ("児童手当はいつまで支給されますか？", set()),  # until what age, not a deadline to meet
        ("入園できなかった場合、毎月申し込みが必要ですか？", set()),  # not a missed appointment
        # and in callers' words
        ("収入印紙 どこで買う", {"where"}),
        ("健診の時間 何時間くらいかかる", {"duration"}),  # 何時間 is how long, not what time
        ("いくつから入れる", set()),  # an age
        ("有料老人ホーム", set()),
        ("量を少なくした", set()),
        ("これって何歳から", set()),
        ("居場所がほしい", set()),
    ],
)
def test_a_topic_word_is_not_an_aspect(text: str, expected: set[str]) -> None:
    assert aspects_of(text) == expected
