"""Pure: what a question asks about a topic (its aspect): the deadline, where, how much, what kinds.

A ward FAQ holds many entries on one topic that differ only in what they ask: 児童扶養手当 has
entries on its kinds, its income limit, when to renew, how long the decision takes, applying by
post. Words alone rank them by how often the topic's words occur, so a caller's 「ひとり親の手当
申請してから決まるまで何か月」 found the entries richest in 児童扶養手当, not the one on how long the
decision takes. The ranking (faq/index.py) gives an entry whose question asks what the caller asks
a bonus.

The patterns are general Japanese question forms, on the question's text and the caller's text as
typed (NFKC): a caller's いつまで and an entry's 期限 are both a deadline. Where such a word is part
of a topic word it is excluded (所得証明書 is a document, not the income limit; 収入印紙, 利用料金助成,
居場所, 何時間 is a duration, ことは is not とは), and the bonus multiplies the score the words earned,
so an aspect cannot pull an unrelated entry up on its own. Measured in tests/unit/test_faq_recall.py.
"""

from __future__ import annotations

import re
import unicodedata

_PATTERNS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern)
    for name, pattern in {
        "deadline": r"いつまで(?!支給|開|やっ|もらえ|受け|使え)|期限|締め?切|〆切|しめきり",
        "missed": (
            r"過ぎ(?:て|た|ちゃ)|間に合わ|忘れ|(?:行け|受けられ|受診でき)なかった|(?:受診|受け)(?:られ|でき)ません"
        ),
        "start": r"いつから|開始|始ま",
        "duration": (
            r"(?:どの|どれ)くらい(?:の期間|かか)|期間は|何[かヶカヵケ箇]月|何日(?:くらい|ぐらい|かか)|何週間|何時間"
            r"|決まるまで|されるまで|までの期間|までにかかる"
        ),
        "kinds": (
            r"種類|一覧|何がある|何があり|何がもらえ|どういったもの"
            r"|(?:どんな|どのような)(?:もの|の|手当|支援|制度|サービス|助成)"
        ),
        "where": r"どこ|(?<!居)場所|窓口(?!の混)|会場",
        "cost": (
            r"いくら|(?<!利用)料金(?!助成)|(?<!出産)費用|金額|値段|無料|タダ|有料(?!老人)|自己負担|自腹|月謝"
        ),
        "income": r"所得(?!証明|税|の証明)|収入(?!印紙)",
        "lost": r"(?<![少危す])なくし|無くし|失くし|紛失",
        "count": r"何[かヶカヵケ箇]所|何園|何校|数は|数を|の数|いくつ(?!から|まで|の子|で)",
        "hours": r"何時(?!間)|時間帯|(?:開所|利用|受付|診療|開館)時間|曜日|開いて|利用日|休館",
        "needed": r"必要なもの|必要な(?:書類|物)|必要書類|持ち物|何が必要|持っていく|持参",
        "reissue": r"再発行|再交付",
        "definition": (
            r"(?<![こあもひ])とは(?:何|なん|なに|どう|\W|$)|って(?:何|なに|なん)(?!歳|才|か月|ヶ月|人|回|日|時|年)"
        ),
        "remote": r"郵送|オンライン|ネットで|インターネット|電子申請",
    }.items()
}


def aspects_of(text: str) -> frozenset[str]:
    """The aspects a question (or a caller's words) asks about; empty when it asks none of them."""
    folded = unicodedata.normalize("NFKC", text)
    return frozenset(name for name, pattern in _PATTERNS.items() if pattern.search(folded))
