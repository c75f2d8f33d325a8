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
